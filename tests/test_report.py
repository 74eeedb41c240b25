"""What a run reports: score diagnostics, the collapse flag, selection rules, summaries."""

import numpy as np
import pytest

from sgvs_jax import report


def test_score_diagnostics_and_collapse_flag():
    rng = np.random.default_rng(0)
    flat = {"a": {"scores": 0.3 + 0.001 * rng.random(50), "h": 0.3 + 0.001 * rng.random(50),
                  "cos": np.zeros(50), "alpha": np.float32(0.5)}}
    d = report.score_diagnostics(flat)
    assert d["spread"] < report.COLLAPSE_SPREAD and d["alpha"] == 0.5
    o = flat["a"]
    assert d["cos_share"] == pytest.approx(np.mean(o["scores"] - 0.5 * o["h"]) / np.mean(o["scores"]), rel=1e-6)
    no_fssa = report.score_diagnostics({"a": {"scores": rng.random(50), "h": rng.random(50)}})
    assert no_fssa["alpha"] is None and no_fssa["cos_share"] == 0.0 and no_fssa["spread"] > 0.2

    def split(spread):
        row = {"f1": 50.0, "tau": 0.1, "rho": 0.1, "ap": 60.0, "spread": spread, "epoch": 1}
        return {"selection": {r: row for r in list(report.RULES) + ["untrained"]},
                "random": {"f1": 40.0, "tau": 0.0, "rho": 0.0, "ap": 50.0},
                "training_free": {"uniqueness": {"f1": 45.0, "tau": 0.05, "rho": 0.05, "ap": 55.0, "spread": 0.2}}}

    assert report.summarize({"0": split(0.005)})["collapsed"]
    s = report.summarize({"0": split(0.1), "1": split(0.1)})
    assert not s["collapsed"] and s["learning_gain"]["tau"]["mean"] == 0.0
    assert s["training_free"]["uniqueness"]["tau"]["mean"] == 0.05


def test_selection_rules_and_the_untrained_row():
    history = [{"epoch": e, "test": {"f1": f1, "tau": 0.1 * e, "rho": 0.1 * e, "spread": 0.1}}
               for e, f1 in enumerate([40.0, 60.0, 55.0, 50.0])]
    chosen = report.select_models(history)
    assert set(chosen) == set(report.RULES) | {"untrained"}
    assert chosen["last_epoch"]["epoch"] == 3 and chosen["max_test_f1_optimistic"]["epoch"] == 1
    assert chosen["untrained"]["epoch"] == 0  # never chosen by a rule, always reported
    resumed = report.select_models(history[2:])  # a history without epoch 0
    assert "untrained" not in resumed and resumed["max_test_f1_optimistic"]["epoch"] == 2
