"""Training and evaluation over the 5 splits: the library behind ``sgvs_jax.main``."""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import dataclasses
import functools
import os
import time
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sgvs_jax import compile_cache, xla_options
from sgvs_jax.checkpointing import Checkpointer, join_all
from sgvs_jax.config_check import check_buckets, check_config
from sgvs_jax.data import bucket_lengths_for, iterate_batches, load_dataset, make_batch
from sgvs_jax.data.batching import FRAME_SOURCES, TOKEN_SOURCES, bucket_of, normalize, semantic_dim, title_of
from sgvs_jax.evaluation import evaluate_videos, random_baseline, training_free_baselines
from sgvs_jax.files import write_json
from sgvs_jax.metrics_writer import MetricWriter
from sgvs_jax.models import SGVS, count_params
from sgvs_jax.provenance import provenance
from sgvs_jax.train_steps import SHARED_KEYS, STAGE_PARTS, batched_passes, fused_stages, init_state, make_optimizers, \
    make_predict, make_stage_step, make_train_step, slice_height
from sgvs_jax.workdir import Workdir, WorkdirError, training_config

METRICS = ("f1", "tau", "rho")
COLLAPSE_SPREAD = 0.02  # a mean per-video score std below this is a collapsed selector
RULES = {
    "last_epoch": "the last epoch",
    "min_train_loss": "the epoch with the lowest stage-1 training loss (reconstruction + sparsity) "
                      "after warm-up; uses no test labels",
    "max_test_f1_optimistic": "the epoch with the best test F1: optimistic, uses test labels",
}


def build_model(config, feature_dim: int) -> SGVS:
    sources = tuple(config.data.semantic_sources)
    if config.model.use_fssa and not any(s in TOKEN_SOURCES for s in sources):
        raise ValueError("model.use_fssa=True needs a token source in data.semantic_sources "
                         f"({TOKEN_SOURCES}); got {sources}. Set model.use_fssa=False for visual only.")
    model_cfg = config.model.copy_and_resolve_references()
    with model_cfg.unlocked():
        model_cfg.use_frame_semantics = any(s in FRAME_SOURCES for s in sources)
    return SGVS.from_config(model_cfg, feature_dim)


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
        """The state replicated, in buffers of the runtime's own: each leaf is placed
        from host memory, then copied by a jitted program.  The update donates the
        state, and the CPU runtime cannot reuse a buffer placed from host memory: the
        first update would copy the whole state instead (+0.24 GiB beside the update's
        working memory for the SumMe-shaped model, measured: benchmarks/RESULTS.md)."""
        placed = jax.tree_util.tree_map(lambda x: self._put(jax.device_get(x), self.replicated), state)
        return self._own(placed)


def make_step(config, model, txs, fused: bool):
    """The jitted update: one program for the three stages (``fused``), or one per
    stage (``train.fuse_stages`` resolved by :func:`sgvs_jax.train_steps.fused_stages`).

    Returns ``(step, jitted, lower)``: ``step(state, batch, rng, train_discriminator)``,
    the jitted functions (for cache statistics) and ``lower(state, batch, rng,
    train_discriminator)``: ``(name, lower_it)`` for each program one such call runs,
    ``lower_it()`` giving its ``Lowered`` (lowered on demand, so that a caller can skip
    a program it has, and compile one while it lowers the next:
    :func:`compile_in_parallel`).
    """
    tcfg = config.train
    if fused:
        jitted = xla_options.jit(make_train_step(model, txs, tcfg), static_argnames="train_discriminator",
                                 donate_argnums=0)

        # One calling convention (keyword, Python bool), so a call finds the program that
        # ``lower`` compiled: jit keys its cache on how the static argument is passed.
        def step(state, batch, rng, train_discriminator):
            return jitted(state, batch, rng, train_discriminator=bool(train_discriminator))

        def lower(state, batch, rng, train_discriminator):
            flag = bool(train_discriminator)
            return [(f"step_d{int(flag)}", lambda: jitted.lower(state, batch, rng, train_discriminator=flag))]

        return step, [jitted], lower
    stage_fns = {s: xla_options.jit(make_stage_step(model, txs, tcfg, s), donate_argnums=0) for s in STAGE_PARTS}

    def stages(train_discriminator):
        return ["stage1", "stage2"] + (["stage3"] if tcfg.adversarial and train_discriminator else [])

    def step(state, batch, rng, train_discriminator):
        metrics = {}
        for i, s in enumerate(stages(train_discriminator)):
            state, m = stage_fns[s](state, batch, jax.random.fold_in(rng, i))
            metrics.update(m)
        return state, metrics

    def lower(state, batch, rng, train_discriminator):
        return [(s, functools.partial(stage_fns[s].lower, state, batch, rng)) for s in stages(train_discriminator)]

    return step, list(stage_fns.values()), lower


def compile_in_parallel(lowered: Iterable, threads: int | None = None) -> float:
    """Compiles lowered programs in worker threads while the caller goes on
    lowering the next ones; returns wall seconds.

    ``lowered`` may be a generator: each program starts compiling as soon as it
    is lowered.  Tracing and lowering hold the Python thread (about 10 s per
    SumMe-shaped update program on a CPU core), XLA compiles one program largely
    on one thread (10-20 s on a CPU core, 20-26 s on an H200), so by default one
    core lowers and the others compile: a run's start-up (one update program per
    bucket length) waits for about the longer of the two, not their sum.  On two
    cores that is one compile at a time, which also keeps one compiler's working
    memory alive, not two (benchmarks/RESULTS.md).  ``Lowered.compile()`` caches
    the executable where ``jax.jit`` finds it, so the later calls do not compile again.
    """
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.time()
    threads = max(1, threads or (os.cpu_count() or 2) - 1)
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(low.compile) for low in lowered]
        for future in futures:
            future.result()
    release_free_heap()
    return time.time() - t0


def release_free_heap() -> bool:
    """Returns the C heap's free pages to the OS (glibc's ``malloc_trim``; elsewhere
    nothing), so that what the compiler freed leaves the process's resident set:
    after the SumMe-shaped run's four update programs compile in two threads it
    holds 2.95 GiB, 2.19 GiB once trimmed (benchmarks/RESULTS.md).  One call takes
    up to about 0.1 s, so it runs once per precompile, not per update; it changes no
    result."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.malloc_trim(0)) if hasattr(libc, "malloc_trim") else False
    except OSError:
        return False


def batch_kwargs(config) -> dict:
    return dict(sources=tuple(config.data.semantic_sources), max_tokens=config.data.max_tokens,
                normalization=config.data.normalization)


def score_diagnostics(outputs: dict) -> dict:
    """Is the selector learning?  Means over videos of:

      spread      std of the scores over the video's steps (collapse: < 0.02)
      alpha       the FSSA balance (None without FSSA)
      cos_share   share of the mean score that comes from the FSSA cosine term
                  alpha * c(cos) (the rest is (1 - alpha) * h_t)
      cos_spread, h_spread  std over steps of each term as it enters the score
    """
    o = list(outputs.values())
    spread = float(np.mean([np.std(v["scores"]) for v in o]))
    if "alpha" not in o[0]:
        return {"spread": spread, "alpha": None, "cos_share": 0.0, "cos_spread": 0.0, "h_spread": spread}
    a = float(o[0]["alpha"])
    cos_part = [v["scores"] - (1 - a) * v["h"] for v in o]
    return {"spread": spread, "alpha": a,
            "cos_share": float(np.mean([c.mean() / max(v["scores"].mean(), 1e-12)
                                        for c, v in zip(cos_part, o)])),
            "cos_spread": float(np.mean([np.std(c) for c in cos_part])),
            "h_spread": float(np.mean([np.std((1 - a) * v["h"]) for v in o]))}


def select_models(history: list, warmup_epochs: int) -> dict:
    """The model-selection rules over the trained epochs' records, plus the
    untrained model (epoch 0) as its own row."""
    untrained = [h for h in history if h["epoch"] == 0]
    history = [h for h in history if h["epoch"] > 0]
    after = [h for h in history if h["epoch"] > warmup_epochs] or history
    chosen = {
        "last_epoch": history[-1],
        "min_train_loss": min(after, key=lambda h: h["train"]["stage1/loss"]),
        "max_test_f1_optimistic": max(history, key=lambda h: h["test"]["f1"]),
    }
    if untrained:
        chosen["untrained"] = untrained[0]
    return {rule: {"epoch": h["epoch"], **{m: h["test"][m] for m in METRICS + ("spread",)}}
            for rule, h in chosen.items()}


class Trainer:
    """What all splits share: model, optimizers, jitted functions, buckets.

    Built once per run so the jitted update compiles once per bucket length, not
    once per split.
    """

    def __init__(self, config, videos: dict):
        self.config = config
        tcfg = config.train
        self.buckets = tuple(config.data.buckets) or tuple(bucket_lengths_for(
            [v.length for v in videos.values()], config.data.min_bucket, config.data.get("bucket_multiple", 0)))
        self.model = build_model(config, next(iter(videos.values())).features.shape[1])
        self.txs = make_optimizers(config.optim)
        self.sharder = Sharder(tcfg.batch_size)
        self.fused = fused_stages(tcfg.get("fuse_stages"), tcfg.schedule)  # one update program, else one per stage
        self.step, self.jitted, self._lower_step = make_step(config, self.model, self.txs, self.fused)
        self.predict = xla_options.jit(make_predict(self.model, outputs=("scores", "h", "cos", "alpha")))
        self.batch_kwargs = batch_kwargs(config)
        self.bank_size = len(videos)
        self._init = None
        self._precompiled = set()  # ("update", train_discriminator, bucket) / ("predict", None, bucket)

    def title_bank(self, train_videos) -> np.ndarray:
        """(N, Ds) the training videos' titles for the semantic term, cycled to one
        size for every split (N = all videos) so that its shape never recompiles."""
        dim = semantic_dim(train_videos[0], self.batch_kwargs["sources"])
        titles = np.stack([title_of(v, dim) for v in train_videos])
        return titles[np.arange(self.bank_size) % len(titles)]

    def init_state(self, rng, video):
        """A fresh train state, by one jitted init shared by every split: the
        parameters' shapes do not depend on the video's length, so ``video`` is cut
        to the smallest bucket and the program compiles once per run (eager Flax
        init took seconds per split)."""
        n = min(video.length, min(self.buckets))
        short = dataclasses.replace(video, features=video.features[:n], clip_frames=None if video.clip_frames
                                    is None else video.clip_frames[:n])
        batch = make_batch([short], min(self.buckets), 1, **self.batch_kwargs)
        if self._init is None:
            sigma = float(self.config.train.sigma)
            self._init = xla_options.jit(lambda r, b: init_state(self.model, self.txs, r, b, sigma))
        return self._init(rng, batch)

    def predict_outputs(self, params, videos) -> dict:
        """key -> selector outputs of each video, unpadded: ``scores`` (T,), ``h``
        (T,), and with FSSA ``cos`` (T,) and ``alpha`` ()."""
        out = {}
        for keys, batch in iterate_batches(videos, self.config.train.batch_size, self.buckets, None,
                                           **self.batch_kwargs):
            o = jax.device_get(self.predict(params, self.sharder.batch(batch)))
            for i, k in enumerate(keys):
                if k is not None:
                    n = batch["mask"][i].sum()
                    out[k] = {name: np.asarray(v) if v.ndim == 0 else np.asarray(v[i, :n])
                              for name, v in o.items()}
        return out

    def predict_scores(self, params, videos) -> dict:
        """key -> (T,) scores of each video, unpadded."""
        return {k: o["scores"] for k, o in self.predict_outputs(params, videos).items()}

    def evaluate(self, params, videos, all_videos) -> dict:
        """Test metrics and score diagnostics of ``params`` on ``videos``."""
        outputs = self.predict_outputs(params, videos)
        test = evaluate_videos({k: o["scores"] for k, o in outputs.items()}, all_videos,
                               self.config.data.eval_mode, self.config.eval.budget)
        return {**{m: test[m] for m in METRICS + ("f1_single",)}, **score_diagnostics(outputs)}

    def train_batches(self, videos, rng, bank=None):
        """Shuffled (by the numpy Generator ``rng``), device-placed training batches
        of ``videos``, each carrying the title bank (default: these videos' titles)."""
        bank = self.title_bank(videos) if bank is None else bank
        for _, batch in iterate_batches(videos, self.config.train.batch_size, self.buckets, rng,
                                        **self.batch_kwargs):
            yield self.sharder.batch({**batch, "title_bank": bank})

    def precompile(self, state, train_videos, eval_videos, train_discriminator=(True,), bank=None) -> dict:
        """Compiles, in parallel threads, the update for every bucket of
        ``train_videos`` (once per ``train_discriminator`` value) and the scorer for
        every bucket of ``eval_videos``, before training starts.  What this Trainer
        compiled before (for an earlier split) is skipped: its calls are in the
        jits' caches already, so tracing and looking it up again would be wasted;
        programs an earlier run compiled come from the persistent cache.
        ``state`` must be placed as the calls will place it (``sharder.state``).
        Returns ``{"programs" (compiled now), "buckets", "seconds" (tracing and
        compiling, side by side: :func:`compile_in_parallel`)}``.
        """
        t0 = time.time()
        train_buckets = sorted({bucket_of(v.length, self.buckets) for v in train_videos})
        eval_buckets = sorted({bucket_of(v.length, self.buckets) for v in eval_videos})
        # The scorers first: they lower and compile in moments, beside the lowering of the updates.
        todo = [("predict", None, b) for b in eval_buckets]
        todo += [("update", flag, b) for b in train_buckets for flag in sorted(set(train_discriminator))]
        todo = [k for k in todo if k not in self._precompiled]
        programs = set()  # (program, bucket): the stages both settings share compile once

        def lowered():  # lowers one program at a time, while the programs before it compile
            rng = jax.random.PRNGKey(0)
            train_batches = self._first_batches(train_videos, {"title_bank": bank})
            eval_batches = self._first_batches(eval_videos, {})
            for kind, flag, bucket in todo:
                if kind == "update":
                    for name, lower_it in self._lower_step(state, train_batches[bucket], rng, flag):
                        if (name, bucket) not in programs:  # stages 1-2 serve both flags
                            programs.add((name, bucket))
                            yield lower_it()
                else:
                    programs.add(("predict", bucket))
                    yield self.predict.lower(state["params"], eval_batches[bucket])

        if todo:
            bank = self.title_bank(train_videos) if bank is None else bank
            compile_in_parallel(lowered())
        self._precompiled.update(todo)
        return {"programs": len(programs), "buckets": sorted(set(train_buckets) | set(eval_buckets)),
                "seconds": time.time() - t0}

    def _first_batches(self, videos, extra) -> dict:
        """bucket -> one placed batch of that bucket (from one video of it), with ``extra`` keys."""
        one_each = {bucket_of(v.length, self.buckets): v for v in videos}
        return {batch["features"].shape[1]: self.sharder.batch({**batch, **extra})
                for _, batch in iterate_batches(list(one_each.values()), self.config.train.batch_size,
                                                self.buckets, None, **self.batch_kwargs)}

    @property
    def update_programs(self) -> str:
        """'fused' or 'per_stage' (with '_batched' where ``train.batched_passes``), as
        results.json names the update's arrangement."""
        batched = batched_passes(self.config.train.get("batched_passes"))
        return ("fused" if self.fused else "per_stage") + ("_batched" if batched else "")

    def slice_heights(self) -> dict:
        """bucket -> videos per gradient pass in its update (0: the whole batch), ``train.microbatch``
        resolved on this platform (:func:`sgvs_jax.train_steps.slice_height`)."""
        t = self.config.train
        return {str(b): slice_height(int(t.get("microbatch", 0) or 0), t.batch_size, b, self.model.selector.d_model)
                for b in self.buckets}

    def compilations(self) -> int:
        return int(sum(f._cache_size() for f in self.jitted))


def reference_rows(config, videos: dict, test_keys, index: int) -> tuple:
    """The split's reference rows, which need only the data: random scores (seeded by
    ``config.seed + index``) and every training-free criterion, through the same pipeline."""
    rnd = random_baseline(videos, test_keys, config.data.eval_mode, config.eval.random_draws,
                          seed=config.seed + index, budget=config.eval.budget)
    free = training_free_baselines(videos, test_keys, config.data.eval_mode, config.eval.budget,
                                   features=lambda v: normalize(v.features, config.data.normalization))
    return rnd, free


def train_split(trainer: Trainer, videos: dict, split: dict, index: int, workdir: str,
                writer: MetricWriter, closing: list | None = None) -> dict:
    """Trains and evaluates one split; returns its record for results.json.  With a
    ``closing`` list, the split's checkpointer finishes writing its last save in the
    background and is appended to the list (the caller joins it); without one it
    is closed before this returns."""
    config = trainer.config
    train_videos = [videos[k] for k in split["train_keys"]]
    test_videos = [videos[k] for k in split["test_keys"]]
    tcfg = config.train
    buckets, sharder = trainer.buckets, trainer.sharder
    step = trainer.step
    rng = jax.random.PRNGKey(config.seed)
    init_rng, train_rng = jax.random.split(jax.random.fold_in(rng, index))
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
        logging.info("split %d: resumed from %s/%d", index, ckpt.directory, latest)
        print(f"split {index}: resumed at epoch {latest} from {ckpt.directory}", flush=True)
    writer.resume(f"split{index}/", start if start else -1)
    state = sharder.state(state)
    # The reference rows need only the data: a worker thread computes them while the split trains
    # (numpy with its own seeds, so the numbers do not change); the thread ends with its task.
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sgvs_reference")
    reference = worker.submit(reference_rows, config, videos, split["test_keys"], index)
    worker.shutdown(wait=False)
    bank = trainer.title_bank(train_videos)
    compiled = None
    if tcfg.precompile and start < tcfg.num_epochs:
        flags = {epoch >= tcfg.warmup_epochs for epoch in range(start, tcfg.num_epochs)}
        before = compile_cache.counts()
        compiled = trainer.precompile(state, train_videos, test_videos, tuple(flags), bank)
        after = compile_cache.counts()
        compiled["cache_hits"] = after["hits"] - before["hits"]
        compiled["cache_misses"] = after["misses"] - before["misses"]
        if compiled["seconds"] > 1.0 or compiled["cache_hits"]:
            cached = (f", {compiled['cache_hits']} of them from the persistent cache"
                      if compiled["cache_hits"] else "")
            print(f"split {index}: {compiled['programs']} programs for buckets {compiled['buckets']} ready "
                  f"in {compiled['seconds']:.1f} s{cached}", flush=True)

    def report(epoch, train_metrics, seconds):
        test = trainer.evaluate(state["params"], test_videos, videos)
        record = {"epoch": epoch, "train": train_metrics, "test": test, "seconds": seconds}
        history.append(record)
        writer.write_scalars(epoch, {**{f"split{index}/train/{k}": v for k, v in train_metrics.items()},
                                     **{f"split{index}/test/{m}": v for m, v in test.items() if v is not None}})
        losses = "  ".join(f"{s} {train_metrics[f'{s}/loss']:.4f}" for s in STAGE_PARTS
                           if f"{s}/loss" in train_metrics) or "untrained"
        fssa = (f"alpha {test['alpha']:.3f}  cos share {test['cos_share']:.2f}  "
                if test["alpha"] is not None else "")
        print(f"split {index} epoch {epoch:3d}/{tcfg.num_epochs}  {losses}  "
              f"F1 {test['f1']:5.2f}  tau {test['tau']:+.3f}  rho {test['rho']:+.3f}  "
              f"spread {test['spread']:.3f}  {fssa}({seconds:.1f} s)", flush=True)

    if start == 0:
        report(0, {}, 0.0)
    done = False
    try:  # close waits for the asynchronous saves, also when training stops with an error
        for epoch in range(start, tcfg.num_epochs):
            t0 = time.time()
            np_rng = np.random.default_rng([config.seed, index, epoch])
            epoch_rng = jax.random.fold_in(train_rng, epoch)
            sums, n = collections.defaultdict(float), 0
            pending = []
            for b, batch in enumerate(trainer.train_batches(train_videos, np_rng, bank)):
                state, m = step(state, batch, jax.random.fold_in(epoch_rng, b),
                                train_discriminator=epoch >= tcfg.warmup_epochs)
                pending.append(m)
            for m in jax.device_get(pending):
                for k, v in m.items():
                    sums[k] += float(v)
                n += 1
            train_metrics = {k: v / max(n, 1) for k, v in sums.items()}
            if not all(np.isfinite(v) for v in train_metrics.values()):
                raise FloatingPointError(f"split {index} epoch {epoch + 1}: non-finite training loss "
                                         f"{train_metrics}; not saving this state")
            report(epoch + 1, train_metrics, time.time() - t0)
            if reference.done():
                reference.result()  # a failure there stops the run now, not after the last epoch
            if (epoch + 1) % config.checkpoint.get("every", 1) == 0 or epoch + 1 == tcfg.num_epochs:
                ckpt.save(epoch + 1, state, history, run_config)
        done = True
    finally:
        background = done and closing is not None  # else wait now, also when training stopped with an error
        ckpt.close(background=background)
        if background:
            closing.append(ckpt)
    rnd, free = reference.result()
    return {
        "history": history,
        "selection": select_models(history, tcfg.warmup_epochs),
        "random": rnd,
        "training_free": free,
        "n_params": n_params,
        "buckets": list(buckets),
        "jit_compilations_so_far": trainer.compilations(),
        "precompile": compiled,
        "test_keys": list(split["test_keys"]),
    }


def _mean_std(rows: list, metrics=METRICS) -> dict:
    return {m: {"mean": float(np.mean([x[m] for x in rows])), "std": float(np.std([x[m] for x in rows]))}
            for m in metrics}


def summarize(split_results: dict) -> dict:
    """Mean and std over splits: each selection rule and the untrained model
    (with the score spread), the learning gain (last epoch - untrained, and how
    many splits gained), whether the scores collapsed, random scores and each
    training-free baseline."""
    out = {}
    rules = list(RULES) + (["untrained"] if all("untrained" in r["selection"] for r in split_results.values())
                           else [])
    for rule in rules:
        out[rule] = _mean_std([r["selection"][rule] for r in split_results.values()], METRICS + ("spread",))
    if "untrained" in out:
        gains = [{m: r["selection"]["last_epoch"][m] - r["selection"]["untrained"][m] for m in METRICS}
                 for r in split_results.values()]
        out["learning_gain"] = {**_mean_std(gains),
                                "splits_gained_tau": int(sum(g["tau"] > 0 for g in gains)),
                                "splits": len(gains)}
    out["collapsed"] = bool(out["last_epoch"]["spread"]["mean"] < COLLAPSE_SPREAD)
    out["random"] = _mean_std([r["random"] for r in split_results.values()])
    out["training_free"] = {name: _mean_std([r["training_free"][name] for r in split_results.values()])
                            for name in next(iter(split_results.values()))["training_free"]}
    return out


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
    indices = list(config.splits) if len(config.splits) else list(range(len(splits)))
    for i in indices:
        if not 0 <= i < len(splits):
            raise ValueError(f"config.splits has {i}, but the split file has {len(splits)} splits")
    trainer = Trainer(config, videos)
    check_buckets(trainer.buckets, max(v.length for v in videos.values()))
    is_main = jax.process_index() == 0
    results = {"data": where, "eval_mode": config.data.eval_mode, "selection_rules": RULES,
               "provenance": provenance(config), "update_slices": trainer.slice_heights(),
               "update_programs": trainer.update_programs, "splits": {}}
    sliced = {b: m for b, m in results["update_slices"].items() if m}
    if sliced:
        print(f"updates in slices of {sorted(set(sliced.values()))} video(s) for buckets {sorted(map(int, sliced))} "
              f"(train.microbatch={config.train.microbatch} on {jax.default_backend()}; the slices draw the whole "
              "batch's randomness: the same model up to float rounding, less memory)", flush=True)
    unannotated = sorted(k for k, v in videos.items() if not np.any(v.user_summary))
    if unannotated:
        results["unannotated_videos"] = unannotated
        print(f"note: {len(unannotated)} of {len(videos)} videos have no user summary (e.g. from "
              "sgvs_jax.extract_features): F1 / tau / rho on them are 0 and mean nothing", flush=True)
    with Workdir(workdir, config, restart, enabled=is_main):
        writer = MetricWriter(workdir, enabled=is_main)
        # Each split's checkpointer, writing its last save while the next split trains (one
        # process only: across hosts orbax's close synchronises the processes, kept in order).
        closing = [] if jax.process_count() == 1 else None
        try:
            for i in indices:
                results["splits"][str(i)] = train_split(trainer, videos, splits[i], i,
                                                        os.path.join(workdir, f"split_{i}"), writer, closing)
                results["summary"] = summarize(results["splits"])
                if is_main:
                    write_json(os.path.join(workdir, "results.json"), results)
        finally:
            try:
                join_all(closing or [])
            finally:
                writer.close()
    s = results["summary"]
    print(f"\n{where}: {len(indices)} split(s), F1 {'max' if config.data.eval_mode == 'max' else 'avg'} "
          "over users (mean ± std over splits)")
    rows = [(rule, s[rule]) for rule in list(RULES) + ["untrained", "random"] if rule in s]
    rows += [(f"training-free {name}", r) for name, r in s["training_free"].items()]
    for name, r in rows:
        spread = f"   spread {r['spread']['mean']:.3f}" if "spread" in r else ""
        print(f"  {name:<34} F1 {r['f1']['mean']:6.2f} ± {r['f1']['std']:5.2f}   "
              f"tau {r['tau']['mean']:+.3f}   rho {r['rho']['mean']:+.3f}{spread}")
    if "learning_gain" in s:
        g = s["learning_gain"]
        print(f"  learning gain (last epoch - untrained): F1 {g['f1']['mean']:+.2f}   tau {g['tau']['mean']:+.3f}"
              f"   rho {g['rho']['mean']:+.3f}   (tau gained on {g['splits_gained_tau']} of {g['splits']} splits)")
    if s["collapsed"]:
        print(f"  WARNING: the scores collapsed (mean per-video spread {s['last_epoch']['spread']['mean']:.4f} "
              f"< {COLLAPSE_SPREAD}): the selector gives nearly the same score everywhere")
    print(f"results: {os.path.join(workdir, 'results.json')}", flush=True)
    return results
