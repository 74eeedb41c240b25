"""Builds a community-format h5 from the real TVSum data in ``shared/data``.

Inputs (see ``shared/data/README.md``): UMT's I3D rgb + flow features (one row per
2-s clip), the CLIP text features of each title, the original per-frame
annotations of 20 users (``ydata-anno.tsv.gz``) and the derived h5 key map.

Output per ``video_i`` (the community TVSum key order):
  features (n_clips, 2048)  I3D rgb ++ flow
  picks                     frame at each clip centre
  n_frames                  from the annotations
  change_points             KTS (fixed mean shot length) over the clip features, in frames
  user_summary (20, N)      per annotator: 15 % knapsack over those shots of the
                            annotator's mean per-shot score (how the community h5
                            made TVSum user summaries)
  gtscore                   mean annotator score at the picks, scaled to [0, 1]
  user_scores (20, N)       the raw 1..5 annotations (for rank correlation)
  text_tokens, text_pooled  CLIP text features of the title
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np

from sgvs_jax.data.kts import segment_features
from sgvs_jax.data.video import DataError, Video
from sgvs_jax.evaluation.knapsack import knapsack

CLIP_SECONDS = 2.0


def read_annotations(path: str) -> dict[str, np.ndarray]:
    """youtube_id -> (20, n_frames) float32 scores, from ydata-anno.tsv(.gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    rows: dict[str, list] = {}
    with opener(path, "rt") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise DataError(f"{path}: line {line_no}: expected 3 tab-separated columns")
            rows.setdefault(parts[0], []).append(np.array(parts[2].split(","), dtype=np.float32))
    out = {}
    for vid, users in rows.items():
        if len({len(u) for u in users}) != 1:
            raise DataError(f"{path}: video '{vid}': annotators disagree on the number of frames")
        out[vid] = np.stack(users)
    return out


def shots_to_frames(step_shots: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Maps inclusive clip-index shots to inclusive frame ranges covering 0..n_frames-1."""
    starts = np.array([int(round(s * CLIP_SECONDS * fps)) for s in step_shots[:, 0]])
    starts = np.unique(np.clip(starts, 0, n_frames - 1))
    ends = np.concatenate([starts[1:] - 1, [n_frames - 1]])
    return np.stack([starts, ends], axis=1)


def user_summaries(user_scores: np.ndarray, change_points: np.ndarray, budget: float = 0.15) -> np.ndarray:
    lengths = change_points[:, 1] - change_points[:, 0] + 1
    n_frames = user_scores.shape[1]
    out = np.zeros_like(user_scores, dtype=np.float32)
    for u, scores in enumerate(user_scores):
        values = [scores[a:b + 1].mean() for a, b in change_points]
        for s in knapsack(values, lengths, int(n_frames * budget)):
            out[u, change_points[s, 0]:change_points[s, 1] + 1] = 1.0
    return out


def build_video(key: str, info: dict, data_dir: str, annotations: dict,
                mean_shot_steps: float = 2.0) -> Video:
    vid = info["youtube_id"]
    feat_dir = os.path.join(data_dir, "tvsum", "umt_features", "video_features")
    paths = [os.path.join(feat_dir, f"{vid}_{m}.npy") for m in ("rgb", "opt")]
    for p in paths:
        if not os.path.exists(p):
            raise DataError(f"{p}: feature file for {key} ({vid}) not found")
    rgb, opt = (np.load(p).astype(np.float32) for p in paths)
    if rgb.shape != opt.shape:
        raise DataError(f"{paths[1]}: shape {opt.shape} differs from rgb {rgb.shape}")
    features = np.concatenate([rgb, opt], axis=1)
    if vid not in annotations:
        raise DataError(f"ydata-anno: no annotations for {key} ({vid})")
    user_scores = annotations[vid]
    n_frames = user_scores.shape[1]
    fps = float(info["fps"])
    n_clips = features.shape[0]
    picks = np.minimum(((np.arange(n_clips) + 0.5) * CLIP_SECONDS * fps).astype(np.int64), n_frames - 1)
    change_points = shots_to_frames(segment_features(features, mean_shot_steps=mean_shot_steps), fps, n_frames)
    gt = user_scores[:, picks].mean(axis=0)
    gtscore = (gt - gt.min()) / max(float(np.ptp(gt)), 1e-6)
    q = np.load(os.path.join(data_dir, "tvsum", "umt_features", "query_features", f"{vid}.npz"))
    return Video(key=key, features=features, picks=picks, n_frames=n_frames,
                 change_points=change_points,
                 n_frame_per_seg=change_points[:, 1] - change_points[:, 0] + 1,
                 user_summary=user_summaries(user_scores, change_points),
                 gtscore=gtscore.astype(np.float32), name=vid, user_scores=user_scores,
                 text_tokens=q["token"].astype(np.float32),
                 text_pooled=q["text"].astype(np.float32).reshape(-1)).validate(f"tvsum:{key}")


def build_tvsum(data_dir: str, mean_shot_steps: float = 2.0) -> dict[str, Video]:
    """All 50 TVSum videos keyed ``video_1..video_50`` in the community order.

    ``mean_shot_steps``: KTS shots average this many 2-s clips (default 4-s shots,
    about the length of the community TVSum KTS shots).
    """
    key_map_path = os.path.join(data_dir, "derived", "h5_key_map.json")
    if not os.path.exists(key_map_path):
        raise DataError(f"{key_map_path}: not found (is shared/data present?)")
    with open(key_map_path) as f:
        key_map = json.load(f)["tvsum"]
    annotations = read_annotations(os.path.join(data_dir, "tvsum", "annotations", "ydata-anno.tsv.gz"))
    keys = sorted(key_map, key=lambda k: int(k.split("_")[1]))
    return {k: build_video(k, key_map[k], data_dir, annotations, mean_shot_steps) for k in keys}


BUILT_BY = "sgvs_jax_tvsum_build"  # root attribute of an h5 this command wrote (a rerun may replace it)


def main(argv=None) -> None:
    """``python -m sgvs_jax.data.tvsum --out tvsum_i3d.h5 [--shared_dir ../shared/data]``: the
    build written as a community-format h5 (``configs/tvsum_h5.py`` reads it like the published
    file; with ``--config.data.buckets='(96, 192, 336)'`` it trains exactly as ``tvsum_i3d``)."""
    from sgvs_jax import cli
    from sgvs_jax.data.h5io import write_h5, written_by
    from sgvs_jax.files import files_in

    p = cli.ArgumentParser(prog="python -m sgvs_jax.data.tvsum", description=main.__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="the h5 to write")
    p.add_argument("--shared_dir", default="../shared/data", help="the shared data folder")
    args = p.parse_args(argv)

    def work():
        cli.guard({"--out": args.out}, files_in(args.shared_dir), args.overwrite, {"--out": written_by(BUILT_BY)},
                  {"--out": "hdf5"})
        videos = build_tvsum(args.shared_dir)
        write_h5(args.out, videos, attrs={BUILT_BY: {"shared_dir": os.path.abspath(args.shared_dir)}})
        return len(videos)

    print(f"wrote {args.out}: {cli.run(work, args.debug)} TVSum videos")


if __name__ == "__main__":
    main()
