"""N-step sampling of a mixture-path denoiser: x_0 ~ source, then N jumps of size h = 1/N,

    x_{t+h} = jump(x_t, softmax(f(x_t, t, h)), t, h)   for t = 0, h, ..., 1 - h.

The model gives the kernel, the :class:`JumpPolicy` makes the draw, so the same loop serves a teacher
(which ignores h), a few-step student, and any policy a callback installs. :func:`sample_chain` is the loop
itself, for any model family: x_0 ~ start, then x_{t+h} = step(x_t, t, h) (SEDD's steps draw a next-state
kernel with ``jump.transition``).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import MixturePath

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x_t [B, L], t [B], h [B]) -> logits [B, L, V]
Step = Callable[[Tensor, Tensor, Tensor, Optional[torch.Generator]], Tensor]  # (x_t, t, h, generator) -> x_{t+h}
Start = Callable[[tuple[int, int], Optional[torch.Generator], torch.device | str], Tensor]  # (shape, generator, device) -> x_0


def denoiser_step(denoiser: Denoiser, path: MixturePath, jump: JumpPolicy) -> Step:
    """x_{t+h} = jump(x_t, softmax(denoiser(x_t, t, h)), t, h, path): one step of a mixture-path denoiser."""

    def step(x: Tensor, t: Tensor, h: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        return jump(x, torch.softmax(denoiser(x, t, h).float(), dim=-1), t, h, path, generator)

    return step


@torch.no_grad()
def sample_sequences(
    denoiser: Denoiser,
    path: MixturePath,
    jump: JumpPolicy,
    num_samples: int,
    seq_len: int,
    steps: int,
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
    batch_size: Optional[int] = None,
    progress: bool = False,
    description: str = "sampling",
) -> Tensor:
    """Draw ``num_samples`` sequences of ``seq_len`` tokens in ``steps`` uniform steps; returns LongTensor[N, L]."""
    return sample_chain(denoiser_step(denoiser, path, jump), path.source.sample, num_samples, seq_len, steps, generator, device, batch_size,
                        progress, description)


@torch.no_grad()
def sample_chain(
    step: Step,
    start: Start,
    num_samples: int,
    seq_len: int,
    steps: int,
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
    batch_size: Optional[int] = None,
    progress: bool = False,
    description: str = "sampling",
) -> Tensor:
    """x_0 ~ start, then x_{t+h} = step(x_t, t, h, generator) for t = 0, h, ..., 1 - h with h = 1/steps, in
    chunks of ``batch_size`` sequences; returns LongTensor[num_samples, seq_len]. Any model family's sampler."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    batch_size = batch_size or num_samples
    chunks = [min(batch_size, num_samples - first) for first in range(0, num_samples, batch_size)]
    bar = tqdm(total=steps * len(chunks), desc=description, disable=not progress, unit="step")
    out = []
    for size in chunks:
        x = start((size, seq_len), generator, device)
        h = torch.full((size,), 1.0 / steps, device=device)
        for k in range(steps):
            x = step(x, torch.full((size,), k / steps, device=device), h, generator)
            bar.update()
        out.append(x)
    bar.close()
    return torch.cat(out)
