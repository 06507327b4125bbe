"""N-step sampling of a mixture-path denoiser: x_0 ~ source, then N jumps of size h = 1/N,

    x_{t+h} = jump(x_t, softmax(f(x_t, t, h)), t, h)   for t = 0, h, ..., 1 - h,

or of the sizes h_1..h_N of a non-uniform grid (``step_sizes``, summing to one; t_k = h_1 + ... + h_k).

The model gives the posterior p(x1 | x_t), the :class:`JumpPolicy` makes the draw, so the same loop serves a teacher
(which ignores h), a few-step student, and any policy a callback installs. :func:`sample_chain` is the loop
itself, for any model family: x_0 ~ start, then x_{t+h} = step(x_t, t, h) (SEDD's steps draw a next-state
kernel with ``jump.transition``). :func:`sample_first_hitting` draws the same distribution as the N-step loop for
a mask source with at most L forwards. Both condition on known tokens (a :class:`~lightning_tsdfm.conditioning.Given`):
:func:`sample_chain_given` runs the loop with a start and a step that keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Callable, Optional

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.jumps import BlindJump, JumpPolicy
from lightning_tsdfm.paths import MaskSource, MixturePath

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x_t [B, L], t [B], h [B]) -> logits [B, L, V]
Step = Callable[[Tensor, Tensor, Tensor, Optional[torch.Generator]], Tensor]  # (x_t, t, h, generator) -> x_{t+h}
Start = Callable[[tuple[int, int], Optional[torch.Generator], torch.device | str], Tensor]  # (shape, generator, device) -> x_0
StepFor = Callable[[Given], Step]  # the known tokens of a chunk of sequences -> a step that keeps them
StartFor = Callable[[Given], Start]  # the known tokens of a chunk of sequences -> a start that holds them


def denoiser_step(denoiser: Denoiser, path: MixturePath, jump: JumpPolicy) -> Step:
    """x_{t+h} = jump(x_t, softmax(denoiser(x_t, t, h)), t, h, path): one step of a mixture-path denoiser."""

    def step(x: Tensor, t: Tensor, h: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        return jump(x, torch.softmax(denoiser(x, t, h).float(), dim=-1), t, h, path, generator)

    return step


def _check_step_sizes(step_sizes: Sequence[float], steps: int) -> list[float]:
    """A grid of ``steps`` positive step sizes that sum to one (within 1e-9), as floats."""
    sizes = [float(h) for h in step_sizes]
    if len(sizes) != steps:
        raise ValueError(f"{len(sizes)} step sizes for {steps} steps: give one size per step.")
    if min(sizes) <= 0 or abs(sum(sizes) - 1.0) > 1e-9:
        raise ValueError(f"step sizes must be positive and sum to 1, got {sizes} (sum {sum(sizes)}).")
    return sizes


def parse_step_sizes(text: str) -> list[float]:
    """'1/64,1/64,1/32,...' (fractions or decimals, comma-separated) -> the sizes as floats."""
    try:
        return [float(Fraction(part.strip())) for part in text.split(",")]
    except (ValueError, ZeroDivisionError) as err:
        raise ValueError(f"step sizes {text!r}: expected comma-separated fractions such as 1/64,1/64,1/32") from err


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
    step_sizes: Optional[Sequence[float]] = None,
) -> Tensor:
    """x_0 ~ start, then x_{t+h} = step(x_t, t, h, generator) for t = 0, h, ..., 1 - h with h = 1/steps (or the
    grid ``step_sizes``), in chunks of ``batch_size`` sequences; returns LongTensor[num_samples, seq_len]. Any
    model family's sampler."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    if step_sizes is None:
        grid = [(k / steps, 1.0 / steps) for k in range(steps)]
    else:
        sizes = _check_step_sizes(step_sizes, steps)
        grid = [(sum(sizes[:k]), h) for k, h in enumerate(sizes)]
    batch_size = batch_size or num_samples
    chunks = [min(batch_size, num_samples - first) for first in range(0, num_samples, batch_size)]
    bar = tqdm(total=steps * len(chunks), desc=description, disable=not progress, unit="step")
    out = []
    for size in chunks:
        x = start((size, seq_len), generator, device)
        for t, h in grid:
            x = step(x, torch.full((size,), t, device=device), torch.full((size,), h, device=device), generator)
            bar.update()
        out.append(x)
    bar.close()
    return torch.cat(out)


def given_start(start: Start) -> StartFor:
    """x_0 ~ start with the known tokens written in: the start of a conditioned chain of token states."""

    def start_for(given: Given) -> Start:
        return lambda shape, generator, device: given.impose(start(shape, generator, device))

    return start_for


@torch.no_grad()
def sample_chain_given(
    step_for: StepFor,
    start_for: StartFor,
    given: Given,
    steps: int,
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
    batch_size: Optional[int] = None,
    progress: bool = False,
    description: str = "sampling",
    step_sizes: Optional[Sequence[float]] = None,
) -> Tensor:
    """:func:`sample_chain` of ``len(given)`` sequences of ``given.length`` tokens, sequence b conditioned on the known
    tokens of row b of ``given``: each chunk of ``batch_size`` rows starts from ``start_for(rows)`` and moves by
    ``step_for(rows)``, a start and a step that hold the chunk's known tokens."""
    batch_size = batch_size or len(given)
    out = []
    for first in range(0, len(given), batch_size):
        rows = given.rows(first, batch_size).to(device)
        out.append(sample_chain(step_for(rows), start_for(rows), len(rows), given.length, steps, generator, device,
                                None, progress, description, step_sizes))
    return torch.cat(out)


@torch.no_grad()
def sample_first_hitting(
    denoiser: Denoiser,
    path: MixturePath,
    jump: BlindJump,
    num_samples: int,
    seq_len: int,
    steps: int,
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
    batch_size: Optional[int] = None,
    progress: bool = False,
    description: str = "sampling",
    given: Optional[Given] = None,
) -> Tensor:
    """The N-step blind sampler of a mask source, with one forward per step at which a position is revealed.

    Under N blind jumps a masked position is revealed at step k (t_k = k / N) with probability
    kappa(t_{k+1}) - kappa(t_k), independently of the other positions, and then takes x1 ~ p(. | x_{t_k}, t_k);
    a step at which nothing is revealed changes nothing. So drawing every position's reveal step first
    (inverse CDF of kappa on the grid) and visiting only the steps where a sequence reveals something gives the
    same distribution as the N-step loop (:func:`sample_chain` of :func:`denoiser_step`) with at most min(L, N)
    forwards instead of N
    (the first-hitting sampler). Each sequence visits its own steps; the batch moves in lockstep over
    "the sequence's next reveal step". With ``given`` (one row per sample) the known tokens are revealed from the
    start, so they are never drawn.
    """
    if not isinstance(path.source, MaskSource):
        raise ValueError("The first-hitting sampler needs the mask source (a revealed token never changes); "
                         f"this model uses the {path.source.name!r} source: use the ancestral sampler.")
    if type(jump) is not BlindJump:
        raise ValueError(f"The first-hitting sampler draws blind jumps only, got {jump!r}: use the ancestral sampler.")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    grid = path.scheduler.kappa(torch.arange(1, steps + 1, dtype=torch.float64, device=device) / steps)
    grid[-1] = 1.0  # the last step fills everything left
    batch_size = batch_size or num_samples
    out = []
    known = int(given.known.sum()) if given is not None else 0
    bar = tqdm(total=num_samples * seq_len - known, desc=description, disable=not progress, unit="token")
    for first in range(0, num_samples, batch_size):
        size = min(batch_size, num_samples - first)
        u = torch.rand(size, seq_len, dtype=torch.float64, device=device, generator=generator)
        reveal = torch.searchsorted(grid, u, right=True).clamp_max(steps - 1)  # k with kappa(t_k) <= u < kappa(t_{k+1})
        x = path.source.sample((size, seq_len), generator, device)
        if given is not None:
            x = given.rows(first, size).to(device).impose(x)
        h = torch.full((size,), 1.0 / steps, device=device)
        while path.source.unsettled(x).any():
            pending = torch.where(path.source.unsettled(x), reveal, steps)
            step = pending.min(dim=1).values  # each sequence's next reveal step (steps: finished)
            active = step < steps
            t = step.clamp_max(steps - 1).float() / steps
            probs = torch.softmax(denoiser(x[active], t[active], h[active]).float(), dim=-1)
            tokens = jump.draw_tokens(probs, generator)
            moves = pending[active] == step[active, None]
            x[active] = torch.where(moves, tokens, x[active])
            bar.update(int(moves.sum()))
        out.append(x)
    bar.close()
    return torch.cat(out)
