"""A community-format record (:class:`Video`) from a video file: frames sampled with
PyAV, CLIP image features, CLIP text features of a title, KTS shots.

What goes where, as in the community h5 files:

  features, clip_frames  (T, D)  CLIP image features of the T sampled frames
  picks                  (T,)    decode-order frame index of each sample
  change_points          (S, 2)  KTS shots over the samples, mapped to frames
                                 (inclusive, covering 0 .. n_frames-1)
  text_tokens, text_pooled       CLIP text features of the title
  user_summary, gtscore          zeros: a video of one's own has no annotations
"""

from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np

from sgvs_jax.data.kts import segment_features
from sgvs_jax.data.video import Video
from sgvs_jax.app.video_io import SampledVideo, VideoError, sample_and_encode

# Root attribute of an extracted h5 recording how its features were made, and
# the settings used where it is absent.
EXTRACTION_ATTR = "sgvs_jax_extraction"
# KTS with a fixed mean shot length (4 s) by default: the boundaries still move to
# content changes, but no shot grows longer than the summary budget, which the
# automatic count (cpd_auto, tuned for GoogLeNet features) does on CLIP features.
DEFAULTS = {"sample_fps": 2.0, "kts_mean_shot_seconds": 4.0, "kts_vmax": 1.0, "max_text_tokens": 31,
            "shot_budget": 0.15}


def title_from_filename(path: str) -> str:
    """``my_trip-to.Paris.mp4`` -> ``my trip to Paris``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[_\-.\s]+", " ", stem).strip() or stem


def shots_to_frames(step_shots: np.ndarray, picks: np.ndarray, n_frames: int) -> np.ndarray:
    """(S, 2) inclusive step ranges -> (S, 2) inclusive frame ranges covering the video.

    Shot ``[a, b]`` of steps covers frames ``[picks[a], picks[b + 1] - 1]``; the
    first starts at frame 0 and the last ends at ``n_frames - 1``.
    """
    starts = picks[step_shots[:, 0]].copy()
    starts[0] = 0
    ends = np.append(starts[1:] - 1, n_frames - 1)
    return np.stack([starts, ends], axis=1).astype(np.int64)


def fit_shots(change_points: np.ndarray, budget: float) -> np.ndarray:
    """(S, 2) frame shots, each one longer than ``budget`` of the video cut into the fewest equal
    pieces that fit it: KTS's shots of a short video can all be longer than its 15 %, and a
    summary at that budget would then be empty (or the video left out of F1)."""
    cp = np.asarray(change_points, np.int64)
    capacity = max(int((cp[-1, 1] + 1) * budget), 1)
    out = []
    for start, end in cp:
        n = end - start + 1
        edges = start + np.round(np.linspace(0, n, -(-n // capacity) + 1)).astype(np.int64)
        out += [[a, b - 1] for a, b in zip(edges[:-1], edges[1:])]
    return np.array(out, np.int64)


def video_from_file(path: str, encoder, key: str = "video_1", sample_fps: float = 2.0,
                    title: Optional[str] = None, max_text_tokens: int = 31,
                    kts_mean_shot_seconds: Optional[float] = DEFAULTS["kts_mean_shot_seconds"],
                    kts_vmax: float = 1.0,
                    shot_budget: Optional[float] = DEFAULTS["shot_budget"]) -> tuple[Video, SampledVideo]:
    """Builds the record of one video file.

    Args:
      path: the video.
      encoder: a :class:`sgvs_jax.app.clip.ClipEncoder`.
      key: the h5 group name.
      sample_fps: frames per second kept (2 as in the benchmarks).
      title: text for the semantic tokens (default: from the file name).
      max_text_tokens: keep at most this many title tokens.
      kts_mean_shot_seconds: fix the mean shot length (KTS optimises the positions);
        None or <= 0: KTS chooses the number of shots (``cpd_auto``, ``vmax=kts_vmax``).
      shot_budget: cut shots longer than this share of the video (:func:`fit_shots`);
        None or <= 0: KTS's shots as they are.
    Returns:
      (Video, SampledVideo without its frames).
    """
    sampled, features = sample_and_encode(path, encoder.encode_images, sample_fps, encoder.image_size,
                                          encoder.batch_size)  # decoding and CLIP overlap
    steps = None
    if kts_mean_shot_seconds is not None and kts_mean_shot_seconds > 0:
        steps = kts_mean_shot_seconds * (sample_fps if sample_fps > 0 else sampled.fps)
    step_shots = segment_features(features, vmax=kts_vmax, mean_shot_steps=steps)
    change_points = shots_to_frames(step_shots, sampled.picks, sampled.n_frames)
    if shot_budget is not None and shot_budget > 0:
        change_points = fit_shots(change_points, shot_budget)
    title = title if title is not None else title_from_filename(path)
    tokens, pooled = encoder.encode_text(title, max_tokens=max_text_tokens)
    video = Video(
        key=key,
        features=features,
        picks=sampled.picks,
        n_frames=sampled.n_frames,
        change_points=change_points,
        n_frame_per_seg=change_points[:, 1] - change_points[:, 0] + 1,
        user_summary=np.zeros((1, sampled.n_frames), np.float32),
        gtscore=np.zeros(len(features), np.float32),
        name=os.path.basename(path),
        text_tokens=tokens,
        text_pooled=pooled,
        clip_frames=features,
    )
    try:
        return video.validate(path), sampled
    except ValueError as e:  # pragma: no cover - a bug here, not bad input
        raise VideoError(f"{path}: built an invalid record: {e}") from e
