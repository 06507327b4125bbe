"""Jumps: the random draw that moves x_t to x_{t+h} given a denoiser's posterior p(x1 | x_t, t) or a model's
next-state kernel q(x_{t+h} | x_t).

Models own the distribution; the library owns the draw. Every sampler and every trajectory teacher calls a
:class:`JumpPolicy`, so a callback can swap the blind jump for a guided one without touching the model.
Two calls, one per kind of distribution a model family computes:

- ``policy(x_t, probs, t, h, path, generator)``: a denoiser's p(x1 | x_t, t) on a :class:`MixturePath`
  (our teacher and students, MDLM); the next-state kernel is :func:`mixture_kernel`;
- ``policy.transition(x_t, kernel, t, h, generator)``: any next-state kernel q(x_{t+h} | x_t) [B, L, S]
  whose rows sum to one (SEDD's Euler and Tweedie tau-leaping steps, other plugins).

``draw_candidates`` (the blind and guided jumps) also hands over the candidate states and the law of the kept one,
for trajectory targets that average over the candidates (``endpoint_averaged``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

from lightning_tsdfm.paths import MixturePath


def sample_categorical(
    probs: Tensor, generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Draw one index per row of ``probs[..., V]`` by the Gumbel-max trick, argmax(log p + G).

    The Gumbel noise is drawn in ``dtype`` (float64 by default): float32 Gumbel draws truncate the tail of
    small probabilities and measurably lower sample diversity.
    """
    u = torch.rand(probs.shape, dtype=dtype, device=probs.device, generator=generator)
    tiny = torch.finfo(dtype).tiny
    exponential = (-torch.log(u.clamp_min(tiny))).clamp_min(tiny)  # E ~ Exp(1); -log E ~ Gumbel(0, 1)
    gumbel = -torch.log(exponential)
    return torch.argmax(torch.log(probs.to(dtype)) + gumbel, dim=-1)


def per_sequence(value, batch: int, device=None, name: str = "t") -> Tensor:
    """A time or step size of each of ``batch`` sequences as [B]: given as [B], as [B, 1] (MDLM's sampler passes its
    times so) or as one number for all; a [B] tensor is returned as it is."""
    value = torch.as_tensor(value, device=device)
    if value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    elif value.dim() == 0:
        value = value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(f"{name} must have shape [B] or [B, 1] for B = {batch} sequences, or be one number; "
                         f"got shape {list(value.shape)}.")
    return value


def temper(probs: Tensor, temperature: float) -> Tensor:
    """p^(1/T) / sum_y p(y)^(1/T) along the last axis; T = 1 returns ``probs`` itself (bit for bit)."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs) / temperature, dim=-1)


def temper_moves(kernel: Tensor, x_t: Tensor, temperature: float) -> Tensor:
    """A next-state kernel [B, L, S] whose moves are tempered and whose stay probability is kept:

        q_T(x_t) = q(x_t),   q_T(y) = (1 - q(x_t)) q(y)^(1/T) / sum_{y' != x_t} q(y')^(1/T)   (y != x_t).

    The rate of change is the model's; only which state a move goes to is sharpened (T < 1) or flattened.
    """
    if temperature == 1.0:
        return kernel
    index = x_t[..., None]
    stay = kernel.gather(-1, index)
    moves = temper(kernel.scatter(-1, index, 0.0), temperature)
    tempered = (moves * (1 - stay)).scatter(-1, index, stay)
    return torch.where(stay >= 1, kernel, tempered)  # nothing to move: no rows of NaN


def mixture_kernel(x_t: Tensor, probs: Tensor, t: Tensor, h: Tensor, path: MixturePath) -> Tensor:
    """q(x_{t+h}^i = y | x_t) [B, L, S] of the blind jump, S = the source's input vocabulary (with the mask id):

        unsettled i:  p_jump * p(x1^i = y | x_t, t) + (1 - p_jump) * delta(y, x_t^i),   p_jump = path.jump_probability
        settled i:    delta(y, x_t^i)        (with the mask source a revealed token never returns to the mask)
    """
    states = path.source.input_vocab_size
    t, h = per_sequence(t, len(x_t), x_t.device), per_sequence(h, len(x_t), x_t.device, "h")
    stay = torch.nn.functional.one_hot(x_t, states).to(probs.dtype)
    p_x1 = torch.nn.functional.pad(probs, (0, states - probs.shape[-1]))
    p_jump = path.jump_probability(t, h).to(probs.dtype)[:, None, None]
    moving = p_jump * p_x1 + (1 - p_jump) * stay
    return torch.where(path.source.unsettled(x_t)[..., None], moving, stay)


@dataclass
class Candidates:
    """One jump's candidate states and the law of the kept one: ``kept`` [B, L] is ``states`` [K, B, L] at an index
    drawn from ``keep_probabilities`` [K, B, L] (summing to one over K). A blind jump is its own single candidate."""

    kept: Tensor
    states: Tensor
    keep_probabilities: Tensor

    @classmethod
    def single(cls, kept: Tensor) -> "Candidates":
        return cls(kept, kept[None], torch.ones((1, *kept.shape), device=kept.device))


@runtime_checkable
class JumpPolicy(Protocol):
    """x_{t+h} = policy(x_t, probs, t, h, path, generator); probs: [B, L, V] of p(x1 | x_t, t); t, h: [B] (or [B, 1],
    or one number: :func:`per_sequence`).

    ``transition(x_t, kernel, t, h, generator)`` draws x_{t+h}^i ~ kernel[b, i] from a next-state kernel.
    """

    def __call__(
        self,
        x_t: Tensor,
        probs: Tensor,
        t: Tensor,
        h: Tensor,
        path: MixturePath,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor: ...

    def transition(
        self, x_t: Tensor, kernel: Tensor, t: Tensor, h: Tensor, generator: Optional[torch.Generator] = None
    ) -> Tensor: ...


class BlindJump:
    """The finite-step jump of the mixture path.

    Per position: x1_hat ~ p(. | x_t, t); an unsettled position moves to x1_hat with probability
    (kappa(t+h) - kappa(t)) / (1 - kappa(t)), else stays. With the mask source only masked positions are
    unsettled, so revealed tokens never change; at t+h = 1 the probability is 1 and everything is filled.

    ``temperature`` T samples x1_hat from p^(1/T) (renormalised), and a next-state kernel's moves likewise
    (:func:`temper_moves`): the sampling temperature of every sampler. T = 1 is the plain draw, bit for bit.
    """

    def __init__(self, dtype: torch.dtype = torch.float64, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise ValueError(f"The sampling temperature must be > 0, got {temperature}.")
        self.dtype = dtype
        self.temperature = temperature

    def __call__(self, x_t, probs, t, h, path, generator=None):
        x1_hat = self.draw_tokens(probs, generator)
        return torch.where(self.draw_moves(x_t, t, h, path, generator), x1_hat, x_t)

    def draw_candidates(self, x_t, probs, t, h, path, generator=None) -> Candidates:
        """The jump as its one candidate (what a guided jump hands over as K candidates and their keep law)."""
        return Candidates.single(self(x_t, probs, t, h, path, generator))

    def transition(self, x_t, kernel, t, h, generator=None):
        """x_{t+h}^i ~ kernel[b, i, :] (rows of q(x_{t+h} | x_t) summing to one), independently per position.
        ``kernel`` may carry leading candidate axes [..., B, L, S] over x_t [B, L]."""
        return sample_categorical(temper_moves(kernel, x_t.expand(kernel.shape[:-1]), self.temperature), generator, self.dtype)

    def draw_tokens(self, probs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """x1_hat ~ p(. | x_t, t)^(1/T) per position, [B, L]."""
        return sample_categorical(temper(probs, self.temperature), generator, self.dtype)

    def draw_moves(self, x_t: Tensor, t: Tensor, h: Tensor, path: MixturePath,
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """Bool [B, L]: the unsettled positions that move, each with probability (kappa(t+h)-kappa(t))/(1-kappa(t))."""
        t, h = per_sequence(t, len(x_t), x_t.device), per_sequence(h, len(x_t), x_t.device, "h")
        p_jump = path.jump_probability(t, h)[:, None]
        u = torch.rand(x_t.shape, dtype=self.dtype, device=x_t.device, generator=generator)
        return (u < p_jump) & path.source.unsettled(x_t)

    def __repr__(self) -> str:
        return f"BlindJump(dtype={self.dtype}, temperature={self.temperature})"
