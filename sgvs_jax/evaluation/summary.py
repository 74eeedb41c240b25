"""Scores at sampled positions -> frame scores -> shot scores -> keyshot summary -> F1.

This follows the evaluation code shared by SUM-GAN-AAE, AC-SUM-GAN, PGL-SUM and
CA-SUM (``generate_summary`` / ``evaluate_summary``).
"""

from __future__ import annotations

import numpy as np

from sgvs_jax.evaluation.knapsack import knapsack


def frame_scores_from_picks(scores, picks, n_frames: int) -> np.ndarray:
    """Upsamples per-step scores to per-frame scores (piecewise constant).

    Step ``i`` covers frames ``[picks[i], picks[i+1])``; the last step runs to
    ``n_frames``.  Frames before ``picks[0]`` get score 0 (as in the reference code,
    whose positions start at 0 for the published files).

    Args:
      scores: (T,) scores of the sampled steps.
      picks: (T,) frame index of each step, non-decreasing.
      n_frames: number of frames of the video.
    Returns:
      (n_frames,) float64.
    """
    scores = np.asarray(scores, dtype=np.float64)
    picks = np.asarray(picks).astype(np.int64)
    if scores.shape != picks.shape:
        raise ValueError(f"scores {scores.shape} and picks {picks.shape} differ")
    bounds = np.concatenate([picks, [n_frames]]) if (len(picks) == 0 or picks[-1] != n_frames) else picks
    frame_scores = np.zeros(n_frames)
    for i in range(len(bounds) - 1):
        left, right = bounds[i], bounds[i + 1]
        frame_scores[left:right] = scores[i] if i < len(scores) else 0.0
    return frame_scores


def shot_scores(frame_scores, change_points) -> tuple[np.ndarray, np.ndarray]:
    """Mean frame score and length of each shot ``[start, end]`` (inclusive)."""
    cps = np.asarray(change_points, dtype=np.int64)
    lengths = cps[:, 1] - cps[:, 0] + 1
    values = np.array([frame_scores[s:e + 1].mean() for s, e in cps], dtype=np.float64)
    return values, lengths


def check_budget(budget) -> float:
    """The summary's share of the video, in (0, 1]; anything else is an error
    (0 or less selects nothing, above 1 is more than the video)."""
    try:
        b = float(budget)
    except (TypeError, ValueError):
        raise ValueError(f"budget must be a number in (0, 1], got {budget!r}") from None
    if not 0 < b <= 1:
        raise ValueError(f"budget must be in (0, 1] (a share of the video's length), got {budget}")
    return b


def select_keyshots(scores, change_points, n_frames: int, picks, budget: float = 0.15):
    """Shot scores and the knapsack's choice with capacity ``int(len * budget)``.

    Returns:
      (shot_values (S,), selected (S,) bool), ``len = change_points[-1, 1] + 1``
      as in the reference implementation.
    """
    budget = check_budget(budget)
    frame_scores = frame_scores_from_picks(scores, picks, n_frames)
    values, lengths = shot_scores(frame_scores, change_points)
    length = int(np.asarray(change_points)[-1, 1]) + 1
    selected = np.zeros(len(values), bool)
    selected[list(knapsack(values, lengths, int(length * budget)))] = True
    return values, selected


def generate_summary(scores, change_points, n_frames: int, picks, budget: float = 0.15) -> np.ndarray:
    """Keyshot summary: knapsack over shots with capacity ``int(len * budget)``.

    Returns:
      (n_frames,) float64 0/1 summary, ``n_frames = change_points[-1, 1] + 1``
      as in the reference implementation.
    """
    _, selected = select_keyshots(scores, change_points, n_frames, picks, budget)
    cps = np.asarray(change_points, dtype=np.int64)
    summary = np.zeros(int(cps[-1, 1]) + 1)
    for (start, end) in cps[selected]:
        summary[start:end + 1] = 1.0
    return summary


def f1_against_users(summary, user_summary, mode: str) -> float:
    """F1 (in %) of a 0/1 summary against each user summary, reduced by ``mode``.

    Args:
      summary: (N,) 0/1 predicted summary.
      user_summary: (U, N') 0/1 user summaries (zero-padded to the longer length).
      mode: 'max' (SumMe convention) or 'avg' (TVSum convention).
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    user_summary = np.atleast_2d(np.asarray(user_summary))
    n = max(len(summary), user_summary.shape[1])
    s = np.zeros(n, dtype=bool)
    s[: len(summary)] = np.asarray(summary) > 0
    g = np.zeros((user_summary.shape[0], n), dtype=bool)
    g[:, : user_summary.shape[1]] = user_summary > 0
    overlap = (g & s).sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(s.sum() > 0, overlap / max(s.sum(), 1), 0.0)
        recall = np.where(g.sum(axis=1) > 0, overlap / np.maximum(g.sum(axis=1), 1), 0.0)
        f = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0) * 100
    return float(f.max() if mode == "max" else f.mean())
