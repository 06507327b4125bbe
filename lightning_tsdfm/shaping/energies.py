"""Energies over whole proposals: a jump's K candidates are scored on the denoiser's full draws x1_hat, not on the
noised states x_{t+h} they lead to.

At a jump from x_t the denoiser proposes x1_hat ~ q(. | x_t) = prod_i p(x1_i | x_t, t); the K candidates share the
draws of the positions that do not move and differ where they do (:class:`~lightning_tsdfm.shaping.GuidedJump`).
A proposal energy gives per-token energies e_i = -log p(x1_i | x1_<i) under a model of whole sequences, and
``importance`` selection keeps candidate k with weight

    w_k  proportional to  p(x1_hat_k) / q(y_k | x_t),   y_k = the tokens candidate k reveals,

self-normalised importance resampling of the moving positions toward p restricted to proposals consistent with
x_t and the shared draws (exact as K grows). Kinds (the ``kind`` of the energy):

- ``causal-lm``: a :class:`~lightning_tsdfm.modules.CausalLMModule` checkpoint (``ar:<checkpoint>``) scoring the
  model's own token ids, or any Hugging Face causal LM (``hf:<name>``, ``smollm2``) scoring the decoded text
  retokenized (its summed NLL spread evenly over the positions);
- ``oracle-sequence``: the synthetic language's own log p(x1) by the forward algorithm, the upper bound of the family.

The state energies (``nce``: a trained compass; ``oracle``: the exact data-path energy) score x_{t+h} at t + h; every
energy says which it scores in ``scores``, and nothing downstream of :class:`GuidedJump` cares.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lightning_tsdfm.data.decoding import decoder_from_card
from lightning_tsdfm.data.hmm import HiddenMarkovLanguage
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.checkpoints.header import CAUSAL_LM_KIND
from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.metrics.judges import build_judge

Scores = Literal["state", "proposal"]


class CausalLMEnergy(torch.nn.Module):
    """e_i(x1) = -log p_LM(x1_i | x1_<i) from the project's causal LM (a CausalLMModule), on the shaped model's own
    token ids."""

    kind = "causal-lm"
    scores: Scores = "proposal"

    def __init__(self, lm) -> None:
        super().__init__()
        self.lm = lm
        self.hparams = {"vocab_size": lm.hparams.vocab_size, "seq_len": lm.hparams.seq_len}
        self.data_card = lm.data_card

    @torch.no_grad()
    def energies(self, x: Tensor, t: Tensor) -> Tensor:
        """Per-token energies [N, L] of whole sequences x [N, L]; ``t`` is ignored (a proposal is clean)."""
        return -self.lm.token_log_likelihood(x)


class FixedEnergy:
    """An energy with no weights: freezing it (``eval``, ``requires_grad_``) is a no-op, as for a frozen network."""

    def requires_grad_(self, requires_grad: bool = True):
        return self

    def eval(self):
        return self


class SequenceOracleEnergy(FixedEnergy):
    """e_i(x1) = -log p(x1_i | x1_<i) under the synthetic language itself: the exact energy over whole proposals."""

    kind = "oracle-sequence"
    scores: Scores = "proposal"

    def __init__(self, language: HiddenMarkovLanguage, seq_len: int) -> None:
        self.language = language
        self.hparams = {"vocab_size": language.vocab_size, "seq_len": seq_len}

    def energies(self, x: Tensor, t: Tensor) -> Tensor:
        """Per-token energies [N, L] (float32, on x's device); ``t`` is ignored."""
        return (-self.language.token_log_likelihood(x)).float().to(x.device)


class TextLMEnergy(FixedEnergy):
    """A Hugging Face causal LM over the decoded text: E(x1) = its summed NLL of the retokenized text, spread evenly
    over the L positions (e_i = E / L), so sums and means over positions are the LM's."""

    kind = "causal-lm"
    scores: Scores = "proposal"

    def __init__(self, spec: str, data_card: dict, seq_len: int) -> None:
        self.judge = build_judge(spec, data_card, max_tokens=4 * seq_len)
        self.decode = decoder_from_card(data_card)
        self.hparams = {"vocab_size": data_card["vocab_size"], "seq_len": seq_len}

    def energies(self, x: Tensor, t: Tensor) -> Tensor:
        nll, _ = self.judge.score(self.decode(x.cpu()))
        return (nll / x.shape[1]).float().to(x.device)[:, None].expand(x.shape).contiguous()


def proposal_energy(name: str, data_card: dict | None, seq_len: int, device="cpu"):
    """The proposal energy named ``oracle-sequence``, ``ar:<checkpoint>``, ``hf:<name>`` or ``smollm2``."""
    if name == "oracle-sequence":
        if not data_card or data_card.get("kind") != "synthetic":
            raise UserError(f"The oracle-sequence energy needs a synthetic language (exact likelihood), but the model was "
                            f"trained on {(data_card or {}).get('kind', 'unknown')} data: use ar:<causal LM checkpoint>.")
        return SequenceOracleEnergy(HiddenMarkovLanguage(data_card["hmm"]), seq_len)
    if name.startswith("ar:"):
        lm = load_module(name[3:], expected_kind=CAUSAL_LM_KIND, map_location=device)
        return CausalLMEnergy(lm).to(device).requires_grad_(False).eval()
    if name.startswith("hf:") or name == "smollm2":
        if not data_card or data_card.get("kind") != "text":
            raise UserError(f"The energy {name!r} reads decoded text, but the model was trained on "
                            f"{(data_card or {}).get('kind', 'unknown')} data: use ar:<causal LM checkpoint> trained "
                            f"on that data, or oracle-sequence for a synthetic language.")
        return TextLMEnergy(name, data_card, seq_len)
    raise UserError(f"Unknown proposal energy {name!r}: choose oracle-sequence, ar:<checkpoint>, hf:<name> or smollm2.")


def is_proposal_energy(name: str) -> bool:
    """Whether the compass name ``name`` names an energy over whole proposals (not a compass checkpoint)."""
    return name == "oracle-sequence" or name == "smollm2" or name.startswith(("ar:", "hf:"))
