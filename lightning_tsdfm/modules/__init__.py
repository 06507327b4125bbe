from lightning_tsdfm.checkpoints import load_module, read_checkpoint, read_checkpoint_header, register_module_classes
from lightning_tsdfm.modules.causal_lm import CausalLMModule
from lightning_tsdfm.modules.compass import CompassModule
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.fsdfm_teacher import load_fsdfm_teacher
from lightning_tsdfm.modules.path_lm import PathLMModule
from lightning_tsdfm.modules.student import StudentModule
from lightning_tsdfm.modules.teacher import TeacherModule

register_module_classes(CausalLMModule, CompassModule, PathLMModule, StudentModule, TeacherModule)

__all__ = ["CausalLMModule", "CompassModule", "DenoiserModule", "PathLMModule", "StudentModule", "TeacherModule", "load_fsdfm_teacher", "load_module", "read_checkpoint", "read_checkpoint_header"]
