"""What a run reports: score diagnostics, model-selection rules, the summary over
splits and the lines it prints (one progress channel: :func:`log`)."""

from __future__ import annotations

import sys

import numpy as np

METRICS = ("f1", "tau", "rho", "ap")  # ap: average precision (%) against highlight labels
COLLAPSE_SPREAD = 0.02  # a mean per-video score std below this is a collapsed selector
RULES = {
    "last_epoch": "the last epoch",
    "max_test_f1_optimistic": "the epoch with the best test F1: optimistic, uses test labels",
}


def log(message: str) -> None:
    """Progress for the person watching: one line on stdout, flushed."""
    print(message, file=sys.stdout, flush=True)


def score_diagnostics(outputs: dict) -> dict:
    """Is the selector learning?  Means over videos of:

      spread      std of the scores over the video's steps (collapse: < COLLAPSE_SPREAD)
      alpha       the FSSA balance (None without FSSA)
      cos_share   share of the mean score that comes from the FSSA cosine term
                  alpha * c(cos) (the rest is (1 - alpha) * h_t)
      cos_spread, h_spread  std over steps of each term as it enters the score
    """
    o = list(outputs.values())
    spread = float(np.mean([np.std(v["scores"]) for v in o]))
    if "alpha" not in o[0]:
        return {"spread": spread, "alpha": None, "cos_share": 0.0, "cos_spread": 0.0, "h_spread": spread}
    a = float(o[0]["alpha"])
    cos_part = [v["scores"] - (1 - a) * v["h"] for v in o]
    return {"spread": spread, "alpha": a,
            "cos_share": float(np.mean([c.mean() / max(v["scores"].mean(), 1e-12)
                                        for c, v in zip(cos_part, o)])),
            "cos_spread": float(np.mean([np.std(c) for c in cos_part])),
            "h_spread": float(np.mean([np.std((1 - a) * v["h"]) for v in o]))}


def select_models(history: list) -> dict:
    """The model-selection rules (:data:`RULES`) over the trained epochs' records,
    plus the untrained model (epoch 0) as its own row."""
    trained = [h for h in history if h["epoch"] > 0]
    chosen = {"last_epoch": trained[-1], "max_test_f1_optimistic": max(trained, key=lambda h: h["test"]["f1"])}
    chosen.update({"untrained": h for h in history if h["epoch"] == 0})
    return {rule: {"epoch": h["epoch"], **{m: h["test"].get(m, float("nan")) for m in METRICS + ("spread",)}}
            for rule, h in chosen.items()}


def mean_std(rows: list, metrics=METRICS) -> dict:
    return {m: {"mean": float(np.mean([x.get(m, np.nan) for x in rows])),
                "std": float(np.std([x.get(m, np.nan) for x in rows]))} for m in metrics}


def summarize(split_results: dict) -> dict:
    """Mean and std over splits: each selection rule and the untrained model (with the
    score spread), the learning gain (last epoch - untrained, and on how many splits tau
    gained), whether the scores collapsed, random scores and each training-free score."""
    rows = list(split_results.values())
    out = {rule: mean_std([r["selection"][rule] for r in rows], METRICS + ("spread",))
           for rule in list(RULES) + ["untrained"] if all(rule in r["selection"] for r in rows)}
    if "untrained" in out:
        gains = [{m: r["selection"]["last_epoch"][m] - r["selection"]["untrained"][m] for m in METRICS}
                 for r in rows]
        out["learning_gain"] = {**mean_std(gains), "splits_gained_tau": int(sum(g["tau"] > 0 for g in gains)),
                                "splits": len(gains)}
    out["collapsed"] = bool(out["last_epoch"]["spread"]["mean"] < COLLAPSE_SPREAD)
    out["random"] = mean_std([r["random"] for r in rows])
    out["training_free"] = {name: mean_std([r["training_free"][name] for r in rows])
                            for name in rows[0]["training_free"]}
    return out


def epoch_line(split: int, epoch: int, num_epochs: int, train_metrics: dict, test: dict, seconds: float) -> str:
    """One epoch's progress line: each stage's loss, test F1 / tau / rho, score diagnostics."""
    losses = "  ".join(f"{k[:-len('/loss')]} {v:.4f}" for k, v in train_metrics.items()
                       if k.endswith("/loss")) or "untrained"
    fssa = f"alpha {test['alpha']:.3f}  cos share {test['cos_share']:.2f}  " if test["alpha"] is not None else ""
    metrics = "".join(f"{name} {test[m]:{spec}}  " for m, name, spec in (("f1", "F1", "5.2f"), ("tau", "tau", "+.3f"),
                      ("rho", "rho", "+.3f"), ("ap", "AP", "5.2f")) if np.isfinite(test.get(m, np.nan)))
    return (f"split {split} epoch {epoch:3d}/{num_epochs}  {losses}  {metrics}spread {test['spread']:.3f}  {fssa}"
            f"({seconds:.1f} s)")


def summary_table(summary: dict, where: str, n_splits: int, eval_mode: str) -> str:
    """The closing table: every row through the same pipeline, mean ± std over splits."""
    lines = [f"{where}: {n_splits} split(s), F1 {'max' if eval_mode == 'max' else 'avg'} over users "
             "(mean ± std over splits)"]
    rows = [(rule, summary[rule]) for rule in list(RULES) + ["untrained", "random"] if rule in summary]
    rows += [(f"training-free {name}", r) for name, r in summary["training_free"].items()]
    scored = any(np.isfinite(r[m]["mean"]) for _, r in rows for m in METRICS)
    if not scored:  # own videos: nothing to test against
        lines[0] = f"{where}: no user summaries, so no F1 / tau / rho / AP: the score spread of each model"
        rows = [(name, r) for name, r in rows if "spread" in r and name != "max_test_f1_optimistic"]
    for name, r in rows:
        spread = f"   spread {r['spread']['mean']:.3f}" if "spread" in r else ""
        lines.append(f"  {name:<34} F1 {r['f1']['mean']:6.2f} ± {r['f1']['std']:5.2f}   "
                     f"tau {r['tau']['mean']:+.3f}   rho {r['rho']['mean']:+.3f}   AP {r['ap']['mean']:6.2f}{spread}"
                     if scored else f"  {name:<34}{spread}")
    if "learning_gain" in summary and scored:
        g = summary["learning_gain"]
        lines.append(f"  learning gain (last epoch - untrained): F1 {g['f1']['mean']:+.2f}   "
                     f"tau {g['tau']['mean']:+.3f}   rho {g['rho']['mean']:+.3f}   "
                     f"(tau gained on {g['splits_gained_tau']} of {g['splits']} splits)")
    if summary["collapsed"]:
        lines.append(f"  WARNING: the scores collapsed (mean per-video spread "
                     f"{summary['last_epoch']['spread']['mean']:.4f} < {COLLAPSE_SPREAD}): the selector gives "
                     "nearly the same score everywhere")
    return "\n".join(lines)
