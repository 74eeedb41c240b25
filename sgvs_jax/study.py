"""A reproducibility study in one command: variants x seeds x splits, with intervals.

    python -m sgvs_jax.study --config configs/tvsum_i3d.py --seeds 0-4 \\
        --variants sgvs,sgvs_no_title --workdir runs/study [--out benchmarks/results/x.json]

A study adds to a run (:func:`sgvs_jax.train.run`, the one loop) only what makes it a
study: named variants (:data:`VARIANTS`, each a few config overrides), seed lists, and the
report.  The seeds of a variant are the **members** of one run, trained as one compiled
program, each exactly as ``sgvs_jax.main`` with that seed would be; variants that differ
only in values the train state holds (:data:`VALUE_KEYS`: sigma) are members of one run
too.  Other variants run one after another.

``W/<variant>/`` (``W/<a>+<b>/`` for a group) is a run's workdir, resumable like ``main``'s;
it holds ``results.json`` (each member's history, its last epoch's per-video metrics and
scores).  The study writes ``W/study.json`` and ``W/study.md`` (:mod:`sgvs_jax.study_report`).
"""

from __future__ import annotations

import json
import os

from sgvs_jax import cli, compilation, report, study_report
from sgvs_jax.config_check import check_config
from sgvs_jax.data import fingerprint, load_dataset, resolve_sources
from sgvs_jax.files import atomic_path, write_json
from sgvs_jax.train import run
from sgvs_jax.workdir import training_config

NO_TITLE = {"data.semantic_sources": ("video_tokens",), "train.semantic_weight": 0.0}
PAPER_NO_TITLE = {**NO_TITLE, "train.teacher": ""}  # the paper's objective without a title (it collapses)
VARIANTS = {  # name -> config overrides; each ablation switches one thing back (configs/default.py)
    "sgvs": {},
    "sgvs_no_title": NO_TITLE,  # FSSA over the video's own tokens, no video-title term
    "no_teacher": {"train.teacher": ""},  # the paper's objective: no training-free teacher
    "no_title_no_teacher": PAPER_NO_TITLE,
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
        cli.set_config_key(c, dotted, value, f"variant {name}")
    return c


def run_group(configs: dict, seeds: list, workdir: str, videos, splits, where, restart: bool = False) -> dict:
    """Variants that differ only in VALUE_KEYS (``configs``: name -> config), every seed of
    each, as the members of one run; writes ``workdir/results.json`` after each split and
    returns ``{name: its results}`` (each variant's share, its members labelled with it)."""
    names = list(configs)
    base, grouped = configs[names[0]], len(names) > 1
    check_config(base)
    member_seeds = [s for _ in names for s in seeds]
    sigmas = [float(configs[n].train.sigma) for n in names for _ in seeds]
    from sgvs_jax.provenance import provenance
    common = {"data": where, "seeds": list(seeds), "data_fingerprint": fingerprint(videos)}
    results = {**common, **({"variants": names, "sigmas": sigmas} if grouped else {}),
               "provenance": provenance(base), "splits": {}}
    out = {n: {**common, "provenance": provenance(configs[n]), "splits": {}} for n in names}

    def on_split(i, record):
        for m, member in enumerate(record["members"]):
            member["variant"] = names[m // len(seeds)]
        results["splits"][str(i)] = record
        for n in names:
            out[n]["splits"][str(i)] = {**record, "members": [m for m in record["members"] if m["variant"] == n]}
        write_json(os.path.join(workdir, "results.json"), results)

    group = f";variants={names};sigmas={sigmas}" if grouped else ""
    run(base, videos, splits, workdir, member_seeds, sigmas, restart,
        fingerprint_of_run=f"{common['data_fingerprint']};seeds={seeds}{group}", on_split=on_split)
    return out


def program_groups(configs: dict) -> list[list[str]]:
    """The variants (in order) grouped by their training config without VALUE_KEYS: each
    group trains as one program."""
    groups: dict[str, list[str]] = {}
    for name, c in configs.items():
        c = c.copy_and_resolve_references()
        for dotted in VALUE_KEYS:
            cli.set_config_key(c, dotted, None, "VALUE_KEYS")
        groups.setdefault(json.dumps(training_config(c), sort_keys=True), []).append(name)
    return list(groups.values())


def run_study(config, seeds: list, variants: list, workdir: str, restart: bool = False) -> dict:
    """Every variant in ``variants`` (names of :data:`VARIANTS`) over ``seeds``; writes
    ``workdir/study.json`` and ``workdir/study.md`` and returns the study."""
    configs = {v: variant_config(config, v) for v in variants}  # unknown names fail before any work
    for c in configs.values():
        check_config(c)
    videos, splits, where = load_dataset(config.data, config.splits)
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
