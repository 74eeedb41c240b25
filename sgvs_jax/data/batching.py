"""Padding to a few bucket lengths, with masks, so jit compiles once per bucket."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from sgvs_jax.data.video import DataError, Video

TOKEN_SOURCES = ("text_tokens", "text_pooled", "video_tokens")
FRAME_SOURCES = ("clip_frames",)
VIDEO_TOKENS = 8  # 'video_tokens': the means of this many equal parts of the video's own features
MAX_TOKENS = 32  # semantic tokens a batch holds per video (a CLIP title has at most 31 after add_clip)


def bucket_lengths_for(lengths: Sequence[int], min_bucket: int = 64, multiple: int = 0) -> list[int]:
    """Powers of two from ``min_bucket`` up to the first that holds the longest
    video; with ``multiple`` > 0 the last of them (not ``min_bucket`` itself) is cut
    to the longest video rounded up to a multiple of ``multiple``.

    The cut keeps the largest bucket, the one that sets a run's memory and its
    slowest update, from padding the longest videos by up to twice their length:
    the SumMe h5's longest video (648 steps) pads to 704 steps instead of 1024,
    TVSum's (1293) to 1344 instead of 2048.
    """
    longest = max(lengths)
    buckets = [min_bucket]
    while buckets[-1] < longest:
        buckets.append(buckets[-1] * 2)
    if multiple > 0 and len(buckets) > 1:
        buckets[-1] = min(buckets[-1], -(-longest // multiple) * multiple)
    return buckets


def bucket_of(length: int, buckets: Sequence[int]) -> int:
    for b in sorted(buckets):
        if length <= b:
            return b
    raise DataError(f"video of {length} steps is longer than the largest bucket {max(buckets)}")


def semantic_dim(video: Video, sources: Sequence[str]) -> int:
    if "video_tokens" in sources:
        return int(video.features.shape[1])
    for s in sources:
        value = getattr(video, s)
        if value is not None:
            return int(value.shape[-1])
    return 1


def video_tokens(features: np.ndarray) -> np.ndarray:
    """(L, D) the means of ``VIDEO_TOKENS`` equal parts of a video's (T, D) features: semantic
    tokens from the video itself, for FSSA where there is no text."""
    return np.stack([part.mean(0) for part in np.array_split(features, min(VIDEO_TOKENS, len(features)))])


def tokens_of(video: Video, sources: Sequence[str], features: np.ndarray | None = None) -> np.ndarray:
    """(L, Ds) semantic tokens of one video from the configured sources (``features``: the
    video's features as the model sees them, for 'video_tokens')."""
    parts = []
    for s in sources:
        if s not in TOKEN_SOURCES + FRAME_SOURCES:
            raise ValueError(f"unknown semantic source {s!r}; choose from {TOKEN_SOURCES + FRAME_SOURCES}")
        if s in FRAME_SOURCES:
            continue
        if s == "video_tokens":
            parts.append(video_tokens(video.features if features is None else features))
            continue
        value = getattr(video, s)
        if value is None:
            raise DataError(f"video '{video.key}' has no key '{s}' but the config asks for it "
                            f"(semantic sources {tuple(sources)})")
        parts.append(np.atleast_2d(value))
    return np.concatenate(parts, 0) if parts else np.zeros((0, 1), np.float32)


NORMALIZATIONS = ("none", "l2", "video")


def batch_options(data_cfg) -> dict:
    """:func:`make_batch`'s options from a ``config.data`` block."""
    return dict(sources=tuple(data_cfg.semantic_sources), max_tokens=MAX_TOKENS,
                normalization=data_cfg.normalization)


def title_of(video: Video, dim: int) -> np.ndarray:
    """(dim,) the video's title in the semantic space: the pooled CLIP text
    embedding, else the mean of its text tokens, else zeros (no title)."""
    for value in (video.text_pooled, None if video.text_tokens is None else np.mean(video.text_tokens, 0)):
        if value is not None and np.shape(value)[-1] == dim:
            return np.asarray(value, np.float32).reshape(dim)
    return np.zeros(dim, np.float32)


def normalize(features: np.ndarray, mode: str) -> np.ndarray:
    """Per-video feature scaling.

    'none' as stored; 'l2' every step to unit norm (drops the step norms, which
    carry much of what distinguishes steps in pooled CNN features); 'video'
    divides by the video's mean step norm (the scale is the same across videos,
    the steps keep their relative norms).
    """
    if mode == "none":
        return features
    norms = np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-6)
    if mode == "l2":
        return features / norms
    if mode == "video":
        return features / norms.mean()
    raise ValueError(f"unknown feature normalisation {mode!r} (use one of {NORMALIZATIONS})")


def make_batch(videos: Sequence[Video | None], bucket: int, batch_size: int,
               sources: Sequence[str] = (), max_tokens: int = MAX_TOKENS, normalization: str = "none") -> dict:
    """Pads ``videos`` (None = an empty slot) to one (batch_size, bucket) batch.

    Returns a dict of numpy arrays:
      features  (B, Tb, D) float32   zero beyond each video's length
      mask      (B, Tb)    bool      True on real steps
      tokens    (B, L, Ds) float32   semantic tokens (L = max_tokens)
      token_mask(B, L)     bool
      frame_sem (B, Tb, Ds) float32  per-step CLIP features (zeros if not configured)
      title     (B, Ds)    float32   the title in the semantic space (:func:`title_of`; zeros
                                     with 'video_tokens': a video's features are no title)
      valid     (B,)       bool      False for empty slots
    """
    real = [v for v in videos if v is not None]
    if not real:
        raise ValueError("a batch needs at least one video")
    if len(videos) > batch_size:
        raise ValueError(f"{len(videos)} videos for a batch of {batch_size}")
    dim = real[0].features.shape[1]
    sdim = semantic_dim(real[0], sources)
    use_frames = any(s in FRAME_SOURCES for s in sources)
    out = {
        "features": np.zeros((batch_size, bucket, dim), np.float32),
        "mask": np.zeros((batch_size, bucket), bool),
        "tokens": np.zeros((batch_size, max_tokens, sdim), np.float32),
        "token_mask": np.zeros((batch_size, max_tokens), bool),
        "frame_sem": np.zeros((batch_size, bucket if use_frames else 1, sdim), np.float32),
        "title": np.zeros((batch_size, sdim), np.float32),
        "valid": np.zeros((batch_size,), bool),
    }
    for i, v in enumerate(videos):
        if v is None:
            continue
        if v.features.shape[1] != dim:
            raise DataError(f"video '{v.key}' key 'features': dimension {v.features.shape[1]} != {dim}")
        T = v.length
        if T > bucket:
            raise DataError(f"video '{v.key}' has {T} steps, more than its bucket {bucket}")
        feats = normalize(v.features, normalization)
        out["features"][i, :T] = feats
        out["mask"][i, :T] = True
        out["valid"][i] = True
        out["title"][i] = 0.0 if "video_tokens" in sources else title_of(v, sdim)
        tok = tokens_of(v, sources, feats)
        if tok.shape[0] > max_tokens:
            raise DataError(f"video '{v.key}': {tok.shape[0]} semantic tokens > max_tokens={max_tokens}")
        if tok.shape[0]:
            if tok.shape[1] != sdim:
                raise DataError(f"video '{v.key}': semantic dimension {tok.shape[1]} != {sdim}")
            out["tokens"][i, :tok.shape[0]] = tok
            out["token_mask"][i, :tok.shape[0]] = True
        if use_frames:
            if v.clip_frames is None:
                raise DataError(f"video '{v.key}' has no key 'clip_frames' but the config asks for it")
            out["frame_sem"][i, :T] = v.clip_frames
    return out


def iterate_batches(videos: Sequence[Video], batch_size: int, buckets: Sequence[int],
                    rng: np.random.Generator | None = None, bucket_rng: np.random.Generator | None = None,
                    **options) -> Iterator[tuple[list, dict]]:
    """Groups videos by bucket and yields ``(keys, batch)``; ``keys`` has None for empty slots.

    With ``rng`` the order is shuffled (within and across buckets); without it the
    order is deterministic (evaluation).  With ``bucket_rng`` too, the sequence of
    bucket lengths is drawn from ``bucket_rng`` alone and ``rng`` decides which of a
    bucket's batches comes next: runs that share ``bucket_rng`` but not ``rng`` (the
    members of a study, :mod:`sgvs_jax.study`) have batches of one shape at every step.
    With one bucket ``bucket_rng`` changes nothing.
    """
    order = list(range(len(videos)))
    if rng is not None:
        rng.shuffle(order)
    groups: dict[int, list] = {}
    for i in order:
        groups.setdefault(bucket_of(videos[i].length, buckets), []).append(videos[i])
    chunks = []
    for bucket, vs in sorted(groups.items()):
        for j in range(0, len(vs), batch_size):
            chunks.append((bucket, vs[j:j + batch_size]))
    if rng is not None:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        if bucket_rng is not None:
            lengths = sorted(c[0] for c in chunks)  # the same for every order of the same videos
            sequence = [lengths[i] for i in bucket_rng.permutation(len(lengths))]
            queues = {b: [c for c in chunks if c[0] == b] for b in set(sequence)}
            chunks = [queues[b].pop(0) for b in sequence]
    for bucket, vs in chunks:
        slots = list(vs) + [None] * (batch_size - len(vs))
        yield [v.key if v is not None else None for v in slots], make_batch(slots, bucket, batch_size,
                                                                             **options)
