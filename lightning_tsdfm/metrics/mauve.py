"""MAUVE: how close the distribution of generated texts P is to that of reference texts Q, from a feature vector of
each text.

The two feature sets are quantised together (PCA, then k-means into ``num_buckets`` clusters, by default n / 10 for
n texts a side) into histograms p and q; for mixtures r_l = l p + (1 - l) q the divergence curve is
(exp(-c KL(q || r_l)), exp(-c KL(p || r_l))), c = 5, and MAUVE is the area under it: 1 for the same histogram, near 0
for histograms that share no cluster. The ``mauve-text`` package (``[eval]`` extra) does the quantisation and the
curve; the features are always given (:meth:`~lightning_tsdfm.metrics.judges.CausalLMJudge.score_continuations`), so
it never featurises texts itself nor fetches a model to do so.

MAUVE of finite samples is below 1 even for two samples of one law (the histograms of n texts a side differ by chance),
so a model's MAUVE is read against its noise ceiling: MAUVE between the references and as many other real texts,
featurised and quantised the same way (:func:`mauve_ceiling`).
"""

from __future__ import annotations

import numpy as np
import torch

#: the fewest texts a side: k-means needs a few texts per cluster
MIN_TEXTS = 4


def mauve_score(p_features: torch.Tensor | np.ndarray, q_features: torch.Tensor | np.ndarray, seed: int = 0,
                num_buckets: int | str = "auto") -> float:
    """MAUVE between the texts of ``p_features`` [n, d] (the model's) and of ``q_features`` [m, d] (the
    references'), k-means seeded with ``seed``."""
    p, q = _matrix(p_features, "p_features"), _matrix(q_features, "q_features")
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"p_features have {p.shape[1]} dimensions and q_features {q.shape[1]}: features of both sides "
                         "must come from one featuriser.")
    try:
        from mauve import compute_mauve
    except ImportError as err:  # pragma: no cover
        raise ImportError("MAUVE needs the mauve-text package: pip install 'lightning-tsdfm[eval]'.") from err
    return float(compute_mauve(p_features=p, q_features=q, num_buckets=num_buckets, seed=seed, verbose=False).mauve)


def mauve_ceiling(reference_features: torch.Tensor | np.ndarray, other_features: torch.Tensor | np.ndarray,
                  seed: int = 0, num_buckets: int | str = "auto") -> float:
    """MAUVE between other real texts (``other_features`` [n, d], the P side) and the references
    (``reference_features`` [n, d]): the score of a model whose n texts are draws of the data's own law, the most a
    model's MAUVE against these n references can be expected to reach."""
    if len(reference_features) != len(other_features):
        raise ValueError(f"{len(other_features)} other texts against {len(reference_features)} references: the ceiling "
                         "compares sets of one size, the size a model's MAUVE is measured at.")
    return mauve_score(other_features, reference_features, seed, num_buckets)


def _matrix(features, name: str) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if array.ndim != 2 or len(array) < MIN_TEXTS:
        raise ValueError(f"{name} must be [n, d] with n >= {MIN_TEXTS} texts, got shape {list(array.shape)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} hold a NaN or an infinity.")
    return array.astype(np.float32)
