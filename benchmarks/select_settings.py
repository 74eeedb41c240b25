"""Chooses a setting and the epochs by tau on each split's *training* videos, never the test videos'.

    python benchmarks/select_settings.py --config configs/tvsum_i3d.py --seeds 0 --epochs 8 \\
        --grid train.teacher_weight=1,0.3,0.1,0.03 --variants sgvs,sgvs_no_title,no_title_visual_only \\
        --workdir runs/select --out benchmarks/results/tvsum_i3d_selection.json

For each value of the grid key, the study (:func:`sgvs_jax.study.run_study`) of each of
``--variants`` with ``train.num_epochs=--epochs``; every epoch of every member's history
holds its metrics on its split's training videos.  The file holds those alone: per value,
variant and epoch the mean over splits and seeds (tau, rho, F1; tau per split), the
mean over the variants, and the choice: the value and the number of epochs (>= 1) with the
highest mean training-video tau.  The test videos' metrics stay in the workdirs; nothing
here reads them.  Every argument, every (value, variant) config and ``--out`` are checked
before the first one trains.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax import cli, compilation  # noqa: E402
from sgvs_jax.config_check import check_config  # noqa: E402
from sgvs_jax.files import read_json  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402
from sgvs_jax.study import VARIANTS, run_study, variant_config  # noqa: E402

METRICS = ("tau", "rho", "f1")
PROGRAM = "benchmarks/select_settings.py"


def training_curve(results: dict) -> dict:
    """A variant's ``results.json`` -> per epoch (0 = untrained) the mean over splits and
    members of the training-video metrics, and tau per split (mean over members)."""
    by_epoch: dict[int, dict[str, list]] = {}
    for split, record in sorted(results["splits"].items(), key=lambda kv: int(kv[0])):
        histories = [{h["epoch"]: h["training_videos"] for h in m["history"] if "training_videos" in h}
                     for m in record["members"]]
        for epoch in sorted(set.intersection(*(set(h) for h in histories))):
            cell = by_epoch.setdefault(epoch, {m: [] for m in METRICS + ("per_split_tau",)})
            for m in METRICS:
                cell[m] += [h[epoch][m] for h in histories]
            cell["per_split_tau"].append(round(float(np.mean([h[epoch]["tau"] for h in histories])), 4))
    return {e: {**{m: round(float(np.mean(c[m])), 4) for m in METRICS}, "per_split_tau": c["per_split_tau"]}
            for e, c in sorted(by_epoch.items())}


def choose(curves: dict) -> dict:
    """``curves[value][variant][epoch]`` -> the value and epochs (>= 1) of the highest tau,
    averaged over the variants, and that mean for every (value, epoch)."""
    mean = {value: {e: round(float(np.mean([c[e]["tau"] for c in by_variant.values()])), 4)
                    for e in set.intersection(*(set(c) for c in by_variant.values())) if e >= 1}
            for value, by_variant in curves.items()}
    value, epochs = max(((v, e) for v, row in mean.items() for e in row), key=lambda ve: mean[ve[0]][ve[1]])
    return {"value": value, "epochs": epochs, "tau": mean[value][epochs],
            "mean_over_variants": {v: dict(sorted(row.items())) for v, row in mean.items()}}


def grid_configs(config, key: str, values: list, variants: list, epochs: int) -> dict:
    """``{value: config}`` with ``key=value`` and ``train.num_epochs=epochs``; every (value,
    variant) config is checked here, before anything trains."""
    out = {}
    for value in values:
        c = config.copy_and_resolve_references()
        cli.set_config_key(c, key, value, "--grid")
        c.train.num_epochs = epochs
        for variant in variants:
            try:
                check_config(variant_config(c, variant))
            except ValueError as e:
                raise cli.ArgumentError(f"--grid {key}={value!r} with variant {variant}: {e}") from None
        out[value] = c
    return out


def select(config, key: str, values: list, variants: list, seeds: list, epochs: int, workdir: str) -> dict:
    """Runs the grid (one study per value and variant, resumable under ``workdir``) and
    returns the training-video curves and the choice."""
    configs, curves = grid_configs(config, key, values, variants, epochs), {}
    for value, c in configs.items():
        curves[value], where = {}, os.path.join(workdir, f"{key}={value}")
        for variant in variants:
            run_study(c, seeds, [variant], where)
            curves[value][variant] = training_curve(read_json(os.path.join(where, variant, "results.json")))
    return {"key": key, "values": values, "variants": variants, "seeds": seeds, "epochs": epochs,
            "choice": choose(curves),
            "curves": {str(v): {n: {str(e): row for e, row in c.items()} for n, c in by.items()}
                       for v, by in curves.items()}}


def main(argv=None):
    p = cli.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--grid", required=True, help="KEY=V1,V2,...: the setting to choose")
    p.add_argument("--variants", default="sgvs,sgvs_no_title")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=8, help="train this long; every epoch is a candidate")
    p.add_argument("--workdir", default="runs/select")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    def work():
        if a.epochs < 1:
            raise cli.ArgumentError(f"--epochs {a.epochs}: give at least 1")
        config = cli.load_config(a.config)
        key, values = cli.parse_grid(a.grid)
        variants = cli.parse_names(a.variants, "--variants", VARIANTS, "variant")
        seeds = cli.parse_seeds(a.seeds)
        grid_configs(config, key, values, variants, a.epochs)
        cli.guard({"--out": a.out}, cli.config_inputs(config, a.config), a.overwrite,
                  {"--out": cli.written_by(PROGRAM)})
        compilation.enable(config.compilation_cache_dir)
        out = select(config, key, values, variants, seeds, a.epochs, a.workdir)
        cli.write_result(a.out, {**out, "provenance": provenance(config)}, PROGRAM)
        c = out["choice"]
        print(f"chosen: {key}={c['value']!r}, {c['epochs']} epochs (training-video tau {c['tau']:+.4f}) -> {a.out}")

    cli.run(work, a.debug)


if __name__ == "__main__":
    main()
