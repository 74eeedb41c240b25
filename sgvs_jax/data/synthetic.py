"""Synthetic videos whose important segments only a trained model can find.

Each video has a topic ``z`` in a semantic (CLIP-like) space; its title tokens
are noisy copies of ``z`` (noisier in some videos: a weak title).  Its shots show
one of three kinds of content, all rendered into the visual features by one
projection ``render`` shared by the dataset and all of the same norm:

  topic        (``planted_fraction`` of the shots; what annotators mark) the
               rendering of a per-shot variation of ``z``
  background   2-3 scenes that recur across most other shots (e.g. a presenter,
               a street), drawn from a small pool shared by the whole dataset:
               the largest clusters, so the most representative / globally
               consistent steps, and no clue to what the video is about
  distractors  a few one-off shots of unrelated content: the most unique steps

So representativeness and global consistency pick the background, uniqueness
picks the distractors, and the feature norm is flat: no training-free criterion
of the visual features finds the topic shots, and neither does the untrained
model.  What tells them apart is that, across the dataset, topic content renders
the video's *title*: a model that learns the visual -> semantic map from many
videos (FSSA's semantic alignment) finds them.  The CLIP frame features
(``clip_frames``) are kept for datasets that use them as the frame side of the
cosine, but the default config does not use them (they would give the answer
away without training).  Annotators score topic shots high, with per-user noise.
"""

from __future__ import annotations

import numpy as np

from sgvs_jax.data.video import Video
from sgvs_jax.evaluation.knapsack import knapsack


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _pieces(a: int, b: int, n: int) -> list:
    """Steps a..b (inclusive) cut into n contiguous pieces of near-equal length: [[start, end], ...]."""
    cuts = np.linspace(a, b + 1, n + 1).round().astype(int)
    return [[int(cuts[i]), int(cuts[i + 1]) - 1] for i in range(n)]


def make_video(key: str, rng: np.random.Generator, render: np.ndarray, n_steps: int, sem_dim: int,
               n_users: int, n_tokens: int, frames_per_step: int, planted_fraction: float,
               background_pool: np.ndarray) -> Video:
    feature_dim = render.shape[1]
    # Shots of 4..16 steps.
    bounds = [0]
    while bounds[-1] < n_steps:
        bounds.append(min(n_steps, bounds[-1] + int(rng.integers(4, 17))))
    shots = np.stack([bounds[:-1], np.array(bounds[1:]) - 1], axis=1)
    n_shots = len(shots)
    n_planted = max(1, int(round(planted_fraction * n_shots)))
    n_distract = max(1, int(round(0.1 * n_shots)))
    kinds = np.array(["topic"] * n_planted + ["distractor"] * n_distract
                     + ["background"] * max(0, n_shots - n_planted - n_distract))[:n_shots]
    kinds = kinds[rng.permutation(n_shots)]

    z = _unit(rng.normal(size=sem_dim))
    backgrounds = background_pool[rng.choice(len(background_pool), size=int(rng.integers(2, 4)), replace=False)]
    bg_of_video = rng.integers(len(backgrounds), size=n_shots)
    features = np.empty((n_steps, feature_dim), np.float32)
    clip_frames = np.empty((n_steps, sem_dim), np.float32)
    planted = np.zeros(n_steps, dtype=bool)
    for s, (a, b) in enumerate(shots):
        n = b - a + 1
        if kinds[s] == "topic":
            sem = _unit(z + 0.6 * _unit(rng.normal(size=sem_dim)))
            planted[a:b + 1] = True
        elif kinds[s] == "background":
            sem = _unit(backgrounds[bg_of_video[s]] + 0.3 * _unit(rng.normal(size=sem_dim)))
        else:
            sem = _unit(rng.normal(size=sem_dim))
        content = _unit(sem @ render + 0.3 * _unit(rng.normal(size=feature_dim)))
        steps = content + 0.15 * rng.normal(size=(n, feature_dim)) / np.sqrt(feature_dim)
        features[a:b + 1] = _unit(steps)
        clip_frames[a:b + 1] = sem + 0.1 * rng.normal(size=(n, sem_dim)) / np.sqrt(sem_dim)
    title_noise = rng.choice([0.3, 1.0])  # some videos have a weak title
    tokens = z + title_noise * rng.normal(size=(n_tokens, sem_dim)) / np.sqrt(sem_dim)
    pooled = _unit(z + title_noise * rng.normal(size=sem_dim) / np.sqrt(sem_dim))

    n_frames = n_steps * frames_per_step
    picks = np.arange(n_steps) * frames_per_step
    step_importance = planted.astype(np.float64)
    user_scores = np.empty((n_users, n_frames), np.float32)
    for u in range(n_users):
        shot_scores = step_importance[shots[:, 0]] * 3.0 + 1.0 + rng.normal(scale=0.8, size=n_shots)
        shot_scores = np.clip(shot_scores, 1.0, 5.0)
        for s, (a, b) in enumerate(shots * frames_per_step):
            user_scores[u, a:b + frames_per_step] = shot_scores[s]
    # The evaluation's shots: as drawn, except where a 15 % summary could hold none of them (then
    # the video could not be scored): there every shot is cut into pieces that fit, with no random
    # draw, so the other videos of the dataset stay as they are.
    fits = max(1, int(0.15 * n_steps))
    if (shots[:, 1] - shots[:, 0] + 1).min() > fits:
        shots = np.array([piece for a, b in shots for piece in
                          _pieces(a, b, -(-(b - a + 1) // fits))])
    change_points = shots * frames_per_step
    change_points[:, 1] += frames_per_step - 1
    lengths = change_points[:, 1] - change_points[:, 0] + 1
    user_summary = np.zeros((n_users, n_frames), np.float32)
    for u in range(n_users):
        for s in knapsack(user_scores[u, change_points[:, 0]], lengths, int(n_frames * 0.15)):
            user_summary[u, change_points[s, 0]:change_points[s, 1] + 1] = 1.0
    gtscore = user_scores[:, picks].mean(axis=0)
    gtscore = (gtscore - gtscore.min()) / max(np.ptp(gtscore), 1e-6)
    return Video(key=key, features=features, picks=picks, n_frames=n_frames,
                 change_points=change_points, n_frame_per_seg=lengths, user_summary=user_summary,
                 gtscore=gtscore.astype(np.float32), name=f"synthetic_{key}",
                 user_scores=user_scores, text_tokens=tokens.astype(np.float32),
                 text_pooled=pooled.astype(np.float32), clip_frames=clip_frames).validate("<synthetic>")


def make_dataset(n_videos: int = 30, min_steps: int = 60, max_steps: int = 200, feature_dim: int = 256,
                 sem_dim: int = 16, n_users: int = 5, n_tokens: int = 6, frames_per_step: int = 15,
                 planted_fraction: float = 0.2, seed: int = 0) -> dict[str, Video]:
    """Returns ``{'video_1': Video, ...}``; the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    render = rng.normal(size=(sem_dim, feature_dim)) / np.sqrt(sem_dim)
    background_pool = _unit(rng.normal(size=(6, sem_dim)))
    lengths = rng.integers(min_steps, max_steps + 1, size=n_videos)
    return {f"video_{i + 1}": make_video(f"video_{i + 1}", rng, render, int(lengths[i]), sem_dim, n_users,
                                         n_tokens, frames_per_step, planted_fraction, background_pool)
            for i in range(n_videos)}


def make_splits(keys, n_splits: int = 5, test_fraction: float = 0.2, seed: int = 0) -> list[dict]:
    """Random train/test splits in the split-file format."""
    rng = np.random.default_rng(seed)
    keys = list(keys)
    n_test = max(1, int(round(len(keys) * test_fraction)))
    out = []
    for _ in range(n_splits):
        perm = rng.permutation(len(keys))
        test = sorted(keys[i] for i in perm[:n_test])
        out.append({"train_keys": sorted(k for k in keys if k not in test), "test_keys": test})
    return out
