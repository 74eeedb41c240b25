"""Compile cost of the training programs: HLO size and XLA compile seconds per
program, and seconds per update, for a config (default: the embedded default).

    python benchmarks/compile_cost.py [--config configs/default.py] [--out FILE.json]
    python benchmarks/compile_cost.py --arrangements fused per_stage   # train.fuse_stages both ways
    python benchmarks/compile_cost.py --arrangements per_stage per_stage_batched   # train.batched_passes

Programs are compiled one at a time with the persistent cache off, so the
seconds are each program's own.  HLO size is counted on the optimised module
(instructions of ``compiled.as_text()``) and on the lowered StableHLO (lines).
After the timed updates each row has the SHA-256 of the parameters
(``params_sha256``): the same config on the same platform under other compile
settings trains bit-identically where these agree; with more than one
``--arrangements`` (one update program, or one per stage: ``train.fuse_stages``;
a call per generator and discriminator pass, or one vmapped call over them:
``train.batched_passes``) ``same_parameters`` says whether they agree in every
bucket, and ``max_parameter_difference`` how far each arrangement's parameters
are from the first's after the last bucket's updates (the batched passes round
differently, so they differ in the last bits).
Compile seconds track HLO size, and both track a GPU's compile time, which is
where this matters (an H100 took about 60 s per update program).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.train_speed import apply_overrides  # noqa: E402
from sgvs_jax.data import iterate_batches, load_dataset  # noqa: E402
from sgvs_jax.provenance import digest, provenance  # noqa: E402
from sgvs_jax.train import Trainer  # noqa: E402
from sgvs_jax.train_steps import batched_passes, fused_stages  # noqa: E402


def load_config(path: str):
    spec = importlib.util.spec_from_file_location("cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config()


def hlo_instructions(text: str) -> int:
    return sum(1 for line in text.splitlines() if " = " in line and not line.lstrip().startswith("//"))


def digests(rows: list) -> list:
    """The parameters' SHA-256 after each bucket's updates, in bucket order (a bucket's last
    program's row has it: one per bucket, whether fused or one program per stage)."""
    return [r["params_sha256"] for r in rows if "params_sha256" in r]


# name -> the train settings (train.fuse_stages, train.batched_passes); 'configured': the config's.
ARRANGEMENTS = {"configured": {}, "fused": {"fuse_stages": True, "batched_passes": False},
                "per_stage": {"fuse_stages": False, "batched_passes": False},
                "fused_batched": {"fuse_stages": True, "batched_passes": True},
                "per_stage_batched": {"fuse_stages": False, "batched_passes": True}}


def measure(cfg, videos, splits, updates: int) -> tuple:
    """One row per update program and bucket, in the update arrangement ``cfg`` resolves
    to, and the parameters after the last bucket's updates."""
    trainer = Trainer(cfg, videos)
    train_videos = [videos[k] for k in splits[0]["train_keys"]]
    state = trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(0), train_videos[0]))
    bank = trainer.title_bank(train_videos)
    batches = {}
    for _, b in iterate_batches(train_videos, cfg.train.batch_size, trainer.buckets, None, **trainer.batch_kwargs):
        batches.setdefault(b["features"].shape[1], trainer.sharder.batch({**b, "title_bank": bank}))
    rows = []
    for bucket, batch in sorted(batches.items()):
        rng = jax.random.PRNGKey(0)
        for name, lower_it in trainer._lower_step(state, batch, rng, True):
            low = lower_it()
            t = time.time()
            compiled = low.compile()  # jit finds it there: the step below compiles nothing more
            seconds = time.time() - t
            rows.append({"update_programs": trainer.update_programs, "program": name, "bucket": bucket,
                         "compile_s": round(seconds, 2), "stablehlo_lines": len(low.as_text().splitlines()),
                         "hlo_instructions": hlo_instructions(compiled.as_text())})
        st, _ = trainer.step(state, batch, rng, True)  # warm-up
        jax.block_until_ready(st)
        t = time.time()
        for i in range(updates):
            st, _ = trainer.step(st, batch, jax.random.PRNGKey(i), True)
        jax.block_until_ready(st)
        rows[-1]["update_s"] = round((time.time() - t) / updates, 4)
        # Equal digests across settings (benchmarks/compile_variants.py) = bit-identical training.
        rows[-1]["params_sha256"] = digest(st["params"])
        state = st
        print(json.dumps(rows[-1]), flush=True)
    return rows, jax.device_get(state["params"])


def totals(rows: list) -> dict:
    return {"max_compile_s": max(r["compile_s"] for r in rows),
            "total_compile_s": round(sum(r["compile_s"] for r in rows), 2),
            "update_s": {str(r["bucket"]): r["update_s"] for r in rows if "update_s" in r}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/default.py")
    p.add_argument("--updates", type=int, default=5, help="timed updates per program")
    p.add_argument("--out", default="")
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=python_value")
    p.add_argument("--arrangements", nargs="+", default=["configured"], choices=list(ARRANGEMENTS),
                   help="update arrangements to measure one after another (train.fuse_stages and "
                        "train.batched_passes; 'configured': the config's, on this platform), each once; the "
                        "first gives the top-level figures")
    args = p.parse_args()
    started = provenance()  # the tree as this process loaded it, before any file is written
    cfg = load_config(args.config)
    apply_overrides(cfg, args.set)
    videos, splits, _ = load_dataset(cfg.data)
    by, params, measured = {}, {}, set()
    configured = {k: cfg.train.get(k) for k in ("fuse_stages", "batched_passes")}
    for name in args.arrangements:
        settings = {**configured, **ARRANGEMENTS[name]}
        resolved = (fused_stages(settings["fuse_stages"], cfg.train.schedule),
                    batched_passes(settings["batched_passes"]))
        if resolved in measured:
            continue  # measured already under another name ('configured' is one of the others)
        measured.add(resolved)
        cfg.train.fuse_stages, cfg.train.batched_passes = resolved
        by[name], params[name] = measure(cfg, videos, splits, args.updates)
    first = by[args.arrangements[0]]
    summary = {"config": args.config, "overrides": list(args.set), "device": str(jax.devices()[0].device_kind),
               "platform": jax.default_backend(), "programs": first, **totals(first),
               "arrangements": {name: {"update_programs": rows[0]["update_programs"], **totals(rows), "programs": rows}
                                for name, rows in by.items()},
               "provenance": started}
    if len(by) > 1:  # the parameters after each bucket's updates, compared across arrangements
        each = [digests(rows) for rows in by.values()]
        summary["same_parameters"] = all(d == each[0] for d in each)
        reference = jax.tree_util.tree_leaves(params[args.arrangements[0]])
        summary["max_parameter_difference"] = {
            name: float(max(np.max(np.abs(a - b)) for a, b in zip(jax.tree_util.tree_leaves(p), reference)))
            for name, p in params.items()}
    for name, t in summary["arrangements"].items():
        print(f"{name} ({t['update_programs']}): max compile {t['max_compile_s']} s, total {t['total_compile_s']} s, "
              f"s/update {t['update_s']}")
    if "same_parameters" in summary:
        print(f"same parameters after the updates in every arrangement: {summary['same_parameters']}; "
              f"max |difference| from {args.arrangements[0]}: {summary['max_parameter_difference']}")
    if args.out:
        from sgvs_jax.files import write_json
        write_json(args.out, summary, make_dirs=True)


if __name__ == "__main__":
    main()
