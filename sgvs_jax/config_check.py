"""Checks a training config once, before any data is read or any file written.

Every problem is reported at once, each naming its key (``config.train.sigma=1.5:
must lie in (0, 1)``), so that a bad value never gets as far as a hang, a huge
allocation, a checkpoint of an untrained model or NaN metrics.
"""

from __future__ import annotations

import math
import numbers

from sgvs_jax.evaluation.baselines import CRITERIA
from sgvs_jax.errors import ConfigError

MAX_BUCKET = 1 << 15  # steps; an hour at 8 steps per second. Longer needs a deliberate data.buckets.

CHOICES = {
    "data.source": ("synthetic", "h5", "tvsum_i3d"),
    "data.normalization": ("none", "l2", "video"),
    "data.eval_mode": ("avg", "max"),
    "model.decoder_queries": ("positions", "memory"),
    "model.cosine_term": ("relu", "affine"),
    "model.visual_norm": ("layer", "none"),
    "train.schedule": ("incremental", "joint"),
    "train.selection": ("concrete", "soft"),
    "train.recon": ("stepwise", "pooled"),
}
SEMANTIC_SOURCES = ("text_tokens", "text_pooled", "clip_frames", "video_tokens", "auto")


_MISSING = object()


def _get(config, dotted):
    node = config
    for part in dotted.split("."):
        if part not in node:
            return _MISSING
        node = node[part]
    return node


def check_config(config) -> None:
    """Raises ConfigError listing every bad value of ``config`` (a ConfigDict)."""
    problems = []

    def bad(key, value, why):
        problems.append(f"config.{key}={value!r}: {why}")

    def number(key, low=None, high=None, integer=False, low_open=False, high_open=False, optional=False):
        value = _get(config, key)
        if value is _MISSING:
            if not optional:
                problems.append(f"config.{key} is missing")
            return
        kind = numbers.Integral if integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return bad(key, value, f"must be {'an integer' if integer else 'a number'}")
        if not math.isfinite(value):
            return bad(key, value, "must be finite")
        if low is not None and (value <= low if low_open else value < low):
            return bad(key, value, f"must be {'>' if low_open else '>='} {low}")
        if high is not None and (value >= high if high_open else value > high):
            return bad(key, value, f"must be {'<' if high_open else '<='} {high}")

    for key, choices in CHOICES.items():
        value = _get(config, key)
        if value is not _MISSING and value not in choices:
            bad(key, value, f"must be one of {choices}")

    number("seed", integer=True)
    splits = _get(config, "splits")
    if splits is not _MISSING and not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0
                                          for i in splits):
        bad("splits", splits, "must be split indices (integers >= 0); empty = all")

    # data
    sources = tuple(_get(config, "data.semantic_sources") or ())
    unknown = [s for s in sources if s not in SEMANTIC_SOURCES]
    if unknown:
        bad("data.semantic_sources", sources, f"unknown {unknown}; choose from {SEMANTIC_SOURCES}")
    elif "auto" in sources and len(sources) > 1:
        bad("data.semantic_sources", sources, "'auto' (whatever the data has) stands alone")
    number("data.min_bucket", 1, MAX_BUCKET, integer=True)
    buckets = tuple(_get(config, "data.buckets") or ())
    if not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) and 1 <= b <= MAX_BUCKET
               for b in buckets):
        bad("data.buckets", buckets, f"must be integers in [1, {MAX_BUCKET}]; empty = powers of two")
    elif len(set(buckets)) != len(buckets):
        bad("data.buckets", buckets, "lists a length twice")
    source = _get(config, "data.source")
    if source == "h5":
        for key in ("data.h5_path", "data.split_path"):
            if not _get(config, key):
                bad(key, _get(config, key), "is empty; data.source='h5' needs a file")
    if source == "tvsum_i3d" and not _get(config, "data.split_path"):
        bad("data.split_path", "", "is empty; data.source='tvsum_i3d' needs a split file")
    if source == "synthetic":
        number("data.synthetic.n_videos", 2, integer=True)
        number("data.synthetic.min_steps", 8, integer=True)
        number("data.synthetic.max_steps", 8, MAX_BUCKET, integer=True)
        number("data.synthetic.feature_dim", 1, integer=True)
        lo, hi = _get(config, "data.synthetic.min_steps"), _get(config, "data.synthetic.max_steps")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            bad("data.synthetic.min_steps", lo, f"is above data.synthetic.max_steps={hi}")

    # model
    for key in ("model.d_model", "model.num_heads", "model.mlp_dim"):
        number(key, 1, integer=True)
    d, h = _get(config, "model.d_model"), _get(config, "model.num_heads")
    if isinstance(d, int) and isinstance(h, int) and h > 0 and d % h:
        bad("model.num_heads", h, f"must divide model.d_model={d}")
    number("model.dropout", 0, 1, high_open=True)
    number("model.attention_block", 0, MAX_BUCKET, integer=True)
    number("model.num_layers", 1, integer=True)

    # train
    number("train.num_epochs", 1, integer=True)
    number("train.batch_size", 1, 4096, integer=True)
    number("train.warmup_epochs", 0, integer=True)
    number("train.sigma", 0, 1, low_open=True, high_open=True)
    if "video_tokens" in sources and len(sources) > 1:
        bad("data.semantic_sources", sources, "'video_tokens' (the video's own features) cannot be mixed with "
            "CLIP sources (another space)")
    elif sources and sources != ("auto",) and not {"text_tokens", "text_pooled"} & set(sources) \
            and (_get(config, "train.semantic_weight") or 0) > 0:
        bad("data.semantic_sources", sources, f"holds no title, which train.semantic_weight="
            f"{_get(config, 'train.semantic_weight')} (the video-title term) needs: set it to 0")
    teacher = _get(config, "train.teacher")
    if teacher is not _MISSING and teacher and teacher not in CRITERIA:
        bad("train.teacher", teacher, f"use '' (off) or a training-free criterion: {', '.join(CRITERIA)}")
    for key in ("sparsity_weight", "feature_recon_weight", "semantic_weight", "teacher_weight"):
        number(f"train.{key}", 0)

    # optim, eval, checkpoint
    for stage in ("stage1", "stage2", "stage3"):
        number(f"optim.lr.{stage}", 0, low_open=True)
    number("optim.weight_decay", 0)
    number("eval.budget", 0, 1, low_open=True)
    number("eval.random_draws", 1, integer=True)
    number("checkpoint.keep", 1, integer=True)
    number("checkpoint.every", 1, integer=True)

    if problems:
        raise ConfigError("bad config: " + "; ".join(problems))


def check_buckets(buckets, longest: int, key: str = "?") -> None:
    """The bucket lengths against the data: every video fits (else the longest, ``key``, is
    named with the bucket to add), and no bucket pads the longest video to more than twice
    its length plus the smallest useful bucket (a mistyped min_bucket would otherwise
    allocate gigabytes in silence)."""
    buckets = sorted(buckets)
    if buckets[-1] < longest:
        add = -(-longest // 16) * 16
        raise ConfigError(f"video '{key}' has {longest} steps, more than the largest bucket of config.data.buckets="
                          f"{tuple(buckets)}: add a bucket of at least {longest} (--config.data.buckets="
                          f"\"{tuple(buckets + [add])}\") or set --config.data.buckets=\"()\" to follow the data")
    limit = max(2 * longest, 64)
    if buckets[0] > limit:
        raise ConfigError(f"config.data.min_bucket / buckets: the smallest bucket is {buckets[0]} steps but the "
                          f"longest video has {longest}; every video would be padded to over {limit} steps")
