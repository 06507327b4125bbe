"""Compasses for shaping, named as on the command line and checked to score what the module it shapes makes
(vocabulary, length, and the source for a state energy; the language for a proposal energy):

- a compass checkpoint (kind ``nce``), a path LM checkpoint (kind ``path-lm``: a causal LM of the noised states,
  :class:`~lightning_tsdfm.modules.PathLMModule`) or ``oracle`` (the exact data-path energy): state energies, on
  x_{t+h};
- ``ar:<checkpoint>``, ``hf:<name>``, ``smollm2`` (kind ``causal-lm``) or ``oracle-sequence``: energies over the
  denoiser's whole proposals x1_hat (:mod:`lightning_tsdfm.shaping.energies`)."""

from __future__ import annotations

from pathlib import Path

import torch

from lightning_tsdfm.checkpoints.fits import card_differences, check_fits
from lightning_tsdfm.checkpoints.header import PATH_LM_KIND
from lightning_tsdfm.checkpoints.loading import load_module, read_checkpoint_header
from lightning_tsdfm.data.hmm import HiddenMarkovLanguage
from lightning_tsdfm.data.path_oracle import OracleCompass, PathOracle
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.shaping.energies import is_proposal_energy, proposal_energy
from lightning_tsdfm.shaping.protocol import declared_seq_len, declared_vocab_size

#: the compass name that selects the exact data-path energy instead of a checkpoint
ORACLE = "oracle"


def check_compass_matches(compass, module, compass_path: str) -> None:
    """The compass must score states of the module's vocabulary, source and length (as the module declares them:
    attributes or properties ``vocab_size`` and ``seq_len``, or its hyper-parameters)."""
    name = type(module).__name__
    check_fits(f"the compass {compass_path}", compass.hparams["vocab_size"], compass.hparams["seq_len"], name,
               declared_vocab_size(module), declared_seq_len(module))
    if compass.scores == "proposal":
        _check_same_language(compass, module, compass_path)
        return
    if compass.source_name != module.path.source.name:
        raise ValueError(f"The compass {compass_path} scores states of the {compass.source_name!r} source but {name} "
                         f"uses the {module.path.source.name!r} source: train a compass for that source.")
    if compass.kind == "path-lm":
        _check_same_schedule(compass, module, compass_path)
        _check_same_language(compass, module, compass_path)


def load_matching_compass(path: str, module, device="cpu", data_card: dict | None = None):
    """The compass named ``path`` frozen on ``device`` (a checkpoint, ``oracle``, or a proposal energy), with the
    synthetic language or tokenizer of ``data_card`` (default: the module's), after checking it fits ``module``."""
    card = data_card or getattr(module, "data_card", None)
    if path == ORACLE:
        compass = oracle_compass(card, module)
    elif is_proposal_energy(path):
        compass = proposal_energy(path, card, declared_seq_len(module), device)
    else:
        compass = load_module(path, expected_kind=("compass", PATH_LM_KIND), map_location=device).requires_grad_(False)
    check_compass_matches(compass, module, path)
    return compass


def oracle_compass(data_card: dict | None, module) -> OracleCompass:
    """E*(x_t, t) = -log p_t(x_t) / L on ``module``'s path, for the synthetic language of ``data_card``."""
    if not data_card or data_card.get("kind") != "synthetic":
        kind = (data_card or {}).get("kind", "unknown")
        raise ValueError(f"The oracle compass needs a synthetic language (exact likelihood); {type(module).__name__} "
                         f"was trained on {kind} data. Train a compass with CompassModule and pass its checkpoint.")
    language = HiddenMarkovLanguage(data_card["hmm"])
    return OracleCompass(PathOracle(language, module.path), declared_seq_len(module))


def compass_kind(name: str) -> str:
    """The kind of energy a compass name gives, as result rows name it: ``oracle``, ``oracle-sequence``, ``causal-lm``
    (``ar:``, ``hf:``, ``smollm2``), ``path-lm`` (a path LM checkpoint) or ``nce`` (a compass checkpoint)."""
    if name in (ORACLE, "oracle-sequence"):
        return name
    if is_proposal_energy(name):
        return "causal-lm"
    is_path_lm = Path(name).is_file() and read_checkpoint_header(name)["kind"] == PATH_LM_KIND
    return "path-lm" if is_path_lm else "nce"


def _check_same_schedule(compass, module, name: str) -> None:
    """A path LM's energy reads kappa(t) of its own path, which must be the module's."""
    times = torch.linspace(0.05, 0.95, 7)
    if not torch.allclose(compass.path.scheduler.kappa(times), module.path.scheduler.kappa(times).float(), atol=1e-4):
        raise UserError(f"The path LM {name} was trained on the schedule kappa(t) = t^{compass.hparams.scheduler_exponent}"
                        f", which is not {type(module).__name__}'s: train it with the module's --model.init_args."
                        f"scheduler_exponent.")


def _check_same_language(energy, module, name: str) -> None:
    """An energy with a data card (a causal LM, a path LM) must have been trained on the module's data."""
    ours, theirs = getattr(module, "data_card", None), getattr(energy, "data_card", None)
    if not ours or not theirs:
        return
    differences = [d for d in card_differences(theirs, ours) if not d.startswith("seq_len")]
    if differences:
        raise UserError(f"The energy {name} was trained on other data than {type(module).__name__} ("
                        + "; ".join(differences) + "): train it on the shaped model's data.")
