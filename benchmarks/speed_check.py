"""The figures of the speed issue on this machine, into benchmarks/results/gpu_check.json.

    python benchmarks/speed_check.py [--skip_summe] [--out benchmarks/results/gpu_check.json]

Runs, each as its own process on this machine:
  * the README job (``python -m sgvs_jax.main --config configs/default.py``) twice
    with a new persistent compilation cache: cold (empty cache), then warm;
  * ``benchmarks/compile_cost.py`` on the default config: XLA compile seconds of
    each update program alone (cache off), HLO size, seconds per update, in the
    platform's default arrangement (``train.fuse_stages`` and ``train.batched_passes``:
    fused with a call per pass on the CPU, per stage with batched passes on
    accelerators) and in the fused, the per-stage and the per-stage batched ones
    (three in all on either platform), with how far their parameters are apart;
  * with ``--profile``, the README job a third time (warm) under cProfile: sgvs_jax's
    30 functions of most cumulative seconds and the 30 of most own seconds (the
    profiler slows Python-heavy parts, so this run's wall time is not the warm figure);
  * ``benchmarks/train_speed.py --epochs 1`` (SumMe-shaped, 21 M parameters):
    seconds per epoch and the process's peak RSS, with the configs' default
    ``train.microbatch=-1`` (on the CPU the long buckets' updates in slices of one
    video, drawing the whole batch's randomness; the whole batch on accelerators)
    and with the whole batch everywhere (``train.microbatch=0``).
The file keeps one section per platform (``runs.cpu``, ``runs.gpu``), so the
CPU and the GPU figures can come from different machines; the top-level keys
are the GPU's where a GPU run exists, else this machine's, with ``device``
naming the machine they come from.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sgvs_jax.files import read_json, write_json  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402


def run(cmd, timeout, env=None):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return p.stdout, time.time() - t


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu_check.json"))
    p.add_argument("--skip_summe", action="store_true")
    p.add_argument("--skip_whole_batch", action="store_true",
                   help="the SumMe-shaped run with train.microbatch=0 (the whole batch) left out; on an "
                        "accelerator the default is the whole batch already")
    p.add_argument("--profile", action="store_true",
                   help="profile a third, warm run of the README job (cProfile)")
    args = p.parse_args()
    import jax
    platform = jax.default_backend()
    device = f"{jax.devices()[0].device_kind} ({platform}, {os.cpu_count()} host cores)"
    py = sys.executable
    tmp = tempfile.mkdtemp(prefix="sgvs_speed_")
    # Once, before this script writes its own results file (which would make the tree look dirty).
    figures = {"device": device, "provenance": provenance()}
    try:
        job = [py, "-m", "sgvs_jax.main", "--config", "configs/default.py",
               f"--config.compilation_cache_dir={tmp}/cache"]
        for name in ("cold", "warm"):
            out, wall = run(job + ["--workdir", f"{tmp}/{name}"], 1800)
            figures[f"readme_job_wall_s_{name}"] = round(wall, 1)
            ready = re.search(r"ready in ([\d.]+) s", out)
            figures[f"readme_job_startup_s_{name}"] = float(ready.group(1)) if ready else None
            print(f"README job, {name} cache: {wall:.1f} s", flush=True)
        cold = read_json(f"{tmp}/cold/results.json")["summary"]
        warm = read_json(f"{tmp}/warm/results.json")["summary"]
        figures["readme_job_warm_equals_cold"] = cold == warm
        figures["readme_job_tau"] = round(cold["last_epoch"]["tau"]["mean"], 4)
        save(args.out, figures, platform)  # each stage is kept, should a later one be cut short
        if args.profile:
            _, wall = run([py, "-m", "cProfile", "-o", f"{tmp}/warm.prof"] + job[1:] + ["--workdir", f"{tmp}/prof"],
                          1800)
            figures["readme_job_warm_profile"] = {"wall_s_under_profiler": round(wall, 1),
                                                  **profile_summary(f"{tmp}/warm.prof")}
            print(f"README job, warm, under cProfile: {wall:.1f} s", flush=True)
            save(args.out, figures, platform)
        run([py, "benchmarks/compile_cost.py", "--out", f"{tmp}/compile.json", "--arrangements", "configured",
             "fused", "per_stage", "per_stage_batched"], 1200)
        cost = read_json(f"{tmp}/compile.json")
        figures["max_program_compile_s"] = cost["max_compile_s"]
        figures["programs"] = cost["programs"]
        figures["update_arrangements"] = {**{name: {k: v for k, v in a.items() if k != "programs"}
                                                for name, a in cost["arrangements"].items()},
                                          "same_parameters": cost.get("same_parameters"),
                                          "max_parameter_difference": cost.get("max_parameter_difference")}
        print(f"update programs ({cost['programs'][0]['update_programs']}): max compile {cost['max_compile_s']} s; "
              + "; ".join(f"{a['update_programs']}: max {a['max_compile_s']} s, total {a['total_compile_s']} s, "
                          f"s/update {a['update_s']}" for a in cost["arrangements"].values())
              + f"; same parameters: {cost.get('same_parameters')}", flush=True)
        save(args.out, figures, platform)
        summe = [] if args.skip_summe else [("", []), ("_whole_batch", ["--override", "train.microbatch=0"])]
        for suffix, extra in summe[:1 if args.skip_whole_batch else None]:
            out, wall = run([py, "benchmarks/train_speed.py", "--epochs", "1", "--members", "--lengths"] + extra,
                            3600)
            figures[f"summe{suffix}_epoch_s"] = float(re.search(r"epoch: ([\d.]+) s", out).group(1))
            figures[f"summe{suffix}_peak_rss_gib"] = float(re.search(r"peak RSS ([\d.]+) GiB", out).group(1))
            figures[f"summe{suffix}_benchmark_wall_s"] = round(wall, 1)
            print(f"SumMe-shaped{' ' + ' '.join(extra[1:]) if extra else ''}: epoch "
                  f"{figures[f'summe{suffix}_epoch_s']} s, peak RSS {figures[f'summe{suffix}_peak_rss_gib']} GiB",
                  flush=True)
            save(args.out, figures, platform)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: v for k, v in save(args.out, figures, platform).items() if k != "runs"}, indent=1))


def profile_summary(path: str, n: int = 30) -> dict:
    """From a cProfile file: sgvs_jax's own functions by cumulative seconds (where
    the run spends its time), and all functions by their own seconds (what the time
    is spent on), ``n`` of each."""
    import pstats
    st = pstats.Stats(path).stats  # (file, line, name) -> (calls, primitive calls, own s, cumulative s, callers)

    def row(key, value):
        (f, line, name), (_, calls, own, cum, _) = key, value
        where = os.path.relpath(f, ROOT) if f.startswith(ROOT) else os.path.basename(f)
        return {"function": f"{where}:{line}({name})", "calls": calls, "cumulative_s": round(cum, 2),
                "own_s": round(own, 2)}

    ours = [kv for kv in st.items() if kv[0][0].startswith(os.path.join(ROOT, "sgvs_jax"))]
    return {"sgvs_jax_by_cumulative": [row(*kv) for kv in sorted(ours, key=lambda kv: -kv[1][3])[:n]],
            "all_by_own": [row(*kv) for kv in sorted(st.items(), key=lambda kv: -kv[1][2])[:n]]}


def save(path: str, figures: dict, platform: str) -> dict:
    """Merges this machine's figures (so far) into the file; returns the record."""
    record = read_json(path) or {}
    runs = record.get("runs", {})
    runs["gpu" if platform == "gpu" else platform] = figures
    top = runs.get("gpu") or figures
    cpu = runs.get("cpu", {})
    record = {"device": top["device"],
              "readme_job_wall_s_cold": top.get("readme_job_wall_s_cold"),
              "readme_job_wall_s_warm": top.get("readme_job_wall_s_warm"),
              "max_program_compile_s": top.get("max_program_compile_s"),
              "summe_epoch_s": top.get("summe_epoch_s"),
              "cpu_summe_peak_rss_gib": cpu.get("summe_peak_rss_gib"),
              "cpu_summe_whole_batch_peak_rss_gib": cpu.get("summe_whole_batch_peak_rss_gib"),
              "gpu_measured": "gpu" in runs,
              "command": "python benchmarks/speed_check.py",
              "runs": runs}
    write_json(path, record, make_dirs=True)
    return record


if __name__ == "__main__":
    main()
