"""Kernel temporal segmentation (Potapov et al., ECCV 2014), as used to make the
community ``change_points``.

``cpd_nonlin`` is the exact dynamic program of the reference ``cpd_nonlin.py``
(min within-segment kernel scatter for a fixed number of change points);
``cpd_auto`` picks that number with the reference penalty
``vmax * m / (2n) * (log(n / m) + 1)``.  The inner loop over segment ends is
vectorised, so a few hundred steps segment in milliseconds.
"""

from __future__ import annotations

import numpy as np


def calc_scatters(K: np.ndarray) -> np.ndarray:
    """scatters[i, j] = kernel scatter of the segment [i, j] (0 where j < i)."""
    n = K.shape[0]
    K1 = np.concatenate([[0.0], np.cumsum(np.diag(K))])
    K2 = np.zeros((n + 1, n + 1))
    K2[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)
    diag = np.diag(K2)
    i = np.arange(n).reshape(-1, 1)
    j = np.arange(n).reshape(1, -1)
    scatters = (K1[1:].reshape(1, -1) - K1[:-1].reshape(-1, 1)
                - (diag[1:].reshape(1, -1) + diag[:-1].reshape(-1, 1)
                   - K2[1:, :-1].T - K2[:-1, 1:]) / ((j - i + 1).astype(float) + (j == i - 1)))
    scatters[j < i] = 0
    return scatters


def cpd_nonlin(K: np.ndarray, ncp: int, lmin: int = 1, lmax: int = 100000, backtrack: bool = True):
    """Change points minimising the total within-segment scatter.

    Args:
      K: (n, n) kernel (Gram) matrix.
      ncp: number of change points m.
      lmin, lmax: min and max segment length.
    Returns:
      (cps, scores): (m,) change points (index of each segment's first step) and
      (m+1,) optimal cost for 0..m change points (inf where infeasible).
    """
    m = int(ncp)
    n = K.shape[0]
    if K.shape != (n, n):
        raise ValueError(f"kernel must be square, got {K.shape}")
    J = calc_scatters(K)
    big = 1e101
    I = np.full((m + 1, n + 1), big)
    I[0, lmin:lmax] = J[0, lmin - 1:lmax - 1]
    p = np.zeros((m + 1, n + 1), dtype=np.int64) if backtrack else None
    t_idx = np.arange(n).reshape(-1, 1)
    for k in range(1, m + 1):
        ls = np.arange((k + 1) * lmin, n + 1)
        if len(ls) == 0:
            continue
        # cost[t, l] = J[t, l-1] + I[k-1, t], for k*lmin <= t <= l-lmin and t >= l-lmax
        # t <= l - lmin <= n - 1, so the n rows of J cover every candidate.
        cost = J[:, ls - 1] + I[k - 1, :n].reshape(-1, 1)
        t = t_idx
        valid = (t >= np.maximum(k * lmin, ls - lmax)) & (t < ls - lmin + 1)
        cost = np.where(valid, cost, np.inf)
        I[k, ls] = cost.min(axis=0)
        if backtrack:
            p[k, ls] = cost.argmin(axis=0)
    cps = np.zeros(m, dtype=np.int64)
    if backtrack:
        cur = n
        for k in range(m, 0, -1):
            cps[k - 1] = p[k, cur]
            cur = cps[k - 1]
    scores = I[:, n].copy()
    scores[scores > 1e99] = np.inf
    return cps, scores


def cpd_auto(K: np.ndarray, ncp: int, vmax: float, desc_rate: int = 1, **kwargs):
    """Change points with the number chosen by the KTS penalty (reference ``cpd_auto``)."""
    m = int(ncp)
    _, scores = cpd_nonlin(K, m, backtrack=False, **kwargs)
    n = K.shape[0]
    n2 = n * desc_rate
    penalties = np.zeros(m + 1)
    counts = np.arange(1, m + 1)
    penalties[1:] = (vmax * counts / (2.0 * n2)) * (np.log(float(n2) / counts) + 1)
    costs = scores / float(n) + penalties
    m_best = int(np.argmin(costs))
    cps, _ = cpd_nonlin(K, m_best, **kwargs)
    return cps, costs


def segment_features(features: np.ndarray, max_ncp: int | None = None, vmax: float = 1.0,
                     lmin: int = 1, mean_shot_steps: float | None = None) -> np.ndarray:
    """KTS on L2-normalised features with a linear kernel.

    By default the number of shots is chosen by ``cpd_auto`` (the community
    setting, ``vmax=1``).  With ``mean_shot_steps`` the number of change points is
    fixed to ``round(n / mean_shot_steps) - 1`` and only their positions are
    optimised (``cpd_nonlin``): the penalty of ``cpd_auto`` is tuned for per-frame
    CNN features and degenerates (one shot, or one per step) on smooth clip
    features such as I3D.

    Returns:
      (S, 2) inclusive [start, end] step ranges of the shots, covering 0..n-1.
    """
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot segment an empty sequence")
    if n == 1:
        return np.array([[0, 0]])
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    K = x @ x.T
    m = n - 1 if max_ncp is None else min(int(max_ncp), n - 1)
    if mean_shot_steps is not None:
        m = min(n - 1, max(0, int(round(n / mean_shot_steps)) - 1))
        cps, _ = cpd_nonlin(K, m, lmin=lmin)
    else:
        cps, _ = cpd_auto(K, m, vmax, lmin=lmin)
    bounds = np.concatenate([[0], np.sort(cps), [n]])
    bounds = np.unique(bounds)
    return np.stack([bounds[:-1], bounds[1:] - 1], axis=1)
