"""Per-video and per-split evaluation, plus random and human reference points."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from sgvs_jax.evaluation.rank import average_ranks, rank_correlations, rank_correlations_many
from sgvs_jax.evaluation.summary import check_budget, f1_against_users, generate_summary


def annotator_matrix(video) -> np.ndarray:
    """(U, T) annotator importance at the video's picks.

    Uses the per-frame annotator scores where the file has them (TVSum built by
    ``sgvs_jax.data.tvsum``), else the 0/1 user summaries (SumMe, community h5).
    """
    source = video.user_scores if video.user_scores is not None else video.user_summary
    picks = np.clip(video.picks.astype(np.int64), 0, source.shape[1] - 1)
    return source[:, picks]


def single_ground_truth(video, budget: float = 0.15) -> np.ndarray:
    """The single-ground-truth summary: the same keyshot pipeline applied to the
    mean annotator score (``gtscore``), as in the single-GT evaluation variant."""
    return generate_summary(video.gtscore, video.change_points, video.n_frames, video.picks, budget)


def check_scores(scores, video) -> np.ndarray:
    """``scores`` as (T,) float64 for ``video``, or a ValueError naming the video.

    The keyshot protocol (as published) ranks shots by their mean score inside a
    knapsack, so it is defined for non-negative scores, as a sigmoid gives: a shot
    of value <= 0 is never selected, so negative or all-zero scores would give an
    empty summary and F1 0 while tau and rho still look fine.  Such scores are
    refused; map logits through a sigmoid, or use :func:`rank_normalize`.  The
    protocol is not shift-invariant (adding c to every score adds c per selected
    shot to the knapsack's objective), exactly like the reference code.
    """
    scores = np.asarray(scores)
    key = getattr(video, "key", "?")
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise ValueError(f"video {key}: scores must be real numbers, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if scores.shape != video.picks.shape:
        raise ValueError(f"video {key}: scores of shape {scores.shape}, expected ({video.picks.shape[0]},): "
                         "one score per step (per pick)")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"video {key}: scores contain NaN or inf")
    if scores.min() < 0:
        raise ValueError(f"video {key}: negative scores (min {scores.min():.4g}); the keyshot protocol needs "
                         "scores >= 0 (apply a sigmoid, or sgvs_jax.evaluation.rank_normalize)")
    if not scores.any():
        raise ValueError(f"video {key}: every score is 0, so the knapsack selects nothing")
    return scores


def rank_normalize(scores) -> np.ndarray:
    """(T,) -> (T,) ranks mapped to (0, 1] (ties share their mean rank): any
    order-preserving transform of the scores gives the same F1, tau and rho."""
    scores = np.asarray(scores, np.float64)
    return average_ranks(scores)[0] / max(len(scores), 1)


def scorable(video) -> bool:
    """Whether a video can be scored: it has a user summary (own videos from
    ``sgvs_jax.app.extract_features`` have none).  Means leave the others out."""
    return bool(np.any(video.user_summary))


def shot_fits(video, budget: float) -> bool:
    """Whether some shot of ``video`` fits the summary budget: where none does (a short video
    of long shots), the knapsack selects nothing, so its F1 is left out (not counted as 0);
    its tau, rho and AP, which need no summary, are still measured."""
    cp = np.asarray(video.change_points, np.int64)
    return int((cp[:, 1] - cp[:, 0] + 1).min()) <= int((cp[-1, 1] + 1) * check_budget(budget))


def no_shot_fits(videos: Mapping, budget: float) -> list[str]:
    """The keys of the annotated videos no shot of which fits ``budget`` (:func:`shot_fits`)."""
    return sorted(k for k, v in videos.items() if scorable(v) and not shot_fits(v, budget))


def highlight_labels(video) -> np.ndarray | None:
    """(T,) bool: the steps whose mean annotator value is above the video's median (UMT's
    TVSum labels); for 0/1 labels of which most are 1, the ones.  None where every step
    has the same value (AP is undefined there)."""
    m = annotator_matrix(video).astype(np.float64).mean(0)
    labels = m > np.median(m)
    if not labels.any():
        labels = m > m.min()
    return labels if labels.any() else None


def average_precision(scores, labels) -> float:
    """AP (in %) of ranking the steps by ``scores`` against 0/1 ``labels``: the precision at
    each distinct score, weighted by the recall it adds (tied steps are one threshold, as in
    scikit-learn's ``average_precision_score``: constant scores give the share of positives)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    s, y = np.asarray(scores, np.float64)[order], np.asarray(labels, bool)[order]
    cut = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last step of each run of equal scores
    hits = np.cumsum(y)[cut]
    recall = hits / max(y.sum(), 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * hits / (cut + 1)) * 100)


def evaluate_video(scores, video, mode: str, budget: float = 0.15) -> dict:
    """F1 against the users (mode 'max' or 'avg'), F1 against the single ground truth
    (``f1_single``), Kendall tau, Spearman rho and AP (:func:`average_precision` against
    :func:`highlight_labels`) of one video's scores.

    ``scores``: (T,) non-negative, not all zero (see :func:`check_scores`); ``budget`` in
    (0, 1]: the summary's share of the video's frames.  Where no shot fits the budget
    (:func:`shot_fits`) both F1 are NaN; where every step is labelled alike, AP is NaN.
    """
    scores = check_scores(scores, video)
    f1 = f1_single = float("nan")
    if shot_fits(video, budget):
        summary = generate_summary(scores, video.change_points, video.n_frames, video.picks, budget)
        f1 = f1_against_users(summary, video.user_summary, mode)
        f1_single = f1_against_users(summary, single_ground_truth(video, budget)[None], "max")
    tau, rho = rank_correlations(scores, annotator_matrix(video))
    labels = highlight_labels(video)
    ap = average_precision(scores, labels) if labels is not None else float("nan")
    return {"f1": f1, "f1_single": f1_single, "tau": tau, "rho": rho, "ap": ap}


def _mean(values) -> float:
    """The mean of the finite values (NaN where none is): a video without a metric is left out."""
    values = np.asarray(values if isinstance(values, np.ndarray) else list(values), np.float64)
    finite = np.isfinite(values)
    if finite.all() and values.size:
        return float(np.mean(values))  # the array as given: the same float sum as a plain mean
    return float(np.mean(values[finite])) if finite.any() else float("nan")


def evaluate_videos(scores_by_key: Mapping[str, np.ndarray], videos: Mapping, mode: str,
                    budget: float = 0.15) -> dict:
    """Mean F1/tau/rho/AP over the given videos that can be scored (:func:`scorable`; NaN
    where none can), each metric over the videos that have it: ``no_shot_fits`` names the
    videos left out of the F1 means, ``left_out`` those left out of every mean, and
    ``per_video`` keeps each video's metrics."""
    if not scores_by_key:
        raise ValueError("no videos to evaluate")
    per_video = {k: evaluate_video(scores_by_key[k], videos[k], mode, budget) for k in scores_by_key
                 if scorable(videos[k])}
    out = {m: _mean(v[m] for v in per_video.values()) for m in ("f1", "f1_single", "tau", "rho", "ap")}
    out["per_video"] = per_video
    out["left_out"] = sorted(k for k in scores_by_key if k not in per_video)
    out["no_shot_fits"] = sorted(k for k, v in per_video.items() if not np.isfinite(v["f1"]))
    return out


def random_baseline(videos: Mapping, keys, mode: str, n_draws: int = 20, seed: int = 0,
                    budget: float = 0.15) -> dict:
    """Uniform random step scores through the same pipeline, averaged over draws.

    The same numbers as calling :func:`evaluate_videos` once per draw, computed
    video by video: each video's draws are compared with its annotators at once
    (:func:`rank_correlations_many`), and the single-ground-truth F1, which the
    baseline does not report, is left out.
    """
    rng = np.random.default_rng(seed)
    keys = list(keys)
    if not keys:
        raise ValueError("no videos to evaluate")
    keys = [k for k in keys if scorable(videos[k])]  # as evaluate_videos
    if not keys:
        return {**{m: float("nan") for m in ("f1", "tau", "rho", "ap")}, "n_draws": n_draws}
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws}")
    draws = [[rng.random(videos[k].picks.shape[0]) for k in keys] for _ in range(n_draws)]
    per_video = np.full((n_draws, len(keys), 4), np.nan)  # draw, video, (f1, tau, rho, ap)
    for v, k in enumerate(keys):
        video = videos[k]
        scores = np.stack([check_scores(d[v], video) for d in draws])
        fits, labels = shot_fits(video, budget), highlight_labels(video)
        for d in range(n_draws):
            if fits:
                summary = generate_summary(scores[d], video.change_points, video.n_frames, video.picks, budget)
                per_video[d, v, 0] = f1_against_users(summary, video.user_summary, mode)
            if labels is not None:
                per_video[d, v, 3] = average_precision(scores[d], labels)
        per_video[:, v, 1], per_video[:, v, 2] = rank_correlations_many(scores, annotator_matrix(video))
    # as evaluate_videos: the mean over videos of each draw, then over draws
    mean = np.mean([[_mean(per_video[d, :, m]) for m in range(4)] for d in range(n_draws)], axis=0)
    return {"f1": float(mean[0]), "tau": float(mean[1]), "rho": float(mean[2]), "ap": float(mean[3]),
            "n_draws": n_draws}


def human_baseline(user_summary) -> dict:
    """Leave-one-out human F1: each user's summary scored against the others.

    Returns the mean over users of the 'avg' and of the 'max' reduction.
    """
    us = np.asarray(user_summary)
    if us.shape[0] < 2:
        raise ValueError("human baseline needs at least two users")
    avg, mx = [], []
    for u in range(us.shape[0]):
        others = np.delete(us, u, axis=0)
        avg.append(f1_against_users(us[u], others, "avg"))
        mx.append(f1_against_users(us[u], others, "max"))
    return {"avg": float(np.mean(avg)), "max": float(np.mean(mx))}
