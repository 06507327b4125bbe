"""No data is lost to a failed write: sample files and checkpoints are replaced atomically, Ctrl-C and max_time
save the last step, and a crash while building the token cache leaves no temporary files."""

from __future__ import annotations

import errno
import os
import signal
import stat

import lightning as L
import numpy as np
import pytest
import torch

from lightning_tsdfm import FinalCheckpoint, SyntheticDataModule, TeacherModule, TextDataModule, TransformerConfig
from lightning_tsdfm import samples_io
from lightning_tsdfm.atomic_file import atomic_write_text
from lightning_tsdfm.checkpoint_io import AtomicCheckpointIO
from lightning_tsdfm.data.tokenizer import TextTokenizer
from lightning_tsdfm.samples_io import SampleSet, read_jsonl, write_jsonl


def _teacher() -> TeacherModule:
    torch.manual_seed(0)
    return TeacherModule(8, 8, backbone=TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, cond_size=16))


def _data() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=64, num_val=4, batch_size=4)


def _trainer(root, callbacks, **kwargs) -> L.Trainer:
    return L.Trainer(default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     limit_val_batches=0, callbacks=callbacks, **kwargs)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_a_failed_sample_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "samples.jsonl"
    write_jsonl(SampleSet(torch.zeros(3, 4, dtype=torch.long), ["a", "b", "c"], {"steps": 1}), path)
    before = path.read_bytes()
    real_dumps, calls = samples_io.json.dumps, []

    def failing_dumps(obj, *args, **kwargs):  # the disk fills up after the first line
        calls.append(obj)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_dumps(obj, *args, **kwargs)

    monkeypatch.setattr(samples_io.json, "dumps", failing_dumps)
    with pytest.raises(OSError, match="No space left"):
        write_jsonl(SampleSet(torch.ones(3, 4, dtype=torch.long), ["x", "y", "z"], {"steps": 2}), path)
    assert path.read_bytes() == before and read_jsonl(path).meta["steps"] == 1
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_an_atomic_write_keeps_the_permissions_of_the_file_it_replaces(tmp_path, umask):
    """A new file gets 0o666 less the umask, as open() would; a replaced file keeps its own mode."""
    samples = SampleSet(torch.zeros(2, 4, dtype=torch.long), ["a", "b"], {"steps": 1})
    old = os.umask(umask)
    try:
        write_jsonl(samples, tmp_path / "new.jsonl")
        (tmp_path / "shared.jsonl").write_text("")
        os.chmod(tmp_path / "shared.jsonl", 0o644)
        write_jsonl(samples, tmp_path / "shared.jsonl")
        (tmp_path / "private.jsonl").write_text("")
        os.chmod(tmp_path / "private.jsonl", 0o600)
        atomic_write_text(tmp_path / "private.jsonl", "kept private\n")
    finally:
        os.umask(old)
    mode = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("new.jsonl", "shared.jsonl", "private.jsonl")}
    assert mode == {"new.jsonl": 0o666 & ~umask, "shared.jsonl": 0o644, "private.jsonl": 0o600}, {k: oct(v) for k, v in mode.items()}


def test_a_failed_checkpoint_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    callback = FinalCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=1)
    trainer = _trainer(tmp_path, [callback], max_steps=2)
    trainer.fit(_teacher(), datamodule=_data())
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)  # installed by FinalCheckpoint
    last = tmp_path / "last.ckpt"
    before = last.read_bytes()

    def full_disk(obj, f, *args, **kwargs):  # half a checkpoint reaches the disk, then the disk is full
        f.write(before[: len(before) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        trainer.save_checkpoint(last)
    monkeypatch.undo()
    assert last.read_bytes() == before and torch.load(last, weights_only=False)["global_step"] == 2
    assert _leftovers(tmp_path) == []


class _CtrlC(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 3:
            raise KeyboardInterrupt


def test_ctrl_c_saves_the_last_step(tmp_path):
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores SIGINT after a KeyboardInterrupt
    try:
        callback = FinalCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=100)
        with pytest.raises(SystemExit):  # Lightning exits with status 1 after a graceful shutdown
            _trainer(tmp_path, [callback, _CtrlC()], max_steps=50).fit(_teacher(), datamodule=_data())
    finally:
        signal.signal(signal.SIGINT, handler)
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 3


def test_a_stop_on_max_time_saves_the_last_step(tmp_path):
    callback = FinalCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=100_000)
    trainer = _trainer(tmp_path, [callback], max_time={"seconds": 1})
    trainer.fit(_teacher(), datamodule=SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=4096,
                                                           num_val=4, batch_size=4))
    assert 0 < trainer.global_step < 100_000
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == trainer.global_step


def _corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["light", "water", "earth", "day", "night", "and", "the", "was", "good", "said"]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(words, 30)) for _ in range(40)))
    return path


def _text_data(tmp_path) -> TextDataModule:
    return TextDataModule(corpus=str(_corpus(tmp_path)), bpe_vocab_size=300, seq_len=8, batch_size=2, val_fraction=0.1,
                          cache_dir=str(tmp_path / "cache"))


def test_a_crash_while_building_the_token_cache_leaves_no_temporary_files(tmp_path, monkeypatch):
    real_encode = TextTokenizer.encode_batch
    calls = []

    def crashing_encode(self, texts):  # the train split is written, the val split crashes half-way
        calls.append(len(texts))
        if len(calls) > 1:
            raise MemoryError("simulated crash")
        return real_encode(self, texts)

    monkeypatch.setattr(TextTokenizer, "encode_batch", crashing_encode)
    with pytest.raises(MemoryError):
        _text_data(tmp_path).prepare_data()
    assert _leftovers(tmp_path / "cache") == []
    monkeypatch.undo()
    data = _text_data(tmp_path)
    data.setup()
    assert data.cache_status["tokens"] == "built" and len(data.train_dataloader()) > 0


def test_a_corrupt_token_cache_is_rebuilt(tmp_path):
    built = _text_data(tmp_path)
    built.setup()
    folder, first = built.token_cache_dir, built.heldout_tokens(2)
    data = (folder / "train.npy").read_bytes()
    (folder / "train.npy").write_bytes(data[: len(data) // 2])  # truncated, say by a full disk
    again = _text_data(tmp_path)
    with pytest.warns(UserWarning, match="token cache .* is corrupt"):
        again.setup()
    assert again.cache_status["tokens"] == "built" and torch.equal(again.heldout_tokens(2), first)
    assert (folder / "train.npy").read_bytes() == data
