"""A shuffling sampler whose order depends only on (seed, epoch), so a resumed run sees exactly the batches
the uninterrupted run would have seen (mid-epoch with ``ResumableDataLoader``)."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Permutation of range(n) drawn from a generator seeded with ``seed + epoch``.

    Lightning calls ``set_epoch`` at the start of every epoch (and wraps the sampler for DDP).
    """

    def __init__(self, num_items: int, seed: int = 0) -> None:
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_items, generator=g).tolist())

    def __len__(self) -> int:
        return self.num_items
