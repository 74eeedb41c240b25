"""The selector trained *with* the annotations: what the architecture can reach on these features.

    python benchmarks/supervised_reference.py --config configs/tvsum_i3d.py --seeds 0-2 \\
        --out benchmarks/results/tvsum_i3d_supervised.json

A reference row, not a method of this library: the run config's selector, visual
only (no title, no FSSA), trained on each split's *training* videos to regress their
``gtscore`` (min-max scaled per video; mean squared error over the real steps) with
the run config's stage-1 optimizer, for as many epochs (1 .. ``--max_epochs``) as give
the best tau on a fifth of the split's training videos held out (trained on the other
four fifths; the test videos' annotations are not used), then scored on the split's
test videos through the same pipeline as every study row (knapsack F1, Kendall tau /
Spearman rho against the annotators).  An unsupervised selector that reaches this
figure is as good as its own architecture trained on the labels.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from sgvs_jax.data import load_dataset  # noqa: E402
from sgvs_jax.data.batching import iterate_batches  # noqa: E402
from sgvs_jax import cli  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402
from sgvs_jax.study_report import bootstrap_ci  # noqa: E402
from sgvs_jax.train import Trainer  # noqa: E402


SELECTOR_PARTS = ("compress", "selector")  # what the regression trains


def targets(keys, batch, videos):
    """(B, T) each video's gtscore scaled to [0, 1] (zeros on padding and empty slots)."""
    out = np.zeros(batch["mask"].shape, np.float32)
    for i, k in enumerate(keys):
        if k is not None:
            g = videos[k].gtscore
            out[i, :len(g)] = (g - g.min()) / max(g.max() - g.min(), 1e-6)
    return out


def make_step(model, tx):
    """One jitted regression update of the selector's parameters (with the shared projection it reads)."""

    @jax.jit
    def step(sel, opt, batch, target, rng):
        def loss(sel):
            s = model.select(sel, batch, rng)["scores"]
            m = batch["mask"]
            return jnp.sum(jnp.where(m, (s - target) ** 2, 0.0)) / jnp.maximum(m.sum(), 1)
        updates, opt = tx.update(jax.grad(loss)(sel), opt, sel)
        return optax.apply_updates(sel, updates), opt

    return step


def fit(trainer, step, tx, videos, train, seed, index, epochs, check=None):
    """Trains a fresh selector on ``train`` for ``epochs``; with ``check`` (videos), their
    tau after every epoch too.  Returns (params, [tau per epoch])."""
    config = trainer.config
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), index)
    params = jax.tree_util.tree_map(lambda x: x[0], trainer.init_states([rng], train[0])["params"])
    sel = {p: params[p] for p in SELECTOR_PARTS}
    opt = tx.init(sel)
    order_rng, taus = np.random.default_rng([seed, index]), []
    for epoch in range(epochs):
        for b, (keys, batch) in enumerate(iterate_batches(train, config.train.batch_size, trainer.buckets,
                                                          order_rng, **trainer.data.options)):
            key = jax.random.fold_in(jax.random.fold_in(rng, epoch), b)
            sel, opt = step(sel, opt, batch, targets(keys, batch, videos), key)
        if check:
            taus.append(evaluate(trainer, {**params, **sel}, check, videos)["tau"])
    return {**params, **sel}, taus


def evaluate(trainer, params, scored, videos) -> dict:
    """Metrics of one selector's ``params`` on the ``scored`` videos (the trainer's one member)."""
    one = jax.tree_util.tree_map(lambda x: x[None], params)
    return trainer.evaluate_outputs(trainer.outputs(one, scored)[0], videos)


def run_split(trainer, step, tx, videos, split, seed, max_epochs):
    """Chooses the epochs on a fifth of the split's training videos held out (trained on the
    rest), trains on all its training videos for that many, scores its test videos."""
    train = [videos[k] for k in split["train_keys"]]
    held = set(np.random.default_rng([seed, split["index"], 1]).permutation(len(train))[:len(train) // 5])
    _, taus = fit(trainer, step, tx, videos, [v for i, v in enumerate(train) if i not in held], seed,
                  split["index"], max_epochs, check=[v for i, v in enumerate(train) if i in held])
    epochs = int(np.argmax(taus)) + 1
    params, _ = fit(trainer, step, tx, videos, train, seed, split["index"], epochs)
    return {**evaluate(trainer, params, [videos[k] for k in split["test_keys"]], videos), "epochs": epochs}


PROGRAM = "benchmarks/supervised_reference.py"


def main(argv=None):
    p = cli.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--seeds", default="0-2")
    p.add_argument("--max_epochs", type=int, default=30)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    cli.run(lambda: supervised_reference(a), a.debug)


def supervised_reference(a):
    config = cli.load_config(a.config)
    seeds = cli.parse_seeds(a.seeds)
    cli.guard_result(a.out, PROGRAM, cli.config_inputs(config, a.config), a.overwrite)
    for dotted, value in {"data.semantic_sources": (), "model.use_fssa": False,
                          "train.semantic_weight": 0.0}.items():
        cli.set_config_key(config, dotted, value, "visual only")
    videos, splits, source = load_dataset(config.data)
    trainer = Trainer(config, videos)
    tx = optax.adamw(config.optim.lr.stage1, weight_decay=config.optim.weight_decay)
    step = make_step(trainer.model, tx)
    chosen = []
    cells = {m: np.zeros((len(splits), len(seeds))) for m in ("f1", "tau", "rho")}
    for i, split in enumerate(splits):
        for j, seed in enumerate(seeds):
            r = run_split(trainer, step, tx, videos, {**split, "index": i}, seed, a.max_epochs)
            for m in cells:
                cells[m][i, j] = r[m]
            chosen.append(r["epochs"])
            print(f"split {i} seed {seed} ({r['epochs']} epochs): tau {r['tau']:+.3f} rho {r['rho']:+.3f} "
                  f"f1 {r['f1']:.2f}", flush=True)
    out = {"row": "supervised selector (visual only, gtscore of the training videos)", "source": source,
           "max_epochs": a.max_epochs, "epochs_chosen": chosen, "seeds": seeds, "splits": list(range(len(splits))),
           "last_epoch": {m: round(float(c.mean()), 4) for m, c in cells.items()},
           "ci95": {m: bootstrap_ci(c) for m, c in cells.items()},
           "per_split": {m: [round(float(x), 4) for x in c.mean(1)] for m, c in cells.items()},
           "provenance": provenance(config)}
    cli.write_result(a.out, out, PROGRAM)
    print(f"supervised reference: tau {out['last_epoch']['tau']:+.3f} {out['ci95']['tau']} "
          f"rho {out['last_epoch']['rho']:+.3f} f1 {out['last_epoch']['f1']:.2f} -> {a.out}")


if __name__ == "__main__":
    main()
