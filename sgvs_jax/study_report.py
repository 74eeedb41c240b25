"""What a study reports: per variant and reference row the mean, the std over seeds,
a 95 % bootstrap interval over (split, seed) cells and the per-split means; paired
comparisons with the full model and with the strongest training-free row."""

from __future__ import annotations

import numpy as np

from sgvs_jax.report import METRICS, RULES

BOOTSTRAP_DRAWS, BOOTSTRAP_SEED = 2000, 0
ROWS = ("last_epoch", "untrained", "max_test_f1_optimistic")


def bootstrap_ci(cells) -> list[float]:
    """95 % percentile interval of the mean of ``cells`` (resampled with replacement,
    a fixed generator: the same cells give the same interval)."""
    x = np.asarray(cells, float).ravel()
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = x[rng.integers(0, len(x), (BOOTSTRAP_DRAWS, len(x)))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _grid(run: dict, pick) -> np.ndarray:
    """(splits, seeds) of ``pick(member record, split record)``."""
    return np.array([[pick(m, s) for m in s["members"]] for s in run["splits"].values()], float)


def _stats(grid: np.ndarray) -> dict:
    return {"mean": round(float(grid.mean()), 4), "std_over_seeds": round(float(grid.mean(0).std()), 4),
            "ci95": bootstrap_ci(grid), "per_split": [round(float(x), 4) for x in grid.mean(1)]}


def _compare(a: np.ndarray, b: np.ndarray) -> dict:
    """a - b per (split, seed) cell: mean, 95 % interval, splits where a's mean is above b's."""
    d = a - b
    return {"difference": round(float(d.mean()), 4), "ci95": bootstrap_ci(d),
            "wins_per_split": int((d.mean(1) > 0).sum()), "splits": int(d.shape[0])}


def summarize(runs: dict) -> dict:
    """``runs``: variant -> :func:`sgvs_jax.study.run_group`'s share.  Each variant's
    entry has ``last_epoch`` / ``untrained`` / ``max_test_f1_optimistic`` means
    (``{f1, tau, rho, spread}``), ``per_split`` (last epoch), their ``std_over_seeds``
    and ``ci95``, and ``training_videos``: the last epoch on each split's *training*
    videos, the figure settings are chosen by; ``baselines`` has random and every
    training-free row the same way."""
    first = next(iter(runs.values()))
    grids, out = {}, {"variants": list(runs), "rules": {**RULES, "untrained": "the model before training (epoch 0)"},
                      "bootstrap": f"{BOOTSTRAP_DRAWS} resamples of the (split, seed) cells, percentile 95 % "
                                   f"interval, generator seed {BOOTSTRAP_SEED}"}
    for name, run in runs.items():
        entry = {"seeds": run["seeds"], "splits": [int(s) for s in run["splits"]],
                 "std_over_seeds": {}, "ci95": {}}
        for rule in ROWS:
            stats = {m: _stats(_grid(run, lambda mem, s: mem["selection"][rule][m])) for m in METRICS + ("spread",)}
            grids[name, rule] = {m: _grid(run, lambda mem, s: mem["selection"][rule][m]) for m in METRICS}
            entry[rule] = {m: v["mean"] for m, v in stats.items()}
            entry["std_over_seeds"][rule] = {m: v["std_over_seeds"] for m, v in stats.items()}
            entry["ci95"][rule] = {m: v["ci95"] for m, v in stats.items()}
            if rule == "last_epoch":
                entry["per_split"] = {m: v["per_split"] for m, v in stats.items()}
        spread = _grid(run, lambda mem, s: mem["selection"]["last_epoch"]["spread"])
        gain = grids[name, "last_epoch"]["tau"] - grids[name, "untrained"]["tau"]
        entry["min_spread"] = round(float(spread.min()), 4)
        if all("training_videos" in m.get("last_epoch_videos", {}) for s in run["splits"].values()
               for m in s["members"]):
            seen = {m: _stats(_grid(run, lambda mem, s: mem["last_epoch_videos"]["training_videos"][m]))
                    for m in METRICS}
            entry["training_videos"] = {**{m: v["mean"] for m, v in seen.items()},
                                        "per_split": {m: v["per_split"] for m, v in seen.items()}}
        entry["learning_gain_tau"] = {**_compare(grids[name, "last_epoch"]["tau"], grids[name, "untrained"]["tau"]),
                                      "per_split": [round(float(x), 4) for x in gain.mean(1)]}
        out[name] = entry
    seeds = len(first["seeds"])
    refs = {"random": {m: _grid(first, lambda mem, s: mem["random"][m]) for m in METRICS}}
    for crit in next(iter(first["splits"].values()))["training_free"]:
        refs[crit] = {m: np.repeat(_grid(first, lambda mem, s: s["training_free"][crit][m])[:, :1], seeds, 1)
                      for m in METRICS}
    out["baselines"] = {}
    for name, g in refs.items():
        stats = {m: _stats(g[m]) for m in METRICS}
        out["baselines"][name] = {**{m: v["mean"] for m, v in stats.items()},
                                  "per_split": {m: v["per_split"] for m, v in stats.items()},
                                  "ci95": {m: v["ci95"] for m, v in stats.items()}}
    best = max((n for n in refs if n != "random"), key=lambda n: refs[n]["tau"].mean(), default=None)
    out["comparisons"] = {"best_training_free": best, "note": "last epoch, paired per (split, seed); the best "
                          "training-free row is chosen by its mean test tau (the strongest bar, not a setting)"}
    full = "sgvs" if "sgvs" in runs else None
    for name, run in runs.items():
        cmp = {"vs_untrained": {m: _compare(grids[name, "last_epoch"][m], grids[name, "untrained"][m])
                                for m in METRICS},
               "vs_random": {m: _compare(grids[name, "last_epoch"][m], _grid(run, lambda mem, s: mem["random"][m]))
                             for m in METRICS}}
        if best is not None:
            cmp["vs_best_training_free"] = {m: _compare(grids[name, "last_epoch"][m], refs[best][m][:, :1].repeat(
                len(run["seeds"]), 1)) for m in METRICS}
        if full is not None and name != full and runs[full]["seeds"] == run["seeds"] \
                and list(runs[full]["splits"]) == list(run["splits"]):
            cmp["vs_sgvs"] = {m: _compare(grids[name, "last_epoch"][m], grids[full, "last_epoch"][m])
                              for m in METRICS}
        out["comparisons"][name] = cmp
    return out


TABLE_HEADER = "| row | selection | F1 | tau [95 % CI] | rho [95 % CI] | AP | spread (min) |"


def table(study: dict) -> str:
    """The study as Markdown: every row with its interval, then the paired comparisons."""
    variants, nan = study["variants"], float("nan")
    lines = [TABLE_HEADER, "|---|---|---|---|---|---|---|"]

    def ci(x):
        return f"[{x[0]:+.3f}, {x[1]:+.3f}]"

    for name in variants:
        v = study[name]
        for rule in ROWS:
            spread = f"{v[rule]['spread']:.3f}" + (f" ({v['min_spread']:.3f})" if rule == "last_epoch" else "")
            lines.append(f"| {name} ({len(v['seeds'])} seeds) | {rule} | {v[rule]['f1']:.2f} | "
                         f"{v[rule]['tau']:+.3f} {ci(v['ci95'][rule]['tau'])} | "
                         f"{v[rule]['rho']:+.3f} {ci(v['ci95'][rule]['rho'])} | {v[rule].get('ap', nan):.2f} | {spread} |")
    for name in variants:
        if "training_videos" in study[name]:
            t = study[name]["training_videos"]
            lines.append(f"| {name} | training videos (selects settings) | {t['f1']:.2f} | {t['tau']:+.3f} | "
                         f"{t['rho']:+.3f} | {t.get('ap', nan):.2f} | |")
    for name, b in study["baselines"].items():
        lines.append(f"| {name} | {'random scores' if name == 'random' else 'training-free'} | {b['f1']:.2f} | "
                     f"{b['tau']:+.3f} {ci(b['ci95']['tau'])} | {b['rho']:+.3f} {ci(b['ci95']['rho'])} | {b.get('ap', nan):.2f} | |")
    cmp = study["comparisons"]
    lines += ["", f"Paired differences (last epoch; best training-free row by test tau: {cmp['best_training_free']})",
              "", "| variant | vs | d tau [95 % CI] | d rho [95 % CI] | tau wins per split |", "|---|---|---|---|---|"]
    for name in variants:
        for ref, c in cmp[name].items():
            lines.append(f"| {name} | {ref[3:]} | {c['tau']['difference']:+.3f} {ci(c['tau']['ci95'])} | "
                         f"{c['rho']['difference']:+.3f} {ci(c['rho']['ci95'])} | "
                         f"{c['tau']['wins_per_split']}/{c['tau']['splits']} |")
    return "\n".join(lines)
