"""Runs a config over seeds and ablation variants, then tabulates against the baselines.

    python launch/local_sweep.py --config configs/tvsum_i3d.py --seeds 0 1 2 --ablation_seeds 0 \
        --workdir runs/sweep_tvsum --out benchmarks/results/tvsum_i3d.json [--parallel 2] \
        [-- --config.train.num_epochs=20 ...]

Each (variant, seed) is one ``python -m sgvs_jax.main`` run in
``WORKDIR/<variant>/seed_<s>`` (resumable: a finished run is not repeated, a
killed one resumes from its checkpoints).  ``sgvs`` and ``sgvs_no_title`` run on
``--seeds``, every other variant on ``--ablation_seeds``.  Prints a Markdown table (F1 / tau / rho
and score spread: mean over splits and seeds, ± the std over splits averaged over
seeds) with, for every variant, the untrained model (epoch 0) beside the
selection rules, then random and training-free scores through the same
pipeline; writes ``WORKDIR/sweep.json`` and, with ``--out``, the study's summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax.provenance import provenance  # noqa: E402

NO_TITLE = ["--config.data.semantic_sources=('video_tokens',)", "--config.train.semantic_weight=0"]
VARIANTS = {
    "sgvs": [],
    # without titles: FSSA over the video's own tokens, no video-title term
    "sgvs_no_title": NO_TITLE,
    "no_title_video_term": NO_TITLE + ["--config.train.video_weight=0.5"],  # + the video-identity term
    "no_title_visual_only": ["--config.data.semantic_sources=()", "--config.model.use_fssa=False",
                             "--config.train.semantic_weight=0"],
    # each ablation switches one thing back (see configs/default.py)
    "no_semantic": ["--config.train.semantic_weight=0"],
    "no_bottleneck": ["--config.train.selection=soft", "--config.model.decoder_queries=memory"],
    "pooled_recon": ["--config.train.recon=pooled", "--config.train.feature_recon_weight=0"],
    "affine_cosine": ["--config.model.cosine_term=affine"],
    "l2_features": ["--config.data.normalization=l2"],
    "no_fssa": ["--config.model.use_fssa=False"],
    "no_adversarial": ["--config.train.adversarial=False"],
    "joint": ["--config.train.schedule=joint"],
}
FULL_MODELS = ("sgvs", "sgvs_no_title")  # run on --seeds; every other variant on --ablation_seeds
RULES = ("last_epoch", "untrained", "max_test_f1_optimistic")
METRICS = ("f1", "tau", "rho")


def run_one(config, variant, seed, workdir, extra, cache_dir):
    out = os.path.join(workdir, variant, f"seed_{seed}")
    if os.path.exists(os.path.join(out, "DONE")):
        return out, None
    cmd = [sys.executable, "-m", "sgvs_jax.main", f"--config={config}", f"--workdir={out}",
           f"--config.seed={seed}", f"--config.compilation_cache_dir={cache_dir}"] + VARIANTS[variant] + extra
    os.makedirs(out, exist_ok=True)
    log = open(os.path.join(out, "log.txt"), "a")
    return out, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _stats(per_split: np.ndarray) -> dict:
    """(seeds, splits) -> mean, std over splits (averaged over seeds), std over seeds."""
    return {"mean": float(per_split.mean()), "std_over_splits": float(per_split.std(axis=1).mean()),
            "std_over_seeds": float(per_split.mean(axis=1).std())}


def aggregate(workdir, variants, seeds_of, tuning_split=None) -> dict:
    """Per variant: every rule's metrics (and spread), the learning gain per split,
    and the baselines (random, training-free) of its runs; with ``tuning_split``
    (the split whose test annotations were looked at to choose settings) also the
    last-epoch means over the other splits."""
    agg = {}
    for v in variants:
        runs = [json.load(open(os.path.join(workdir, v, f"seed_{s}", "results.json"))) for s in seeds_of(v)
                if os.path.exists(os.path.join(workdir, v, f"seed_{s}", "DONE"))]
        if not runs:
            continue
        if tuning_split is not None:
            rows = [sp["selection"]["last_epoch"] for r in runs for k, sp in r["splits"].items()
                    if k != str(tuning_split)]
            tuned = {m: float(np.mean([x[m] for x in rows])) for m in METRICS + ("spread",)}
        splits = [list(r["splits"].values()) for r in runs]
        a = {"seeds": len(runs), "splits": len(splits[0])}
        for rule in RULES:
            a[rule] = {m: _stats(np.array([[sp["selection"][rule][m] for sp in r] for r in splits]))
                       for m in METRICS + ("spread",)}
        gain = np.array([[sp["selection"]["last_epoch"]["tau"] - sp["selection"]["untrained"]["tau"] for sp in r]
                         for r in splits])
        a["learning_gain_tau"] = {**_stats(gain), "runs_x_splits_gained": int((gain > 0).sum()),
                                  "runs_x_splits": int(gain.size)}
        a["baselines"] = {"random": {m: _stats(np.array([[sp["random"][m] for sp in r] for r in splits]))
                                     for m in METRICS}}
        for name in splits[0][0]["training_free"]:
            a["baselines"][name] = {m: _stats(np.array([[sp["training_free"][name][m] for sp in r]
                                                        for r in splits])) for m in METRICS + ("spread",)}
        per_split = {m: np.array([[sp["selection"]["last_epoch"][m] for sp in r] for r in splits]).mean(0)
                     for m in METRICS + ("spread",)}
        a["per_split"] = {m: [round(float(x), 4) for x in v] for m, v in per_split.items()}
        a["min_spread"] = float(min(sp["selection"]["last_epoch"]["spread"] for r in splits for sp in r))
        a["per_split_gain_tau"] = [round(float(x), 4) for x in gain.mean(0)]
        refs = {"random": [[sp["random"] for sp in r] for r in splits]}
        refs.update({name: [[sp["training_free"][name] for sp in r] for r in splits]
                     for name in splits[0][0]["training_free"]})
        a["baselines_per_split"] = {name: {m: [round(float(x), 4) for x in np.array(
            [[row[m] for row in r] for r in rows]).mean(0)] for m in METRICS} for name, rows in refs.items()}
        a["vs_reference"] = {}  # per reference row: tau wins per split and the mean difference (std over splits)
        for name, b in a["baselines_per_split"].items():
            diff = per_split["tau"] - np.array(b["tau"])
            a["vs_reference"][name] = {"tau_wins": f"{int((diff > 0).sum())} of {len(diff)} splits",
                                       "tau_mean_difference": round(float(diff.mean()), 4),
                                       "tau_difference_std_over_splits": round(float(diff.std()), 4)}
        if tuning_split is not None:
            a["last_epoch_without_tuning_split"] = tuned
        agg[v] = a
    return agg


def study_summary(agg: dict, args, extra) -> dict:
    """The committed summary: means over splits x seeds (the issue's shape), with
    the std over splits, the per-split learning gain, and provenance."""
    def flat(entry, metrics=METRICS + ("spread",)):
        return {m: round(entry[m]["mean"], 4) for m in metrics if m in entry} | {
            f"{m}_std_over_splits": round(entry[m]["std_over_splits"], 4) for m in METRICS if m in entry}

    out = {}
    for v, a in agg.items():
        out[v] = {"seeds": a["seeds"], "splits": a["splits"], **{rule: flat(a[rule]) for rule in RULES},
                  "per_split": a["per_split"], "min_spread": round(a["min_spread"], 4),
                  "learning_gain_tau": {"mean": round(a["learning_gain_tau"]["mean"], 4),
                                        "per_split": a["per_split_gain_tau"],
                                        "gained": f"{a['learning_gain_tau']['runs_x_splits_gained']} of "
                                                  f"{a['learning_gain_tau']['runs_x_splits']} seed x split runs"},
                  "vs_reference": a["vs_reference"]}
    ref = agg.get("sgvs", next(iter(agg.values())))
    out["baselines"] = {name: {**flat(b), "per_split": ref["baselines_per_split"][name]}
                        for name, b in ref["baselines"].items()}
    for v, a in agg.items():
        if "last_epoch_without_tuning_split" in a:
            out[v]["last_epoch_without_tuning_split"] = {
                m: round(x, 4) for m, x in a["last_epoch_without_tuning_split"].items()}
            out[v]["tuning_split"] = args.tuning_split
    out["command"] = " ".join(["python launch/local_sweep.py"] + sys.argv[1:])
    out["provenance"] = {k: v for k, v in provenance().items() if k != "config"}
    out["provenance"].update(config=args.config, extra_overrides=extra, seeds=args.seeds,
                             ablation_seeds=args.ablation_seeds)
    return out


def table(agg: dict) -> str:
    lines = ["| variant | rule | F1 | Kendall τ | Spearman ρ | spread | seeds × splits |",
             "|---|---|---|---|---|---|---|"]

    def row(name, rule, e, n):
        cells = [f"{e['f1']['mean']:.2f} ± {e['f1']['std_over_splits']:.2f}"]
        cells += [f"{e[m]['mean']:+.3f} ± {e[m]['std_over_splits']:.3f}" for m in ("tau", "rho")]
        cells.append(f"{e['spread']['mean']:.3f}" if "spread" in e else "")
        lines.append(f"| {name} | {rule} | " + " | ".join(cells) + f" | {n} |")

    for v, a in agg.items():
        for rule in RULES:
            row(v, rule, a[rule], f"{a['seeds']} × {a['splits']}")
    base = agg.get("sgvs", next(iter(agg.values())))
    for name, b in base["baselines"].items():
        row(name if name == "random" else f"training-free {name}", "", b, f"{base['seeds']} × {base['splits']}")
    return "\n".join(lines)


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the full models (FULL_MODELS)")
    p.add_argument("--ablation_seeds", type=int, nargs="+", default=None,
                   help="seeds of the other variants (default: --seeds)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--parallel", type=int, default=1, help="runs at once")
    p.add_argument("--out", default="", help="write the study summary JSON here")
    p.add_argument("--table_only", action="store_true", help="tabulate finished runs, start nothing")
    p.add_argument("--tuning_split", type=int, default=None,
                   help="the split whose test annotations were looked at to choose settings: the summary "
                        "also gives the last-epoch means over the other splits")
    args = p.parse_args(argv)
    args.ablation_seeds = args.ablation_seeds or args.seeds

    def seeds_of(v):
        return args.seeds if v in FULL_MODELS else args.ablation_seeds

    cache = os.path.abspath(os.path.join(args.workdir, "jax_cache"))
    queue = [] if args.table_only else [(v, s) for v in args.variants for s in seeds_of(v)]
    running = []
    t0 = time.time()
    while queue or running:
        while queue and len(running) < args.parallel:
            v, s = queue.pop(0)
            out, proc = run_one(args.config, v, s, args.workdir, extra, cache)
            if proc is not None:
                print(f"[{time.time() - t0:6.0f} s] start {v} seed {s}", flush=True)
                running.append((v, s, out, proc))
        for item in list(running):
            v, s, out, proc = item
            if proc.poll() is not None:
                running.remove(item)
                if proc.returncode == 0:
                    open(os.path.join(out, "DONE"), "w").close()
                    print(f"[{time.time() - t0:6.0f} s] done  {v} seed {s}", flush=True)
                else:
                    print(f"[{time.time() - t0:6.0f} s] FAILED {v} seed {s} (rc {proc.returncode}); "
                          f"see {out}/log.txt", flush=True)
        time.sleep(1)
    agg = aggregate(args.workdir, args.variants, seeds_of, args.tuning_split)
    with open(os.path.join(args.workdir, "sweep.json"), "w") as f:
        json.dump({"config": args.config, "seeds": args.seeds, "ablation_seeds": args.ablation_seeds,
                   "extra": extra, "results": agg}, f, indent=1)
    if args.out and agg:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        summary = study_summary(agg, args, extra)
        with open(args.out + ".tmp", "w") as f:
            json.dump(summary, f, indent=1)
        os.replace(args.out + ".tmp", args.out)
        print(f"summary: {args.out}")
    print(table(agg))


if __name__ == "__main__":
    main()
