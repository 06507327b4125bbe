"""Several nodes, simulated on one machine: two nodes of one process each, launched as docs/scaling.md says (its SLURM
and torchrun examples, run verbatim with a tiny teacher, three steps and a probe callback appended), for a shaped
distillation with the oracle compass: each rank draws its own candidates and the replicas end with the same weights.
A streaming corpus read by the two nodes gives each block of an epoch to one rank."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning_helpers import TINY_BACKBONE, tiny_fit_args

from lightning_tsdfm.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: appended to docs/scaling.md's commands: a small data set, three steps, no validation, and the probe (tests/node_probe.py)
TEST_ARGS = ("--data.init_args.num_train=512 --trainer.max_steps=3 --trainer.limit_val_batches=0 "
             "--trainer.enable_progress_bar=false --trainer.callbacks+=node_probe.NodeProbe "
             "--trainer.callbacks.out=$RUN/probe")


def readme_command(launcher: str) -> str:
    """The command of docs/scaling.md's bash example that starts with ``launcher``, its continuation lines joined."""
    for block in re.findall(r"```bash\n(.*?)```", (REPO / "docs" / "scaling.md").read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.split()[:1] == [launcher]:
                return " ".join(line.split())
    raise AssertionError(f"docs/scaling.md has no bash example that runs {launcher}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_environment(**extra: str) -> dict[str, str]:
    """This environment, with the venv's scripts (tsdfm, torchrun) first on PATH and tests/ importable."""
    paths = [str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1", **extra}


def run_together(commands: list[tuple[list[str], dict[str, str]]], timeout: float = 300) -> None:
    """Start every (argv, env) at once in the repository; fail with the output of the first that fails (then
    stop the others, which would wait for it), or when they outlast ``timeout`` seconds."""
    processes = [subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for argv, env in commands]
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in processes):
            failed = [p for p in processes if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for p in processes:
                    if p.poll() is None:
                        p.kill()
                culprit = failed[0] if failed else processes[0]
                raise AssertionError(f"{'failed' if failed else 'timed out'}:\n{culprit.communicate()[0][-4000:]}")
            time.sleep(0.2)
        for p in processes:
            output = p.communicate()[0]
            assert p.returncode == 0, output[-4000:]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["tsdfm"])
        main(tiny_fit_args("synthetic_tiny.yaml", root, *TINY_BACKBONE, "--data.init_args.num_train=512"))
    return root / "checkpoints" / "last.ckpt"


def assert_shaped_on_two_nodes(run: Path) -> None:
    ranks = [torch.load(run / "probe" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [(r["node_rank"], r["global_rank"], r["local_rank"]) for r in ranks] == [(0, 0, 0), (1, 1, 0)]
    assert all(r["world_size"] == 2 and r["num_nodes"] == 2 and r["global_step"] == 3 for r in ranks)
    assert torch.equal(ranks[0]["checksum"], ranks[1]["checksum"])  # DDP kept the replicas in sync across nodes
    assert len(ranks[0]["scored"]) == len(ranks[1]["scored"]) > 0
    (seed0, first0), (seed1, first1) = ranks[0]["scored"][0], ranks[1]["scored"][0]
    assert seed0 != seed1 and not torch.equal(first0, first1)  # each rank draws its own candidates
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_the_readme_slurm_example_shapes_a_distillation_on_two_nodes(teacher, tmp_path):
    command = readme_command("srun").removeprefix("srun ")  # what srun starts once per task
    port = str(free_port())
    commands = []
    for rank in (0, 1):
        slurm = {"SLURM_NNODES": "2", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(rank),
                 "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank), "SLURM_JOB_NAME": "tsdfm", "SLURM_JOB_ID": port,
                 "SLURM_NODELIST": "127.0.0.1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        env = process_environment(TEACHER=str(teacher), RUN=str(tmp_path / "run"), **slurm)
        commands.append((["bash", "-c", f"{command} {TEST_ARGS}"], env))
    run_together(commands)
    assert_shaped_on_two_nodes(tmp_path / "run")


def test_the_readme_torchrun_example_shapes_a_distillation_on_two_nodes(teacher, tmp_path):
    command = readme_command("torchrun")
    port = str(free_port())
    commands = [(["bash", "-c", f"{command} {TEST_ARGS}"],
                 process_environment(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                     TEACHER=str(teacher), RUN=str(tmp_path / "run")))
                for rank in (0, 1)]
    run_together(commands)
    assert_shaped_on_two_nodes(tmp_path / "run")


STREAMING_SCRIPT = '''
import sys, torch, lightning as L
from lightning_tsdfm.data.streaming import StreamingTextDataModule

class RecordBlocks(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = []
    def training_step(self, batch, batch_idx):
        self.seen.append(batch.clone())
        return self.weight * batch.float().mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

if __name__ == "__main__":
    corpus, out = sys.argv[1], sys.argv[2]
    data = StreamingTextDataModule(corpus, tokenizer="gpt2", seq_len=16, batch_size=2, val_fraction=0.1,
                                   cache_dir=out + "/cache", optimize_workers=1)
    module = RecordBlocks()
    trainer = L.Trainer(accelerator="cpu", strategy="ddp", num_nodes=2, devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    torch.save({"blocks": torch.cat(module.seen), "node_rank": trainer.node_rank},
               f"{out}/rank{trainer.global_rank}.pt")
'''


def test_a_streaming_corpus_gives_each_block_to_one_rank_of_two_nodes(tmp_path):
    pytest.importorskip("litdata")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"{i:02d}.txt").write_text(f"document {i} tells of the lamp {i % 7} and the door {i % 5}.")
    script = tmp_path / "stream.py"
    script.write_text(STREAMING_SCRIPT)
    port = str(free_port())
    commands = [([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                  f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}", str(script),
                  str(corpus), str(tmp_path)], process_environment()) for rank in (0, 1)]
    run_together(commands)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [r["node_rank"] for r in ranks] == [0, 1]
    seen = [{tuple(row.tolist()) for row in r["blocks"]} for r in ranks]
    assert len(seen[0]) == len(ranks[0]["blocks"]) and seen[0].isdisjoint(seen[1])  # no block on both nodes
    (meta,) = tmp_path.glob("cache/chunks/*/meta.json")
    total = json.loads(meta.read_text())["train"]["blocks"]
    assert total - 2 * 2 < len(seen[0] | seen[1]) <= total  # the epoch, less what drop_last evens out
