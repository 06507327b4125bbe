"""DUO as a lightning-tsdfm plugin: uniform-state discrete diffusion trained on the NELBO after a curriculum on the
tempered-softmax relaxation of the Gaussian diffusion it is the argmax of (``DUOModule``, kind ``duo``), and its
Discrete Consistency Distillation into a few-step sampler (``DCDModule``, kind ``duo_dcd``). Registered under the
``lightning_tsdfm.plugins`` entry-point group."""

from tsdfm_duo.band import CURRICULUM_KAPPA, DISTILLATION_KAPPA, GaussianBand
from tsdfm_duo.curriculum import Curriculum, relaxed_one_hot
from tsdfm_duo.distillation import NOT_SHAPEABLE, DCDModule
from tsdfm_duo.duality import argmax_accuracy, argmax_kappa, d_argmax_kappa, gamma_for_kappa, gaussian_latent
from tsdfm_duo.module import DUOModule
from tsdfm_duo.nelbo import prior_kl, uniform_state_nelbo
from tsdfm_duo.posterior import ancestral_kernel
from tsdfm_duo.trajectory import ArgmaxTrajectory

__all__ = ["CURRICULUM_KAPPA", "DISTILLATION_KAPPA", "NOT_SHAPEABLE", "ArgmaxTrajectory", "Curriculum", "DCDModule",
           "DUOModule", "GaussianBand", "ancestral_kernel", "argmax_accuracy", "argmax_kappa", "d_argmax_kappa",
           "gamma_for_kappa", "gaussian_latent", "prior_kl", "relaxed_one_hot", "uniform_state_nelbo"]
__version__ = "0.1.0"
