import numpy as np
import pytest
from scipy import stats

from sgvs_jax.evaluation import (f1_against_users, frame_scores_from_picks, generate_summary,
                                 rank_correlations)


def test_frame_scores_from_picks_piecewise_constant():
    fs = frame_scores_from_picks([0.1, 0.5, 0.9], [0, 4, 8], 10)
    np.testing.assert_allclose(fs, [0.1] * 4 + [0.5] * 4 + [0.9] * 2)


def test_generate_summary_picks_best_shots_within_budget():
    # 100 frames, 10 shots of 10 frames; budget 15 % = 15 frames -> exactly one shot fits.
    cps = np.stack([np.arange(0, 100, 10), np.arange(9, 100, 10)], 1)
    picks = np.arange(0, 100, 5)
    scores = np.zeros(20)
    scores[14:16] = 1.0  # frames 70..79 = shot 7
    s = generate_summary(scores, cps, 100, picks)
    assert s.shape == (100,)
    np.testing.assert_array_equal(np.nonzero(s)[0], np.arange(70, 80))


def test_f1_known_answers():
    summary = np.array([1, 1, 0, 0])
    users = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]])
    # per-user F1: 100, 0, 2*(0.5*1)/(1.5)=66.67
    assert f1_against_users(summary, users, "max") == pytest.approx(100.0)
    assert f1_against_users(summary, users, "avg") == pytest.approx((100 + 0 + 200 / 3) / 3)
    assert f1_against_users(np.zeros(4), users, "avg") == 0.0


def test_f1_pads_shorter_sequence():
    assert f1_against_users(np.array([1, 1]), np.array([[1, 1, 0, 0, 0]]), "max") == pytest.approx(100)
    with pytest.raises(ValueError):
        f1_against_users(np.array([1]), np.array([[1]]), "mean")


def test_rank_correlations():
    x = np.arange(10.0)
    tau, rho = rank_correlations(x, np.stack([x, -x]))
    assert tau == pytest.approx(0.0) and rho == pytest.approx(0.0)
    tau, rho = rank_correlations(x, x[None])
    assert tau == pytest.approx(1.0) and rho == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    y, a = rng.random(30), rng.random((3, 30))
    tau, rho = rank_correlations(y, a)
    assert tau == pytest.approx(np.mean([stats.kendalltau(y, r).statistic for r in a]))
    assert rho == pytest.approx(np.mean([stats.spearmanr(y, r).statistic for r in a]))
