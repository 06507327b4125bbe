"""Compasses for shaping: a trained compass checkpoint, or the oracle of a synthetic language, checked to
score the states of the module it shapes (vocabulary, source, length)."""

from __future__ import annotations

from lightning_tsdfm.data.hmm import HiddenMarkovLanguage
from lightning_tsdfm.data.path_oracle import OracleCompass, PathOracle
from lightning_tsdfm.modules.checkpoint import load_module
from lightning_tsdfm.modules.data_card import check_fits
from lightning_tsdfm.shaping.protocol import declared_seq_len, declared_vocab_size

#: the compass name that selects the exact data-path energy instead of a checkpoint
ORACLE = "oracle"


def check_compass_matches(compass, module, compass_path: str) -> None:
    """The compass must score states of the module's vocabulary, source and length (as the module declares them:
    attributes or properties ``vocab_size`` and ``seq_len``, or its hyper-parameters)."""
    name = type(module).__name__
    check_fits(f"the compass {compass_path}", compass.hparams["vocab_size"], compass.hparams["seq_len"], name,
               declared_vocab_size(module), declared_seq_len(module))
    if compass.source_name != module.path.source.name:
        raise ValueError(f"The compass {compass_path} scores states of the {compass.source_name!r} source but {name} "
                         f"uses the {module.path.source.name!r} source: train a compass for that source.")


def load_matching_compass(path: str, module, device="cpu", data_card: dict | None = None):
    """The compass checkpoint at ``path`` frozen on ``device``, or with ``path="oracle"`` the exact energy of the
    synthetic language in ``data_card`` (default: the module's), after checking it scores ``module``'s states."""
    if path == ORACLE:
        compass = oracle_compass(data_card or getattr(module, "data_card", None), module)
    else:
        compass = load_module(path, expected_kind="compass", map_location=device).requires_grad_(False)
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
