"""The corpus half of benchmarks/conditional.py: held-out blocks of a text corpus's validation split (never training
text), each cut into a prompt, its first P tokens (``prefix:P``), and a reference continuation, the rest; a model's
continuations of the prompts are read by a causal LM judge given the prompt.

For each judge and set of continuations c_i of prompts p_i:

- ``cond_ppl``: the judge's perplexity of the continuation given the prompt, exp(sum_i NLL_i / sum_i N_i) with
  NLL_i = -sum_j log p(c_ij | BOS, p_i, c_i,<j) over the N_i judge tokens of c_i (the prompt's tokens do not count;
  :meth:`~lightning_tsdfm.metrics.judges.CausalLMJudge.score_continuations`), and ``nll_stderr``, the SE of its log;
- ``mauve``: MAUVE between the continuations and the references (:mod:`lightning_tsdfm.metrics.mauve`), from the
  judge's features of each: the mean of its last hidden state over the continuation's tokens, given the prompt;
- ``entropy``: the mean unigram entropy of a continuation's tokens (the model's own tokens, as on a synthetic
  language).

The data row reads the references themselves: their perplexity is the floor a perfect continuer reaches at the
data's entropy (their MAUVE against themselves is 1 by definition, so it is not given). Its ``mauve_ceiling`` is
MAUVE's noise ceiling, the MAUVE a perfect continuer reaches with N texts: between the references and the real
continuations of N other held-out blocks (none a condition, drawn with seed + 1, cut at the same P), featurised by the
same judge and quantised with the same seed (:func:`~lightning_tsdfm.metrics.mauve.mauve_ceiling`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lightning_tsdfm.data.decoding import Decoder, decoder_from_card
from lightning_tsdfm.metrics.conditional import filled_entropy
from lightning_tsdfm.metrics.generative_perplexity import nll_stderr
from lightning_tsdfm.metrics.judges import ContinuationScores, build_judge, check_judge_fits
from lightning_tsdfm.metrics.mauve import MIN_TEXTS, mauve_ceiling, mauve_score


def prompt_length(template: str, known: torch.Tensor) -> int:
    """P of a ``prefix:P`` template whose known positions are ``known`` [L]; other templates are refused: a judge reads
    a continuation after its prompt, not a span between known tokens."""
    length = int(known.sum())
    if not template.startswith("prefix:") or not bool(known[:length].all()):
        raise SystemExit(f"--template {template!r}: on a text corpus the judge scores a continuation given its prompt: "
                         "use prefix:P (the first P tokens known).")
    return length


def split_texts(decode: Decoder, tokens: torch.Tensor, length: int) -> tuple[list[str], list[str]]:
    """The prompt (the first ``length`` tokens) and the continuation of each row of ``tokens`` [N, L] as text. The
    continuation is what the whole row's text adds to the prompt's, so it keeps the whitespace before its first word
    (decoding strips a document's ends); where the prompt's text is not a prefix of the row's (a character split
    between the two), the continuation is decoded alone."""
    prompts, wholes, tails = decode(tokens[:, :length]), decode(tokens), decode(tokens[:, length:])
    return prompts, [whole[len(prompt):] if whole.startswith(prompt) else tail
                     for prompt, whole, tail in zip(prompts, wholes, tails)]


def other_blocks(datamodule, conditions: torch.Tensor, seed: int) -> torch.Tensor | None:
    """N = len(``conditions``) held-out blocks of which none is a condition: the first N of 2N distinct validation
    blocks drawn with ``seed`` + 1 that are not among ``conditions`` [N, L]; None when the validation split holds
    fewer than 2N blocks (or fewer than N of those differ from every condition)."""
    count = len(conditions)
    try:
        drawn = datamodule.heldout_tokens(2 * count, seed + 1)
    except ValueError:
        return None
    taken = {tuple(row) for row in conditions.tolist()}
    kept = [row for row in drawn.tolist() if tuple(row) not in taken]
    return torch.tensor(kept[:count], dtype=conditions.dtype) if len(kept) >= count else None


def comparable(*features: torch.Tensor | None) -> bool:
    """Whether MAUVE can compare these feature sets: a judge gave each, and each holds MIN_TEXTS texts or more."""
    return all(f is not None and len(f) >= MIN_TEXTS for f in features)


@dataclass
class CorpusScoring:
    """The judges of one template's conditions ``references`` [N, L] (the first ``length`` tokens the prompt), what
    each read of the reference continuations (the data row, and the references' features MAUVE compares with), and
    each judge's MAUVE ceiling (None without other blocks)."""

    judges: list
    decode: Decoder
    references: torch.Tensor
    known: torch.Tensor
    length: int
    seed: int
    read_references: dict[str, ContinuationScores]
    ceilings: dict[str, float | None]

    @classmethod
    def of(cls, card: dict, judge_specs: list[str], references: torch.Tensor, known: torch.Tensor, template: str,
           seed: int, judges: list | None = None, others: torch.Tensor | None = None) -> "CorpusScoring":
        """``judges``: the judges already built for ``judge_specs`` (by an earlier template), else built here;
        ``others`` [N, L]: held-out blocks other than the references (:func:`other_blocks`), whose continuations give
        the MAUVE ceiling."""
        length = prompt_length(template, known[0])
        if judges is None:
            for spec in judge_specs:
                check_judge_fits(spec, card, "the corpus's held-out text")
            judges = [build_judge(spec, card) for spec in judge_specs]
        decode = decoder_from_card(card)
        prompts, continuations = split_texts(decode, references, length)
        read = {judge.name: judge.score_continuations(prompts, continuations) for judge in judges}
        ceilings = {judge.name: None for judge in judges}
        if others is not None:
            other_prompts, other_continuations = split_texts(decode, others, length)
            for judge in judges:
                reference = read[judge.name].features
                other = judge.score_continuations(other_prompts, other_continuations).features
                ceilings[judge.name] = mauve_ceiling(reference, other, seed) if comparable(reference, other) else None
        return cls(judges, decode, references, known, length, seed, read, ceilings)

    def data_rows(self) -> list[dict]:
        """One row per judge of the reference continuations themselves, with the judge's MAUVE ceiling."""
        return [{**self._figures(judge.name, self.read_references[judge.name], self.references), "mauve": None,
                 "mauve_ceiling": self.ceilings[judge.name]} for judge in self.judges]

    def rows(self, tokens: torch.Tensor) -> list[dict]:
        """One row per judge of the continuations in ``tokens`` [N, L] (the prompts kept)."""
        prompts, continuations = split_texts(self.decode, tokens, self.length)
        rows = []
        for judge in self.judges:
            read = judge.score_continuations(prompts, continuations)
            reference = self.read_references[judge.name].features
            mauve = mauve_score(read.features, reference, self.seed) if comparable(read.features, reference) else None
            rows.append({**self._figures(judge.name, read, tokens), "mauve": mauve})
        return rows

    def _figures(self, judge: str, read: ContinuationScores, tokens: torch.Tensor) -> dict:
        if not read.count.sum() > 0:
            raise ValueError(f"Judge {judge} read no continuation token: every continuation decoded to empty text.")
        return {"judge": judge, "cond_ppl": torch.exp(read.nll.sum() / read.count.sum()).item(),
                "nll_stderr": nll_stderr(read.nll, read.count), "judge_tokens": read.count.mean().item(),
                "entropy": filled_entropy(tokens, self.known).mean().item(), "reverse_ppl": None,
                "known_tokens": self.length, "filled_tokens": int((~self.known[0]).sum()), "n_samples": len(tokens)}
