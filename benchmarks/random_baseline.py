"""Random, training-free and human reference points on the real TVSum build and SumMe ground truth.

    python benchmarks/random_baseline.py [--data_dir ../shared/data] [--draws 50] \
        [--out benchmarks/results/reference_points.json]

Prints, per split of the standard 5-fold split file, the F1 (TVSum: mean over
users), Kendall tau and Spearman rho of uniform random scores through the same
pipeline as the trained models; then the training-free criteria of
``sgvs_jax.evaluation.baselines`` on the features as ``configs/tvsum_i3d.py``
feeds them to the model (``data.normalization``) and as l2-normalised, mean over
splits; plus leave-one-out human F1.
"""

from __future__ import annotations

import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax import cli  # noqa: E402
from sgvs_jax.data import load_splits  # noqa: E402
from sgvs_jax.data.tvsum import build_tvsum  # noqa: E402
from sgvs_jax.data.batching import normalize  # noqa: E402
from sgvs_jax.evaluation import human_baseline, random_baseline, training_free_baselines  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402


PROGRAM = "benchmarks/random_baseline.py"


def main():
    p = cli.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    p.add_argument("--draws", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    cli.run(lambda: reference_points(args), args.debug)


def reference_points(args):
    data_dir = os.path.abspath(args.data_dir)
    if not os.path.isdir(os.path.join(data_dir, "tvsum")):
        raise cli.ArgumentError(f"--data_dir {data_dir}: shared data not found (no tvsum folder)")
    cli.guard_result(args.out, PROGRAM, cli.files_in(data_dir), args.overwrite)
    t0 = time.time()
    videos = build_tvsum(data_dir)
    splits = load_splits(os.path.join(data_dir, "splits", "e-apostolidis", "tvsum_splits.json"))
    rows = []
    print(f"TVSum (I3D build, {len(videos)} videos), random scores, {args.draws} draws per split")
    print(f"{'split':>5} {'F1':>7} {'tau':>8} {'rho':>8}")
    for i, s in enumerate(splits):
        r = random_baseline(videos, s["test_keys"], "avg", n_draws=args.draws, seed=args.seed + i)
        rows.append(r)
        print(f"{i:>5} {r['f1']:7.2f} {r['tau']:8.4f} {r['rho']:8.4f}")
    mean = {m: float(np.mean([r[m] for r in rows])) for m in ("f1", "tau", "rho")}
    std = {m: float(np.std([r[m] for r in rows])) for m in ("f1", "tau", "rho")}
    print(f"{'mean':>5} {mean['f1']:7.2f} {mean['tau']:8.4f} {mean['rho']:8.4f}   "
          f"(std F1 {std['f1']:.2f})")
    from configs import tvsum_i3d
    norm = tvsum_i3d.get_config().data.normalization
    results_free = {}
    for mode in dict.fromkeys([norm, "l2"]):
        per_split = [training_free_baselines(videos, s["test_keys"], "avg",
                                             features=lambda v: normalize(v.features, mode)) for s in splits]
        results_free[mode] = {name: {m: float(np.mean([r[name][m] for r in per_split])) for m in ("f1", "tau", "rho")}
                              for name in per_split[0]}
        print(f"training-free scores (features normalised '{mode}'), mean over splits:")
        for name, r in results_free[mode].items():
            print(f"  {name:<20} F1 {r['f1']:6.2f}  tau {r['tau']:+.3f}  rho {r['rho']:+.3f}")
    tv_h = [human_baseline(v.user_summary) for v in videos.values()]
    tv_human = {k: float(np.mean([h[k] for h in tv_h])) for k in ("avg", "max")}
    print(f"TVSum leave-one-out human F1: avg {tv_human['avg']:.2f}  max {tv_human['max']:.2f}")
    results = {"tvsum_random": {"per_split": rows, "mean": mean, "std": std},
               "tvsum_training_free": results_free, "tvsum_human_loo": tv_human}
    gt = sorted(glob.glob(os.path.join(data_dir, "summe", "GT", "*.mat")))
    if gt:
        import scipy.io
        hs = [human_baseline((scipy.io.loadmat(f)["user_score"] > 0).T) for f in gt]
        sm = {k: float(np.mean([h[k] for h in hs])) for k in ("avg", "max")}
        print(f"SumMe leave-one-out human F1 ({len(gt)} videos): avg {sm['avg']:.2f}  max {sm['max']:.2f}")
        results["summe_human_loo"] = sm
    results["provenance"] = provenance({"draws": args.draws, "seed": args.seed, "data_dir": data_dir})
    print(f"({time.time() - t0:.0f} s)")
    if args.out:
        cli.write_result(args.out, results, PROGRAM)


if __name__ == "__main__":
    main()
