"""A study's seeds as members of one program vs one `main` run per seed, side by side.

    python benchmarks/study_speed.py --config configs/tvsum_i3d.py --seeds 0-4 \\
        --workdir runs/study_speed --out benchmarks/results/study_speed.json \\
        [--study_out benchmarks/results/tvsum_i3d_study.json]
    python benchmarks/study_speed.py --config configs/tvsum_i3d.py --seeds 0-4 \\
        --update_only --out benchmarks/results/study_update_cpu.json

Runs ``python -m sgvs_jax.study`` once (every seed a member) and ``python -m
sgvs_jax.main`` once per seed, one after another, on the same machine; each side
starts with its own empty compilation cache (the sequential runs after the first
read the programs the first compiled, as a user's would).  Writes the wall times,
the speedup, the largest difference between a member's and its `main` run's
last-epoch tau, and the machine.  ``--update_only`` times one epoch of updates of split
0 (every bucket compiled first) with one member (``main``) and with every seed, per member.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax import cli  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402


def timed(cmd) -> float:
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return time.time() - t0


def update_only(config_path: str, members: int, repeats: int = 2) -> dict:
    """Seconds of one epoch of updates of split 0 (the best of ``repeats``, every bucket
    compiled beforehand) with one member (``main``) and with ``members``, per member."""
    import jax

    from sgvs_jax.data import load_dataset
    from sgvs_jax.train import Trainer
    from sgvs_jax.train_steps import active_stages
    config = cli.load_config(config_path)
    videos, splits, _ = load_dataset(config.data)
    train = [videos[k] for k in splits[0]["train_keys"]]

    def best(run):
        run()  # compiles every bucket
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return min(times)

    out = {}
    for m in sorted({1, members}):
        trainer = Trainer(config, videos, seeds=range(m))
        active = active_stages(trainer.stages, config.train.num_epochs - 1)
        states = [trainer.place_states(trainer.init_states([jax.random.PRNGKey(s) for s in range(m)], train[0]))]
        banks = trainer.data.banks(train)
        streams = [list(trainer.data.training(train, trainer.data.epoch_order(s, 0, 0), banks)) for s in range(m)]
        batches = [trainer.place_batch(list(b)) for b in zip(*streams)]
        rngs = jax.random.split(jax.random.PRNGKey(1), m)

        def run_members():
            for b in batches:
                states[0], _ = trainer.step(states[0], b, rngs, active=active)
            jax.block_until_ready(states[0])

        seconds = best(run_members)
        out[f"members_{m}_epoch_s"] = round(seconds, 3)
        out[f"members_{m}_per_member_s"] = round(seconds / m, 3)
    return out


PROGRAM = "benchmarks/study_speed.py"


def main():
    ap = cli.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--workdir", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--study_out", default="")
    ap.add_argument("--update_only", action="store_true")
    args, extra = ap.parse_known_args()
    cli.run(lambda: study_speed(args, extra), args.debug)


def study_speed(args, extra):
    seeds = cli.parse_seeds(args.seeds)
    config = cli.load_config(args.config)
    cli.guard_result(args.out, PROGRAM, cli.config_inputs(config, args.config), args.overwrite)
    if args.update_only:
        prov = provenance()
        result = {**update_only(args.config, len(seeds)), "seeds": seeds, "config": args.config,
                  "device": f"{prov['jax_device_kind']} x{len(prov['jax_devices'])} "
                            f"({prov['cpu']['model']}, {prov['cpu']['cores']} cores)",
                  "provenance": {k: v for k, v in prov.items() if k != "config"}}
        cli.write_result(args.out, result, PROGRAM)
        print(json.dumps({k: v for k, v in result.items() if k.endswith("_s")}))
        return
    if not args.workdir:
        raise cli.ArgumentError("--workdir is needed (fresh runs are timed)")
    if os.path.exists(args.workdir):
        raise cli.ArgumentError(f"--workdir {args.workdir} exists: give a new folder (timings need fresh runs)")
    cli.guard_result(args.study_out, "sgvs_jax.study", cli.config_inputs(config, args.config), args.overwrite)
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
              "provenance": {k: v for k, v in prov.items() if k != "config"}}
    cli.write_result(args.out, result, PROGRAM)
    print(json.dumps({k: result[k] for k in ("sequential_s", "study_s", "speedup", "device")}))
    shutil.rmtree(f"{w}/cache_study", ignore_errors=True)
    shutil.rmtree(f"{w}/cache_main", ignore_errors=True)


if __name__ == "__main__":
    main()
