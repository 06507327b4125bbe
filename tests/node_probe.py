"""A callback that tests add to a multi-process `tsdfm fit` (``--trainer.callbacks+=node_probe.NodeProbe``): each rank
writes ``<out>/rank<r>.pt`` with where it ran (node, ranks, world size), the candidates its TrajectoryShaper
scored (the seed of their generator and the first batch of candidates) and a checksum of its weights at the end."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from lightning_tsdfm.shaping import TrajectoryShaper


class NodeProbe(L.Callback):
    """Records what a multi-node test checks; add it after the TrajectoryShaper."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.scored: list[tuple[int, torch.Tensor]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        shaper = next((c for c in trainer.callbacks if isinstance(c, TrajectoryShaper)), None)
        if shaper is None:
            return
        energies = shaper.jump.energies

        def recorded(x, t):
            self.scored.append((shaper.jump.generator.initial_seed(), x.detach().clone()))
            return energies(x, t)

        shaper.jump.energies = recorded

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        checksum = sum(p.detach().double().sum() for p in pl_module.parameters())
        where = {"node_rank": trainer.node_rank, "global_rank": trainer.global_rank, "local_rank": trainer.local_rank,
                 "world_size": trainer.world_size, "num_nodes": trainer.num_nodes}
        torch.save({**where, "scored": self.scored, "checksum": checksum, "global_step": trainer.global_step},
                   self.out / f"rank{trainer.global_rank}.pt")
