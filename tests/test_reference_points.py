"""Human and random reference points on the real annotations."""

import glob
import os

import numpy as np
import pytest

from sgvs_jax.evaluation import evaluate_videos, human_baseline, random_baseline


def test_summe_leave_one_out_human_f1(shared_data):
    import scipy.io
    files = sorted(glob.glob(os.path.join(shared_data, "summe", "GT", "*.mat")))
    assert len(files) == 25
    hs = [human_baseline((scipy.io.loadmat(f)["user_score"] > 0).T) for f in files]
    # Published: average human F1 ~31, max ~54 (Gygli et al. 2014; Otani et al. 2019).
    assert np.mean([h["avg"] for h in hs]) == pytest.approx(31.07, abs=0.05)
    assert np.mean([h["max"] for h in hs]) == pytest.approx(54.33, abs=0.05)


def test_tvsum_random_vs_annotator_mean(tvsum_videos):
    keys = list(tvsum_videos)[:10]
    rnd = random_baseline(tvsum_videos, keys, "avg", n_draws=3, seed=0)
    gt = evaluate_videos({k: tvsum_videos[k].gtscore for k in keys}, tvsum_videos, "avg")
    assert abs(rnd["tau"]) < 0.03 and abs(rnd["rho"]) < 0.04
    assert gt["tau"] > 0.25 and gt["rho"] > 0.3
    assert gt["f1"] > rnd["f1"] + 5
    assert gt["f1_single"] == pytest.approx(100.0)  # gtscore reproduces its own single-GT summary
