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


def rank_correlations_many(scores, annotator_scores) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_correlations` of each row of ``scores`` (D, T) against the same
    annotators (U, T): (tau (D,), rho (D,)), the same values as D separate calls.

    The annotators' pair signs and ranks are computed once for all D rows, and
    the rows are compared in one product per chunk (of about 4 M pair entries).
    Every sum involved is of integers or half-integers (signs, ranks), so it is
    exact in float64 whatever its order: the values equal the separate calls'
    bit for bit (tested).  Sequences longer than ``PAIRWISE_LIMIT`` are compared
    one row at a time.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    ann = np.atleast_2d(np.asarray(annotator_scores, dtype=np.float64))
    D, T = scores.shape
    if ann.shape[1] != T:
        raise ValueError(f"annotator scores {ann.shape} do not match scores {scores.shape}")
    if T > PAIRWISE_LIMIT:
        pairs = [rank_correlations(x, ann) for x in scores]
        return np.array([t for t, _ in pairs]), np.array([r for _, r in pairs])
    taus, rhos = np.zeros((D, len(ann))), np.zeros((D, len(ann)))
    varied = np.ptp(scores, axis=1) > 0  # a constant row counts as 0, as in rank_correlations
    defined = np.ptp(ann, axis=1) > 0
    if varied.any() and defined.any():
        ys = ann[defined]
        i, j = np.triu_indices(T, 1)
        sy = np.sign(ys[:, i] - ys[:, j])
        sy_norm = np.einsum("up,up->u", sy, sy)
        ry = stats.rankdata(ys, axis=1)
        ry = ry - ry.mean(axis=1, keepdims=True)
        ry_norm = np.einsum("ut,ut->u", ry, ry)
        rows = np.flatnonzero(varied)
        chunk = max(1, (1 << 22) // max(len(i), 1))
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            x = scores[r]
            sx = np.sign(x[:, i] - x[:, j])
            rx = stats.rankdata(x, axis=1)
            rx = rx - rx.mean(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                tau = (sx @ sy.T) / np.sqrt(np.einsum("dp,dp->d", sx, sx)[:, None] * sy_norm[None])
                rho = (rx @ ry.T) / np.sqrt(np.einsum("dt,dt->d", rx, rx)[:, None] * ry_norm[None])
            taus[np.ix_(r, np.flatnonzero(defined))] = tau
            rhos[np.ix_(r, np.flatnonzero(defined))] = rho
    return taus.mean(axis=1), rhos.mean(axis=1)


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
