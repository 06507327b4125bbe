"""FSDP2 (``--trainer.strategy=fsdp2``: Lightning's ModelParallelStrategy, ``configure_model`` applying ``fully_shard``
per transformer block) with two CPU processes over gloo: the teacher, the student (blind and shaped), the compass and
SDTT train with the same per-rank loss trajectory as under DDP, their parameters sharded and their frozen teachers
not; a run resumed from a step's checkpoint continues as the uninterrupted run did (the student's EMA included); the
checkpoint is one file that loads as usual."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from lightning.pytorch.strategies import StrategyRegistry
from lightning_helpers import fit_checkpoint, tiny_synthetic

from lightning_tsdfm import TeacherModule, TransformerConfig
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.fully_sharded import FSDP2, FullyShardedDataParallel
from lightning_tsdfm.modules.optim import OptimizerConfig

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TWO_BLOCKS = TransformerConfig(hidden_size=16, num_layers=2, num_heads=2, mlp_ratio=2, cond_size=16)
FAST = OptimizerConfig(lr=1e-2, warmup_steps=1)

SCRIPT = textwrap.dedent('''
    import os, sys, torch, lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning_helpers import tiny_synthetic
    from lightning_tsdfm import CompassModule, StudentModule, TeacherModule, TrajectoryShaper, TransformerConfig
    from lightning_tsdfm.modules.optim import OptimizerConfig
    from tsdfm_mdlm import SDTTModule

    out, teacher, mdlm = sys.argv[1:4]
    TWO_BLOCKS = TransformerConfig(hidden_size=16, num_layers=2, num_heads=2, mlp_ratio=2, cond_size=16)
    FAST = OptimizerConfig(lr=1e-2, warmup_steps=1)
    BUILD = {
        "teacher": lambda: TeacherModule(8, 8, backbone=TWO_BLOCKS, optimizer=FAST),
        "student": lambda: StudentModule(teacher, 8, 8, teacher_steps=8, base_fraction=0.25, optimizer=FAST),
        "student-shaped": lambda: StudentModule(teacher, 8, 8, teacher_steps=8, base_fraction=0.25, optimizer=FAST),
        "compass": lambda: CompassModule(teacher, 8, 8, backbone=TWO_BLOCKS, optimizer=FAST),
        "sdtt": lambda: SDTTModule(mdlm, 8, 8, teacher_steps=8, num_rounds=2, steps_per_round=2, optimizer=FAST),
    }

    class Record(L.Callback):
        def __init__(self):
            self.losses = []
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.losses.append(float(outputs["loss"]))
        def on_train_end(self, trainer, pl_module):
            self.sharded = type(next(pl_module.net.parameters())).__name__ == "DTensor"
            frozen = getattr(pl_module, "_teacher", None) or getattr(pl_module, "_round_teacher", None)
            self.frozen_sharded = frozen is not None and any(
                type(p).__name__ == "DTensor" for p in frozen.module.parameters())

    def fit(kind, strategy, steps, ckpt_path=None, root=None):
        torch.manual_seed(0)
        module, record = BUILD[kind](), Record()
        callbacks = [record]
        if kind == "student-shaped":
            callbacks.append(TrajectoryShaper("oracle", num_candidates=3))
        if root:  # a checkpoint after every step, as every_n_train_steps writes them
            callbacks.append(ModelCheckpoint(dirpath=root, every_n_train_steps=1, save_top_k=-1, filename="{step}"))
        trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_steps=steps, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                            enable_checkpointing=bool(root), gradient_clip_val=1.0, callbacks=callbacks,
                            default_root_dir=out)
        trainer.fit(module, datamodule=tiny_synthetic(), ckpt_path=ckpt_path)
        return record

    if __name__ == "__main__":
        result = {}
        for kind in BUILD:
            for strategy in ("ddp", "fsdp2"):
                record = fit(kind, strategy, 4)
                result[kind, strategy] = {"losses": record.losses, "sharded": record.sharded,
                                          "frozen_sharded": record.frozen_sharded}
        for kind in ("teacher", "student"):
            root = f"{out}/{kind}"
            first = fit(kind, "fsdp2", 2, root=root)
            rest = fit(kind, "fsdp2", 4, ckpt_path=f"{root}/step=2.ckpt", root=root)
            result[kind, "resumed"] = {"losses": first.losses + rest.losses, "sharded": rest.sharded}
        torch.save(result, f"{out}/rank{os.environ['RANK']}.pt")
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, list[dict]]:
    from tsdfm_mdlm import MDLMModule

    root = tmp_path_factory.mktemp("fsdp2")
    torch.manual_seed(0)
    teacher = fit_checkpoint(TeacherModule(8, 8, backbone=TWO_BLOCKS, optimizer=FAST), root / "t", 3, tiny_synthetic())
    torch.manual_seed(0)
    mdlm = fit_checkpoint(MDLMModule(8, 8, backbone=TWO_BLOCKS, optimizer=FAST), root / "m", 3, tiny_synthetic())
    script = root / "fsdp2_script.py"
    script.write_text(SCRIPT)
    paths = [str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               f"--master_port={free_port()}", str(script), str(root), str(teacher), str(mdlm)]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return root, [torch.load(root / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.parametrize("kind", ["teacher", "student", "student-shaped", "compass", "sdtt"])
def test_fsdp2_trains_as_ddp_does(two_ranks, kind):
    _, ranks = two_ranks
    for rank in ranks:
        ddp, fsdp2 = rank[kind, "ddp"], rank[kind, "fsdp2"]
        assert fsdp2["sharded"] and not ddp["sharded"]
        assert not fsdp2["frozen_sharded"]  # the frozen teacher (or SDTT's round teacher) stays whole on each rank
        assert torch.allclose(torch.tensor(fsdp2["losses"]), torch.tensor(ddp["losses"]), atol=1e-5), kind
    assert ranks[0][kind, "fsdp2"]["losses"] != ranks[1][kind, "fsdp2"]["losses"]  # each rank its own batches


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_a_resumed_fsdp2_run_continues_as_the_uninterrupted_one(two_ranks, kind):
    _, ranks = two_ranks
    for rank in ranks:
        assert rank[kind, "resumed"]["sharded"]
        assert torch.allclose(torch.tensor(rank[kind, "resumed"]["losses"]), torch.tensor(rank[kind, "fsdp2"]["losses"]),
                              atol=1e-6), kind


def test_an_fsdp2_checkpoint_is_one_file_that_loads_whole(two_ranks):
    root, _ = two_ranks
    student = load_module(root / "student" / "step=4.ckpt", expected_kind="student")
    assert all(type(p) is torch.nn.Parameter for p in student.parameters())
    assert student.data_card == tiny_synthetic().data_card()


def test_fsdp2_is_a_strategy_name_over_every_rank():
    assert FSDP2 in StrategyRegistry
    strategy = StrategyRegistry.get(FSDP2)
    assert isinstance(strategy, FullyShardedDataParallel) and strategy._tensor_parallel_size == 1
