from lightning_tsdfm.modules.causal_lm import CausalLMModule
from lightning_tsdfm.modules.loading import load_module, read_checkpoint_header
from lightning_tsdfm.modules.teacher import TeacherModule

__all__ = ["CausalLMModule", "TeacherModule", "load_module", "read_checkpoint_header"]
