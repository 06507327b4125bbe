"""DataModule over the synthetic hidden-Markov oracle languages (:mod:`lightning_tsdfm.data.hmm`, ``sparse``;
:mod:`lightning_tsdfm.data.textlike`, ``textlike``)."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_tsdfm.data.decoding import synthetic_text
from lightning_tsdfm.data.resumable_loader import ResumableDataLoader
from lightning_tsdfm.data.sampler import EpochSeededSampler
from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.data.textlike import TextlikeHMMSpec
from lightning_tsdfm.errors import UserError


class SyntheticDataModule(L.LightningDataModule):
    """Fixed train/val sets drawn from a seeded hidden-Markov language with exact likelihood.

    Args:
        family: ``sparse`` (the small fast language) or ``textlike`` (a slow topic over a fast syntax chain).
        vocab_size: number of tokens of the language.
        num_states: hidden states (``textlike``: syntax states, per topic).
        branching: successors per hidden (syntax) state that hold almost all transition mass.
        emissions_per_state: tokens per hidden state that hold almost all emission mass.
        smoothing: uniform mass mixed into every row, so every sequence has finite likelihood.
        language_seed: seed of the language itself (its tables).
        num_topics: ``textlike``: topics.
        topic_stay: ``textlike``: probability that the topic persists from one token to the next.
        function_states: ``textlike``: syntax states that emit topic-independent function words.
        function_vocab: ``textlike``: ids below it are function words; the rest are split among topics.
        seq_len: tokens per sequence.
        num_train: training sequences (drawn once).
        num_val: validation sequences.
        batch_size: sequences per batch.
        seed: seed of the drawn data sets and of the shuffling.
    """

    def __init__(
        self,
        family: Literal["sparse", "textlike"] = "sparse",
        vocab_size: int = 64,
        num_states: int = 32,
        branching: int = 3,
        emissions_per_state: int = 2,
        smoothing: float = 0.01,
        language_seed: int = 0,
        num_topics: int = 8,
        topic_stay: float = 0.98,
        function_states: int = 6,
        function_vocab: int = 32,
        seq_len: int = 64,
        num_train: int = 100_000,
        num_val: int = 2048,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("seq_len", seq_len), ("num_train", num_train), ("num_val", num_val), ("batch_size", batch_size)):
            if value < 1:
                raise UserError(f"{name} must be at least 1, got {value}: set data.init_args.{name} to a positive number.")
        if batch_size > num_train:
            raise UserError(f"batch_size={batch_size} is larger than num_train={num_train}, so no full training batch "
                            f"exists: lower data.init_args.batch_size or raise data.init_args.num_train.")
        # logger=False: the data's hyper-parameters (its own seed, ...) are not merged with the model's in the logger,
        # where equal names with other values would clash; they are in the run's config.yaml and data card
        self.save_hyperparameters(logger=False)
        if family == "sparse":
            self.spec = HMMSpec(vocab_size, num_states, branching, emissions_per_state, smoothing, language_seed)
        elif family == "textlike":
            self.spec = TextlikeHMMSpec(vocab_size, num_topics, num_states, function_states, function_vocab, topic_stay,
                                        branching, emissions_per_state, smoothing, language_seed)
        else:
            raise ValueError(f"Unknown synthetic language family {family!r}: choose 'sparse' or 'textlike'.")
        self.language = HiddenMarkovLanguage(self.spec)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self._train = self._val = None

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            g = torch.Generator().manual_seed(self.hparams.seed)
            self._train = self.language.sample(self.hparams.num_train, self.seq_len, g)
            self._val = self.language.sample(self.hparams.num_val, self.seq_len, g)

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSeededSampler(len(self._train), self.hparams.seed)
        return ResumableDataLoader(_Rows(self._train), self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_Rows(self._val), self.batch_size)

    def decode(self, ids: torch.Tensor) -> list[str]:
        return synthetic_text(ids)

    def data_card(self) -> dict:
        return {"kind": "synthetic", "hmm": self.spec.to_dict(), "vocab_size": self.vocab_size, "seq_len": self.seq_len}

    def heldout_tokens(self, n: int, seed: int = 0) -> torch.Tensor:
        return self.language.sample(n, self.seq_len, torch.Generator().manual_seed(10_000 + seed))


class _Rows(TensorDataset):
    """Yields plain LongTensor rows, so batches are LongTensor[B, L]."""

    def __init__(self, data: torch.Tensor) -> None:
        super().__init__(data)

    def __getitem__(self, index):
        return self.tensors[0][index]
