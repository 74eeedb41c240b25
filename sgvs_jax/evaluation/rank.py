"""Rank correlation with annotators (Otani et al., CVPR 2019)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def rank_correlations(scores, annotator_scores) -> tuple[float, float]:
    """Mean Kendall tau and Spearman rho of ``scores`` against each annotator.

    Both are computed on the same sampled positions (the caller indexes the
    annotator's per-frame scores with ``picks``).  A constant annotator or
    prediction has no defined correlation and counts as 0.

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
    taus, rhos = [], []
    for a in ann:
        if np.ptp(a) == 0 or np.ptp(scores) == 0:
            taus.append(0.0)
            rhos.append(0.0)
            continue
        taus.append(stats.kendalltau(stats.rankdata(-scores), stats.rankdata(-a)).statistic)
        rhos.append(stats.spearmanr(stats.rankdata(-scores), stats.rankdata(-a)).statistic)
    return float(np.mean(taus)), float(np.mean(rhos))
