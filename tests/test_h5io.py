import dataclasses
import json

import h5py
import numpy as np
import pytest

from sgvs_jax.data import DataError, check_split_keys, load_splits, read_h5, write_h5
from sgvs_jax.data.synthetic import make_dataset


@pytest.fixture
def videos():
    return make_dataset(n_videos=3, min_steps=20, max_steps=30, feature_dim=16, sem_dim=8, seed=1)


def write_community_file(path, videos):
    """Exactly the published layout: no sgvs_jax extras, video_name as bytes."""
    with h5py.File(path, "w") as f:
        for k, v in videos.items():
            g = f.create_group(k)
            g["features"] = v.features
            g["gtscore"] = v.gtscore
            g["user_summary"] = v.user_summary
            g["change_points"] = v.change_points
            g["n_frame_per_seg"] = v.n_frame_per_seg
            g["n_frames"] = np.array(v.n_frames)
            g["picks"] = v.picks
            g["n_steps"] = np.array(v.length)
            g["gtsummary"] = (v.gtscore > 0.5).astype(np.float32)
            g["video_name"] = np.bytes_(b"Air_Force_One")


def test_reads_community_layout(tmp_path, videos):
    path = str(tmp_path / "eccv16_dataset_summe_google_pool5.h5")
    write_community_file(path, videos)
    got = read_h5(path)
    assert list(got) == list(videos)
    v = got["video_1"]
    np.testing.assert_array_equal(v.features, videos["video_1"].features)
    np.testing.assert_array_equal(v.change_points, videos["video_1"].change_points)
    assert v.name == "Air_Force_One" and v.text_tokens is None and v.user_scores is None


def test_round_trip_with_semantic_keys(tmp_path, videos):
    path = str(tmp_path / "d.h5")
    write_h5(path, videos)
    got = read_h5(path, keys=["video_2"])
    for field in ("features", "text_tokens", "text_pooled", "clip_frames", "user_scores", "user_summary"):
        np.testing.assert_array_equal(getattr(got["video_2"], field), getattr(videos["video_2"], field))


def corrupt(path, key, name, value):
    with h5py.File(path, "a") as f:
        del f[key][name]
        if value is not None:
            f[key][name] = value


@pytest.mark.parametrize("name,value,message", [
    ("features", None, "has no key 'features'"),
    ("features", np.zeros((0, 16), np.float32), "empty video"),
    ("picks", np.arange(5), "key 'picks'"),
    ("change_points", np.zeros((3,)), "key 'change_points'"),
])
def test_bad_groups_name_file_and_key(tmp_path, videos, name, value, message):
    path = str(tmp_path / "bad.h5")
    write_h5(path, videos)
    corrupt(path, "video_2", name, value)
    with pytest.raises(DataError, match=message) as e:
        read_h5(path)
    assert str(path) in str(e.value) and "video_2" in str(e.value)


def test_nan_features_rejected(tmp_path, videos):
    path = str(tmp_path / "nan.h5")
    write_h5(path, videos)
    f = videos["video_3"].features.copy()
    f[2, 3] = np.nan
    corrupt(path, "video_3", "features", f)
    with pytest.raises(DataError, match=r"video 'video_3' key 'features': 1 NaN"):
        read_h5(path)


def test_missing_keys_and_files(tmp_path, videos):
    path = str(tmp_path / "d.h5")
    write_h5(path, {k: dataclasses.replace(v, text_tokens=None) for k, v in videos.items()})
    with pytest.raises(DataError, match="video_9"):
        read_h5(path, keys=["video_1", "video_9"])
    with pytest.raises(DataError, match="has no key 'text_tokens'"):
        read_h5(path, require=("text_tokens",))
    with pytest.raises(DataError, match="file not found"):
        read_h5(str(tmp_path / "nope.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an h5 file at all")
    with pytest.raises(DataError, match="not a readable h5"):
        read_h5(str(junk))


def test_write_is_atomic_on_invalid_video(tmp_path, videos):
    path = tmp_path / "out.h5"
    bad = dict(videos)
    bad["video_2"] = dataclasses.replace(videos["video_2"], gtscore=np.full(3, np.nan, np.float32))
    with pytest.raises(DataError):
        write_h5(str(path), bad)
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))


def test_split_files(tmp_path, shared_data):
    import os
    splits = load_splits(os.path.join(shared_data, "splits", "e-apostolidis", "tvsum_splits.json"))
    assert len(splits) == 5
    for s in splits:
        assert len(s["test_keys"]) == 10 and len(s["train_keys"]) == 40
    check_split_keys(splits[0], [f"video_{i}" for i in range(1, 51)], "tvsum_splits.json", "x.h5", 0)
    with pytest.raises(DataError, match=r"tvsum_splits.json: split 0 'train_keys' lists .* not in x.h5"):
        check_split_keys(splits[0], [f"video_{i}" for i in range(1, 11)], "tvsum_splits.json", "x.h5", 0)
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps([{"train_keys": ["a"]}]))
    with pytest.raises(DataError, match="no key 'test_keys'"):
        load_splits(str(bad))
