"""DUO's curriculum: the denoiser first reads a tempered-softmax relaxation of the Gaussian latent, then tokens.

For the first ``steps`` optimizer steps a training example is the Gaussian latent w = a onehot(x1) + s eps at a time
of the band (:class:`~tsdfm_duo.band.GaussianBand`), the denoiser reads

    softmax(w / tau)        [B, L, V], through the embedding matrix (softmax(w / tau) @ E),

and the loss is the uniform-state NELBO at the tokens z = argmax(w), whose law is the uniform-state path at
kappa = T(gamma) (:mod:`tsdfm_duo.duality`). As tau -> 0 the relaxation tends to onehot(z), whose embedding is z's,
so the loss tends to the discrete loss at the same tokens and noise level. tau is annealed log-linearly from
``temperature_start`` at step 0 to ``temperature_end`` at step ``steps``; from then on the denoiser reads tokens
drawn on the library's path (the discrete loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Curriculum:
    """``steps`` optimizer steps of the relaxation (0: none), its temperature annealed from ``temperature_start`` to
    ``temperature_end``, log-linearly in the step."""

    steps: int
    temperature_start: float
    temperature_end: float

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"curriculum_steps must be >= 0 (0: no curriculum), got {self.steps}.")
        if not (self.temperature_start > 0 and self.temperature_end > 0):
            raise ValueError(f"The curriculum's temperatures must be > 0, got {self.temperature_start} and "
                             f"{self.temperature_end}.")

    def active(self, step: int) -> bool:
        """Whether optimizer step ``step`` trains on the relaxation."""
        return step < self.steps

    def temperature(self, step: int) -> float:
        """tau at ``step``: log tau interpolated linearly from the start (step 0) to the end (step ``steps``)."""
        fraction = min(step / self.steps, 1.0) if self.steps else 1.0
        start, end = math.log(self.temperature_start), math.log(self.temperature_end)
        return math.exp(start + fraction * (end - start))


def relaxed_one_hot(latent: Tensor, temperature: float) -> Tensor:
    """softmax(w / tau) over the last axis, in the latent's dtype: the denoiser's input during the curriculum."""
    return torch.softmax(latent / temperature, dim=-1)
