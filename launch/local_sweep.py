"""Runs a config over several seeds and ablation variants, then tabulates.

    python launch/local_sweep.py --config configs/tvsum_i3d.py --seeds 0 1 2 \
        --variants sgvs no_fssa no_adversarial joint --workdir runs/sweep_tvsum [--parallel 1] \
        [-- --config.train.num_epochs=20 ...]

Each (variant, seed) is one ``python -m sgvs_jax.main`` run in
``WORKDIR/<variant>/seed_<s>`` (resumable: a finished run is not repeated, a
killed one resumes from its checkpoints).  Writes ``WORKDIR/sweep.json`` and
prints a Markdown table: F1 / tau / rho as mean over splits and seeds, with the
std over splits (averaged over seeds) and the std over seeds of the split means.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

VARIANTS = {
    "sgvs": [],
    "no_fssa": ["--config.model.use_fssa=False"],
    "no_adversarial": ["--config.train.adversarial=False"],
    "joint": ["--config.train.schedule=joint"],
}
RULES = ("last_epoch", "min_train_loss", "max_test_f1_optimistic")
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


def table(workdir, variants, seeds) -> tuple[str, dict]:
    agg = {}
    for v in variants:
        runs = []
        for s in seeds:
            path = os.path.join(workdir, v, f"seed_{s}", "results.json")
            if os.path.exists(os.path.join(workdir, v, f"seed_{s}", "DONE")):
                runs.append(json.load(open(path)))
        if not runs:
            continue
        agg[v] = {"n_seeds": len(runs), "n_splits": len(runs[0]["splits"])}
        for rule in RULES + ("random",):
            entry = {}
            for m in METRICS:
                if rule == "random":
                    per_split = [[sp["random"][m] for sp in r["splits"].values()] for r in runs]
                else:
                    per_split = [[sp["selection"][rule][m] for sp in r["splits"].values()] for r in runs]
                per_split = np.array(per_split)  # (seeds, splits)
                entry[m] = {"mean": float(per_split.mean()),
                            "std_over_splits": float(per_split.std(axis=1).mean()),
                            "std_over_seeds": float(per_split.mean(axis=1).std())}
            agg[v][rule] = entry
    lines = ["| variant | rule | F1 | Kendall τ | Spearman ρ | seeds × splits |", "|---|---|---|---|---|---|"]
    for v, a in agg.items():
        for rule in RULES + ("random",):
            e = a[rule]
            cells = [f"{e['f1']['mean']:.2f} ± {e['f1']['std_over_splits']:.2f} (seeds ± {e['f1']['std_over_seeds']:.2f})"]
            cells += [f"{e[m]['mean']:+.3f} ± {e[m]['std_over_splits']:.3f}" for m in ("tau", "rho")]
            lines.append(f"| {v} | {rule} | " + " | ".join(cells) + f" | {a['n_seeds']} × {a['n_splits']} |")
    return "\n".join(lines), agg


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--parallel", type=int, default=1, help="runs at once")
    p.add_argument("--table_only", action="store_true", help="tabulate finished runs, start nothing")
    args = p.parse_args(argv)
    cache = os.path.abspath(os.path.join(args.workdir, "jax_cache"))
    queue = [] if args.table_only else [(v, s) for s in args.seeds for v in args.variants]  # seed-major
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
    md, agg = table(args.workdir, args.variants, args.seeds)
    with open(os.path.join(args.workdir, "sweep.json"), "w") as f:
        json.dump({"config": args.config, "seeds": args.seeds, "extra": extra, "results": agg}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
