"""Every field a step reads, built on the host from the config: the input pipeline.

:class:`Pipeline` turns videos into padded batches (:func:`sgvs_jax.data.batching.make_batch`:
features, masks, semantic tokens, titles) and adds what training reads besides:

  teacher     (B, T)  the ranks of the ``train.teacher`` criterion of each video's features
                      (as the model sees them), zero on padding; computed once per video
  title_bank  (N, Ds) the training videos' titles, cycled to N = all videos, so that its
                      shape never changes between splits (what the video-title term contrasts)

and the data order of every epoch, derived from (seed, split, epoch) alone so that a resumed
run draws what an uninterrupted one draws.  The trainer only places batches and steps.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from sgvs_jax.data.batching import (batch_options, bucket_lengths_for, iterate_batches, normalize, semantic_dim,
                                    title_of)
from sgvs_jax.data.video import Video


class Pipeline:
    """Batches of a run's videos (``config.data``, ``config.train.batch_size`` and
    ``train.teacher``); ``videos`` fixes the buckets (unless ``data.buckets`` does) and the
    title bank's size."""

    def __init__(self, config, videos: dict):
        data = config.data
        self.buckets = tuple(data.buckets) or tuple(bucket_lengths_for(
            [v.length for v in videos.values()], data.min_bucket, data.min_bucket))
        self.batch_size = int(config.train.batch_size)
        self.options = batch_options(data)
        self.teacher = config.train.teacher
        self.bank_size = len(videos)
        self._ranks: dict[str, np.ndarray] = {}

    def banks(self, train_videos: Sequence[Video]) -> dict:
        """``{'title_bank': (N, Ds)}``: the training videos' titles, cycled to N = all videos."""
        idx = np.arange(self.bank_size) % len(train_videos)
        dim = semantic_dim(train_videos[0], self.options["sources"])
        return {"title_bank": np.stack([title_of(v, dim) for v in train_videos])[idx]}

    @staticmethod
    def epoch_order(seed: int, split: int, epoch: int):
        """The numpy Generators of an epoch's data order: which videos go together (from
        (seed, split, epoch)) and the sequence of bucket lengths (from (split, epoch) alone,
        shared by every seed, so that the members of a study step through one shape)."""
        return np.random.default_rng([seed, split, epoch]), np.random.default_rng([split, epoch, 1 << 16])

    def training(self, videos: Sequence[Video], order, banks: dict) -> Iterator[dict]:
        """Shuffled training batches of ``videos`` in host memory (``order``: an
        :meth:`epoch_order` pair), each with the teacher's ranks and ``banks``."""
        rng, bucket_rng = order
        by_key = {v.key: v for v in videos}
        for keys, batch in iterate_batches(videos, self.batch_size, self.buckets, rng, bucket_rng, **self.options):
            if self.teacher:
                batch["teacher"] = self.teacher_targets([by_key.get(k) for k in keys], batch["mask"].shape)
            yield {**batch, **banks}

    def scoring(self, videos: Sequence[Video]) -> Iterator[tuple[list, dict]]:
        """``(keys, batch)`` in a fixed order, for scoring; ``keys`` has None for empty slots."""
        return iterate_batches(videos, self.batch_size, self.buckets, None, **self.options)

    def teacher_targets(self, slots, shape) -> np.ndarray:
        """(B, T) the ``train.teacher`` criterion's ranks of each video of a batch's ``slots``
        (zeros on padding and on empty slots, None), of the features as the model sees them."""
        from sgvs_jax.evaluation.baselines import criterion_ranks
        out = np.zeros(shape, np.float32)
        for i, v in enumerate(slots):
            if v is not None:
                if v.key not in self._ranks:
                    self._ranks[v.key] = criterion_ranks(normalize(v.features, self.options["normalization"]),
                                                         self.teacher)
                out[i, :len(self._ranks[v.key])] = self._ranks[v.key]
        return out
