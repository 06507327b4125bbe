"""Seeding: every random draw takes an explicit generator derived from (seed, step, rank), so a run is
reproducible, resumable, and different on every rank."""

from __future__ import annotations

import torch


def derived_generator(seed: int, step: int = 0, rank: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by a fixed mixing of (seed, step, rank); distinct triples give distinct streams."""
    mixed = (seed * 1_000_003 + step * 10_007 + rank * 1_299_709 + 0x9E3779B9) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(mixed)
