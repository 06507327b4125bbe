"""FLM and FMLM as a lightning-tsdfm plugin: flow matching on one-hot encodings with a cross-entropy denoiser and
the decoding-error time reparameterisation, and its distillation into a few-step flow map by a semigroup objective."""

from tsdfm_flm.decoding_error_time import DecodingErrorTime, alpha_exact, argmax_accuracy, decoding_error_time
from tsdfm_flm.flow_map import euler_step, flow_map, semigroup_target, semigroup_weight
from tsdfm_flm.interpolant import GaussianSource, OneHotGaussianPath, one_hot_interpolant

__all__ = ["DecodingErrorTime", "GaussianSource", "OneHotGaussianPath", "alpha_exact", "argmax_accuracy",
           "decoding_error_time", "euler_step", "flow_map", "one_hot_interpolant", "semigroup_target", "semigroup_weight"]
