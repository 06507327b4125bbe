"""The path FLM's states live on: Gaussian noise interpolated towards the data's one-hot encoding,

    x_gamma = (1 - gamma) eps + gamma onehot(x1),   eps ~ N(0, I) in R^{L x V},

from gamma = 0 (pure noise) to gamma = 1 (the one-hot data), with gamma = gamma(tau) of the decoding-error time.

Bridge to the discrete paths: per position, argmax x_gamma equals x1 with probability q(gamma) = alpha + (1 - alpha)/V
and is otherwise uniform over the other V - 1 tokens (the noise is exchangeable across them), which is the
uniform-source mixture path at kappa = alpha(gamma) = tau. Positions are independent given x1, as on that path.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from tsdfm_flm.decoding_error_time import DecodingErrorTime, decoding_error_time


def per_sequence(value: Tensor, like: Tensor) -> Tensor:
    """A per-sequence value [B] shaped to broadcast over ``like`` [B, ...]."""
    return value.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def one_hot_interpolant(x1: Tensor, gamma: Tensor, noise: Tensor) -> Tensor:
    """x_gamma = (1 - gamma) noise + gamma onehot(x1): x1 [B, L] token ids, gamma [B], noise [B, L, V]."""
    one_hot = torch.nn.functional.one_hot(x1, noise.shape[-1]).to(noise.dtype)
    g = per_sequence(gamma, noise)
    return (1 - g) * noise + g * one_hot


class GaussianSource:
    """The start of FLM's path: eps ~ N(0, I) over the V coordinates of every position (continuous states)."""

    name = "gaussian"

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def sample(self, shape: tuple[int, ...], generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """eps of shape [*shape, V], float32."""
        return torch.randn(*shape, self.vocab_size, generator=generator, device=device)


class OneHotGaussianPath:
    """x_gamma(tau) of FLM: the one-hot interpolant at gamma = gamma(tau). Not a library ``MixturePath``: its states
    are points of R^V per position, not tokens (so no jump policy draws them and no compass scores them)."""

    def __init__(self, vocab_size: int) -> None:
        self.source = GaussianSource(vocab_size)
        self.time: DecodingErrorTime = decoding_error_time(vocab_size)

    def gamma(self, tau: Tensor) -> Tensor:
        """gamma(tau), in tau's float dtype."""
        return self.time.gamma(tau).to(tau.dtype if tau.is_floating_point() else torch.float32)

    def sample(self, x1: Tensor, tau: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """x_gamma(tau) [B, L, V] for data x1 [B, L] and times tau [B]."""
        noise = self.source.sample(tuple(x1.shape), generator, x1.device)
        return one_hot_interpolant(x1, self.gamma(tau), noise)
