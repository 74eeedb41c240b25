"""The README job's wall time and peak memory on this machine, cold and warm, beside a
baseline commit's, into a JSON results file.

    python benchmarks/speed_check.py [--baseline REV] [--repeats 2] \
        [--out benchmarks/results/readme_job_cpu.json]

Each run is its own process: ``python -m sgvs_jax.main --config configs/default.py``
with a new persistent compilation cache (cold: empty cache), then again with that
cache (warm).  With ``--baseline`` the same is run in a checkout of that commit (a
git worktree), interleaved with this tree's runs so that both see the same machine
load.  Peak RSS is the child process's own (``os.wait4``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_job(tree: str, cache: str, workdir: str) -> dict:
    """One README job in ``tree``: wall seconds, peak RSS (GiB), last-epoch tau, exit code."""
    env = {**os.environ, "SGVS_JAX_CACHE": cache, "PYTHONPATH": tree}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "sgvs_jax.main", "--config", "configs/default.py",
                          "--workdir", workdir], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"README job in {tree} failed ({code}): {err[-2000:]}")
    with open(os.path.join(workdir, "results.json")) as f:
        tau = json.load(f)["summary"]["last_epoch"]["tau"]["mean"]
    return {"wall_s": round(wall, 2), "peak_rss_gib": round(usage.ru_maxrss / 2 ** 20, 3), "tau": round(tau, 4)}


PROGRAM = "benchmarks/speed_check.py"


def main():
    from sgvs_jax import cli
    ap = cli.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="a commit to measure side by side (checked out as a git worktree)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "readme_job_cpu.json"))
    args = ap.parse_args()
    cli.run(lambda: speed_check(args), args.debug)


def speed_check(args):
    from sgvs_jax import cli
    from sgvs_jax.provenance import provenance
    cli.guard_result(args.out, PROGRAM, [os.path.join(ROOT, "configs", "default.py")], args.overwrite)
    rev = cli.parse_commit(args.baseline, "--baseline", ROOT) if args.baseline else None

    trees = {"current": ROOT}
    tmp = tempfile.mkdtemp(prefix="sgvs_speed_")
    if args.baseline:
        trees["baseline"] = os.path.join(tmp, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", trees["baseline"], rev], cwd=ROOT,
                       check=True, capture_output=True)
    runs = {name: {"cold": [], "warm": []} for name in trees}
    try:
        for r in range(args.repeats):
            for phase in ("cold", "warm"):
                for name, tree in trees.items():
                    cache = os.path.join(tmp, f"cache_{name}_{r}")
                    out = run_job(tree, cache, os.path.join(tmp, f"run_{name}_{r}_{phase}"))
                    runs[name][phase].append(out)
                    print(f"{name:8s} {phase} #{r}: {out}", flush=True)
    finally:
        if args.baseline:
            subprocess.run(["git", "worktree", "remove", "--force", trees["baseline"]], cwd=ROOT,
                           capture_output=True)
    result = {"job": "python -m sgvs_jax.main --config configs/default.py",
              "baseline": args.baseline, "repeats": args.repeats, "runs": runs,
              "median_wall_s": {name: {phase: statistics.median(x["wall_s"] for x in v) for phase, v in r.items()}
                                for name, r in runs.items()},
              "provenance": provenance()}
    cli.write_result(args.out, result, PROGRAM)
    print(json.dumps(result["median_wall_s"]), "->", args.out)


if __name__ == "__main__":
    main()
