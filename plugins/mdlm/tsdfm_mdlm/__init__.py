"""MDLM as a lightning-tsdfm plugin: the masked diffusion LM (absorbing state, SUBS, log-linear schedule,
continuous-time NELBO, ancestral and cached samplers), its SDTT-style few-step distillation, and readers of MDLM's
published weights (the Hugging Face release, the EMA of its Lightning checkpoints)."""

from tsdfm_mdlm.cache import CachedDenoiser
from tsdfm_mdlm.checkpoint_layout import from_mdlm_state_dict, to_mdlm_state_dict
from tsdfm_mdlm.hf_release import load_hf_release, read_hf_release
from tsdfm_mdlm.lightning_ema import mdlm_ema_state_dict
from tsdfm_mdlm.module import MDLMModule
from tsdfm_mdlm.sdtt import SDTTModule

__all__ = ["CachedDenoiser", "MDLMModule", "SDTTModule", "from_mdlm_state_dict", "load_hf_release", "mdlm_ema_state_dict",
           "read_hf_release", "to_mdlm_state_dict"]
