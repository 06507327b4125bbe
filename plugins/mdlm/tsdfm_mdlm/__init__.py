"""MDLM as a lightning-tsdfm plugin: the masked diffusion LM (absorbing state, SUBS, log-linear schedule,
continuous-time NELBO, ancestral and cached samplers) and its SDTT-style few-step distillation."""

from tsdfm_mdlm.cache import CachedDenoiser
from tsdfm_mdlm.checkpoint_layout import from_mdlm_state_dict, to_mdlm_state_dict
from tsdfm_mdlm.module import MDLMModule
from tsdfm_mdlm.sdtt import SDTTModule

__all__ = ["CachedDenoiser", "MDLMModule", "SDTTModule", "from_mdlm_state_dict", "to_mdlm_state_dict"]
