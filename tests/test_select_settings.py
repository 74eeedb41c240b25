"""benchmarks/select_settings.py: settings are chosen from the training videos' curves alone,
every epoch a candidate (its arguments: tests/test_cli.py)."""

import json
import os
import runpy
import pytest

from tests.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SELECT = runpy.run_path(os.path.join(ROOT, "benchmarks", "select_settings.py"))


def test_the_choice_is_the_best_mean_over_variants_of_a_trained_epoch():
    row = lambda *taus: {e: {"tau": t} for e, t in enumerate(taus)}  # noqa: E731
    curves = {1.0: {"a": row(0.9, 0.1, 0.2), "b": row(0.9, 0.3, 0.2)},
              0.1: {"a": row(0.9, 0.3, 0.1), "b": row(0.9, 0.0, 0.4)}}
    choice = SELECT["choose"](curves)
    assert (choice["value"], choice["epochs"]) == (0.1, 2)  # (0.1 + 0.4) / 2; epoch 0 never counts
    assert choice["mean_over_variants"][1.0] == {1: 0.2, 2: 0.2}


@pytest.mark.slow
def test_curves_come_from_the_training_videos_of_every_epoch(tmp_path):
    """The study records each epoch's training-video metrics; the curve's last epoch is the
    figure the study reports for the training videos, and no test metric enters the result."""
    cfg = tiny_config(num_epochs=5)
    out = SELECT["select"](cfg, "train.sigma", [0.3, 0.5], ["sgvs"], [0], 2, str(tmp_path / "w"))
    assert "test" not in json.dumps(out)
    for value in ("0.3", "0.5"):
        curve = out["curves"][value]["sgvs"]
        assert sorted(curve) == ["0", "1", "2"] and len(curve["2"]["per_split_tau"]) == 1
        run = json.load(open(tmp_path / "w" / f"train.sigma={value}" / "sgvs" / "results.json"))
        member = run["splits"]["0"]["members"][0]
        assert [h["epoch"] for h in member["history"]] == [0, 1, 2]
        assert curve["2"]["tau"] == pytest.approx(member["last_epoch_videos"]["training_videos"]["tau"], abs=1e-4)
    taus = {(float(v), int(e)): out["curves"][v]["sgvs"][e]["tau"] for v in ("0.3", "0.5") for e in ("1", "2")}
    assert out["choice"]["tau"] == max(taus.values())
    assert taus[(out["choice"]["value"], out["choice"]["epochs"])] == max(taus.values())
