"""Training-free scores, the score diagnostics and the collapse flag."""

import numpy as np
import pytest

from sgvs_jax.data.synthetic import make_dataset
from sgvs_jax.evaluation import CRITERIA, training_free_baselines, training_free_scores


def features():
    rng = np.random.default_rng(0)
    base = np.tile(np.array([1.0, 0.0, 0.0]), (10, 1)) + 0.01 * rng.normal(size=(10, 3))
    base[3] = [0.0, 0.0, 2.0]  # a one-off, far and long step
    base[7] = [0.7, 0.7, 0.0]  # half-way between the crowd and elsewhere
    return base


@pytest.mark.parametrize("name, top", [("uniqueness", 3), ("local_dissimilarity", 3), ("feature_norm", 3)])
def test_distinct_step_scores_highest(name, top):
    s = training_free_scores(features(), name)
    assert s.shape == (10,) and s.min() == 0.0 and s.max() == 1.0
    assert int(np.argmax(s)) == top


@pytest.mark.parametrize("name", ["global_consistency", "representativeness"])
def test_consistent_steps_score_above_the_outlier(name):
    s = training_free_scores(features(), name)
    assert int(np.argmin(s)) == 3 and np.all(np.delete(s, [3, 7]) > s[7])


def test_unknown_criterion_and_flat_scores():
    with pytest.raises(ValueError, match="unknown training-free criterion"):
        training_free_scores(features(), "magic")
    assert np.all(training_free_scores(np.ones((5, 3)), "feature_norm") == 0.5)  # no ranking: flat, not NaN


def test_baselines_run_through_the_evaluation():
    vs = make_dataset(n_videos=3, min_steps=30, max_steps=60, feature_dim=16, sem_dim=8, seed=0)
    out = training_free_baselines(vs, list(vs), "avg")
    assert set(out) == set(CRITERIA)
    for r in out.values():
        assert 0 <= r["f1"] <= 100 and -1 <= r["tau"] <= 1 and r["spread"] > 0


def test_blocked_criteria_equal_the_whole_matrix(monkeypatch):
    """The criteria that compare every pair of steps work on blocks of rows (a 20,000-step
    video would need gigabytes as one matrix); blocks give the whole matrix's scores."""
    from sgvs_jax.evaluation import baselines

    x = np.random.default_rng(0).normal(size=(50, 8))
    whole = {n: baselines.CRITERIA[n](x) for n in ("uniqueness", "local_dissimilarity", "global_consistency")}
    monkeypatch.setattr(baselines, "BLOCK", 7)
    for name, expected in whole.items():
        np.testing.assert_allclose(baselines.CRITERIA[name](x), expected, rtol=1e-12, atol=1e-12, err_msg=name)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn @ xn.T
    np.fill_diagonal(sim, np.nan)
    np.testing.assert_allclose(whole["global_consistency"], np.nanmean(sim, 1), rtol=1e-12)
    np.testing.assert_allclose(whole["local_dissimilarity"], 1 - np.sort(np.nan_to_num(sim, nan=-np.inf), 1)[:, ::-1][:, :2].mean(1),
                               rtol=1e-12)
