"""A study's seeds as members of one program vs one `main` run per seed, side by side.

    python benchmarks/study_speed.py --config configs/tvsum_i3d.py --seeds 0-4 \\
        --workdir runs/study_speed --out benchmarks/results/study_speed.json \\
        [--study_out benchmarks/results/tvsum_i3d_study.json]

Runs ``python -m sgvs_jax.study`` once (every seed a member) and ``python -m
sgvs_jax.main`` once per seed, one after another, on the same machine; each side
starts with its own empty compilation cache (the sequential runs after the first
read the programs the first compiled, as a user's would).  Writes the wall times,
the speedup, the largest difference between a member's and its `main` run's
last-epoch tau, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax.files import write_json  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402
from sgvs_jax.study import parse_seeds  # noqa: E402


def timed(cmd) -> float:
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--study_out", default="")
    args, extra = ap.parse_known_args()
    seeds = parse_seeds(args.seeds)
    if os.path.exists(args.workdir):
        raise SystemExit(f"--workdir {args.workdir} exists: give a new folder (timings need fresh runs)")
    os.makedirs(args.workdir)
    w = args.workdir
    study_cmd = [sys.executable, "-m", "sgvs_jax.study", f"--config={args.config}", f"--seeds={args.seeds}",
                 "--variants=sgvs", f"--workdir={w}/study", f"--config.compilation_cache_dir={w}/cache_study"] + extra
    if args.study_out:
        study_cmd.append(f"--out={args.study_out}")
    study_s = timed(study_cmd)
    print(f"study: {study_s:.1f} s", flush=True)
    sequential_s = 0.0
    for s in seeds:
        sequential_s += timed([sys.executable, "-m", "sgvs_jax.main", f"--config={args.config}", f"--config.seed={s}",
                               f"--workdir={w}/main_{s}", f"--config.compilation_cache_dir={w}/cache_main"] + extra)
        print(f"main seed {s}: {sequential_s:.1f} s so far", flush=True)
    members = json.load(open(f"{w}/study/sgvs/results.json"))["splits"]
    diff = 0.0
    for s_index, s in enumerate(seeds):
        alone = json.load(open(f"{w}/main_{s}/results.json"))["splits"]
        for split, record in members.items():
            ours = record["members"][s_index]["selection"]["last_epoch"]["tau"]
            diff = max(diff, abs(ours - alone[split]["selection"]["last_epoch"]["tau"]))
    prov = provenance()
    result = {"sequential_s": round(sequential_s, 1), "study_s": round(study_s, 1),
              "speedup": round(sequential_s / study_s, 2), "device": f"{prov['jax_device_kind']} x{len(prov['jax_devices'])} "
              f"({prov['cpu']['model']}, {prov['cpu']['cores']} cores)",
              "seeds": seeds, "splits": len(members), "config": args.config, "extra_overrides": extra,
              "max_abs_tau_difference_member_vs_main": diff,
              "command": " ".join(["python benchmarks/study_speed.py"] + sys.argv[1:]),
              "provenance": {k: v for k, v in prov.items() if k != "config"}}
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("sequential_s", "study_s", "speedup", "device")}))
    shutil.rmtree(f"{w}/cache_study", ignore_errors=True)
    shutil.rmtree(f"{w}/cache_main", ignore_errors=True)


if __name__ == "__main__":
    main()
