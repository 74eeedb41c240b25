"""Scores and budgets the keyshot protocol cannot measure are refused, naming the
video; rank normalisation makes F1 / tau / rho depend on the order alone."""

import numpy as np
import pytest

from sgvs_jax.evaluation import (check_budget, evaluate_video, evaluate_videos, generate_summary, rank_normalize)
from sgvs_jax.data.synthetic import make_dataset


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


def test_a_video_no_shot_fits_is_left_out_of_the_f1_means_only():
    """A short video whose every shot is longer than the budget has no summary: its F1 is NaN
    and left out of the F1 means (named in ``no_shot_fits``), its tau, rho and AP still count,
    and nothing stops (evaluate_videos and the random row alike)."""
    import dataclasses

    from sgvs_jax.evaluation import evaluate_videos, random_baseline
    from sgvs_jax.evaluation.protocol import no_shot_fits
    from sgvs_jax.data.synthetic import make_dataset

    videos = make_dataset(n_videos=3, min_steps=40, max_steps=60, feature_dim=8, seed=3)
    v = videos["video_2"]  # one shot: the whole video, longer than 15 % of it
    videos["video_2"] = dataclasses.replace(v, change_points=np.array([[0, v.n_frames - 1]]),
                                            n_frame_per_seg=np.array([v.n_frames]))
    scores = {k: v.gtscore + 0.1 for k, v in videos.items()}
    r = evaluate_videos(scores, videos, "avg")
    assert r["no_shot_fits"] == ["video_2"] == no_shot_fits(videos, 0.15) and r["left_out"] == []
    assert np.isnan(r["per_video"]["video_2"]["f1"]) and np.isfinite(r["per_video"]["video_2"]["tau"])
    assert r["f1"] == pytest.approx(np.mean([r["per_video"][k]["f1"] for k in ("video_1", "video_3")]))
    assert r["tau"] == pytest.approx(np.mean([p["tau"] for p in r["per_video"].values()]))
    assert r["ap"] == pytest.approx(np.mean([p["ap"] for p in r["per_video"].values()]))
    rnd = random_baseline(videos, list(videos), "avg", n_draws=2)
    assert all(np.isfinite(rnd[m]) for m in ("f1", "tau", "rho", "ap"))
    r = evaluate_videos(scores, videos, "avg", budget=1e-6)  # no video has a fitting shot
    assert np.isnan(r["f1"]) and np.isfinite(r["tau"]) and r["no_shot_fits"] == sorted(videos)
