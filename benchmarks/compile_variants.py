"""XLA compile seconds of the update program under other compile settings, side by side.

    python benchmarks/compile_variants.py [--config configs/default.py] [--jobs N]
        [--only as_is unrolled_prng] [--set train.fuse_stages=False]
        [--out benchmarks/results/compile_variants.json]

Each variant is ``benchmarks/compile_cost.py --updates 2`` in its own process
(the persistent cache off), with its environment or config changed; ``--jobs``
of them run at once (on an accelerator, each without preallocating its memory).
Run at once they share the host's cores, so their seconds are comparable with
each other, not with a program compiled alone (``compile_cost.py``, which
``speed_check.py`` runs).  Per variant the file keeps the compile seconds, HLO
size, seconds per update, the SHA-256 of the parameters after the updates and
whether it equals ``as_is``'s (bit-identical training), and the update's compile
phases from the timers XLA logs (``TF_CPP_VMODULE``; :func:`xla_phases`).

The variants (``as_is`` is what sgvs_jax compiles with; see sgvs_jax/xla_options.py):

  as_is          sgvs_jax's settings (on a GPU: JAX's threefry kernel, no GEMM autotuning)
  as_is_again    the same, in another process: are two processes' parameters bit-identical?
  unrolled_prng  JAX's threefry unrolled into the program (the GPU default of JAX)
  autotune_on    as_is with XLA's GEMM autotuning (--xla_gpu_autotune_level=4, XLA's default;
                 a flag in XLA_FLAGS wins over sgvs_jax's option)
  ptxas_O0       as_is and --xla_gpu_disable_gpuasm_optimizations (ptxas -O0)
  no_dropout     as_is and model.dropout=0 (changes the numbers: shows dropout's share)
  batched_passes as_is and train.batched_passes=True (one vmapped call over the generator's and the
                 discriminator's passes: fewer HLO instructions, the same model up to rounding; the
                 accelerators' default, so the same as as_is there)
  separate_passes as_is and train.batched_passes=False (a call per pass: the CPU's default)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sgvs_jax.files import read_json, write_json  # noqa: E402

VARIANTS = {  # name -> (environment added, XLA flags added, config overrides)
    "as_is": ({}, "", []),
    "as_is_again": ({}, "", []),  # the control: do two processes of one setting give the same bits?
    "unrolled_prng": ({"JAX_THREEFRY_GPU_KERNEL_LOWERING": "0"}, "", []),
    "autotune_on": ({}, "--xla_gpu_autotune_level=4", []),
    "ptxas_O0": ({}, "--xla_gpu_disable_gpuasm_optimizations=true", []),
    "no_dropout": ({}, "", ["model.dropout=0.0"]),
    "batched_passes": ({}, "", ["train.batched_passes=True"]),
    "separate_passes": ({}, "", ["train.batched_passes=False"]),
}
TIMER = re.compile(r"\] (?P<label>.*?) time: .*?\((?P<us>\d+) us\) \(cumulative: (?P<cum>[\d.]+) (?P<unit>\w+),"
                   r".*#called: (?P<calls>\d+)\)")
UPDATE_MODULE = re.compile(r"jit_(train_)?step\b")  # the fused update, or a stage's program (train.fuse_stages)
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
TIMER_MODULES = "gpu_compiler=1,nvptx_compiler=1,compile_module_to_llvm_ir=1,cpu_compiler=1"


def run_variant(name: str, config: str, tmp: str, timeout: float, common: tuple = ()) -> dict:
    env_add, flags, sets = VARIANTS[name]
    sets = [*common, *sets]
    env = {**os.environ, **env_add, "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
           "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": TIMER_MODULES}
    env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    out = os.path.join(tmp, f"{name}.json")
    cmd = [sys.executable, "benchmarks/compile_cost.py", "--config", config, "--updates", "2", "--out", out]
    cmd += ["--set", *sets] if sets else []
    t = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"variant": name, "error": f"not done in {timeout:.0f} s"}
    row = {"variant": name, "env": env_add, "xla_flags": flags, "overrides": sets,
           "process_wall_s": round(time.time() - t, 1),
           "xla_phases": xla_phases(p.stderr.splitlines())}
    if p.returncode != 0:
        return {**row, "error": p.stderr.strip().splitlines()[-1][-500:] if p.stderr.strip() else f"rc {p.returncode}"}
    cost = read_json(out)
    row["programs"] = cost["programs"]
    row["max_compile_s"] = cost["max_compile_s"]
    row["settings"] = {k: cost["provenance"].get(k) for k in ("xla_compiler_options", "jax_threefry_gpu_kernel_lowering")}
    return row


def xla_phases(lines) -> dict:
    """XLA's scoped timers (lines "<label> time: 1.2 s (1234 us) (cumulative: ..., #called: n)")
    boiled down: seconds of each phase of the update (labels naming ``jit_train_step``, or
    ``jit_step`` for the programs of one stage each: summed over them), and
    the cumulative seconds and count of kernel IR emission over all programs of the process
    (GEMM autotuning emits every candidate kernel; summed over compile threads)."""
    update, emission = {}, None
    for line in lines:
        m = TIMER.search(line)
        if not m:
            continue
        label = m["label"]
        if UPDATE_MODULE.search(label):
            update[label] = round(update.get(label, 0.0) + int(m["us"]) / 1e6, 3)
        elif "IR emission for " in label:
            emission = {"cumulative_s": round(float(m["cum"]) * UNITS.get(m["unit"], float("nan")), 1),
                        "calls": int(m["calls"])}
    return {"update": update, "ir_emission_all_programs": emission}


def resummarize(paths) -> None:
    for path in paths:
        record = read_json(path)
        for row in record["variants"]:
            if "xla_timers" in row:
                row["xla_phases"] = xla_phases(row.pop("xla_timers"))
                row["xla_phases_from"] = ("the timer lines of 1 s or more or naming jit_train_step "
                                          "(all that the script of 45cc85f kept)")
        write_json(path, record)
        print(f"{path}: xla_phases")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/default.py")
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=python_value for every variant "
                   "(e.g. train.fuse_stages=False: the programs of one stage each)")
    p.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--jobs", type=int, default=len(VARIANTS), help="variants run at once")
    p.add_argument("--timeout", type=float, default=600, help="seconds per variant's process")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "compile_variants.json"))
    p.add_argument("--resummarize", nargs="*", default=[], metavar="FILE",
                   help="only rewrite the raw timer lines (xla_timers) that the script of 45cc85f stored in FILE "
                        "as xla_phases, in place")
    args = p.parse_args()
    if args.resummarize:
        return resummarize(args.resummarize)
    import jax

    from benchmarks.compile_cost import digests
    from sgvs_jax.provenance import provenance
    names = ["as_is"] + [n for n in args.only if n != "as_is"]
    with tempfile.TemporaryDirectory(prefix="sgvs_variants_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda n: run_variant(n, args.config, tmp, args.timeout, args.set), names))
    base = rows[0].get("programs")
    for row in rows:
        if base and row.get("programs"):
            row["same_bits_as_as_is"] = digests(row["programs"]) == digests(base)
        print(json.dumps({k: row.get(k) for k in ("variant", "max_compile_s", "same_bits_as_as_is", "error")}),
              flush=True)
    record = {"device": f"{jax.devices()[0].device_kind} ({jax.default_backend()}, {os.cpu_count()} host cores)",
              "config": args.config, "concurrent_processes": min(args.jobs, len(names)),
              "command": " ".join(["python", "benchmarks/compile_variants.py"] + sys.argv[1:]),
              "provenance": provenance(), "variants": rows}
    write_json(args.out, record, make_dirs=True)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
