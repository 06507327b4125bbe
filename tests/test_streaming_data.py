"""Streaming corpora (StreamingTextDataModule): a corpus tokenized into litdata chunks and streamed, offline, from the
embedded corpus, a local directory and a local Hugging Face dataset folder; a run resumed mid-epoch sees the
blocks the uninterrupted run saw. (Sharding over ranks and nodes: tests/test_multi_node.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

pytest.importorskip("litdata")

from lightning_tsdfm.data.document_shards import document_shards, in_validation, read_shard  # noqa: E402
from lightning_tsdfm.data.streaming import StreamingTextDataModule  # noqa: E402
from lightning_tsdfm.errors import UserError  # noqa: E402

pytestmark = pytest.mark.slow


def numbered_documents(n: int) -> list[str]:
    """Documents whose text names their number, so a decoded block tells which documents it holds."""
    return [f"document {i} says the lamp {i % 7} is lit and the door {i % 5} is open." for i in range(n)]


def write_directory(folder: Path, documents: list[str]) -> Path:
    folder.mkdir(parents=True)
    for i, text in enumerate(documents):
        (folder / f"{i:03d}.txt").write_text(text)
    return folder


def all_blocks(datamodule, split: str) -> torch.Tensor:
    dataset = datamodule._dataset(split, shuffle=False)
    return torch.stack([dataset[i] for i in range(len(dataset))]).long()


def documents_in(datamodule, blocks: torch.Tensor) -> set[int]:
    text = "".join(datamodule.decode(blocks))
    return {int(word) for part in text.split("document ")[1:] for word in part.split()[:1] if word.isdigit()}


def test_a_local_directory_streams_its_documents_once_split_by_hash(tmp_path):
    docs = numbered_documents(60)
    corpus = write_directory(tmp_path / "corpus", docs)
    dm = StreamingTextDataModule(str(corpus), tokenizer="gpt2", seq_len=16, batch_size=4, val_fraction=0.2,
                                 cache_dir=str(tmp_path / "cache"), optimize_workers=2)
    dm.prepare_data()
    meta = json.loads((Path(dm.chunks_dir) / "meta.json").read_text())
    train, val = all_blocks(dm, "train"), all_blocks(dm, "val")
    assert train.shape == (meta["train"]["blocks"], 16) and val.shape == (meta["val"]["blocks"], 16)
    expected_val = {i for i, doc in enumerate(docs) if in_validation(doc, 0.2)}
    assert 0 < len(expected_val) < 30
    assert documents_in(dm, val) <= expected_val and documents_in(dm, train).isdisjoint(expected_val)
    # every shard loses at most its last partial block: almost every token of the corpus is in a block
    tokens = sum(len(dm.tokenizer.encode(d)) + 1 for d in docs)
    assert tokens - 16 * meta["shards"] * 2 <= (len(train) + len(val)) * 16 <= tokens
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 16) and batch.dtype == torch.int64
    dm.prepare_data()  # finished chunks are reused, not written again
    assert json.loads((Path(dm.chunks_dir) / "meta.json").read_text()) == meta


def test_the_embedded_corpus_streams_in_gpt2_blocks(tmp_path):
    dm = StreamingTextDataModule("web-bible", tokenizer="gpt2", seq_len=256, batch_size=2, val_fraction=0.05,
                                 cache_dir=str(tmp_path / "cache"), optimize_workers=1)
    dm.prepare_data()
    meta = json.loads((Path(dm.chunks_dir) / "meta.json").read_text())
    assert meta["train"]["blocks"] > 3000 and meta["val"]["blocks"] > 100  # about 980k GPT-2 tokens
    assert dm.vocab_size == 50257 and dm.data_card()["kind"] == "text"
    held = dm.heldout_tokens(4, seed=1)
    assert held.shape == (4, 256) and "Yahweh" in " ".join(dm.decode(all_blocks(dm, "val")[:40]))
    assert torch.equal(held, dm.heldout_tokens(4, seed=1))


def test_a_local_hugging_face_dataset_folder_streams_by_its_files(tmp_path):
    folder = tmp_path / "hf_corpus"
    folder.mkdir()
    docs = numbered_documents(30)
    for part in range(3):
        (folder / f"part{part}.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[part::3]))
    shards = document_shards(f"hf:{folder}", max_shards=8)
    assert len(shards) == 3  # one per data file
    assert sorted(d for s in shards for d in read_shard(s)) == sorted(docs)
    dm = StreamingTextDataModule(f"hf:{folder}", tokenizer="gpt2", seq_len=16, val_fraction=0.2,
                                 cache_dir=str(tmp_path / "cache"), optimize_workers=1)
    dm.prepare_data()
    assert documents_in(dm, all_blocks(dm, "train")) | documents_in(dm, all_blocks(dm, "val")) <= set(range(30))
    assert len(documents_in(dm, all_blocks(dm, "train"))) > 15


def test_a_corpus_too_small_for_a_validation_block_is_refused(tmp_path):
    corpus = write_directory(tmp_path / "corpus", numbered_documents(3))
    dm = StreamingTextDataModule(str(corpus), tokenizer="gpt2", seq_len=64, val_fraction=0.01,
                                 cache_dir=str(tmp_path / "cache"), optimize_workers=1)
    with pytest.raises(UserError, match="too small"):
        dm.prepare_data()


def test_chunks_of_other_data_are_refused_not_reused(tmp_path):
    """A chunks_dir holds the chunks of one corpus, tokenizer, seq_len and val_fraction (its fingerprint.json): a run
    of other data that names it is refused, instead of training on its tokens under the other corpus's name."""
    first = write_directory(tmp_path / "first", numbered_documents(30))
    other = write_directory(tmp_path / "other", [f"another text {i}, of other words entirely." for i in range(30)])

    def data(corpus, **overrides):
        return StreamingTextDataModule(str(corpus), **{"tokenizer": "gpt2", "seq_len": 16, "val_fraction": 0.2,
                                                       "cache_dir": str(tmp_path / "cache"), "optimize_workers": 1,
                                                       "chunks_dir": str(tmp_path / "chunks"), **overrides})

    data(first).prepare_data()
    made = json.loads((tmp_path / "chunks" / "fingerprint.json").read_text())
    assert made["corpus"] == str(first) and made["seq_len"] == 16
    data(first).prepare_data()  # the same data: reused
    for dm, difference in ((data(other), f"the corpus files: {str(first)!r} as it was then -> {str(other)!r} now"),
                           (data(first, seq_len=8), "seq_len: 16 -> 8"),
                           (data(first, val_fraction=0.3), "val_fraction: 0.2 -> 0.3")):
        with pytest.raises(UserError, match="were made from other data than this run's") as info:
            dm.prepare_data()
        assert difference in str(info.value) and f"Delete {tmp_path / 'chunks'}" in str(info.value)
    (tmp_path / "chunks" / "fingerprint.json").unlink()  # chunks of an earlier version: judged by their meta.json
    with pytest.raises(UserError, match="corpus: "):
        data(other).prepare_data()
    data(first).prepare_data()
    assert json.loads((tmp_path / "chunks" / "fingerprint.json").read_text()) == made


def test_damaged_chunks_are_named_with_a_fix_that_works(tmp_path):
    """A truncated or missing chunk, or a missing index.json, is one error naming the file (litdata would time out
    waiting for the chunk, blaming downloads); deleting the chunks, as it says, lets prepare_data write them again."""
    corpus = write_directory(tmp_path / "corpus", numbered_documents(30))
    chunks = tmp_path / "chunks"

    def data():
        return StreamingTextDataModule(str(corpus), tokenizer="gpt2", seq_len=16, batch_size=4, val_fraction=0.2,
                                       cache_dir=str(tmp_path / "cache"), optimize_workers=1, chunks_dir=str(chunks))

    with pytest.raises(UserError, match=f"No chunks in {chunks / 'train'}: prepare_data"):
        data().train_dataloader()
    data().prepare_data()
    (chunk,) = (chunks / "train").glob("*.bin")
    whole = chunk.read_bytes()
    chunk.write_bytes(whole[: len(whole) // 2])
    for step in (lambda dm: dm.prepare_data(), lambda dm: dm.train_dataloader()):
        with pytest.raises(UserError, match=f"The chunk {chunk} holds {len(whole) // 2} bytes where its index.json "
                                            f"lists {len(whole)}: .* Delete {chunks} "):
            step(data())
    chunk.unlink()
    with pytest.raises(UserError, match=f"The chunk {chunk} is missing"):
        data().prepare_data()
    chunk.write_bytes(whole)
    (chunks / "val" / "index.json").unlink()
    with pytest.raises(UserError, match=f"{chunks / 'val' / 'index.json'} is missing: .* Delete {chunks} "):
        data().prepare_data()
    shutil.rmtree(chunks)  # the fix the error gives
    data().prepare_data()
    assert next(iter(data().train_dataloader())).shape == (4, 16)


def test_tsdfm_fit_on_a_truncated_chunk_is_one_error_line(tmp_path, monkeypatch, capsys):
    import sys

    from lightning_helpers import TINY_BACKBONE, tiny_fit_args

    from lightning_tsdfm.cli import main

    corpus = write_directory(tmp_path / "corpus", numbered_documents(30))
    settings = {"corpus": str(corpus), "tokenizer": "gpt2", "seq_len": 16, "batch_size": 4, "val_fraction": 0.2,
                "cache_dir": str(tmp_path / "cache"), "optimize_workers": 1, "chunks_dir": str(tmp_path / "chunks")}
    StreamingTextDataModule(**settings).prepare_data()
    (chunk,) = (tmp_path / "chunks" / "train").glob("*.bin")
    chunk.write_bytes(chunk.read_bytes()[:-5])
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(tiny_fit_args("text_tiny.yaml", tmp_path / "run", *TINY_BACKBONE, "--data=StreamingTextDataModule",
                           *(f"--data.{key}={value}" for key, value in settings.items())))
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert err.rstrip().splitlines()[-1].startswith(f"tsdfm: error: The chunk {chunk} holds "), err[-2000:]


class RecordBatches(L.LightningModule):
    """Records every training batch; trains nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch.clone())
        return self.weight * batch.float().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit_recording(root: Path, datamodule, max_steps: int, ckpt_path=None) -> list[torch.Tensor]:
    module = RecordBatches()
    trainer = L.Trainer(max_steps=max_steps, default_root_dir=root, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        callbacks=[ModelCheckpoint(dirpath=root, every_n_train_steps=1, save_top_k=-1,
                                                           filename="{step}")])
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module.seen


@pytest.fixture(scope="module")
def numbered_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """30 numbered documents and the cache their chunks are written to by the first resume case, reused by the others
    (the same corpus, tokenizer, seq_len and val_fraction: prepare_data reuses finished chunks)."""
    root = tmp_path_factory.mktemp("numbered")
    return write_directory(root / "corpus", numbered_documents(30)), root / "cache"


@pytest.mark.parametrize(("stop", "num_workers"), [(2, 0), (2, 1), (3, 0), (5, 0)])
def test_a_resumed_run_streams_the_blocks_the_uninterrupted_run_streamed(numbered_corpus, tmp_path, stop, num_workers):
    """Stopped mid-epoch (2), at the end of epoch 0 (3) or within epoch 1 (5), then resumed from the checkpoint of
    that step (saved after the batch, as every_n_train_steps does): the same batches as one uninterrupted run, each
    epoch in its own order."""
    corpus, cache = numbered_corpus

    def data():
        return StreamingTextDataModule(str(corpus), tokenizer="gpt2", seq_len=16, batch_size=8, val_fraction=0.1,
                                       cache_dir=str(cache), num_workers=num_workers, optimize_workers=1)

    whole = fit_recording(tmp_path / "whole", data(), max_steps=7)
    assert len(data().train_dataloader()) == 3  # three batches an epoch: 7 steps cross two epoch ends
    assert not all(torch.equal(a, b) for a, b in zip(whole[:3], whole[3:6]))  # epoch 1 is reshuffled
    first = fit_recording(tmp_path / "part", data(), max_steps=stop)
    rest = fit_recording(tmp_path / "part", data(), max_steps=7, ckpt_path=tmp_path / "part" / f"step={stop}.ckpt")
    assert len(whole) == 7 and len(first) + len(rest) == 7
    assert all(torch.equal(a, b) for a, b in zip(whole, first + rest))


def test_a_170m_config_streams_by_naming_the_streaming_module(tmp_path):
    """`--data=StreamingTextDataModule` keeps the config's corpus, tokenizer, seq_len, batch size and workers."""
    from lightning_helpers import CONFIGS

    from lightning_tsdfm.cli import TsdfmCLI

    class ParseOnly(TsdfmCLI):
        def instantiate_classes(self) -> None:
            pass

    args = ["--config", str(CONFIGS / "owt_170m.yaml"), "--data=StreamingTextDataModule",
            "--data.chunks_dir=s3://my-bucket/owt"]
    data = ParseOnly(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     run=False, args=args).config.data
    assert data.class_path == "lightning_tsdfm.StreamingTextDataModule"
    assert (data.init_args.corpus, data.init_args.tokenizer, data.init_args.seq_len, data.init_args.batch_size) == (
        "hf:Skylion007/openwebtext", "gpt2", 1024, 64)
    assert data.init_args.chunks_dir == "s3://my-bucket/owt"
