"""Data as users bring it: a community-format h5 of short and long videos with 4-s shots,
its sources resolved after every override, buckets that follow the data."""

import dataclasses
import json

import numpy as np
import pytest

from sgvs_jax import study, train
from sgvs_jax.config_check import ConfigError, check_buckets
from sgvs_jax.data import DataError, load_dataset, resolve_sources, write_h5
from sgvs_jax.data.synthetic import make_dataset, make_splits
from tests.tiny import tiny_config


def highlight_video(v):
    """The video as a highlight dataset has it: shots of 2 steps (4 s at 2-s steps) and one
    0/1 label per frame (its mean annotator score above the median), no CLIP keys."""
    step = int(v.picks[1] - v.picks[0])
    starts = np.arange(0, v.n_frames, 2 * step)
    cp = np.stack([starts, np.minimum(starts + 2 * step, v.n_frames) - 1], 1)
    mean = v.user_scores.mean(0)
    label = mean > np.median(mean) if (mean > np.median(mean)).any() else mean >= mean.max()
    return dataclasses.replace(v, change_points=cp, n_frame_per_seg=cp[:, 1] - cp[:, 0] + 1, user_scores=None,
                               user_summary=label.astype(np.float32)[None],
                               text_tokens=None, text_pooled=None, clip_frames=None)


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    """An h5 of 10 highlight-labelled videos of 6..120 steps, and its split file."""
    d = tmp_path_factory.mktemp("community")
    videos = make_dataset(n_videos=10, min_steps=6, max_steps=120, feature_dim=32, seed=5)
    videos["video_1"] = make_dataset(n_videos=1, min_steps=6, max_steps=6, feature_dim=32, seed=6)["video_1"]
    videos = {k: highlight_video(v) for k, v in videos.items()}
    write_h5(str(d / "c.h5"), videos)
    (d / "splits.json").write_text(json.dumps(make_splits(sorted(videos), seed=0)))
    c = tiny_config(num_epochs=1)
    c.data.source, c.data.h5_path, c.data.split_path = "h5", str(d / "c.h5"), str(d / "splits.json")
    c.data.min_bucket = 64
    return c, videos, d


def test_sources_are_checked_after_the_overrides(community):
    """A config asking for the title loads the file (no title) and is refused naming the key;
    a variant that sets its own sources runs on the same data."""
    c, _, _ = community
    videos, _, _ = load_dataset(c.data)  # the base config's sources are not required at load
    with pytest.raises(DataError, match=r"video 'video_1' has no key 'text_tokens' \(10 of 10 videos"):
        resolve_sources(c, videos)
    resolved, note = resolve_sources(study.variant_config(c, "sgvs_no_title"), videos)
    assert note is None and tuple(resolved.data.semantic_sources) == ("video_tokens",)


def test_a_fixed_bucket_list_names_the_video_and_the_bucket_to_add():
    with pytest.raises(ConfigError, match=r"video 'long_one' has 397 steps, more than the largest bucket of "
                                          r"config.data.buckets=\(96, 192, 336\): add a bucket of at least 397 "
                                          r"\(--config.data.buckets=\"\(96, 192, 336, 400\)\"\)"):
        check_buckets((96, 192, 336), 397, "long_one")


@pytest.mark.slow
def test_short_and_long_videos_train_and_evaluate_with_the_default_budget(community, tmp_path, capsys):
    c, videos, _ = community
    c.data.semantic_sources = ("video_tokens",)
    c.train.semantic_weight = 0.0
    short = sorted(k for k, v in videos.items() if (v.change_points[:, 1] - v.change_points[:, 0] + 1).min()
                   > int(v.n_frames * 0.15))
    assert "video_1" in short and len(short) < len(videos)
    results = train.train_and_evaluate(c, str(tmp_path / "run"))
    assert results["no_shot_fits"] == short
    assert f"have no shot that fits eval.budget=0.15 ({', '.join(short[:5])}" in capsys.readouterr().out
    split = results["splits"]["0"]
    per_video = split["last_epoch_videos"]["per_video"]
    for k in split["test_keys"]:
        assert np.isfinite(per_video[k]["tau"]) and np.isfinite(per_video[k]["ap"])
        assert np.isfinite(per_video[k]["f1"]) == (k not in short)
    for row in ("last_epoch", "untrained"):
        assert all(np.isfinite(results["summary"][row][m]["mean"]) for m in ("tau", "rho", "ap"))
    assert np.isfinite(results["summary"]["random"]["ap"]["mean"])
    assert max(results["splits"]["0"]["buckets"]) >= max(v.length for v in videos.values())


@pytest.mark.slow
def test_own_videos_train_one_model_on_all_of_them(tmp_path, capsys):
    """No user summary anywhere: no split file is read, one model trains on every video, its
    lines show losses and spread (no nan), and a single video is refused up front."""
    videos = {k: dataclasses.replace(v, user_summary=v.user_summary * 0, user_scores=None)
              for k, v in make_dataset(n_videos=3, min_steps=40, max_steps=60, feature_dim=32, seed=1).items()}
    write_h5(str(tmp_path / "own.h5"), videos)
    c = tiny_config(num_epochs=1)
    c.data.source, c.data.h5_path, c.data.split_path = "h5", str(tmp_path / "own.h5"), str(tmp_path / "none.json")
    c.splits, c.data.min_bucket = (), 64
    results = train.train_and_evaluate(c, str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert list(results["splits"]) == ["0"] and results["splits"]["0"]["test_keys"] == sorted(videos)
    assert "one model is trained on all 3" in out and "nan" not in out and "spread" in out
    write_h5(str(tmp_path / "one.h5"), {"video_1": videos["video_1"]})
    c.data.h5_path = str(tmp_path / "one.h5")
    with pytest.raises(DataError, match=r"one.h5: has 1 video; training needs at least 2"):
        train.train_and_evaluate(c, str(tmp_path / "run1"))
    assert not (tmp_path / "run1").exists()


def test_a_split_file_is_written_for_a_community_h5(community, tmp_path):
    """A user of the published h5 without this project's folders: `python -m sgvs_jax.data.folds`
    writes 5 folds over its keys that load_splits accepts; the h5 itself is never the output."""
    from sgvs_jax.data import load_splits
    from sgvs_jax.data.folds import main

    c, videos, _ = community
    out = str(tmp_path / "splits.json")
    main(["--h5", c.data.h5_path, "--out", out])
    splits = load_splits(out)
    assert len(splits) == 5 and sorted(k for s in splits for k in s["test_keys"]) == sorted(videos)
    with pytest.raises(SystemExit):
        main(["--h5", c.data.h5_path, "--out", c.data.h5_path, "--overwrite"])
