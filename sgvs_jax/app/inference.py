"""A trained run as a scorer: config from ``results.json``, parameters from the
orbax checkpoint of one split, the selector's scores for any video record."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np

from sgvs_jax import compilation
from sgvs_jax.checkpointing import Checkpointer, CheckpointError
from sgvs_jax.data.batching import batch_options, bucket_lengths_for, bucket_of, make_batch
from sgvs_jax.data.video import Video
from sgvs_jax.models import build_model
from sgvs_jax.train_steps import make_predict
from sgvs_jax.workdir import with_added_keys


def read_run_config(run_dir: str) -> tuple[ml_collections.ConfigDict, dict]:
    """(config, results) of a run folder written by ``sgvs_jax.main``; keys added to the
    config since the run was made hold the values it trained with (``ADDED_KEYS``)."""
    path = os.path.join(run_dir, "results.json")
    if not os.path.isdir(run_dir):
        raise CheckpointError(f"{run_dir}: run folder not found")
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: not found; is {run_dir} a --workdir of sgvs_jax.main "
                              "with at least one finished split?")
    try:
        with open(path) as f:
            results = json.load(f)
        config = ml_collections.ConfigDict(with_added_keys(results["provenance"]["config"]))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: unreadable or has no provenance.config ({e})") from e
    return config, results


class Scorer:
    """Scores videos with the selector of one split's latest checkpoint, or with the
    mean of every finished split's (``split='all'``).

    Attributes:
      config: the run's config.
      split, epoch, checkpoint: which checkpoint was loaded (its split, epoch and folder;
        with ``split='all'``: 'all' and one epoch and folder per split, in ``splits`` order).
      feature_dim: visual feature size the model expects.
    """

    def __init__(self, run_dir: str, feature_dim: int, semantic_dim: int, split=None):
        self.config, results = read_run_config(run_dir)
        done = sorted(int(k) for k in results.get("splits", {}))
        if not done and split in (None, "all"):
            raise CheckpointError(f"{run_dir}/results.json lists no finished split")
        if split not in (None, "all") and int(split) not in done:
            raise CheckpointError(f"{run_dir}: split {split} is unfinished (results.json lists finished splits "
                                  f"{done}); finish it by rerunning its training command, or choose a finished "
                                  "split")
        self.splits = done if split == "all" else [done[0] if split is None else int(split)]
        self.feature_dim = feature_dim
        self.model = build_model(self.config)
        self.batch_options = batch_options(self.config.data)
        self.min_bucket = int(self.config.data.min_bucket)
        probe = self._batch(_probe_video(feature_dim, semantic_dim), 8)
        target = jax.eval_shape(lambda: self.model.init(jax.random.PRNGKey(0), probe))
        # a run's checkpoint holds its one member on a leading members axis (sgvs_jax.train)
        target = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct((1,) + x.shape, x.dtype), target)
        self.params, epochs, folders = [], [], []
        for s in self.splits:
            directory = os.path.join(run_dir, f"split_{s}", "checkpoints")
            if not os.path.isdir(directory):
                raise CheckpointError(f"{directory}: no checkpoints for split {s} (finished splits: {done})")
            ckpt = Checkpointer(directory, keep=int(self.config.checkpoint.keep))
            try:
                step = ckpt.latest_step()
                if step is None:
                    raise CheckpointError(f"{directory}: holds no complete checkpoint")
                try:
                    self.params.append(jax.tree_util.tree_map(lambda x: x[0], ckpt.restore_params(step, target)))
                except CheckpointError as e:
                    raise CheckpointError(
                        f"{e}. This run was trained on '{results.get('data')}'; the video's features have "
                        f"dimension {feature_dim} (semantic {semantic_dim}): score with the feature "
                        "extractor the run was trained on (see sgvs_jax.app.extract_features)") from e
            finally:
                ckpt.close()
            history = results["splits"][str(s)].get("history") or [{}]
            reported = history[-1].get("epoch", step)
            if step != reported:  # results.json is written after its checkpoint is committed
                raise CheckpointError(f"{directory}: results.json reports epoch {reported} of split {s}, but the "
                                      f"latest complete checkpoint is epoch {step} (the run stopped while saving, "
                                      "or was continued); rerun its training command to finish it")
            epochs.append(int(step))
            folders.append(directory)
        if split == "all":
            self.split, self.epoch, self.checkpoint = "all", epochs, folders
        else:
            self.split, self.epoch, self.checkpoint = self.splits[0], epochs[0], folders[0]
        self._predict = compilation.jit(make_predict(self.model))

    def _batch(self, video: Video, bucket: int) -> dict:
        return make_batch([video], bucket, 1, **self.batch_options)

    def scores(self, video: Video) -> np.ndarray:
        """(T,) importance in [0, 1] of the video's steps (padded to a power-of-two bucket); with
        several splits' models, the mean of their scores."""
        buckets = bucket_lengths_for([video.length], self.min_bucket)  # powers of two: few programs
        batch = self._batch(video, bucket_of(video.length, buckets))
        out = np.mean([np.asarray(self._predict(p, batch))[0, :video.length] for p in self.params], axis=0)
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"{self.checkpoint}: scores of '{video.key}' are not finite")
        return out.astype(np.float64)


def _probe_video(feature_dim: int, semantic_dim: int) -> Video:
    """A minimal record with the right shapes, to build the checkpoint's target tree."""
    return Video(key="probe", features=np.zeros((2, feature_dim), np.float32), picks=np.array([0, 1]),
                 n_frames=2, change_points=np.array([[0, 1]]), n_frame_per_seg=np.array([2]),
                 user_summary=np.zeros((1, 2), np.float32), gtscore=np.zeros(2, np.float32),
                 text_tokens=np.zeros((1, semantic_dim), np.float32),
                 text_pooled=np.zeros((semantic_dim,), np.float32),
                 clip_frames=np.zeros((2, semantic_dim), np.float32))
