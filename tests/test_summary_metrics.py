import numpy as np
import pytest
from scipy import stats

from sgvs_jax.evaluation import (evaluate_videos, f1_against_users, frame_scores_from_picks, generate_summary,
                                 random_baseline, rank_correlations)
from sgvs_jax.evaluation.rank import average_ranks, rank_correlations_many


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


@pytest.mark.parametrize("T", [1, 2, 7, 300, 2100])
@pytest.mark.parametrize("levels", [1, 2, 5, None])
def test_average_ranks_equal_scipy(T, levels):
    """scipy.stats.rankdata's average ranks, bit for bit, with and without ties."""
    rng = np.random.default_rng(T)
    x = rng.integers(0, levels, (4, T)).astype(float) if levels else rng.normal(size=(4, T))
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x, axis=1))


def test_scoring_a_run_does_not_import_scipy():
    """Importing scipy.stats takes 0.5-1 s of every run's start-up; only Kendall's
    tau of a sequence longer than PAIRWISE_LIMIT needs it."""
    import subprocess
    import sys
    code = ("import sys, numpy as np; import sgvs_jax.train; from sgvs_jax.evaluation import rank_correlations; "
            "rank_correlations(np.arange(50.0) % 7, np.random.default_rng(0).integers(1, 6, (3, 50))); "
            "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rank_correlations_many_equals_one_call_per_row_bit_for_bit():
    rng = np.random.default_rng(1)
    ann = np.round(rng.random((6, 40)) * 4)  # annotator ties, as TVSum's 1..5 scores
    ann[2] = 3.0  # a constant annotator: counts as 0
    rows = rng.random((9, 40))
    rows[1] = 0.5  # a constant row: (0, 0)
    rows[4] = np.round(rows[4] * 3)  # ties in the scores
    tau, rho = rank_correlations_many(rows, ann)
    expected = [rank_correlations(x, ann) for x in rows]
    assert tau.tolist() == [t for t, _ in expected] and rho.tolist() == [r for _, r in expected]
    assert tau[1] == rho[1] == 0.0
    with pytest.raises(ValueError, match="do not match"):
        rank_correlations_many(rows[:, :30], ann)


def test_random_baseline_equals_one_evaluation_per_draw():
    """random_baseline computes video by video what evaluate_videos gives draw by
    draw (same generator order): the numbers must be the same, bit for bit."""
    from sgvs_jax.data.synthetic import make_dataset

    vs = make_dataset(n_videos=5, seed=2)
    keys = sorted(vs)
    for mode in ("avg", "max"):
        rng = np.random.default_rng(7)
        draws = []
        for _ in range(4):
            r = evaluate_videos({k: rng.random(vs[k].picks.shape[0]) for k in keys}, vs, mode)
            draws.append([r["f1"], r["tau"], r["rho"]])
        mean = np.mean(draws, axis=0)
        got = random_baseline(vs, keys, mode, n_draws=4, seed=7)
        assert (got["f1"], got["tau"], got["rho"]) == (float(mean[0]), float(mean[1]), float(mean[2]))
    with pytest.raises(ValueError, match="n_draws"):
        random_baseline(vs, keys, "avg", n_draws=0)


def test_average_precision_of_a_ranking():
    """AP: the precision at each distinct score weighted by the recall it adds; tied steps
    form one threshold, so constant scores give the share of positives (no order is made up)."""
    from sgvs_jax.evaluation.protocol import average_precision

    labels = np.array([1, 0, 1, 0, 0], bool)
    assert average_precision([5, 4, 3, 2, 1], labels) == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert average_precision([1, 0, 1, 0, 0], labels) == pytest.approx(100.0)
    assert average_precision([0, 1, 0, 1, 1], labels) == pytest.approx(40.0)  # the ones last: all 5 steps
    assert average_precision(np.ones(5), labels) == pytest.approx(40.0)


def test_highlight_labels_are_above_the_median_or_the_ones_of_binary_labels():
    import dataclasses

    from sgvs_jax.data.synthetic import make_dataset
    from sgvs_jax.evaluation.protocol import annotator_matrix, highlight_labels

    v = make_dataset(n_videos=1, min_steps=40, max_steps=40, feature_dim=8, seed=0)["video_1"]
    m = annotator_matrix(v).mean(0)
    assert np.array_equal(highlight_labels(v), m > np.median(m))
    mostly = np.ones((1, v.n_frames))  # one user who marked 90 % of the video
    mostly[0, :v.n_frames // 10] = 0
    b = dataclasses.replace(v, user_summary=mostly, user_scores=None)
    assert np.array_equal(highlight_labels(b), annotator_matrix(b)[0] > 0)
    assert highlight_labels(dataclasses.replace(v, user_summary=np.ones((1, v.n_frames)), user_scores=None)) is None
