"""Rank correlation with annotators (Otani et al., CVPR 2019)."""

from __future__ import annotations

import numpy as np

PAIRWISE_LIMIT = 2048  # steps; longer sequences use scipy's O(n log n) Kendall tau (same value)


def average_ranks(xs) -> np.ndarray:
    """(D, T) -> (D, T) float64 ranks of each row from 1, ties sharing their mean
    rank: ``scipy.stats.rankdata(xs, axis=1)`` for finite values, in numpy (so that
    scoring a run does not import scipy.stats, about 0.5-1 s).  Each rank is an
    integer or half-integer, so exact."""
    xs = np.atleast_2d(np.asarray(xs))
    D, T = xs.shape
    if T == 0:
        return np.zeros((D, 0))
    order = np.argsort(xs, axis=1, kind="stable")
    ordered = np.take_along_axis(xs, order, axis=1)
    position = np.broadcast_to(np.arange(T), (D, T))
    differs = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(np.c_[np.ones((D, 1), bool), differs], position, 0), axis=1)
    last = np.minimum.accumulate(np.where(np.c_[differs, np.ones((D, 1), bool)], position, T)[:, ::-1],
                                 axis=1)[:, ::-1]
    ranks = np.empty((D, T))
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def kendall_tau_b(xs, ys) -> np.ndarray:
    """Kendall's tau-b of each row of ``xs`` (D, T) against each row of ``ys``
    (U, T) -> (D, U), ties handled as scipy.stats.kendalltau does:
    sum(sx * sy) / sqrt(sum(sx^2) * sum(sy^2)) over pairs i < j with
    sx = sign(x_i - x_j); NaN where a side is constant.  The annotators' pair
    signs are computed once for all D rows; the sums are of signs, so exact
    whatever their order."""
    xs = np.atleast_2d(np.asarray(xs, np.float64))
    ys = np.atleast_2d(np.asarray(ys, np.float64))
    if xs.shape[1] > PAIRWISE_LIMIT:
        from scipy import stats
        return np.array([[stats.kendalltau(x, y).statistic for y in ys] for x in xs])
    i, j = np.triu_indices(xs.shape[1], 1)
    sx = np.sign(xs[:, i] - xs[:, j])
    sy = np.sign(ys[:, i] - ys[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx @ sy.T) / np.sqrt(np.einsum("dp,dp->d", sx, sx)[:, None] * np.einsum("up,up->u", sy, sy)[None])


def spearman_rho(xs, ys) -> np.ndarray:
    """Spearman's rho of each row of ``xs`` (D, T) against each row of ``ys``
    (U, T) -> (D, U): the Pearson correlation of the (average-tie) ranks, as
    scipy.stats.spearmanr (sums of half-integer ranks: exact in any order)."""
    rx = average_ranks(xs)
    ry = average_ranks(ys)
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx @ ry.T) / np.sqrt(np.einsum("dt,dt->d", rx, rx)[:, None] * np.einsum("ut,ut->u", ry, ry)[None])


def rank_correlations_many(scores, annotator_scores) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_correlations` of each row of ``scores`` (D, T) against the same
    annotators (U, T): (tau (D,), rho (D,)), each averaged over annotators.

    The rows are compared in one product per chunk (of about 4 M pair entries),
    the annotators' signs and ranks once per chunk.  Every sum involved is of
    integers or half-integers (signs, ranks), so it is exact in float64 whatever
    its order: a row's values do not depend on the rows beside it (tested).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    ann = np.atleast_2d(np.asarray(annotator_scores, dtype=np.float64))
    D, T = scores.shape
    if ann.shape[1] != T:
        raise ValueError(f"annotator scores {ann.shape} do not match scores {scores.shape}")
    taus, rhos = np.zeros((D, len(ann))), np.zeros((D, len(ann)))
    rows = np.flatnonzero(np.ptp(scores, axis=1) > 0)  # a constant row counts as 0
    defined = np.flatnonzero(np.ptp(ann, axis=1) > 0)  # so does a constant annotator
    if len(rows) and len(defined):
        chunk = max(1, (1 << 22) // max(T * (T - 1) // 2, 1))
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            taus[np.ix_(r, defined)] = kendall_tau_b(scores[r], ann[defined])
            rhos[np.ix_(r, defined)] = spearman_rho(scores[r], ann[defined])
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
    if scores.ndim != 1:
        raise ValueError(f"scores must be (T,), got {scores.shape}")
    tau, rho = rank_correlations_many(scores[None], annotator_scores)
    return float(tau[0]), float(rho[0])
