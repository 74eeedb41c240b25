"""TVSum highlight detection as UMT, QD-DETR and TR-DETR report it: top-5 mAP on the
per-category train/val split (``shared/data/tvsum/highlight_splits_qd_detr``: 40 / 10 videos,
one validation video per category), on the I3D features the TVSum build uses.

    python benchmarks/tvsum_highlight.py --seeds 0-2 --workdir runs/tvsum_highlight \
        --out benchmarks/results/tvsum_highlight.json

Ours is unsupervised: ``configs/tvsum_i3d.py`` (and its title-free variant) trained on the
40 training videos' features, no label read; scored on the 10 validation videos.  Beside it,
through the same metric: the untrained model (same seeds), random scores and every
training-free score of the same features.
The metric (UMT's ``evaluate``): per annotator, a step is a highlight when its score is above
that annotator's median for the video; the 5 best-scored steps are ranked, and their AP is
the trapezoid over those 5 (recall over the highlights among them; 0 where none is one);
mean over the 20 annotators, then over each category's videos, then over categories.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgvs_jax import cli, compilation, study, train  # noqa: E402
from sgvs_jax.data import resolve_sources  # noqa: E402
from sgvs_jax.data.batching import normalize  # noqa: E402
from sgvs_jax.data.tvsum import build_tvsum  # noqa: E402
from sgvs_jax.evaluation.baselines import CRITERIA, training_free_scores  # noqa: E402
from sgvs_jax.evaluation.protocol import annotator_matrix  # noqa: E402
from sgvs_jax.provenance import provenance  # noqa: E402

PROGRAM = "benchmarks/tvsum_highlight.py"
TOP = 5


def top5_ap(scores, anno) -> float:
    """UMT's top-5 AP (in %) of one video: ``anno`` (T, U) clip scores of U annotators."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    aps = []
    for u in range(anno.shape[1]):
        label = (anno[:, u] > np.median(anno[:, u]))[order][:TOP].astype(float)
        if label.sum() == 0:
            aps.append(0.0)
            continue
        hits = ap = rec = 0.0
        prc = 1.0
        for j, gt in enumerate(label):
            hits += gt
            r, p = hits / label.sum(), hits / (j + 1)
            ap += (r - rec) * (prc + p) / 2
            rec, prc = r, p
        aps.append(ap)
    return 100 * float(np.mean(aps))


def category_map(scores: dict, videos: dict, category: dict) -> dict:
    """``{category: mAP, 'mean': mean over categories}`` of ``scores`` (key -> (T,))."""
    per = {}
    for k, s in scores.items():
        per.setdefault(category[k], []).append(top5_ap(s, annotator_matrix(videos[k]).T))
    out = {c: round(float(np.mean(v)), 2) for c, v in sorted(per.items())}
    return {**out, "mean": round(float(np.mean(list(out.values()))), 2)}


def main():
    p = cli.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    p.add_argument("--seeds", default="0-2")
    p.add_argument("--variants", default="sgvs,sgvs_no_title")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--workdir", default="runs/tvsum_highlight")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    cli.run(lambda: highlight(args), args.debug)


def highlight(args):
    from configs import tvsum_i3d
    data_dir = os.path.abspath(args.data_dir)
    seeds = cli.parse_seeds(args.seeds)
    variants = cli.parse_names(args.variants, "--variants", study.VARIANTS, "variant")
    cli.guard_result(args.out, PROGRAM, cli.files_in(data_dir), args.overwrite)
    videos = build_tvsum(data_dir)
    key_of = {m["youtube_id"]: k for k, m in json.load(open(os.path.join(data_dir, "derived",
                                                                          "h5_key_map.json")))["tvsum"].items()}
    rows = {}
    for part in ("train", "val"):
        with open(os.path.join(data_dir, "tvsum", "highlight_splits_qd_detr", f"tvsum_{part}.jsonl")) as f:
            rows[part] = [json.loads(line) for line in f if line.strip()]
    split = {"train_keys": sorted(key_of[r["vid"]] for r in rows["train"]),
             "test_keys": sorted(key_of[r["vid"]] for r in rows["val"])}
    category = {key_of[r["vid"]]: r["domain"] for part in rows.values() for r in part}
    base = tvsum_i3d.get_config()
    compilation.enable(base.compilation_cache_dir)
    out = {"protocol": __doc__.split("\n\n")[2].replace("\n", " "), "split": split, "seeds": seeds, "models": {}}
    for name in variants:
        config, _ = resolve_sources(study.variant_config(base, name), videos)
        config.splits = ()
        records = train.run(config, videos, [split], os.path.join(args.workdir, name), seeds)
        trained = [{k: np.asarray(v) for k, v in m["last_epoch_videos"]["scores"].items()}
                   for m in records[0]["members"]]
        trainer = train.Trainer(config, videos, seeds)  # the untrained members, as train_split starts them
        states = trainer.init_states([k[0] for k in train.member_keys(seeds, 0)], videos[split["train_keys"][0]])
        test = [videos[k] for k in split["test_keys"]]
        untrained = [{k: o["scores"] for k, o in member.items()}
                     for member in trainer.outputs(trainer.place_states(states)["params"], test)]
        for rule, scores in (("last_epoch", trained), ("untrained", untrained)):
            maps = [category_map(member, videos, category) for member in scores]
            out["models"][f"{name} ({rule})"] = {
                "mean": round(float(np.mean([m["mean"] for m in maps])), 2),
                "std_over_seeds": round(float(np.std([m["mean"] for m in maps])), 2),
                "per_category": {c: round(float(np.mean([m[c] for m in maps])), 2) for c in maps[0] if c != "mean"}}
    rng = np.random.default_rng(0)
    draws = [category_map({k: rng.random(videos[k].length) for k in split["test_keys"]}, videos, category)
             for _ in range(args.draws)]
    out["random"] = {"mean": round(float(np.mean([d["mean"] for d in draws])), 2), "draws": args.draws}
    out["training_free"] = {c: category_map({k: training_free_scores(normalize(videos[k].features,
                                                                               base.data.normalization), c)
                                             for k in split["test_keys"]}, videos, category)["mean"]
                            for c in CRITERIA}
    print(json.dumps({k: v for k, v in out.items() if k not in ("split", "protocol")}, indent=1))
    if args.out:
        cli.write_result(args.out, {**out, "provenance": provenance(base)}, PROGRAM)


if __name__ == "__main__":
    main()
