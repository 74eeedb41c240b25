"""Training and evaluation over the splits: the library behind ``sgvs_jax.main``.

``train_and_evaluate`` checks the config, loads the data, builds one
:class:`Trainer` (model, stages, the jitted update and scorer, shared by every
split so that each program compiles once per bucket length) and runs
:func:`train_split` for each split: the untrained model is evaluated (epoch 0),
every epoch trains and evaluates, checkpoints are saved and resumed, and the
split's random and training-free reference rows are computed beside training.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sgvs_jax import compilation, report
from sgvs_jax.checkpointing import Checkpointer
from sgvs_jax.config_check import check_buckets, check_config
from sgvs_jax.data import (bucket_lengths_for, fingerprint, iterate_batches, load_dataset, make_batch,
                           resolve_sources)
from sgvs_jax.data.batching import batch_options, bucket_of, normalize, semantic_dim, title_of
from sgvs_jax.evaluation import evaluate_videos, random_baseline, training_free_baselines
from sgvs_jax.evaluation.baselines import criterion_ranks
from sgvs_jax.evaluation.protocol import scorable
from sgvs_jax.files import write_json
from sgvs_jax.metrics_writer import MetricWriter
from sgvs_jax.models import build_model, count_params
from sgvs_jax.provenance import provenance
from sgvs_jax.train_steps import SHARED_KEYS, active_stages, init_state, make_predict, make_stages, make_train_step
from sgvs_jax.workdir import Workdir, WorkdirError, training_config


class Sharder:
    """Puts batches (split over the 'data' axis; SHARED_KEYS, which have no batch axis,
    replicated) and the state (replicated) on the devices."""

    def __init__(self, batch_size: int):
        devices = np.array(jax.devices())
        if batch_size % devices.size:
            raise ValueError(f"train.batch_size={batch_size} must be a multiple of the {devices.size} devices")
        self.mesh = Mesh(devices, ("data",))
        self.data = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        self._own = jax.jit(lambda s: jax.tree_util.tree_map(jnp.copy, s), out_shardings=self.replicated)

    @staticmethod
    def _put(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    def batch(self, batch: dict) -> dict:
        return {k: self._put(v, self.replicated if k in SHARED_KEYS else self.data) for k, v in batch.items()}

    def state(self, state):
        """The state replicated, in buffers the runtime owns (placed, then copied by a
        jitted program), so that the update, which donates the state, reuses them from
        its first call: the CPU runtime cannot reuse a buffer placed from host memory."""
        placed = jax.tree_util.tree_map(lambda x: self._put(jax.device_get(x), self.replicated), state)
        return self._own(placed)


BANK_FRAMES = 16  # frames per training video in the video-identity term's bank


class Trainer:
    """What all splits share: model, stages, the jitted update and scorer, buckets."""

    def __init__(self, config, videos: dict):
        self.config = config
        tcfg = config.train
        self.buckets = tuple(config.data.buckets) or tuple(bucket_lengths_for(
            [v.length for v in videos.values()], config.data.min_bucket, config.data.min_bucket))
        self.model = build_model(config, next(iter(videos.values())).features.shape[1])
        self.stages = make_stages(config)
        self.sharder = Sharder(tcfg.batch_size)
        self.step = compilation.jit(make_train_step(self.model, self.stages, tcfg), static_argnames="active",
                                    donate_argnums=0)
        self.predict = compilation.jit(make_predict(self.model, outputs=("scores", "h", "cos", "alpha")))
        self.batch_options = batch_options(config.data)
        self.bank_size = len(videos)
        self._teacher_ranks = {}  # video key -> (T,) ranks of train.teacher
        self._init = compilation.jit(lambda r, b: init_state(self.model, self.stages, r, b, tcfg.sigma))

    def banks(self, train_videos) -> dict:
        """What the contrast terms contrast with, cycled to one size for every split (N = all
        videos) so that their shapes never recompile: ``title_bank`` (N, Ds) the training
        videos' titles, and with the video-identity term ``video_bank`` (N * K, D): K evenly
        spaced frames of each (features as the model sees them), owned by ``video_owner``
        (N * K,), the video's index in ``train_videos``."""
        idx = np.arange(self.bank_size) % len(train_videos)
        dim = semantic_dim(train_videos[0], self.batch_options["sources"])
        out = {"title_bank": np.stack([title_of(v, dim) for v in train_videos])[idx]}
        if self.config.train.video_weight:
            norm, k = self.batch_options["normalization"], BANK_FRAMES
            frames = [normalize(train_videos[i].features, norm)[np.linspace(0, train_videos[i].length - 1, k)
                                                                .round().astype(int)] for i in idx]
            out["video_bank"] = np.concatenate(frames).astype(np.float32)
            out["video_owner"] = np.repeat(idx, k).astype(np.int32)
        return out

    def check_fits(self, videos: dict, rows: int) -> None:
        """Before anything compiles: every video fits a bucket, and an update of ``rows``
        videos per device at the longest one fits the device's memory."""
        longest = max(videos.values(), key=lambda v: v.length)
        check_buckets(self.buckets, longest.length)
        compilation.check_update_memory((longest.key, longest.length), bucket_of(longest.length, self.buckets),
                                        rows, self.config.model.num_heads, self.config.model.attention_block)

    def init_state(self, rng, video):
        """A fresh train state.  The parameters' shapes do not depend on the video's
        length, so ``video`` is cut to the smallest bucket: one init program per run."""
        n = min(video.length, min(self.buckets))
        short = dataclasses.replace(video, features=video.features[:n], clip_frames=None if video.clip_frames
                                    is None else video.clip_frames[:n])
        return self._init(rng, make_batch([short], min(self.buckets), 1, **self.batch_options))

    def predict_outputs(self, params, videos) -> dict:
        """key -> selector outputs of each video, unpadded: ``scores`` (T,), ``h``
        (T,), and with FSSA ``cos`` (T,) and ``alpha`` ()."""
        out = {}
        for keys, batch in iterate_batches(videos, self.config.train.batch_size, self.buckets, None,
                                           **self.batch_options):
            o = jax.device_get(self.predict(params, self.sharder.batch(batch)))
            for i, k in enumerate(keys):
                if k is not None:
                    n = batch["mask"][i].sum()
                    out[k] = {name: np.asarray(v) if v.ndim == 0 else np.asarray(v[i, :n]) for name, v in o.items()}
        return out

    def evaluate(self, params, videos, all_videos) -> dict:
        """Test metrics and score diagnostics of ``params`` on ``videos``."""
        return self.evaluate_outputs(self.predict_outputs(params, videos), all_videos)

    def evaluate_outputs(self, outputs, all_videos, per_video: bool = False) -> dict:
        """Test metrics and score diagnostics of selector ``outputs`` (:meth:`predict_outputs`);
        with ``per_video``, each video's metrics too."""
        test = evaluate_videos({k: o["scores"] for k, o in outputs.items()}, all_videos,
                               self.config.data.eval_mode, self.config.eval.budget)
        return {**{m: test[m] for m in report.METRICS + ("f1_single",)}, **report.score_diagnostics(outputs),
                **({"per_video": test["per_video"]} if per_video else {})}

    def host_batches(self, videos, rng, banks=None, bucket_rng=None):
        """Shuffled (by the numpy Generators ``rng`` and ``bucket_rng``, see
        :func:`iterate_batches`) training batches of ``videos`` in host memory, each
        carrying the contrast banks (default: these videos')."""
        banks = self.banks(videos) if banks is None else banks
        index = {v.key: i for i, v in enumerate(videos)}
        for keys, batch in iterate_batches(videos, self.config.train.batch_size, self.buckets, rng, bucket_rng,
                                           **self.batch_options):
            if "video_bank" in banks:  # which bank rows are each video's own
                batch["video_index"] = np.array([index.get(k, -1) for k in keys], np.int32)
            if self.config.train.teacher:
                batch["teacher"] = self.teacher_targets([videos[index[k]] if k is not None else None
                                                         for k in keys], batch["mask"].shape)
            yield {**batch, **banks}

    def teacher_targets(self, slots, shape) -> np.ndarray:
        """(B, T) the ``train.teacher`` criterion's ranks of each video of a batch's ``slots``
        (zeros on padding and empty slots, None), of the features as the model sees them;
        computed once per video."""
        out = np.zeros(shape, np.float32)
        for i, v in enumerate(slots):
            if v is not None:
                if v.key not in self._teacher_ranks:
                    self._teacher_ranks[v.key] = criterion_ranks(
                        normalize(v.features, self.config.data.normalization), self.config.train.teacher)
                ranks = self._teacher_ranks[v.key]
                out[i, :len(ranks)] = ranks
        return out

    def train_batches(self, videos, rng, banks=None, bucket_rng=None):
        """:meth:`host_batches`, placed on the devices."""
        for batch in self.host_batches(videos, rng, banks, bucket_rng):
            yield self.sharder.batch(batch)

    def epoch_order(self, split: int, epoch: int, seed: int | None = None):
        """The numpy Generators of an epoch's data order: which videos go together
        (from (seed, split, epoch)) and the sequence of bucket lengths (from (split,
        epoch) alone, shared by every seed), so that a resumed run draws what an
        uninterrupted one draws and the seeds of a study step through one shape."""
        seed = self.config.seed if seed is None else seed
        return np.random.default_rng([seed, split, epoch]), np.random.default_rng([split, epoch, 1 << 16])

    def train_epoch(self, state, videos, banks, split: int, epoch: int, rng):
        """One epoch (0-based) over ``videos``: (state, mean training metrics); the data
        order (:meth:`epoch_order`) and the random keys derive from (seed, split, epoch)."""
        order, bucket_order = self.epoch_order(split, epoch)
        epoch_rng, active = jax.random.fold_in(rng, epoch), active_stages(self.stages, epoch)
        pending = []
        for b, batch in enumerate(self.train_batches(videos, order, banks, bucket_order)):
            state, m = self.step(state, batch, jax.random.fold_in(epoch_rng, b), active=active)
            pending.append(m)
        sums = collections.defaultdict(float)
        for m in jax.device_get(pending):
            for k, v in m.items():
                sums[k] += float(v)
        metrics = {k: v / max(len(pending), 1) for k, v in sums.items()}
        if not all(np.isfinite(v) for v in metrics.values()):
            raise FloatingPointError(f"split {split} epoch {epoch + 1}: non-finite training loss {metrics}; "
                                     "not saving this state")
        return state, metrics


def reference_rows(config, videos: dict, test_keys, index: int) -> tuple:
    """The split's reference rows, which need only the data: random scores (seeded by
    ``config.seed + index``) and every training-free criterion, through the same pipeline."""
    rnd = random_baseline(videos, test_keys, config.data.eval_mode, config.eval.random_draws,
                          seed=config.seed + index, budget=config.eval.budget)
    free = training_free_baselines(videos, test_keys, config.data.eval_mode, config.eval.budget,
                                   features=lambda v: normalize(v.features, config.data.normalization))
    return rnd, free


def train_split(trainer: Trainer, videos: dict, split: dict, index: int, workdir: str,
                writer: MetricWriter) -> dict:
    """Trains and evaluates one split; returns its record for results.json once its last
    checkpoint is committed (a result never names a checkpoint still being written)."""
    config, tcfg = trainer.config, trainer.config.train
    train_videos = [videos[k] for k in split["train_keys"]]
    test_videos = [videos[k] for k in split["test_keys"]]
    init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), index))
    state = trainer.init_state(init_rng, train_videos[0])
    n_params = count_params(state["params"])

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
    run_config = training_config(config)
    history, start = [], 0
    latest = ckpt.latest_step()
    if latest is not None:
        if latest > tcfg.num_epochs:
            raise WorkdirError(f"{ckpt.directory} holds epoch {latest}, past train.num_epochs="
                               f"{tcfg.num_epochs}; raise num_epochs, or pass --restart to train anew")
        state, history = ckpt.restore(latest, state, run_config)
        start = latest
        report.log(f"split {index}: resumed at epoch {latest} from {ckpt.directory}")
    writer.resume(f"split{index}/", start if start else -1)
    state = trainer.sharder.state(state)
    # The reference rows need only the data: a worker thread computes them while the split trains.
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sgvs_reference")
    reference = worker.submit(reference_rows, config, videos, split["test_keys"], index)
    worker.shutdown(wait=False)
    banks = trainer.banks(train_videos)

    def evaluate(epoch, train_metrics, seconds):
        test = trainer.evaluate(state["params"], test_videos, videos)
        history.append({"epoch": epoch, "train": train_metrics, "test": test, "seconds": seconds})
        writer.write_scalars(epoch, {**{f"split{index}/train/{k}": v for k, v in train_metrics.items()},
                                     **{f"split{index}/test/{m}": v for m, v in test.items() if v is not None}})
        report.log(report.epoch_line(index, epoch, tcfg.num_epochs, train_metrics, test, seconds))

    if start == 0:
        evaluate(0, {}, 0.0)
    try:  # close waits for the asynchronous saves, also when training stops with an error
        for epoch in range(start, tcfg.num_epochs):
            t0 = time.time()
            state, train_metrics = trainer.train_epoch(state, train_videos, banks, index, epoch, train_rng)
            evaluate(epoch + 1, train_metrics, time.time() - t0)
            if reference.done():
                reference.result()  # a failure there stops the run now, not after the last epoch
            if (epoch + 1) % config.checkpoint.every == 0 or epoch + 1 == tcfg.num_epochs:
                ckpt.save(epoch + 1, state, history, run_config)
    finally:
        ckpt.close()
    rnd, free = reference.result()
    return {"history": history, "selection": report.select_models(history), "random": rnd, "training_free": free,
            "n_params": n_params, "buckets": list(trainer.buckets), "test_keys": list(split["test_keys"]),
            "programs_compiled_so_far": compilation.counts()["compiled"]}


def split_indices(config, splits) -> list:
    """The splits ``config.splits`` asks for (all when empty), each checked against the file."""
    indices = list(config.splits) if len(config.splits) else list(range(len(splits)))
    for i in indices:
        if not 0 <= i < len(splits):
            raise ValueError(f"config.splits has {i}, but the split file has {len(splits)} splits")
    return indices


def train_and_evaluate(config, workdir: str, restart: bool = False) -> dict:
    """Trains and evaluates every requested split; writes ``workdir/results.json``.

    The config is checked before anything is read, the data before anything is
    written; the workdir is locked for this process and resumed only by the same
    training config (``restart``: discard the old run's files first; see
    :mod:`sgvs_jax.workdir`).
    """
    check_config(config)
    if config.distributed:
        jax.distributed.initialize()
    videos, splits, where = load_dataset(config.data)
    config, note = resolve_sources(config, videos)
    if note:
        report.log(note)
    indices = split_indices(config, splits)
    trainer = Trainer(config, videos)
    trainer.check_fits(videos, config.train.batch_size // jax.device_count())
    is_main = jax.process_index() == 0
    results = {"data": where, "eval_mode": config.data.eval_mode, "selection_rules": report.RULES,
               "provenance": provenance(config), "splits": {}}
    unannotated = sorted(k for k, v in videos.items() if not scorable(v))
    if unannotated:
        results["unannotated_videos"] = unannotated
        report.log(f"note: {len(unannotated)} of {len(videos)} videos have no user summary (e.g. from "
                   "sgvs_jax.extract_features): they are left out of F1 / tau / rho (results.json: "
                   "unannotated_videos)")
    results["data_fingerprint"] = fingerprint(videos)
    with Workdir(workdir, config, restart, enabled=is_main, fingerprint=results["data_fingerprint"]):
        writer = MetricWriter(workdir, enabled=is_main)
        try:
            for i in indices:
                results["splits"][str(i)] = train_split(trainer, videos, splits[i], i,
                                                        os.path.join(workdir, f"split_{i}"), writer)
                results["summary"] = report.summarize(results["splits"])
                if is_main:
                    write_json(os.path.join(workdir, "results.json"), results)
        finally:
            writer.close()
    report.log("\n" + report.summary_table(results["summary"], where, len(indices), config.data.eval_mode))
    report.log(f"results: {os.path.join(workdir, 'results.json')}")
    return results
