"""Scores and budgets the keyshot protocol cannot measure are refused, naming the
video; rank normalisation makes F1 / tau / rho depend on the order alone."""

import numpy as np
import pytest

from sgvs_jax.evaluation import (check_budget, evaluate_video, evaluate_videos, generate_summary, rank_normalize)
from sgvs_jax.data.synthetic import make_dataset
from sgvs_jax.data.video import DataError


@pytest.fixture(scope="module")
def video():
    return make_dataset(n_videos=2, min_steps=80, max_steps=120, feature_dim=8, sem_dim=4, seed=0)["video_1"]


@pytest.mark.parametrize("make,message", [
    (lambda s: s - 0.5, "negative scores"),
    (lambda s: np.zeros_like(s), "every score is 0"),
    (lambda s: s[None], "scores of shape"),
    (lambda s: s[:-1], "scores of shape"),
    (lambda s: np.float64(0.3), "scores of shape"),
    (lambda s: np.where(s > 0.5, np.nan, s), "NaN or inf"),
    (lambda s: s.astype(str), "real numbers"),
])
def test_scores_it_cannot_measure_are_refused(video, make, message):
    scores = np.random.default_rng(0).random(video.length)
    with pytest.raises(ValueError, match=message) as e:
        evaluate_video(make(scores), video, "avg")
    assert "video_1" in str(e.value)


@pytest.mark.parametrize("budget", [0, -0.1, 1.01, 15, float("nan"), "15%"])
def test_budget_outside_0_1_is_refused(video, budget):
    scores = np.random.default_rng(0).random(video.length)
    with pytest.raises(ValueError, match=r"budget"):
        evaluate_video(scores, video, "avg", budget=budget)
    with pytest.raises(ValueError, match=r"budget"):
        generate_summary(scores, video.change_points, video.n_frames, video.picks, budget)


def test_budget_one_takes_the_whole_video(video):
    assert check_budget(1) == 1.0
    s = generate_summary(np.random.default_rng(0).random(video.length), video.change_points, video.n_frames,
                         video.picks, 1.0)
    assert s.sum() == video.n_frames


def test_rank_normalised_scores_depend_on_the_order_only(video):
    raw = np.random.default_rng(1).normal(size=video.length)  # logits: negative values included
    results = [evaluate_video(rank_normalize(f(raw)), video, "avg")
               for f in (lambda x: x, lambda x: 3 * x + 7, np.exp, lambda x: np.tanh(x / 5))]
    assert all(r == results[0] for r in results[1:])
    ranks = rank_normalize(raw)
    assert ranks.min() > 0 and ranks.max() == 1.0


def test_no_videos_to_evaluate():
    with pytest.raises(ValueError, match="no videos"):
        evaluate_videos({}, {}, "avg")


def test_videos_that_cannot_be_scored_are_left_out_of_the_means():
    """A video with no user summary (own videos, or every shot longer than the budget when
    the summaries were made) is named in ``left_out``, not averaged in as F1 0."""
    import dataclasses

    from sgvs_jax.evaluation import evaluate_videos, random_baseline
    from sgvs_jax.data.synthetic import make_dataset

    videos = make_dataset(n_videos=4, min_steps=40, max_steps=60, feature_dim=8, seed=3)
    scores = {k: v.gtscore + 0.1 for k, v in videos.items()}
    full = evaluate_videos(scores, videos, "avg")
    blank = dict(videos, video_2=dataclasses.replace(videos["video_2"], user_summary=videos["video_2"].user_summary * 0))
    part = evaluate_videos(scores, blank, "avg")
    assert part["left_out"] == ["video_2"] and full["left_out"] == [] and "video_2" not in part["per_video"]
    others = [full["per_video"][k]["f1"] for k in videos if k != "video_2"]
    assert part["f1"] == pytest.approx(np.mean(others))
    none = {k: dataclasses.replace(v, user_summary=v.user_summary * 0) for k, v in videos.items()}
    assert np.isnan(evaluate_videos(scores, none, "avg")["f1"]) and np.isnan(random_baseline(none, list(none), "avg")["tau"])


def test_a_budget_no_shot_fits_is_refused_with_the_video_named():
    from sgvs_jax.evaluation import evaluate_videos, random_baseline
    from sgvs_jax.data.synthetic import make_dataset

    videos = make_dataset(n_videos=2, min_steps=40, max_steps=60, feature_dim=8, seed=3)
    scores = {k: v.gtscore + 0.1 for k, v in videos.items()}
    for run in (lambda: evaluate_videos(scores, videos, "avg", budget=1e-6),
                lambda: random_baseline(videos, list(videos), "avg", budget=1e-6)):
        with pytest.raises(DataError, match=r"video 'video_1': no shot fits the budget 1e-06 .*eval.budget"):
            run()
