"""What one training update costs, beside a baseline commit's: FLOPs, an epoch, a study.

    python benchmarks/update_cost.py --baseline REV [--config configs/tvsum_i3d.py] \\
        [--out benchmarks/results/update_cost.json]

Each figure is measured in its own process, in this tree and in a git worktree of
``--baseline``, one after the other, on the same machine:

* ``gflop``: XLA's cost analysis of the compiled update (every stage active) of one
  member on the 4 longest videos at the longest bucket, with the FLOPs of its dot
  products by kind: those that touch the visual features' dimension, attention's
  (steps x steps), and the rest (dense layers and MLPs at the model's width).
* ``train_s``: the jitted updates of one epoch of split 0 (every bucket compiled
  first), the best of ``--repeats``.
* ``study_s``: ``python -m sgvs_jax.study --config CONFIG --seeds 0-2 --variants
  sgvs_no_title`` end to end with no persistent compilation cache, and its breakdown:
  compile (every program: tracing, lowering and XLA), updates (the update calls, each
  waited for, less the compiling inside them) and the rest (evaluation, reference rows,
  data, checkpoints).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = "benchmarks/update_cost.py"
STUDY = ["--seeds=0-2", "--variants=sgvs_no_title"]
COMPILE_EVENTS = ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration")


def dot_flops(hlo: str, feature_dim: int) -> dict:
    """GFLOP of the dot products of an HLO module, by kind: 'features' (an operand or the
    result has the visual features' dimension), 'attention' (4-D operands: heads x steps x
    steps), 'other'."""
    shapes, out = {}, {"features": 0.0, "attention": 0.0, "other": 0.0}
    pattern = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = \w+\[([\d,]*)\]")
    for line in hlo.splitlines():
        m = pattern.match(line)
        if m:
            shapes[m.group(1)] = [int(x) for x in m.group(2).split(",") if x]
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = \w+\[[\d,]*\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\)", line)
        if not m:
            continue
        result, lhs, rhs = shapes[m.group(1)], shapes[m.group(2)], shapes[m.group(3)]
        contracted = 1
        for i in re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line).group(1).split(","):
            contracted *= lhs[int(i)] if i else 1
        flops = 2.0 * contracted
        for n in result:
            flops *= n
        kind = ("features" if feature_dim in result + lhs + rhs else "attention" if len(lhs) == 4 else "other")
        out[kind] += flops / 1e9
    return {k: round(v, 3) for k, v in out.items()}


def measure_update(config_path: str, repeats: int) -> dict:
    """GFLOP of one update at the longest bucket and seconds of one epoch's updates (this process's tree)."""
    import jax

    from sgvs_jax import cli
    from sgvs_jax.data import load_dataset, resolve_sources
    from sgvs_jax.data.batching import make_batch
    from sgvs_jax.train import Trainer
    from sgvs_jax.train_steps import active_stages
    config = cli.load_config(config_path)
    videos, splits, _ = load_dataset(config.data)
    config, _ = resolve_sources(config, videos)
    trainer = Trainer(config, videos)
    train = [videos[k] for k in splits[0]["train_keys"]]
    active = active_stages(trainer.stages, config.train.num_epochs - 1)
    rngs = jax.random.split(jax.random.PRNGKey(1), 1)
    state = trainer.place_states(trainer.init_states([jax.random.PRNGKey(0)], train[0]))

    longest = sorted(videos.values(), key=lambda v: -v.length)[:config.train.batch_size]
    bucket = max(trainer.buckets)
    batch = make_batch(longest, bucket, len(longest), **trainer.data.options)
    if config.train.teacher:
        batch["teacher"] = trainer.data.teacher_targets(longest, batch["mask"].shape)
    batch = trainer.place_batch([{**batch, **trainer.data.banks(train)}])
    compiled = trainer.step.lower(state, batch, rngs, active=active).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost

    order = trainer.data.epoch_order(0, 0, 0)
    batches = [trainer.place_batch([b]) for b in trainer.data.training(train, order, trainer.data.banks(train))]
    times = []
    for r in range(repeats + 1):  # the first pass compiles every bucket
        t0 = time.perf_counter()
        for b in batches:
            state, _ = trainer.step(state, b, rngs, active=active)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    return {"gflop": round(cost["flops"] / 1e9, 2), "dot_gflop": dot_flops(compiled.as_text(), videos[longest[0].key]
                                                                          .features.shape[1]),
            "batch": [len(longest), bucket], "train_s": round(min(times[1:]), 3), "updates_per_epoch": len(batches)}


def measure_study(config_path: str, workdir: str) -> dict:
    """The study end to end in this process, with its compile / update / rest breakdown."""
    import jax

    from sgvs_jax import study, train
    seconds = {"compile": 0.0, "compile_in_updates": 0.0, "update_calls": 0.0}
    inside = [False]

    def on_duration(event, duration, **_):
        if event in COMPILE_EVENTS:
            seconds["compile"] += duration
            if inside[0]:
                seconds["compile_in_updates"] += duration

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    init = train.Trainer.__init__

    def timed_init(self, *a, **k):
        init(self, *a, **k)
        step = self.step

        def timed_step(*args, **kwargs):
            inside[0], t0 = True, time.perf_counter()
            out = jax.block_until_ready(step(*args, **kwargs))
            seconds["update_calls"] += time.perf_counter() - t0
            inside[0] = False
            return out
        self.step = timed_step

    train.Trainer.__init__ = timed_init
    sys.argv = ["sgvs_jax.study", f"--config={config_path}", *STUDY, f"--workdir={workdir}",
                "--config.compilation_cache_dir=none"]
    t0 = time.perf_counter()
    try:
        study.main()
    except SystemExit as e:  # absl's app.run exits, also on success
        if e.code:
            raise
    total = time.perf_counter() - t0
    updates = seconds["update_calls"] - seconds["compile_in_updates"]
    return {"study_s": round(total, 1), "breakdown_s": {
        "compile": round(seconds["compile"], 1), "updates": round(updates, 1),
        "rest": round(total - seconds["compile"] - updates, 1)}}


def in_tree(tree: str, what: str, args) -> dict:
    """Runs one measurement of this script in a fresh process on ``tree``'s sgvs_jax, from this
    tree's folder (so that the configs' relative data paths mean the same for both)."""
    env = {**os.environ, "PYTHONPATH": tree}
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", what, "--tree", tree, "--config", args.config,
           "--repeats", str(args.repeats), "--out", os.path.join(args.tmp, f"{what}_{os.path.basename(tree)}.json")]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{what} in {tree} failed: {p.stderr[-3000:]}")
    with open(cmd[-1]) as f:
        return json.load(f)


def main():
    if "--measure" in sys.argv:  # a child process: sgvs_jax comes from --tree, not from ROOT
        i = sys.argv.index
        tree, config, out = sys.argv[i("--tree") + 1], sys.argv[i("--config") + 1], sys.argv[i("--out") + 1]
        sys.path.insert(0, tree)
        what, repeats = sys.argv[i("--measure") + 1], int(sys.argv[i("--repeats") + 1])
        result = (measure_update(config, repeats) if what == "update"
                  else measure_study(config, os.path.join(os.path.dirname(out), f"study_{os.path.basename(tree)}")))
        with open(out, "w") as f:
            json.dump(result, f)
        return
    sys.path.insert(0, ROOT)
    from sgvs_jax import cli
    ap = cli.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the commit measured beside this tree (a git worktree)")
    ap.add_argument("--config", default="configs/tvsum_i3d.py")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "update_cost.json"))
    args = ap.parse_args()
    cli.run(lambda: update_cost(args), args.debug)


def update_cost(args):
    from sgvs_jax import cli
    from sgvs_jax.provenance import provenance
    cli.guard_result(args.out, PROGRAM, cli.config_inputs(cli.load_config(args.config), args.config),
                     args.overwrite)
    rev = cli.parse_commit(args.baseline, "--baseline", ROOT)
    args.tmp = tempfile.mkdtemp(prefix="sgvs_cost_")
    baseline = os.path.join(args.tmp, "baseline")
    subprocess.run(["git", "worktree", "add", "--detach", baseline, rev], cwd=ROOT, check=True, capture_output=True)
    trees = {"before": baseline, "after": ROOT}
    got = {name: {} for name in trees}
    try:
        for what in ("update", "study"):
            for name, tree in trees.items():
                got[name].update(in_tree(tree, what, args))
                print(f"{name:6s} {what}: {json.dumps(got[name])}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", baseline], cwd=ROOT, capture_output=True)
    b, a = got["before"], got["after"]
    prov = provenance()
    result = {"config": args.config, "baseline": rev,
              "gflop_before": b["gflop"], "gflop": a["gflop"], "gflop_ratio": round(a["gflop"] / b["gflop"], 3),
              "dot_gflop_before": b["dot_gflop"], "dot_gflop": a["dot_gflop"], "batch": a["batch"],
              "train_s_before": b["train_s"], "train_s": a["train_s"],
              "train_speedup": round(b["train_s"] / a["train_s"], 2), "updates_per_epoch": a["updates_per_epoch"],
              "study": f"python -m sgvs_jax.study --config {args.config} {' '.join(STUDY)} "
                       "--config.compilation_cache_dir=none",
              "study_s_before": b["study_s"], "study_s": a["study_s"],
              "study_speedup": round(b["study_s"] / a["study_s"], 2),
              "study_breakdown_s_before": b["breakdown_s"], "study_breakdown_s": a["breakdown_s"],
              "device": f"{prov['jax_device_kind']} x{len(prov['jax_devices'])} "
                        f"({prov['cpu']['model']}, {prov['cpu']['cores']} cores)",
              "provenance": {k: v for k, v in prov.items() if k != "config"}}
    cli.write_result(args.out, result, PROGRAM)
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}), "->", args.out)


if __name__ == "__main__":
    main()
