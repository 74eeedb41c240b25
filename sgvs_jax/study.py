"""A reproducibility study in one command: variants x seeds x splits, with intervals.

    python -m sgvs_jax.study --config configs/tvsum_i3d.py --seeds 0-4 \\
        --variants sgvs,sgvs_no_title --workdir runs/study [--out benchmarks/results/x.json]

The seeds of a variant are **members of one compiled program**: the train state
has a leading members axis and ``jax.vmap`` runs each member's update with its
own keys and data order, exactly as ``sgvs_jax.main`` with that seed would (the
same numbers to float rounding, ``tests/test_study.py``); one compile, one
evaluation pass and one set of training-free rows serve every seed.  With several
devices the members axis is sharded over them (a ``members`` mesh axis).  Variants
that differ only in values the train state holds (:data:`VALUE_KEYS`: σ) are members
of the same program too; the others (:data:`VARIANTS`) run one after another, the
splits of a variant too.

Resumable like ``main``: ``W/<variant>/`` (``W/<a>+<b>/`` for a group of value-only
variants) is a workdir (one process, the same training config, seeds and data) with
each split's checkpoints of all members.
Writes ``W/<variant>/results.json`` (each member's history, its last epoch's
per-video metrics and scores), ``W/study.json`` and ``W/study.md``
(:mod:`sgvs_jax.study_report`).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sgvs_jax import cli, compilation, report, study_report
from sgvs_jax.checkpointing import Checkpointer
from sgvs_jax.config_check import check_config
from sgvs_jax.data import fingerprint, load_dataset, resolve_sources
from sgvs_jax.data.batching import normalize
from sgvs_jax.evaluation import random_baseline, training_free_baselines
from sgvs_jax.files import atomic_path, write_json
from sgvs_jax.train import Trainer, split_indices
from sgvs_jax.train_steps import SHARED_KEYS, active_stages, make_predict, make_train_step
from sgvs_jax.workdir import Workdir, training_config

NO_TITLE = {"data.semantic_sources": ("video_tokens",), "train.semantic_weight": 0.0}
# The paper's objective without a title (it collapses): the title-free signals tried instead of
# the teacher are each this plus one switch.
PAPER_NO_TITLE = {**NO_TITLE, "train.teacher": ""}
VARIANTS = {  # name -> config overrides; each ablation switches one thing back (configs/default.py)
    "sgvs": {},
    "sgvs_no_title": NO_TITLE,  # FSSA over the video's own tokens, no video-title term
    "no_teacher": {"train.teacher": ""},  # the paper's objective: no training-free teacher
    "no_title_no_teacher": PAPER_NO_TITLE,
    "no_title_video_term": {**PAPER_NO_TITLE, "train.video_weight": 0.5},  # + the video-identity term
    "no_title_rank_budget": {**PAPER_NO_TITLE, "train.budget": "rank"},  # a budget scores at sigma cannot meet
    "no_title_video_term_rank": {**PAPER_NO_TITLE, "train.video_weight": 0.5, "train.budget": "rank"},
    "no_title_masked_recon": {**PAPER_NO_TITLE, "train.recon_steps": "unselected"},  # rebuild the unkept steps
    "no_title_topk": {**PAPER_NO_TITLE, "train.selection": "topk"},  # a hard choice, straight-through gradient
    "no_title_clip_frames": {"data.semantic_sources": ("clip_frames",), "train.semantic_weight": 0.0},
    "no_title_step_scale": {**NO_TITLE, "model.visual_norm": "none"},  # the selector sees each step's scale
    "step_scale": {"model.visual_norm": "none"},
    "no_title_visual_only": {"data.semantic_sources": (), "model.use_fssa": False, "train.semantic_weight": 0.0},
    "no_semantic": {"train.semantic_weight": 0.0},
    "no_bottleneck": {"train.selection": "soft", "model.decoder_queries": "memory"},
    "pooled_recon": {"train.recon": "pooled", "train.feature_recon_weight": 0.0},
    "affine_cosine": {"model.cosine_term": "affine"},
    "l2_features": {"data.normalization": "l2"},
    "no_fssa": {"model.use_fssa": False},
    "no_adversarial": {"train.adversarial": False},
    "joint": {"train.schedule": "joint"},
    "sigma_0.15": {"train.sigma": 0.15},  # value-only variants: members of the program of the
    "sigma_0.5": {"train.sigma": 0.5},  # variant they differ from only in VALUE_KEYS
}
# Config values that live in the train state (a leaf of each member): variants that differ only in
# them train as members of one program.
VALUE_KEYS = ("train.sigma",)


def variant_config(config, name: str):
    """A copy of ``config`` with the variant's overrides."""
    if name not in VARIANTS:
        raise ValueError(f"--variants: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    c = config.copy_and_resolve_references()
    for dotted, value in VARIANTS[name].items():
        set_key(c, dotted, value)
    return c


def set_key(config, dotted: str, value) -> None:
    """``config['a']['b'] = value`` for ``dotted`` = 'a.b'."""
    *parents, last = dotted.split(".")
    for p in parents:
        config = config[p]
    config[last] = value


class Members:
    """The vmapped update and scorer of a trainer's model for ``n`` members, and the
    placement of stacked states and batches (members axis sharded over the devices
    when they divide it, else on one device)."""

    def __init__(self, trainer: Trainer, n: int):
        self.trainer, self.n = trainer, n
        devices = jax.devices()
        devices = devices if n % len(devices) == 0 else devices[:1]
        self.mesh = Mesh(np.array(devices), ("members",))
        self.split, self.whole = NamedSharding(self.mesh, P("members")), NamedSharding(self.mesh, P())
        step, predict = make_train_step(trainer.model, trainer.stages, trainer.config.train), make_predict(
            trainer.model, outputs=("scores", "h", "cos", "alpha"))

        def members_step(states, batch, rngs, active):
            axes = {k: None if k in SHARED_KEYS else 0 for k in batch}
            return jax.vmap(lambda s, b, r: step(s, b, r, active), in_axes=(0, axes, 0))(states, batch, rngs)

        self.step = compilation.jit(members_step, static_argnames="active", donate_argnums=0)
        self.predict = compilation.jit(jax.vmap(predict, in_axes=(0, None)))
        self._own = jax.jit(lambda s: jax.tree_util.tree_map(jnp.copy, s), out_shardings=self.split)

    def states(self, states):
        """Stacked (leading members axis) states placed on the devices, in buffers the
        runtime owns (so that the update's donation reuses them)."""
        return self._own(jax.device_put(jax.device_get(states), self.split))

    def batch(self, batches: list) -> dict:
        """One batch per member, stacked; the shared banks (SHARED_KEYS) once."""
        out = {}
        for k in batches[0]:
            out[k] = jax.device_put(batches[0][k], self.whole) if k in SHARED_KEYS else \
                jax.device_put(np.stack([b[k] for b in batches]), self.split)
        return out

    def outputs(self, params, videos) -> list[dict]:
        """Per member: key -> selector outputs, as :meth:`Trainer.predict_outputs`."""
        from sgvs_jax.data import iterate_batches
        tr, out = self.trainer, [{} for _ in range(self.n)]
        for keys, batch in iterate_batches(videos, tr.config.train.batch_size, tr.buckets, None,
                                           **tr.batch_options):
            o = jax.device_get(self.predict(params, jax.device_put(batch, self.whole)))
            for m in range(self.n):
                for i, k in enumerate(keys):
                    if k is not None:
                        n = batch["mask"][i].sum()
                        out[m][k] = {name: np.asarray(v[m]) if v.ndim == 1 else np.asarray(v[m, i, :n])
                                     for name, v in o.items()}
        return out


def reference_rows(config, videos, test_keys, index: int, seeds) -> tuple:
    """Random scores per member (seeded as ``main``: seed + split index) and the
    training-free rows (the same for every seed: computed once)."""
    rnd = [random_baseline(videos, test_keys, config.data.eval_mode, config.eval.random_draws, seed=s + index,
                           budget=config.eval.budget) for s in seeds]
    free = training_free_baselines(videos, test_keys, config.data.eval_mode, config.eval.budget,
                                   features=lambda v: normalize(v.features, config.data.normalization))
    return rnd, free


def train_split(members: Members, videos: dict, split: dict, index: int, seeds: list, workdir: str,
                sigmas: list | None = None) -> dict:
    """Trains every member on one split; returns the split's record.  ``seeds`` has each
    member's seed; ``sigmas``, where given, each member's sparsity target (the state's
    ``sigma`` leaf), so that value-only variants share the program."""
    trainer = members.trainer
    config, tcfg = trainer.config, trainer.config.train
    train_videos = [videos[k] for k in split["train_keys"]]
    test_videos = [videos[k] for k in split["test_keys"]]
    keys = [jax.random.split(jax.random.fold_in(jax.random.PRNGKey(s), index)) for s in seeds]
    train_rngs = jnp.stack([k[1] for k in keys])
    states = [trainer.init_state(k[0], train_videos[0]) for k in keys]
    states = jax.tree_util.tree_map(lambda *x: np.stack([np.asarray(v) for v in x]), *states)
    if sigmas is not None:
        states["sigma"] = np.asarray(sigmas, np.float32)

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
    run_config = {**training_config(config), "study_seeds": list(seeds),
                  **({"study_sigmas": [float(x) for x in sigmas]} if sigmas is not None else {})}
    histories, start, latest = [[] for _ in seeds], 0, ckpt.latest_step()
    if latest is not None:
        states, histories = ckpt.restore(latest, states, run_config)
        start = latest
        report.log(f"split {index}: resumed at epoch {latest} from {ckpt.directory}")
    states = members.states(states)
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sgvs_reference")
    reference = worker.submit(reference_rows, config, videos, split["test_keys"], index, seeds)
    worker.shutdown(wait=False)
    banks = trainer.banks(train_videos)
    last = {}

    def on_training_videos():
        """Each member's metrics on its split's training videos, every epoch: what settings
        are chosen by (their annotations, never the test videos'; benchmarks/select_settings.py)."""
        outputs = members.outputs(states["params"], train_videos)
        return [{k: v for k, v in trainer.evaluate_outputs(o, videos).items() if k in report.METRICS}
                for o in outputs]

    def evaluate(epoch, train_metrics, seconds):
        outputs, seen = members.outputs(states["params"], test_videos), on_training_videos()
        for m, history in enumerate(histories):
            test = trainer.evaluate_outputs(outputs[m], videos, per_video=epoch == tcfg.num_epochs)
            if "per_video" in test:
                last[m] = {"per_video": test.pop("per_video"), "training_videos": seen[m],
                           "scores": {k: np.round(o["scores"], 5).tolist() for k, o in outputs[m].items()}}
            history.append({"epoch": epoch, "train": train_metrics[m], "test": test,
                            "training_videos": seen[m], "seconds": seconds})
        taus = " ".join(f"{h[-1]['test']['tau']:+.3f}" for h in histories)
        report.log(f"split {index} epoch {epoch:3d}/{tcfg.num_epochs}  tau per member {taus}  ({seconds:.1f} s)")

    if start == 0:
        evaluate(0, [{}] * len(seeds), 0.0)
    try:
        for epoch in range(start, tcfg.num_epochs):
            t0, active = time.time(), active_stages(trainer.stages, epoch)
            orders = [trainer.epoch_order(index, epoch, s) for s in seeds]
            streams = [trainer.host_batches(train_videos, order, banks, buckets) for order, buckets in orders]
            pending = []
            for b, batches in enumerate(zip(*streams)):
                rngs = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(r, epoch), b))(train_rngs)
                states, metrics = members.step(states, members.batch(list(batches)), rngs, active=active)
                pending.append(metrics)
            pending = jax.device_get(pending)
            train_metrics = [{k: float(np.mean([p[k][m] for p in pending])) for k in pending[0]}
                             for m in range(len(seeds))]
            for m, tm in enumerate(train_metrics):
                if not all(np.isfinite(v) for v in tm.values()):
                    raise FloatingPointError(f"split {index} epoch {epoch + 1} seed {seeds[m]}: non-finite "
                                             f"training loss {tm}; not saving this state")
            evaluate(epoch + 1, train_metrics, time.time() - t0)
            if (epoch + 1) % config.checkpoint.every == 0 or epoch + 1 == tcfg.num_epochs:
                ckpt.save(epoch + 1, states, histories, run_config)
    finally:
        ckpt.close()
    rnd, free = reference.result()
    if not last:  # resumed after the last epoch: score the final parameters again
        outputs, seen = members.outputs(states["params"], test_videos), on_training_videos()
        for m in range(len(seeds)):
            test = trainer.evaluate_outputs(outputs[m], videos, per_video=True)
            last[m] = {"per_video": test["per_video"], "training_videos": seen[m],
                       "scores": {k: np.round(o["scores"], 5).tolist() for k, o in outputs[m].items()}}
    return {"test_keys": list(split["test_keys"]), "training_free": free,
            "members": [{"seed": s, "history": histories[m], "selection": report.select_models(histories[m]),
                         "random": rnd[m], "last_epoch_videos": last[m]} for m, s in enumerate(seeds)]}


def run_variant(config, seeds: list, workdir: str, videos, splits, where, restart: bool = False) -> dict:
    """Every split of one variant's config, all seeds as members; writes
    ``workdir/results.json`` after each split."""
    return run_group({"variant": config}, seeds, workdir, videos, splits, where, restart)["variant"]


def run_group(configs: dict, seeds: list, workdir: str, videos, splits, where, restart: bool = False) -> dict:
    """Variants that differ only in VALUE_KEYS (``configs``: name -> config), every seed of
    each, as the members of one program; writes ``workdir/results.json`` after each split and
    returns ``{name: its results}`` (one variant: the workdir's results; several: each
    variant's share of the group's, its members labelled with their ``variant``)."""
    names = list(configs)
    base, grouped = configs[names[0]], len(names) > 1
    check_config(base)
    indices = split_indices(base, splits)
    trainer = Trainer(base, videos)
    member_seeds = [s for _ in names for s in seeds]
    sigmas = [float(configs[n].train.sigma) for n in names for _ in seeds] if grouped else None
    members = Members(trainer, len(member_seeds))
    trainer.check_fits(videos, len(member_seeds) * base.train.batch_size // len(members.mesh.devices.flat))
    from sgvs_jax.provenance import provenance
    common = {"data": where, "seeds": list(seeds), "data_fingerprint": fingerprint(videos)}
    results = {**common, **({"variants": names, "sigmas": sigmas} if grouped else {}),
               "provenance": provenance(base), "splits": {}}
    out = {n: {**common, "provenance": provenance(configs[n]), "splits": {}} for n in names} if grouped else \
        {names[0]: results}
    group = f";variants={names};sigmas={sigmas}" if grouped else ""
    with Workdir(workdir, base, restart, fingerprint=f"{common['data_fingerprint']};seeds={seeds}{group}"):
        for i in indices:
            record = train_split(members, videos, splits[i], i, member_seeds, os.path.join(workdir, f"split_{i}"),
                                 sigmas)
            results["splits"][str(i)] = record
            if grouped:
                for m, member in enumerate(record["members"]):
                    member["variant"] = names[m // len(seeds)]
                for n in names:
                    out[n]["splits"][str(i)] = {**record, "members": [m for m in record["members"]
                                                                      if m["variant"] == n]}
            write_json(os.path.join(workdir, "results.json"), results)
    return out


def program_groups(configs: dict) -> list[list[str]]:
    """The variants (in order) grouped by their training config without VALUE_KEYS: each
    group trains as one program."""
    groups: dict[str, list[str]] = {}
    for name, c in configs.items():
        c = c.copy_and_resolve_references()
        for dotted in VALUE_KEYS:
            set_key(c, dotted, None)
        groups.setdefault(json.dumps(training_config(c), sort_keys=True), []).append(name)
    return list(groups.values())


def run_study(config, seeds: list, variants: list, workdir: str, restart: bool = False) -> dict:
    """Every variant in ``variants`` (names of :data:`VARIANTS`) over ``seeds``; writes
    ``workdir/study.json`` and ``workdir/study.md`` and returns the study."""
    configs = {v: variant_config(config, v) for v in variants}  # unknown names fail before any work
    for c in configs.values():
        check_config(c)
    videos, splits, where = load_dataset(config.data)
    runs = {}
    for name, c in configs.items():
        configs[name], note = resolve_sources(c, videos)
        if note:
            report.log(f"variant {name}: {note}")
    for group in program_groups(configs):
        report.log(f"variant{'s' * (len(group) > 1)} {', '.join(group)}: seeds {seeds}"
                   + (" (one program: they differ only in " + ", ".join(VALUE_KEYS) + ")" if len(group) > 1 else ""))
        runs.update(run_group({n: configs[n] for n in group}, seeds, os.path.join(workdir, "+".join(group)),
                              videos, splits, where, restart))
    runs = {name: runs[name] for name in configs}
    study = study_report.summarize(runs)
    write_json(os.path.join(workdir, "study.json"), study)
    table = study_report.table(study)
    with atomic_path(os.path.join(workdir, "study.md")) as tmp, open(tmp, "w") as f:
        f.write(f"{STUDY_MARK}\n{table}\n")
    report.log("\n" + table)
    return study


STUDY_MARK = "<!-- written by sgvs_jax.study; the numbers are in study.json beside it -->"


def study_outputs(workdir: str, out: str = "") -> tuple[dict, dict]:
    """The files a study writes besides its workdirs, and for each the test that an existing file
    there is an earlier study's (:func:`sgvs_jax.cli.guard`)."""
    from sgvs_jax.files import read_json

    def md_is_ours(path):
        with open(path, errors="replace") as f:
            return f.readline().rstrip("\n") in (STUDY_MARK, study_report.TABLE_HEADER)

    def json_is_ours(path):
        r = read_json(path)
        return isinstance(r, dict) and (cli.written_by(PROGRAM)(path) or "variants" in r and "command" not in r)

    outputs, ours = ({"--out": out}, {"--out": cli.written_by(PROGRAM)}) if out else ({}, {})
    outputs.update({"W/study.json": os.path.join(workdir, "study.json"),
                    "W/study.md": os.path.join(workdir, "study.md")})
    ours.update({"W/study.json": json_is_ours, "W/study.md": md_is_ours})
    return outputs, ours


PROGRAM = "sgvs_jax.study"


def main(argv=None):
    from absl import app, flags

    cli.define_run_flags("runs/study")
    FLAGS = flags.FLAGS
    flags.DEFINE_string("seeds", "0-2", "Seeds: a range '0-4' or a list '0,3,7'.")
    flags.DEFINE_string("variants", "sgvs", f"Comma-separated, from: {', '.join(VARIANTS)}.")
    flags.DEFINE_string("out", "", "Also write the study (with the command and provenance) to this JSON file.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing output (--out, W/study.json, W/study.md) of the "
                      "same kind that sgvs_jax.study did not write (an input is never replaced).")

    def run(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")

        def work():
            seeds = cli.parse_seeds(FLAGS.seeds)
            variants = cli.parse_names(FLAGS.variants, "--variants", VARIANTS, "variant")
            outputs, ours = study_outputs(FLAGS.workdir, FLAGS.out)
            cli.guard(outputs, cli.config_inputs(FLAGS.config, cli.config_file()), FLAGS.overwrite, ours,
                      kinds={"--out": "json", "W/study.json": "json"})
            compilation.enable(FLAGS.config.compilation_cache_dir)
            study = run_study(FLAGS.config, seeds, variants, FLAGS.workdir, FLAGS.restart)
            if FLAGS.out:
                from sgvs_jax.provenance import provenance
                cli.write_result(FLAGS.out, {**study, "provenance": provenance(FLAGS.config)}, PROGRAM)

        cli.run(work, FLAGS.debug)

    app.run(run, argv, flags_parser=cli.parse_run_flags)


if __name__ == "__main__":
    main()
