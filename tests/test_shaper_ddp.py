"""Shaped distillation under DDP with two CPU processes (gloo): it runs, the replicas stay in sync, and each
rank draws its candidates from its own stream."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = pytest.mark.slow  # two processes over gloo, each fitting a teacher, a compass and the shaped student

SCRIPT = textwrap.dedent('''
    import sys, torch, lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning_tsdfm import CompassModule, StudentModule, SyntheticDataModule, TeacherModule, TransformerConfig
    from lightning_tsdfm.shaping import TrajectoryShaper

    out = sys.argv[1]
    tiny = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)

    def data():
        return SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=32, num_val=4, batch_size=4)

    def trainer(steps, callbacks, **kw):
        return L.Trainer(max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, callbacks=callbacks, default_root_dir=out, **kw)

    class Recording(TrajectoryShaper):
        def setup(self, trainer, pl_module, stage):
            super().setup(trainer, pl_module, stage)
            self.seen, score = [], self.jump.energies
            def recorded(x, t):
                self.seen.append((self.jump.generator.initial_seed(), x.clone()))
                return score(x, t)
            self.jump.energies = recorded

        def on_train_end(self, trainer, pl_module):
            checksum = sum(p.double().sum() for p in pl_module.parameters())
            torch.save({"seen": self.seen, "checksum": checksum}, f"{out}/rank{trainer.global_rank}.pt")

    if __name__ == "__main__":
        torch.manual_seed(0)
        trainer(2, [ModelCheckpoint(dirpath=out + "/t", save_last=True)]).fit(
            TeacherModule(8, 8, source="mask", backbone=tiny), datamodule=data())
        compass = CompassModule(out + "/t/last.ckpt", 8, 8, backbone=tiny)
        trainer(2, [ModelCheckpoint(dirpath=out + "/c", save_last=True)]).fit(compass, datamodule=data())
        student = StudentModule(out + "/t/last.ckpt", 8, 8, teacher_steps=8, base_fraction=0.1)
        trainer(3, [Recording(out + "/c/last.ckpt", num_candidates=3)], accelerator="cpu", strategy="ddp",
                devices=2).fit(student, datamodule=data())
''')


def test_shaped_distillation_under_ddp_gloo(tmp_path):
    script = tmp_path / "ddp_shaped.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PL_DISABLE_FORK="1")
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert torch.equal(ranks[0]["checksum"], ranks[1]["checksum"])  # DDP kept the replicas in sync
    (seed0, first0), (seed1, first1) = ranks[0]["seen"][0], ranks[1]["seen"][0]
    assert seed0 != seed1 and not torch.equal(first0, first1)
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) > 0
