"""Training and evaluation over the splits: the one loop behind ``sgvs_jax.main`` and ``sgvs_jax.study``.

A run trains M >= 1 **members** as one compiled program: the train state has a leading
members axis and ``jax.vmap`` runs each member's update with its own seed (parameters,
keys, data order) and sparsity target (the state's ``sigma`` leaf).  ``main`` is a run of
one member; a study's seeds, and its variants that differ only in sigma, are the members
of one run.  The devices form one mesh with axes ``('members', 'data')``: the members are
sharded first, each member's batch over the devices left.

:func:`run` checks nothing and owns the loop: one :class:`Trainer` (the pipeline, model,
stages, the jitted update and scorer, shared by every split so that each program compiles
once per bucket length) and :func:`train_split` per split: the untrained model is evaluated
(epoch 0); every epoch trains and evaluates on the test videos and on the training videos
(whose annotations choose settings, never the test videos'); checkpoints are saved and
resumed; the random and training-free reference rows are computed beside training; a
split is reported only once its last checkpoint is committed.  :func:`train_and_evaluate`
is ``main``: the checks, the data, and ``results.json`` of one member.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sgvs_jax import compilation, report
from sgvs_jax.checkpointing import Checkpointer
from sgvs_jax.config_check import check_buckets, check_config
from sgvs_jax.data import fingerprint, load_dataset, make_batch, resolve_sources
from sgvs_jax.data.batching import bucket_of, normalize
from sgvs_jax.data.pipeline import Pipeline
from sgvs_jax.evaluation import evaluate_videos, random_baseline, training_free_baselines
from sgvs_jax.evaluation.protocol import no_shot_fits, scorable
from sgvs_jax.files import write_json
from sgvs_jax.metrics_writer import MetricWriter
from sgvs_jax.models import build_model, count_params
from sgvs_jax.provenance import provenance
from sgvs_jax.train_steps import SHARED_KEYS, active_stages, init_state, make_predict, make_stages, make_train_step
from sgvs_jax.workdir import Workdir, WorkdirError, training_config

OUTPUTS = ("scores", "h", "cos", "alpha")  # the selector outputs scored and diagnosed


def make_mesh(members: int, batch_size: int) -> Mesh:
    """Devices as ``('members', 'data')``: as many on the members axis as divide the members,
    then as many on the data axis as divide the batch; any others stay idle (said once)."""
    devices = jax.devices()
    m = math.gcd(members, len(devices))
    d = math.gcd(batch_size, len(devices) // m)
    if m * d < len(devices):
        report.log(f"note: {m * d} of {len(devices)} devices used ({members} member(s), train.batch_size="
                   f"{batch_size}); a batch size that is a multiple of the devices uses them all")
    return Mesh(np.array(devices[:m * d]).reshape(m, d), ("members", "data"))


class Trainer:
    """What all splits share: the input pipeline, model, stages, mesh, and the jitted
    update and scorer of ``len(seeds)`` members (``sigmas``: each member's sparsity
    target; default ``train.sigma``)."""

    def __init__(self, config, videos: dict, seeds=(0,), sigmas=None):
        self.config, self.seeds = config, list(seeds)
        self.sigmas = [float(config.train.sigma)] * len(self.seeds) if sigmas is None else [float(s) for s in sigmas]
        self.data = Pipeline(config, videos)
        self.buckets = self.data.buckets
        self.model = build_model(config)
        self.stages = make_stages(config)
        self.mesh = make_mesh(len(self.seeds), config.train.batch_size)
        self.members = NamedSharding(self.mesh, P("members"))
        self.batched = NamedSharding(self.mesh, P("members", "data"))
        self.scored = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        step = make_train_step(self.model, self.stages, config.train)

        def members_step(states, batch, rngs, active):
            axes = {k: None if k in SHARED_KEYS else 0 for k in batch}
            return jax.vmap(lambda s, b, r: step(s, b, r, active), in_axes=(0, axes, 0))(states, batch, rngs)

        self.members_step = members_step  # (M, ...) states and batches -> (states, metrics (M,))
        self.step = compilation.jit(members_step, static_argnames="active", donate_argnums=0)
        self.predict = compilation.jit(jax.vmap(make_predict(self.model, outputs=OUTPUTS), in_axes=(0, None)))
        self._init = compilation.jit(lambda r, b: init_state(self.model, self.stages, r, b, config.train.sigma))
        self._own = jax.jit(lambda s: jax.tree_util.tree_map(jnp.copy, s), out_shardings=self.members)

    @staticmethod
    def _put(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    def check_fits(self, videos: dict) -> None:
        """Before anything compiles: every video fits a bucket, and an update of the videos
        one device holds at the longest bucket fits its memory."""
        longest = max(videos.values(), key=lambda v: v.length)
        check_buckets(self.buckets, longest.length, longest.key)
        rows = len(self.seeds) * self.config.train.batch_size // self.mesh.devices.size
        compilation.check_update_memory((longest.key, longest.length), bucket_of(longest.length, self.buckets),
                                        max(rows, 1), self.config.model.num_heads, self.config.model.attention_block)

    def init_states(self, rngs, video):
        """Fresh train states of every member, stacked on the host (the parameters' shapes do
        not depend on the video's length: it is cut to the smallest bucket, one init program)."""
        n = min(video.length, min(self.buckets))
        short = dataclasses.replace(video, features=video.features[:n], clip_frames=None if video.clip_frames
                                    is None else video.clip_frames[:n])
        batch = make_batch([short], min(self.buckets), 1, **self.data.options)
        states = [jax.device_get(self._init(r, batch)) for r in rngs]
        states = jax.tree_util.tree_map(lambda *x: np.stack([np.asarray(v) for v in x]), *states)
        states["sigma"] = np.asarray(self.sigmas, np.float32)
        return states

    def place_states(self, states):
        """Stacked states on the devices (members axis sharded), in buffers the runtime owns
        (placed, then copied by a jitted program), so that the update, which donates the
        state, reuses them from its first call."""
        return self._own(jax.tree_util.tree_map(lambda x: self._put(jax.device_get(x), self.members), states))

    def place_batch(self, batches: list) -> dict:
        """One host batch per member, stacked on a members axis; the shared banks once."""
        return {k: self._put(batches[0][k], self.replicated) if k in SHARED_KEYS else
                self._put(np.stack([b[k] for b in batches]), self.batched) for k in batches[0]}

    def outputs(self, params, videos) -> list[dict]:
        """Per member: video key -> its selector outputs (:data:`OUTPUTS`), unpadded."""
        out = [{} for _ in self.seeds]
        for keys, batch in self.data.scoring(videos):
            o = jax.device_get(self.predict(params, {k: self._put(v, self.scored) for k, v in batch.items()}))
            for i, k in enumerate(keys):
                if k is not None:
                    n = batch["mask"][i].sum()
                    for m in range(len(self.seeds)):
                        out[m][k] = {name: np.asarray(v[m]) if v.ndim == 1 else np.asarray(v[m, i, :n])
                                     for name, v in o.items()}
        return out

    def evaluate_outputs(self, outputs, all_videos, per_video: bool = False) -> dict:
        """Metrics and score diagnostics of one member's ``outputs``; with ``per_video``, each video's too."""
        test = evaluate_videos({k: o["scores"] for k, o in outputs.items()}, all_videos,
                               self.config.data.eval_mode, self.config.eval.budget)
        return {**{m: test[m] for m in report.METRICS + ("f1_single",)}, **report.score_diagnostics(outputs),
                **({"per_video": test["per_video"]} if per_video else {})}


def reference_rows(config, videos: dict, test_keys, index: int, seeds) -> tuple:
    """The split's reference rows, which need only the data: random scores per member (seeded
    by its seed + ``index``) and every training-free criterion (the same for every member)."""
    rnd = [random_baseline(videos, test_keys, config.data.eval_mode, config.eval.random_draws, seed=s + index,
                           budget=config.eval.budget) for s in seeds]
    free = training_free_baselines(videos, test_keys, config.data.eval_mode, config.eval.budget,
                                   features=lambda v: normalize(v.features, config.data.normalization))
    return rnd, free


def member_keys(seeds, index: int) -> list:
    """Per member (seed), its (init, train) keys on split ``index``: the split's model starts
    from the first, its dropout and draws come from the second."""
    return [jax.random.split(jax.random.fold_in(jax.random.PRNGKey(s), index)) for s in seeds]


def train_split(trainer: Trainer, videos: dict, split: dict, index: int, workdir: str,
                writer: MetricWriter | None = None) -> dict:
    """Trains and evaluates every member on one split; returns its record once the last
    checkpoint is committed: the reference rows, and per member its history (every epoch's
    training losses, test metrics and training-video metrics), selection, random row and
    the last epoch's per-video metrics and scores."""
    config, tcfg, seeds = trainer.config, trainer.config.train, trainer.seeds
    train_videos = [videos[k] for k in split["train_keys"]]
    test_videos = [videos[k] for k in split["test_keys"]]
    keys = member_keys(seeds, index)
    train_rngs = jnp.stack([k[1] for k in keys])
    states = trainer.init_states([k[0] for k in keys], train_videos[0])
    n_params = count_params(jax.tree_util.tree_map(lambda x: x[0], states["params"]))

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
    run_config = {**training_config(config), "members": {"seeds": seeds, "sigmas": trainer.sigmas}}
    histories, start, latest = [[] for _ in seeds], 0, ckpt.latest_step()
    if latest is not None:
        if latest > tcfg.num_epochs:
            raise WorkdirError(f"{ckpt.directory} holds epoch {latest}, past train.num_epochs="
                               f"{tcfg.num_epochs}; raise num_epochs, or pass --restart to train anew")
        states, histories = ckpt.restore(latest, states, run_config)
        start = latest
        report.log(f"split {index}: resumed at epoch {latest} from {ckpt.directory}")
    if writer is not None:
        writer.resume(f"split{index}/", start if start else -1)
    states = trainer.place_states(states)
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sgvs_reference")
    reference = worker.submit(reference_rows, config, videos, split["test_keys"], index, seeds)
    worker.shutdown(wait=False)
    banks = trainer.data.banks(train_videos)
    last = {}

    def evaluate(epoch, train_metrics, seconds, final=False):
        outputs = trainer.outputs(states["params"], test_videos)
        seen = [{k: v for k, v in trainer.evaluate_outputs(o, videos).items() if k in report.METRICS}
                for o in trainer.outputs(states["params"], train_videos)]
        for m, history in enumerate(histories):
            test = trainer.evaluate_outputs(outputs[m], videos, per_video=final or epoch == tcfg.num_epochs)
            if "per_video" in test:
                last[m] = {"per_video": test.pop("per_video"), "training_videos": seen[m],
                           "scores": {k: np.round(o["scores"], 5).tolist() for k, o in outputs[m].items()}}
            if final:
                continue
            history.append({"epoch": epoch, "train": train_metrics[m], "test": test, "training_videos": seen[m],
                            "seconds": seconds})
            if writer is not None:
                tag = f"split{index}/" + (f"member{m}/" if len(seeds) > 1 else "")
                writer.write_scalars(epoch, {**{f"{tag}train/{k}": v for k, v in train_metrics[m].items()},
                                             **{f"{tag}test/{k}": v for k, v in test.items() if v is not None}})
        if final:
            return
        if len(seeds) == 1:
            report.log(report.epoch_line(index, epoch, tcfg.num_epochs, train_metrics[0], histories[0][-1]["test"],
                                         seconds))
        else:
            taus = " ".join(f"{h[-1]['test']['tau']:+.3f}" for h in histories)
            report.log(f"split {index} epoch {epoch:3d}/{tcfg.num_epochs}  tau per member {taus}  ({seconds:.1f} s)")

    if start == 0:
        evaluate(0, [{}] * len(seeds), 0.0)
    try:  # close waits for the asynchronous saves, also when training stops with an error
        for epoch in range(start, tcfg.num_epochs):
            t0, active = time.time(), active_stages(trainer.stages, epoch)
            streams = [trainer.data.training(train_videos, trainer.data.epoch_order(s, index, epoch), banks)
                       for s in seeds]
            pending = []
            for b, batches in enumerate(zip(*streams)):
                rngs = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(r, epoch), b))(train_rngs)
                states, metrics = trainer.step(states, trainer.place_batch(list(batches)), rngs, active=active)
                pending.append(metrics)
            pending = jax.device_get(pending)
            train_metrics = [{k: float(np.mean([p[k][m] for p in pending])) for k in pending[0]}
                             for m in range(len(seeds))]
            for m, tm in enumerate(train_metrics):
                if not all(np.isfinite(v) for v in tm.values()):
                    raise FloatingPointError(f"split {index} epoch {epoch + 1} seed {seeds[m]}: non-finite "
                                             f"training loss {tm}; not saving this state")
            evaluate(epoch + 1, train_metrics, time.time() - t0)
            if reference.done():
                reference.result()  # a failure there stops the run now, not after the last epoch
            if (epoch + 1) % config.checkpoint.every == 0 or epoch + 1 == tcfg.num_epochs:
                ckpt.save(epoch + 1, states, histories, run_config)
    finally:
        ckpt.close()
    if not last:  # resumed after the last epoch: score the final parameters again
        evaluate(tcfg.num_epochs, None, 0.0, final=True)
    rnd, free = reference.result()
    return {"test_keys": list(split["test_keys"]), "training_free": free, "n_params": n_params,
            "buckets": list(trainer.buckets), "programs_compiled_so_far": compilation.counts()["compiled"],
            "members": [{"seed": s, "history": histories[m], "selection": report.select_models(histories[m]),
                         "random": rnd[m], "last_epoch_videos": last[m]} for m, s in enumerate(seeds)]}


def split_indices(config, splits) -> list:
    """The splits ``config.splits`` asks for (all when empty), each checked against the file."""
    indices = list(config.splits) if len(config.splits) else list(range(len(splits)))
    for i in indices:
        if not 0 <= i < len(splits):
            raise ValueError(f"config.splits has {i}, but the split file has {len(splits)} splits")
    return indices


def run(config, videos: dict, splits: list, workdir: str, seeds, sigmas=None, restart: bool = False,
        fingerprint_of_run: str = "", on_split=None) -> dict:
    """Every requested split of ``config`` (checked, its sources resolved), ``seeds`` as the
    members (``sigmas``: their sparsity targets), in the locked ``workdir``; calls
    ``on_split(index, record)`` after each split and returns ``{index: record}``."""
    indices = split_indices(config, splits)
    trainer = Trainer(config, videos, seeds, sigmas)
    trainer.check_fits(videos)
    short = no_shot_fits(videos, config.eval.budget)
    if short:
        report.log(f"note: {len(short)} of {len(videos)} videos have no shot that fits eval.budget="
                   f"{config.eval.budget} ({', '.join(short[:5])}{', ...' if len(short) > 5 else ''}): they are left "
                   "out of the F1 means and still scored by tau, rho and AP")
    is_main = jax.process_index() == 0
    records = {}
    with Workdir(workdir, config, restart, enabled=is_main, fingerprint=fingerprint_of_run or fingerprint(videos)):
        writer = MetricWriter(workdir, enabled=is_main)
        try:
            for i in indices:
                records[i] = train_split(trainer, videos, splits[i], i, os.path.join(workdir, f"split_{i}"), writer)
                if on_split is not None:
                    on_split(i, records[i])
        finally:
            writer.close()
    return records


def train_and_evaluate(config, workdir: str, restart: bool = False) -> dict:
    """``sgvs_jax.main``: a run of one member (``config.seed``); writes ``workdir/results.json``.

    The config is checked before anything is read, the data before anything is written;
    the workdir is locked for this process and resumed only by the same training config
    (``restart``: discard the old run's files first; see :mod:`sgvs_jax.workdir`).
    """
    check_config(config)
    if config.distributed:
        jax.distributed.initialize()
    videos, splits, where = load_dataset(config.data, config.splits)
    config, note = resolve_sources(config, videos)
    if note:
        report.log(note)
    results = {"data": where, "eval_mode": config.data.eval_mode, "selection_rules": report.RULES,
               "provenance": provenance(config), "splits": {}}
    unannotated = sorted(k for k, v in videos.items() if not scorable(v))
    if unannotated:
        results["unannotated_videos"] = unannotated
    if len(unannotated) == len(videos) and not len(config.splits):  # load_dataset made the one split
        report.log(f"note: no video has a user summary (your own videos): one model is trained on all {len(videos)} "
                   "(split 0, the checkpoint summarize uses); its lines show the losses and the score spread")
    elif unannotated:
        report.log(f"note: {len(unannotated)} of {len(videos)} videos have no user summary (e.g. from "
                   "sgvs_jax.app.extract_features): they are left out of F1 / tau / rho / AP (results.json: "
                   "unannotated_videos)")
    results["no_shot_fits"] = no_shot_fits(videos, config.eval.budget)
    results["data_fingerprint"] = fingerprint(videos)

    def on_split(i, record):  # results.json keeps one member's fields at the split's level
        (member,) = record["members"]
        results["splits"][str(i)] = {**{k: v for k, v in record.items() if k != "members"},
                                     **{k: v for k, v in member.items() if k != "seed"}}
        results["summary"] = report.summarize(results["splits"])
        if jax.process_index() == 0:
            write_json(os.path.join(workdir, "results.json"), results)

    records = run(config, videos, splits, workdir, [config.seed], restart=restart,
                  fingerprint_of_run=results["data_fingerprint"], on_split=on_split)
    report.log("\n" + report.summary_table(results["summary"], where, len(records), config.data.eval_mode))
    report.log(f"results: {os.path.join(workdir, 'results.json')}")
    return results
