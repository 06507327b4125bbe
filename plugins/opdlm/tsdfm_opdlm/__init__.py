"""OPDLM as a lightning-tsdfm plugin: a causal LM (the project's, or a Hugging Face one) turned into a block-diffusion
LM by on-policy distillation, with the comparison arms (block diffusion from scratch, the converted model trained on
data or distilled off-policy) on the same backbone and sampler."""

from tsdfm_opdlm.block_attention import block_causal_mask, doubled_mask, doubled_positions
from tsdfm_opdlm.decoding import ConfidenceRule, Rollout, causal_decode, confidence_decode
from tsdfm_opdlm.distillation import cross_entropy, teacher_targets, top_k_forward_kl
from tsdfm_opdlm.hf_causal_lm import write_tokenizer_json
from tsdfm_opdlm.module import OPDLMModule
from tsdfm_opdlm.states import random_states, trajectory_states
from tsdfm_opdlm.student import student_from_causal

__all__ = ["ConfidenceRule", "OPDLMModule", "Rollout", "block_causal_mask", "causal_decode", "confidence_decode",
           "cross_entropy", "doubled_mask", "doubled_positions", "random_states", "student_from_causal", "teacher_targets",
           "top_k_forward_kl", "trajectory_states", "write_tokenizer_json"]
