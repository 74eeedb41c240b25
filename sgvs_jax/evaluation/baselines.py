"""Training-free scores of the features themselves, through the same pipeline.

A trained selector counts only where it beats these (and random scores, and the
untrained model).  Each criterion maps one video's (T, D) features, as the model
sees them (after ``data.normalization``), to (T,) scores; ``x̂`` is a step's
feature over its L2 norm.

  uniqueness           mean Euclidean distance to the video's other steps
  local_dissimilarity  1 - mean cos(x_t, x_j) over the k most similar other steps
                       (k = 5 % of T, at least 1): a step with no close
                       neighbours is distinct (Pang et al., WACV 2023)
  global_consistency   mean cos(x_t, x_j) over all other steps: a step that
                       agrees with the whole video (Pang et al., WACV 2023)
  representativeness   cos(x_t, mean of the video's steps)
  feature_norm         ||x_t|| (constant under ``normalization='l2'``)

Scores are min-max scaled to [0, 1] per video before the keyshot knapsack (a
rank-preserving map, so tau and rho are those of the raw criterion; the
knapsack only takes shots of positive value).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from sgvs_jax.evaluation.protocol import evaluate_videos


BLOCK = 1024  # rows of a (T, T) similarity matrix held at once: memory O(BLOCK * T), not T^2


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _by_rows(x, rows) -> np.ndarray:
    """``rows(start, block)`` for blocks of BLOCK steps, concatenated: (T,) per-step values."""
    return np.concatenate([rows(i, x[i:i + BLOCK]) for i in range(0, len(x), BLOCK)])


def _cos_others(xn, start, block):
    """cos(x_t, x_j) of the steps ``start .. start + len(block)`` with every step (NaN with itself)."""
    sim = block @ xn.T
    sim[np.arange(len(block)), start + np.arange(len(block))] = np.nan
    return sim


def uniqueness(x):
    sq = (x * x).sum(-1)

    def rows(i, b):
        return np.sqrt(np.maximum(sq[i:i + len(b), None] + sq[None] - 2 * b @ x.T, 0.0)).sum(1)
    return _by_rows(x, rows) / max(len(x) - 1, 1)


def local_dissimilarity(x):
    xn, k = _unit(x), max(1, int(round(0.05 * len(x))))

    def rows(i, b):
        sim = np.nan_to_num(_cos_others(xn, i, b), nan=-np.inf)
        return 1.0 - -np.sort(-sim, axis=1)[:, :k].mean(1)
    return _by_rows(xn, rows)


def global_consistency(x):
    if len(x) < 2:
        return np.zeros(len(x))
    xn = _unit(x)
    return _by_rows(xn, lambda i, b: np.nanmean(_cos_others(xn, i, b), axis=1))


def representativeness(x):
    return _unit(x) @ _unit(x.mean(0))


def feature_norm(x):
    return np.linalg.norm(x, axis=-1)


CRITERIA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "uniqueness": uniqueness,
    "local_dissimilarity": local_dissimilarity,
    "global_consistency": global_consistency,
    "representativeness": representativeness,
    "feature_norm": feature_norm,
}


def scale01(scores) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    span = np.ptp(scores) if scores.size else 0.0
    return (scores - scores.min()) / span if span > 0 else np.full_like(scores, 0.5)


def training_free_scores(features, name: str) -> np.ndarray:
    """(T, D) -> (T,) scores in [0, 1] of criterion ``name`` (see module docstring)."""
    if name not in CRITERIA:
        raise ValueError(f"unknown training-free criterion {name!r}; choose from {sorted(CRITERIA)}")
    return scale01(CRITERIA[name](np.asarray(features, np.float64)))


RANK_TOLERANCE = 1e-5  # relative: float32 features carry ~1e-7, so closer values are rounding


def criterion_ranks(features, name: str) -> np.ndarray:
    """(T, D) -> (T,) float32 ranks of criterion ``name`` scaled to [0, 1]: a training-free
    teacher's targets (``train.teacher``).  Values within ``RANK_TOLERANCE`` x the largest
    |value| of their sorted neighbour share a rank, so a criterion that is constant up to
    float rounding (the norm of steps scaled to one length) ranks every step alike and
    teaches nothing, instead of the order of its rounding errors."""
    values = np.asarray(CRITERIA[name](np.asarray(features, np.float64)), np.float64).reshape(-1)
    order = np.argsort(values, kind="stable")
    gaps = np.diff(values[order]) > RANK_TOLERANCE * np.max(np.abs(values), initial=0.0)
    ranks = np.empty(len(values), np.int64)
    ranks[order] = np.concatenate([[0], np.cumsum(gaps)])[:len(values)]
    return (ranks / max(ranks.max(initial=0), 1)).astype(np.float32)


def training_free_baselines(videos: Mapping, keys, mode: str, budget: float = 0.15,
                            features: Callable = lambda v: v.features) -> dict:
    """``{criterion: {f1, tau, rho, ap, spread}}`` over the videos ``keys``;
    ``features(video)`` gives the (T, D) features the model sees."""
    out = {}
    for name in CRITERIA:
        scores = {k: training_free_scores(features(videos[k]), name) for k in keys}
        r = evaluate_videos(scores, videos, mode, budget)
        out[name] = {"f1": r["f1"], "tau": r["tau"], "rho": r["rho"], "ap": r["ap"],
                     "spread": float(np.mean([np.std(s) for s in scores.values()]))}
    return out
