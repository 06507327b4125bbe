"""Seeding: every random draw takes an explicit generator derived from (seed, step, rank), so a run is
reproducible, resumable, and different on every rank; a training batch's from (seed, optimizer step, rank,
micro-batch) (:func:`training_generator`), so the micro-batches that one optimizer step accumulates draw
differently. What must not touch torch's global random state (a callback, whose module may draw from it) runs inside
:func:`global_random_state_kept`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def derived_generator(seed: int, step: int = 0, rank: int = 0, device: torch.device | str = "cpu",
                      micro_batch: int = 0) -> torch.Generator:
    """A generator seeded by a fixed mixing of (seed, step, rank, micro_batch); distinct tuples give distinct streams,
    and micro_batch = 0 gives the stream of (seed, step, rank) alone."""
    mixed = (seed * 1_000_003 + step * 10_007 + rank * 1_299_709 + micro_batch * 15_485_863 + 0x9E3779B9) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(mixed)


def micro_batch_index(trainer) -> int:
    """The running training batch's place in its gradient-accumulation window, b mod A for batch b of the epoch and
    A = ``accumulate_grad_batches`` (Lightning steps the optimizer after every A batches and at an epoch's end);
    0 without accumulation or without a trainer."""
    accumulate = getattr(trainer, "accumulate_grad_batches", 1) if trainer is not None else 1
    return trainer.fit_loop.epoch_loop.batch_idx % accumulate if accumulate > 1 else 0


def training_generator(seed: int, trainer, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of the running training batch: (seed, optimizer step, rank, :func:`micro_batch_index`), all
    restored when a run resumes; (seed, 0, 0, 0) without a trainer."""
    if trainer is None:
        return derived_generator(seed, device=device)
    return derived_generator(seed, trainer.global_step, trainer.global_rank, device, micro_batch_index(trainer))


@contextlib.contextmanager
def global_random_state_kept() -> Iterator[None]:
    """Run the block and then restore torch's global random state (the CPU generator's and every initialised CUDA
    device's) as it was: draws inside it, such as a network's random initialisation, shift no later draw."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield
