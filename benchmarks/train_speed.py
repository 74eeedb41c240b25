"""Training speed on synthetic SumMe-shaped data (issue: >= 20x the PyTorch originals).

    python benchmarks/train_speed.py [--epochs 2] [--members 1 4 8] [--lengths 100 200 400 800 1600 3200]

Data: 25 synthetic videos, 100..800 steps, 1024-d features (seeded), trained with
configs/summe_h5.py (visual only, as the community SumMe file has no CLIP
features) on the training keys of split 0.  Prints:
  * parameters, training steps (sum of training video lengths), buckets;
  * start-up: the parallel ahead-of-time compile of every bucket (train.precompile;
    --override train.precompile=False compiles bucket by bucket as batches come)
    and the warm-up epoch, with XLA compile seconds (from jax.monitoring) and the
    persistent cache's hits and misses (off unless --compilation_cache_dir names
    a folder, so that the compile seconds are measured);
  * seconds per epoch and steps (video frames) per second over --epochs epochs;
  * peak RSS (and the accelerator's peak allocation); jit compilations after the
    warm-up and at the end;
  * M members (seeds / sigma values) trained in one vmapped computation: time
    per update on the most common bucket, the epoch time it implies (scaled from
    the measured single-member epoch) and seed-epochs/hour;
  * per-step compile time, run time and XLA temp memory vs video length, for each
    attention block in --blocks (0 = full; default full and --local_block).
--epochs 0 skips the epoch and member figures; --log_compiles prints every XLA
compile of 0.5 s or more as it happens.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import summe_h5  # noqa: E402
from sgvs_jax import compile_cache, xla_options  # noqa: E402
from sgvs_jax.data import iterate_batches, make_batch  # noqa: E402
from sgvs_jax.data.synthetic import make_dataset, make_splits  # noqa: E402
from sgvs_jax.models import count_params  # noqa: E402
from sgvs_jax.train import Trainer, build_model  # noqa: E402
from sgvs_jax.train_steps import init_member_states, init_state, make_multi_train_step, \
    make_optimizers, make_train_step  # noqa: E402

COMPILE_SECONDS = []


START = time.time()
LOG_COMPILES = False


def _on_duration(event: str, duration: float, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILE_SECONDS.append(duration)
        if LOG_COMPILES and duration >= 0.5:
            print(f"  [{time.time() - START:6.1f} s] XLA compile {duration:.1f} s", flush=True)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def peak_memory() -> str:
    """Host peak RSS, plus the accelerator's peak allocation where it reports one."""
    text = f"peak RSS {peak_rss_gib():.2f} GiB"
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        text += f", {device.platform} peak {stats['peak_bytes_in_use'] / 2 ** 30:.2f} GiB"
    return text


def summe_shaped(seed: int):
    videos = make_dataset(n_videos=25, min_steps=100, max_steps=800, feature_dim=1024, sem_dim=8,
                          n_users=15, seed=seed)
    split_file = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "splits",
                              "e-apostolidis", "summe_splits.json")
    if os.path.exists(split_file):
        import json
        split = json.load(open(split_file))[0]
    else:
        split = make_splits(videos, seed=seed)[0]
    return videos, split


def apply_overrides(cfg, items) -> None:
    """``a.b=value`` items onto ``cfg`` (values parsed as Python, strings as is; a value
    for a placeholder left at None, ``train.fuse_stages`` say, as parsed: the
    placeholder checks its type)."""
    for item in items:
        key, value = item.split("=", 1)
        node = cfg
        *path, leaf = key.split(".")
        for k in path:
            node = node[k]
        current = node[leaf]
        if isinstance(current, str):
            node[leaf] = value
        else:
            parsed = eval(value)
            if isinstance(current, bool) and not isinstance(parsed, bool):
                raise TypeError(f"{key} takes True or False, not {value!r}")
            node[leaf] = parsed if current is None or parsed is None else type(current)(parsed)


def run_epoch(trainer, state, videos, rng_seed, limit=None):
    rng = np.random.default_rng(rng_seed)
    n_steps = n_updates = 0
    for b, batch in enumerate(trainer.train_batches(videos, rng)):
        if limit is not None and b >= limit:
            break
        state, m = trainer.step(state, batch, jax.random.PRNGKey(b), True)
        n_steps += int(np.asarray(batch["mask"]).sum())
        n_updates += 1
    jax.block_until_ready(state)
    run_epoch.updates = n_updates
    return state, n_steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--members", type=int, nargs="*", default=[1, 4, 8])
    p.add_argument("--member_batches", type=int, default=2)
    p.add_argument("--lengths", type=int, nargs="*", default=[100, 200, 400, 800, 1600, 3200])
    p.add_argument("--local_block", type=int, default=128)
    p.add_argument("--blocks", type=int, nargs="*", default=None,
                   help="attention blocks for the per-length figures (default: 0 = full and --local_block)")
    p.add_argument("--log_compiles", action="store_true", help="print each XLA compile of 0.5 s or more as it happens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--override", nargs="*", default=[], help="config overrides a.b=value")
    p.add_argument("--compilation_cache_dir", default="none",
                   help="persistent XLA cache: a folder, '' = the per-user one, 'none' = off (the default here)")
    args = p.parse_args()
    cache = compile_cache.enable(args.compilation_cache_dir)
    global LOG_COMPILES
    LOG_COMPILES = args.log_compiles
    jax.monitoring.register_event_duration_secs_listener(_on_duration)

    cfg = summe_h5.get_config()
    cfg.train.batch_size = args.batch_size
    cfg.data.min_bucket = 128
    apply_overrides(cfg, args.override)
    videos, split = summe_shaped(args.seed)
    train_videos = [videos[k] for k in split["train_keys"]]
    trainer = Trainer(cfg, videos)
    state = trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(args.seed), train_videos[0]))
    n_train_steps = sum(v.length for v in train_videos)
    print(f"device: {jax.devices()[0].platform} x{jax.device_count()}  jax {jax.__version__}")
    print(f"model: {count_params(jax.device_get(state['params']))['total'] / 1e6:.2f} M parameters "
          f"(d_model {cfg.model.d_model}, mlp {cfg.model.mlp_dim}, fssa {cfg.model.use_fssa})")
    print(f"data: {len(train_videos)} training videos, {n_train_steps} steps, buckets {list(trainer.buckets)}, "
          f"batch {cfg.train.batch_size}, videos per gradient pass by bucket {trainer.slice_heights()} (0: all)")
    print(f"setup (imports, data, init): {time.time() - START:.1f} s", flush=True)

    if args.epochs > 0:  # --epochs 0: only the per-length figures
        t = time.time()
        if cfg.train.precompile:
            info = trainer.precompile(state, train_videos, [], (True,))
            c = compile_cache.counts()
            used = "off" if cache is None else f"{c['hits']} hits, {c['misses']} misses"
            what = "XLA compile" if cache is None else "XLA compile or cache load"
            print(f"precompile: {info['programs']} programs (buckets {info['buckets']}) in {info['seconds']:.1f} s "
                  f"wall, {sum(COMPILE_SECONDS):.1f} s of {what} summed over threads; persistent cache {used}",
                  flush=True)
        state, _ = run_epoch(trainer, state, train_videos, 0)
        warm = time.time() - t
        compiled_after_warmup = trainer.compilations()
        compile_s = sum(COMPILE_SECONDS)
        print(f"start-up (precompile + warm-up epoch): {warm:.1f} s; XLA compile summed {compile_s:.1f} s "
              f"({compiled_after_warmup} compilations; train.precompile={cfg.train.precompile})")
        times = []
        for e in range(args.epochs):
            t = time.time()
            state, n = run_epoch(trainer, state, train_videos, e + 1)
            times.append(time.time() - t)
        sec = float(np.mean(times))
        print(f"epoch: {sec:.2f} s (min {min(times):.2f}, {args.epochs} epochs)  {n / sec:.0f} steps/s  "
              f"{run_epoch.updates} updates/epoch")
        print(f"jit compilations: {compiled_after_warmup} after warm-up, {trainer.compilations()} at end "
              f"({'no recompilation' if trainer.compilations() == compiled_after_warmup else 'RECOMPILED'})")
        print(peak_memory())
        del state

        if args.members:
            print("\nmembers trained in one vmapped computation (same split and batches, different seeds)")
            model, txs = trainer.model, trainer.txs
            multi = xla_options.jit(make_multi_train_step(model, txs, cfg.train), static_argnums=3, donate_argnums=0)
            batches = list(iterate_batches(train_videos, cfg.train.batch_size, trainer.buckets,
                                           np.random.default_rng(0), **trainer.batch_kwargs))
            # Time on batches of the most common bucket only (one compilation per M), then
            # scale by the single-member time ratio of the whole epoch to those batches.
            lengths = [b["features"].shape[1] for _, b in batches]
            common = max(set(lengths), key=lengths.count)
            sub = [x for x in batches if x[1]["features"].shape[1] == common][:args.member_batches]
            single_sub = None
            for m in args.members:
                rngs = jax.vmap(jax.random.PRNGKey)(np.arange(m))
                states = init_member_states(model, txs, rngs, sub[0][1], [cfg.train.sigma] * m)
                for _, b in sub:  # compile every bucket used
                    states, _ = multi(states, b, rngs, True)
                jax.block_until_ready(states)
                t = time.time()
                for _, b in sub:
                    states, _ = multi(states, b, rngs, True)
                jax.block_until_ready(states)
                per_batch = (time.time() - t) / len(sub)
                if single_sub is None:
                    single_sub = per_batch / m  # per-member cost of the first M (1 by default)
                epoch = sec * per_batch / single_sub  # the measured 1-member epoch, scaled
                print(f"  M={m}: {per_batch:6.2f} s per update on bucket {common} ({per_batch / m:.2f} s per member); "
                      f"epoch ~{epoch:6.1f} s, {m * 3600 / epoch:6.0f} seed-epochs/hour, "
                      f"{peak_memory()}", flush=True)
                del states

    if args.lengths:
        blocks = (0, args.local_block) if args.blocks is None else tuple(args.blocks)
        print(f"\nper-step cost vs video length (batch 1, one full SGVS update; attention block 0 = full)")
        print(f"{'T':>6} " + " ".join(f"{'block ' + str(b) + ': compile s':>20} {'s/step':>8} {'temp GiB':>9}"
                                      for b in blocks))
        for T in args.lengths:
            row = [f"{T:>6}"]
            for block in blocks:
                c = cfg.copy_and_resolve_references()
                c.model.attention_block = block
                model = build_model(c, 1024)
                txs = make_optimizers(c.optim)
                v = make_dataset(n_videos=1, min_steps=T, max_steps=T, feature_dim=1024, sem_dim=8, seed=1)
                batch = make_batch(list(v.values()), T, 1, sources=(), max_tokens=c.data.max_tokens)
                st = init_state(model, txs, jax.random.PRNGKey(0), batch, c.train.sigma)
                step = xla_options.jit(make_train_step(model, txs, c.train), static_argnums=3)
                try:
                    t = time.time()
                    compiled = step.lower(st, batch, jax.random.PRNGKey(0), True).compile()
                    compile_s = time.time() - t
                    mem = compiled.memory_analysis()
                    temp = getattr(mem, "temp_size_in_bytes", float("nan")) / 2 ** 30 if mem else float("nan")
                    st, _ = compiled(st, batch, jax.random.PRNGKey(0))
                    jax.block_until_ready(st)
                    t = time.time()
                    reps = 2
                    for _ in range(reps):
                        st, _ = compiled(st, batch, jax.random.PRNGKey(0))
                    jax.block_until_ready(st)
                    row += [f"{compile_s:20.1f}", f"{(time.time() - t) / reps:8.3f}", f"{temp:9.2f}"]
                except Exception as e:  # out of memory at long T with full attention
                    row += [f"{'failed':>20}", f"{type(e).__name__[:8]:>8}", f"{'':>9}"]
            print(" ".join(row), flush=True)
        print(peak_memory())


if __name__ == "__main__":
    main()
