"""Conditional sampling of FLM and FMLM: known tokens clamped as one-hot encodings on the continuous state.

With known tokens y at the positions of a :class:`~lightning_tsdfm.conditioning.Given`, a sampler's state z [B, L, V]
holds onehot(y^i) at every known position i from z_0 on (the data end of the path, gamma = 1, there), and after every
step; the denoiser's D(z)^i is delta(y^i) there, so an Euler or flow-map step maps onehot(y^i) to itself up to the
renoising a stochastic flow-map step adds (which the clamp removes), and the last step's argmax is y^i.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from lightning_tsdfm.conditioning import Given
from tsdfm_flm.samplers import Denoiser, Step


def clamp_one_hots(z: Tensor, given: Given) -> Tensor:
    """z [B, L, V] with onehot(y^i) at the known positions."""
    one_hot = torch.nn.functional.one_hot(given.tokens.to(z.device), z.shape[-1]).to(z.dtype)
    return torch.where(given.known.to(z.device)[..., None], one_hot, z)


def conditioned_denoiser(denoiser: Denoiser, given: Given) -> Denoiser:
    """``denoiser`` whose probabilities are delta(y^i) at the known positions."""
    return lambda z, tau, h: given.posterior(denoiser(z, tau, h))


def conditioned_step(step: Step, given: Given) -> Step:
    """``step`` followed by the clamp: the known one-hots on a continuous state, the known tokens on the last step's
    token ids."""

    def clamped(z: Tensor, tau: Tensor, h: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        out = step(z, tau, h, generator)
        return given.impose(out) if out.dim() == 2 else clamp_one_hots(out, given)

    return clamped
