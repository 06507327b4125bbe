"""A text-like oracle language: a slow topic over a fast syntax chain (a factorial hidden-Markov model).

The hidden state is a pair (z, s): a topic z in {1..Z} that persists from token to token with probability
``topic_stay`` (runs of about 1 / (1 - topic_stay) tokens, so a topic ties tokens dozens of positions apart),
and a syntax state s in {1..S} on a sparse random chain shared by every topic (ties neighbours). The first
``function_states`` syntax states emit *function words* (ids below ``function_vocab``, the same whatever the
topic); the others emit *content words* from their topic's own slice of the remaining ids:

    T((z, s), (z', s')) = Tz(z, z') Ts(s, s'),     Tz = topic_stay I + (1 - topic_stay) / (Z - 1) (1 - I)
    E((z, s), y) = sparse row over function words (s < function_states) or over topic z's content words.

It is one hidden-Markov model over Z*S states, so :class:`HiddenMarkovLanguage` samples it and scores it
exactly by the forward algorithm. Few-step samplers fail on it as on text: a step that fills many positions
from their marginals breaks the syntax between neighbours and mixes topics within a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightning_tsdfm.data.sparse_rows import sparse_rows


@dataclass(frozen=True)
class TextlikeHMMSpec:
    """Everything that defines the text-like language; equal specs define the same language."""

    family: ClassVar[str] = "textlike"

    vocab_size: int = 256
    num_topics: int = 8
    num_syntax: int = 16
    function_states: int = 6
    function_vocab: int = 32
    topic_stay: float = 0.98
    branching: int = 3
    emissions_per_state: int = 4
    smoothing: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_topics < 2:
            raise ValueError(f"num_topics must be >= 2, got {self.num_topics}.")
        if not (0 <= self.function_states < self.num_syntax):
            raise ValueError(f"function_states must be in [0, num_syntax={self.num_syntax}), got {self.function_states}.")
        if not (1 <= self.branching <= self.num_syntax):
            raise ValueError(f"branching must be in [1, num_syntax={self.num_syntax}], got {self.branching}.")
        slice_size = (self.vocab_size - self.function_vocab) // self.num_topics
        if not (1 <= self.emissions_per_state <= min(self.function_vocab, slice_size)):
            raise ValueError(
                f"emissions_per_state={self.emissions_per_state} must fit the function words ({self.function_vocab}) "
                f"and a topic's content words ((vocab_size - function_vocab) / num_topics = {slice_size}).")
        if not (0.0 < self.topic_stay < 1.0):
            raise ValueError(f"topic_stay must be in (0, 1), got {self.topic_stay}.")
        if not (0.0 < self.smoothing < 1.0):
            raise ValueError(f"smoothing must be in (0, 1) so every sequence has finite likelihood, got {self.smoothing}.")

    @property
    def num_states(self) -> int:
        return self.num_topics * self.num_syntax

    def tables(self) -> tuple[Tensor, Tensor]:
        """(transition [Z*S, Z*S], emission [Z*S, V]) float64; state (z, s) has index z * S + s."""
        g = torch.Generator().manual_seed(self.seed)
        z, s = self.num_topics, self.num_syntax
        syntax = sparse_rows(s, s, self.branching, self.smoothing, g)
        topic = torch.full((z, z), (1 - self.topic_stay) / (z - 1), dtype=torch.float64)
        topic.fill_diagonal_(self.topic_stay)
        transition = torch.kron(topic, syntax)

        function_rows = sparse_rows(self.function_states, self.vocab_size, self.emissions_per_state, self.smoothing, g,
                                    allowed=torch.arange(self.function_vocab).expand(self.function_states, -1))
        slice_size = (self.vocab_size - self.function_vocab) // z
        rows = []
        for topic_id in range(z):
            content = self.function_vocab + topic_id * slice_size + torch.arange(slice_size)
            content_rows = sparse_rows(s - self.function_states, self.vocab_size, self.emissions_per_state,
                                       self.smoothing, g, allowed=content.expand(s - self.function_states, -1))
            rows += [function_rows, content_rows]
        return transition, torch.cat(rows)

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}
