"""FLM and FMLM as a lightning-tsdfm plugin: flow matching on one-hot encodings with a cross-entropy denoiser and
the decoding-error time reparameterisation (``FLMModule``, kind ``flm``), and its distillation into a few-step flow
map by the semigroup objective (``FMLMModule``, kind ``fmlm``)."""

from tsdfm_flm.decoding_error_time import DecodingErrorTime, alpha_exact, argmax_accuracy, decoding_error_time
from tsdfm_flm.flow_map import euler_step, flow_map, semigroup_target, semigroup_weight
from tsdfm_flm.fmlm import FMLMModule
from tsdfm_flm.interpolant import GaussianSource, OneHotGaussianPath, one_hot_interpolant
from tsdfm_flm.module import FLMModule
from tsdfm_flm.samplers import euler_sampling_step, flow_map_sampling_step

__all__ = ["DecodingErrorTime", "FLMModule", "FMLMModule", "GaussianSource", "OneHotGaussianPath", "alpha_exact",
           "argmax_accuracy", "decoding_error_time", "euler_sampling_step", "euler_step", "flow_map",
           "flow_map_sampling_step", "one_hot_interpolant", "semigroup_target", "semigroup_weight"]
