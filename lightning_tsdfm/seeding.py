"""Seeding: every random draw takes an explicit generator derived from (seed, step, rank), so a run is
reproducible, resumable, and different on every rank; what must not touch torch's global random state (a callback,
whose module may draw from it) runs inside :func:`global_random_state_kept`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def derived_generator(seed: int, step: int = 0, rank: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by a fixed mixing of (seed, step, rank); distinct triples give distinct streams."""
    mixed = (seed * 1_000_003 + step * 10_007 + rank * 1_299_709 + 0x9E3779B9) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(mixed)


@contextlib.contextmanager
def global_random_state_kept() -> Iterator[None]:
    """Run the block and then restore torch's global random state (the CPU generator's and every initialised CUDA
    device's) as it was: draws inside it, such as a network's random initialisation, shift no later draw."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield
