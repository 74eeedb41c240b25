"""Rank correlation with annotators (Otani et al., CVPR 2019)."""

from __future__ import annotations

import numpy as np
from scipy import stats


PAIRWISE_LIMIT = 2048  # steps; longer sequences use scipy's O(n log n) Kendall tau (same value)


def kendall_tau_b(x, ys) -> np.ndarray:
    """Kendall's tau-b of ``x`` (T,) against each row of ``ys`` (U, T), ties
    handled as scipy.stats.kendalltau does: sum(sx * sy) / sqrt(sum(sx^2) * sum(sy^2))
    over pairs i < j with sx = sign(x_i - x_j); NaN where a side is constant."""
    x = np.asarray(x, np.float64)
    ys = np.atleast_2d(np.asarray(ys, np.float64))
    if len(x) > PAIRWISE_LIMIT:
        return np.array([stats.kendalltau(x, y).statistic for y in ys])
    i, j = np.triu_indices(len(x), 1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(ys[:, i] - ys[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sy @ sx) / np.sqrt((sx @ sx) * np.einsum("up,up->u", sy, sy))


def spearman_rho(x, ys) -> np.ndarray:
    """Spearman's rho of ``x`` (T,) against each row of ``ys`` (U, T): the Pearson
    correlation of the (average-tie) ranks, as scipy.stats.spearmanr."""
    rx = stats.rankdata(x)
    ry = stats.rankdata(np.atleast_2d(ys), axis=1)
    rx = rx - rx.mean()
    ry = ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ry @ rx) / np.sqrt((rx @ rx) * np.einsum("ut,ut->u", ry, ry))


def rank_correlations(scores, annotator_scores) -> tuple[float, float]:
    """Mean Kendall tau and Spearman rho of ``scores`` against each annotator.

    Both are computed on the same sampled positions (the caller indexes the
    annotator's per-frame scores with ``picks``).  A constant annotator or
    prediction has no defined correlation and counts as 0.  All annotators are
    compared at once (vectorised); the values are scipy's.

    Args:
      scores: (T,) predicted importance.
      annotator_scores: (U, T) per-annotator importance at the same positions.
    Returns:
      (tau, rho), each averaged over annotators.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ann = np.atleast_2d(np.asarray(annotator_scores, dtype=np.float64))
    if ann.shape[1] != scores.shape[0]:
        raise ValueError(f"annotator scores {ann.shape} do not match scores {scores.shape}")
    if np.ptp(scores) == 0:
        return 0.0, 0.0
    defined = np.ptp(ann, axis=1) > 0
    taus, rhos = np.zeros(len(ann)), np.zeros(len(ann))
    if defined.any():
        taus[defined] = kendall_tau_b(scores, ann[defined])
        rhos[defined] = spearman_rho(scores, ann[defined])
    return float(np.mean(taus)), float(np.mean(rhos))
