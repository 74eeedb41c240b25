"""Compile cost of the training programs: HLO size and XLA compile seconds per
program, and seconds per update, for a config (default: the embedded default).

    python benchmarks/compile_cost.py [--config configs/default.py] [--out FILE.json]

Programs are compiled one at a time with the persistent cache off, so the
seconds are each program's own.  HLO size is counted on the optimised module
(instructions of ``compiled.as_text()``) and on the lowered StableHLO (lines).
After the timed updates each row has the SHA-256 of the parameters
(``params_sha256``): the same config on the same platform under other compile
settings trains bit-identically where these agree.
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


def load_config(path: str):
    spec = importlib.util.spec_from_file_location("cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config()


def hlo_instructions(text: str) -> int:
    return sum(1 for line in text.splitlines() if " = " in line and not line.lstrip().startswith("//"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/default.py")
    p.add_argument("--updates", type=int, default=5, help="timed updates per program")
    p.add_argument("--out", default="")
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=python_value")
    args = p.parse_args()
    cfg = load_config(args.config)
    apply_overrides(cfg, args.set)
    videos, splits, _ = load_dataset(cfg.data)
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
        programs = {}
        for name, lower_it in trainer._lower_step(state, batch, rng, True):
            low = lower_it()
            t = time.time()
            programs[name] = compiled = low.compile()
            seconds = time.time() - t
            rows.append({"program": name, "bucket": bucket, "compile_s": round(seconds, 2),
                         "stablehlo_lines": len(low.as_text().splitlines()),
                         "hlo_instructions": hlo_instructions(compiled.as_text())})
        # The fused update runs as the program just compiled; per-stage programs run through
        # the trainer's step, whose jits compile them once more (not timed).
        fused = programs.get("step_d1")
        step = (lambda s, r: fused(s, batch, r)) if fused else (lambda s, r: trainer.step(s, batch, r, True))
        st, _ = step(state, rng)  # warm-up
        jax.block_until_ready(st)
        t = time.time()
        for i in range(args.updates):
            st, _ = step(st, jax.random.PRNGKey(i))
        jax.block_until_ready(st)
        rows[-1]["update_s"] = round((time.time() - t) / args.updates, 4)
        # Equal digests across settings (benchmarks/compile_variants.py) = bit-identical training.
        rows[-1]["params_sha256"] = digest(st["params"])
        state = st
        print(json.dumps(rows[-1]), flush=True)
    summary = {"config": args.config, "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
               "programs": rows, "max_compile_s": max(r["compile_s"] for r in rows),
               "total_compile_s": round(sum(r["compile_s"] for r in rows), 2), "provenance": provenance()}
    print(f"max compile {summary['max_compile_s']} s, total {summary['total_compile_s']} s")
    if args.out:
        from sgvs_jax.files import write_json
        write_json(args.out, summary, make_dirs=True)


if __name__ == "__main__":
    main()
