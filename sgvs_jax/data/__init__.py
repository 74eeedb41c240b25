"""Datasets: the community h5 format, split files, bucketing, TVSum builder, synthetic data."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from sgvs_jax.data.batching import bucket_lengths_for, iterate_batches, make_batch
from sgvs_jax.data.h5io import read_h5, write_h5
from sgvs_jax.data.splits import check_split_keys, load_splits
from sgvs_jax.data.video import DataError, Video


def load_dataset(cfg, splits=()) -> tuple[dict[str, Video], list[dict], str]:
    """Videos and splits from a ``config.data`` block.

    ``cfg.source``:
      'synthetic'  planted-segment videos (``cfg.synthetic`` kwargs), random splits
      'h5'         a community-format file ``cfg.h5_path`` with ``cfg.split_path``
      'tvsum_i3d'  TVSum built from ``cfg.shared_dir`` (I3D + CLIP text + KTS)
    Videos without any user summary (your own, from ``sgvs_jax.app.extract_features``) have
    nothing to test against: unless ``splits`` (``config.splits``) names some, one split
    trains one model on all of them (the split file is not read), scored on the same
    videos for its score spread; at least 2 videos are needed.
    Returns:
      (videos, splits, description of the source for logs and results).
    """
    if cfg.source == "synthetic":
        from sgvs_jax.data import synthetic
        videos = synthetic.make_dataset(**dict(cfg.synthetic))
        splits = synthetic.make_splits(videos, seed=cfg.synthetic.seed)
        where = f"synthetic(seed={cfg.synthetic.seed})"
        return videos, splits, where
    if cfg.source == "h5":
        videos = read_h5(cfg.h5_path)  # the semantic keys are checked per run (resolve_sources)
        where = cfg.h5_path
    elif cfg.source == "tvsum_i3d":
        from sgvs_jax.data.tvsum import build_tvsum
        if not os.path.isdir(cfg.shared_dir):
            raise DataError(f"{cfg.shared_dir}: shared data folder not found (config data.shared_dir)")
        videos = build_tvsum(cfg.shared_dir)
        where = f"tvsum_i3d({cfg.shared_dir})"
    else:
        raise ValueError(f"unknown data.source {cfg.source!r}")
    if not any(np.any(v.user_summary) for v in videos.values()) and not len(splits):  # own videos
        if len(videos) < 2:
            raise DataError(f"{where}: has {len(videos)} video; training needs at least 2 (extract more videos "
                            "into one h5 with python -m sgvs_jax.app.extract_features)")
        return videos, [{"train_keys": sorted(videos), "test_keys": sorted(videos)}], where
    splits = load_splits(cfg.split_path)
    for i, s in enumerate(splits):
        check_split_keys(s, videos, cfg.split_path, where, i)
    return videos, splits, where


AUTO = "auto"  # data.semantic_sources=('auto',): whatever semantic keys the data has


def resolve_sources(config, videos: dict):
    """``(config, note)`` once every override is applied: explicit ``data.semantic_sources``
    are checked against the data (each video must have each key; 'video_tokens' is made from
    the features), ``(config, None)``; with ``data.semantic_sources=('auto',)`` a copy whose
    sources are the semantic keys every video has (FSSA over the title tokens; over the
    frames' own CLIP features where there is no title, without the video-title term; off
    where there is neither), and a line saying which parts of the method run."""
    if tuple(config.data.semantic_sources) != (AUTO,):
        for source in config.data.semantic_sources:
            missing = [k for k, v in videos.items() if getattr(v, source, True) is None]
            if missing:
                raise DataError(f"video '{missing[0]}' has no key '{source}' ({len(missing)} of {len(videos)} "
                                f"videos lack it), which data.semantic_sources={tuple(config.data.semantic_sources)} "
                                "asks for: set --config.data.semantic_sources=\"('auto',)\" to use what the data has, or add "
                                "it with python -m sgvs_jax.app.add_clip")
        return config, None
    from sgvs_jax.data.batching import TOKEN_SOURCES
    from sgvs_jax.data.h5io import SEMANTIC_KEYS
    found = tuple(k for k in SEMANTIC_KEYS if all(getattr(v, k) is not None for v in videos.values()))
    c = config.copy_and_resolve_references()
    if any(k in TOKEN_SOURCES for k in found):
        c.data.semantic_sources = found
        note = f"data has {', '.join(found)}: the full method (FSSA" + (
            ", the video-title term)" if c.train.semantic_weight else ")")
    elif found:  # CLIP frame features, no title
        c.data.semantic_sources, c.train.semantic_weight = found, 0.0
        note = (f"data has {', '.join(found)} and no title: FSSA over the frames' own CLIP features, the "
                "video-title term off")
    else:
        c.data.semantic_sources, c.model.use_fssa, c.train.semantic_weight = (), False, 0.0
        note = ("data has no CLIP keys (text_tokens / text_pooled / clip_frames): visual only, FSSA and the "
                "video-title term off; add them to a community h5 with python -m sgvs_jax.app.add_clip")
    teacher = c.train.get("teacher", "")
    note += f"; the {teacher} teacher on" if teacher else "; no teacher"
    return c, "semantic sources 'auto': " + note


def fingerprint(videos: dict) -> str:
    """SHA-256 (hex, 16 digits) of every array of every video, in key order: the same
    path with other contents is other data."""
    h = hashlib.sha256()
    for key in sorted(videos):
        h.update(key.encode())
        for name in ("features", "picks", "change_points", "user_summary", "gtscore", "user_scores",
                     "text_tokens", "text_pooled", "clip_frames"):
            value = getattr(videos[key], name)
            if value is not None:
                h.update(name.encode() + np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


__all__ = ["AUTO", "DataError", "fingerprint", "resolve_sources", "Video", "bucket_lengths_for", "check_split_keys",
           "iterate_batches", "load_dataset", "load_splits", "make_batch", "read_h5", "write_h5"]
