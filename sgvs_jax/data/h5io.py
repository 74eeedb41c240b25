"""Reads and writes the community h5 format (eccv16_dataset_*_google_pool5.h5).

Layout, one group per video (``video_1`` ...), exactly as published::

    features         (T, D) float32   GoogLeNet pool5 (or any) step features
    gtscore          (T,)             mean importance at the picks
    user_summary     (U, n_frames)    0/1 user selections
    change_points    (S, 2)           KTS shots [start, end], inclusive
    n_frame_per_seg  (S,)
    n_frames         ()
    picks            (T,)             frame index of each step
    video_name       ()  bytes        optional (SumMe files carry it)

sgvs_jax adds optional keys in the same group, ignored by other readers:
``user_scores`` (U, n_frames) annotator importance, ``text_tokens`` (L, Ds),
``text_pooled`` (Ds,), ``clip_frames`` (T, Ds) semantic (CLIP) features.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Optional, Sequence

import h5py
import numpy as np

from sgvs_jax.data.video import DataError, Video
from sgvs_jax.files import atomic_path

REQUIRED_KEYS = ("features", "gtscore", "user_summary", "change_points", "n_frame_per_seg",
                 "n_frames", "picks")
SEMANTIC_KEYS = ("text_tokens", "text_pooled", "clip_frames")


def decode_text(value) -> str:
    """An h5 string value (bytes, a numpy scalar or a 1-element array) as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return decode_text(value.item() if value.shape == () else value.tolist()[0])
    return str(value)


def _read_group(path: str, key: str, group: h5py.Group, require: Sequence[str]) -> Video:
    for name in REQUIRED_KEYS + tuple(require):
        if name not in group:
            raise DataError(f"{path}: video '{key}' has no key '{name}' (has: {sorted(group.keys())})")

    def get(name, dtype=None):
        try:
            value = group[name][()]
        except Exception as e:  # unreadable dataset (truncated file, bad filter), or a group
            raise DataError(f"{path}: video '{key}' key '{name}' could not be read: {e}") from e
        if dtype is None:
            return value
        raw = np.asarray(value)
        if not (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool):
            raise DataError(f"{path}: video '{key}' key '{name}' is not numeric (dtype {raw.dtype})")
        return raw.astype(dtype)

    def scalar(name):
        value = get(name, np.int64).reshape(-1)
        if value.size != 1:
            raise DataError(f"{path}: video '{key}' key '{name}' must be one number, got {value.size} values")
        return int(value[0])

    optional = {n: get(n, np.float32) if n in group else None for n in SEMANTIC_KEYS}
    video = Video(
        key=key,
        features=get("features", np.float32),
        picks=get("picks", np.int64),
        n_frames=scalar("n_frames"),
        change_points=get("change_points", np.int64),
        n_frame_per_seg=get("n_frame_per_seg", np.int64).reshape(-1),
        user_summary=get("user_summary", np.float32),
        gtscore=get("gtscore", np.float32).reshape(-1),
        name=decode_text(get("video_name")) if "video_name" in group else None,
        user_scores=get("user_scores", np.float32) if "user_scores" in group else None,
        **optional,
    )
    return video.validate(path)


def open_h5(path: str) -> h5py.File:
    """``path`` open for reading; a missing or unreadable file is a DataError naming it."""
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable h5 file ({e})") from e


def read_h5(path: str, keys: Optional[Iterable[str]] = None,
            require: Sequence[str] = ()) -> dict[str, Video]:
    """Reads videos from a community-format h5 file.

    Args:
      path: the h5 file.
      keys: videos to read (default: all groups).  A key absent from the file is
        an error naming the file and the key.
      require: extra keys every video must have (e.g. ``('text_tokens',)``).
    Returns:
      dict key -> validated :class:`Video`, in the order of ``keys`` (or file order).
    """
    with open_h5(path) as f:
        available = list(f.keys())
        wanted = list(keys) if keys is not None else available
        missing = [k for k in wanted if k not in f]
        if missing:
            raise DataError(f"{path}: video keys {missing} not in file (it has {len(available)} videos, "
                            f"e.g. {available[:3]})")
        if not wanted:
            raise DataError(f"{path}: no videos in file")
        videos = {}
        for k in wanted:
            if not isinstance(f[k], h5py.Group):
                raise DataError(f"{path}: '{k}' is not a video group (a dataset at the file's root)")
            videos[k] = _read_group(path, k, f[k], require)
    check_consistent(videos, path)
    return videos


def check_consistent(videos: Mapping[str, Video], source: str) -> None:
    """All videos of one dataset share the feature size and the semantic size."""
    for name in ("features",) + SEMANTIC_KEYS:
        sizes = {}
        for k, v in videos.items():
            value = getattr(v, name)
            if value is not None:
                sizes.setdefault(int(value.shape[-1]), k)
        if len(sizes) > 1:
            (d0, k0), (d1, k1) = list(sizes.items())[:2]
            raise DataError(f"{source}: key '{name}' has size {d0} in video '{k0}' but {d1} in video '{k1}': "
                            "one dataset needs one feature size")


def read_h5_attrs(path: str) -> dict:
    """The root attributes written by :func:`write_h5` (JSON decoded); {} for community files."""
    try:
        with open_h5(path) as f:
            raw = {k: decode_text(v) for k, v in f.attrs.items()}
    except OSError as e:  # attributes that cannot be read
        raise DataError(f"{path}: not a readable h5 file ({e})") from e
    out = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def written_by(attr: str):
    """``path -> bool``: whether the file at ``path`` is an h5 whose root attributes hold
    ``attr`` (how a command marks the files it wrote, so that a rerun may replace them)."""
    def ours(path: str) -> bool:
        try:
            return attr in read_h5_attrs(path)
        except (ValueError, OSError):
            return False
    return ours


def write_h5(path: str, videos: Mapping[str, Video], attrs: Optional[Mapping[str, object]] = None) -> None:
    """Writes videos in the community layout (plus the optional sgvs_jax keys).

    ``attrs`` are stored as JSON strings in the file's root attributes (e.g. how
    the features were extracted; see :func:`read_h5_attrs`).

    The file is written to a temporary name and renamed, so a crash never leaves
    a half-written file under ``path``.
    """
    with atomic_path(path, make_dirs=True) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, value in (attrs or {}).items():
                f.attrs[name] = json.dumps(value)
            for key, v in videos.items():
                v.validate(path)
                g = f.create_group(key)
                g["features"] = v.features.astype(np.float32)
                g["gtscore"] = v.gtscore.astype(np.float32)
                g["user_summary"] = v.user_summary.astype(np.float32)
                g["change_points"] = v.change_points.astype(np.int32)
                g["n_frame_per_seg"] = v.n_frame_per_seg.astype(np.int32)
                g["n_frames"] = np.int32(v.n_frames)
                g["picks"] = v.picks.astype(np.int32)
                g["n_steps"] = np.int32(v.length)
                if v.name is not None:
                    g["video_name"] = np.bytes_(v.name.encode("utf-8"))
                for name in ("user_scores",) + SEMANTIC_KEYS:
                    value = getattr(v, name)
                    if value is not None:
                        g[name] = value.astype(np.float32)
