"""The community layout's invariants: a file breaking any of them is refused on
read with an error naming the file, the video and the key (one case per invariant)."""

import json

import h5py
import numpy as np
import pytest

from sgvs_jax.data import DataError, load_splits, read_h5, write_h5
from sgvs_jax.data.synthetic import make_dataset


@pytest.fixture
def h5(tmp_path):
    path = str(tmp_path / "eccv16_dataset_tvsum_google_pool5.h5")
    write_h5(path, make_dataset(n_videos=3, min_steps=20, max_steps=30, feature_dim=16, sem_dim=8, seed=1))
    return path


def edit(path, key, name, fn):
    """Replaces dataset ``name`` of video ``key`` by ``fn(old value)`` (None: delete it)."""
    with h5py.File(path, "a") as f:
        old = f[key][name][()]
        del f[key][name]
        new = fn(old)
        if new is not None:
            f[key][name] = new


def n_frames(path, key):
    with h5py.File(path, "r") as f:
        return int(f[key]["n_frames"][()])


def cps_gap(cp):
    cp = cp.copy()
    cp[1, 0] += 2
    return cp


def cps_overlap(cp):
    cp = cp.copy()
    cp[1, 0] -= 3
    return cp


def cps_past_end(cp):
    cp = cp.copy()
    cp[-1, 1] += 10
    return cp


def cps_short(cp):
    cp = cp.copy()
    cp[-1, 1] -= 1
    return cp


def cps_late_start(cp):
    cp = cp.copy()
    cp[0, 0] = 1
    return cp


CASES = {
    # name: (key, edit, message)
    "user_summary transposed": ("user_summary", lambda u: u.T, r"user_summary'.*transposed"),
    "user_summary one frame short": ("user_summary", lambda u: u[:, :-1], r"user_summary'.*n_frames="),
    "user_summary not 0/1": ("user_summary", lambda u: u + 0.5, "must be 0 or 1"),
    "user_summary not numeric": ("user_summary", lambda u: np.array([b"a", b"b"]), "not numeric"),
    "user_summary NaN": ("user_summary", lambda u: u + np.nan, "NaN"),
    "change_points gap": ("change_points", cps_gap, "leave a gap"),
    "change_points overlap": ("change_points", cps_overlap, "overlap"),
    "change_points past the end": ("change_points", cps_past_end, "last shot ends at frame"),
    "change_points short of the end": ("change_points", cps_short, "last shot ends at frame"),
    "change_points not from 0": ("change_points", cps_late_start, "start at frame 0"),
    "change_points end before start": ("change_points", lambda c: c[:, ::-1].copy(), "ends before it starts"),
    "change_points 1-D": ("change_points", lambda c: c[:, 0], r"expected \(S, 2\)"),
    "n_frame_per_seg count": ("n_frame_per_seg", lambda n: n[:-1], "n_frame_per_seg"),
    "n_frame_per_seg disagrees": ("n_frame_per_seg", lambda n: n + np.eye(len(n), dtype=n.dtype)[1],
                                  r"shot 1 has \d+ frames, but change_points"),
    "picks repeat": ("picks", lambda p: np.concatenate([p[:1], p[:-1]]), "strictly increasing"),
    "picks past n_frames": ("picks", lambda p: p + 10_000, r"must lie in \[0, n_frames"),
    "picks count": ("picks", lambda p: p[:-1], "key 'picks'"),
    "n_frames not one number": ("n_frames", lambda n: np.array([n, n]), "must be one number"),
    "features NaN": ("features", lambda f: np.where(f > f.max() - 1e-3, np.nan, f), "NaN"),
    "features overflow the norm": ("features", lambda f: np.where(f > f.max() - 1e-3, 1e38, f).astype(np.float32),
                                   "value 1e\\+38 at step"),
    "features 1-D": ("features", lambda f: f[:, 0], r"expected \(T, D\)"),
    "features empty": ("features", lambda f: f[:0], "empty video"),
    "features missing": ("features", lambda f: None, "has no key 'features'"),
    "gtscore length": ("gtscore", lambda g: g[:-1], "key 'gtscore'"),
    "gtscore inf": ("gtscore", lambda g: g + np.inf, "NaN/inf"),
    "text_pooled size": ("text_pooled", lambda t: t[:-1], "share one size"),
    "clip_frames steps": ("clip_frames", lambda c: c[:-1], "key 'clip_frames'"),
    "user_scores width": ("user_scores", lambda u: u[:, :-1], "key 'user_scores'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_invariant_is_checked_on_read(h5, case):
    name, fn, message = CASES[case]
    edit(h5, "video_2", name, fn)
    with pytest.raises(DataError, match=message) as e:
        read_h5(h5)
    assert h5 in str(e.value) and "video_2" in str(e.value) and name in str(e.value)


def test_a_valid_file_passes_and_published_shapes_are_kept(h5):
    videos = read_h5(h5)
    for v in videos.values():
        assert v.user_summary.shape[1] == v.n_frames
        cp = v.change_points
        assert cp[0, 0] == 0 and cp[-1, 1] == v.n_frames - 1 and np.all(cp[1:, 0] == cp[:-1, 1] + 1)


def test_mixed_feature_sizes_name_both_videos(h5):
    edit(h5, "video_3", "features", lambda f: np.concatenate([f, f[:, :2]], 1))
    with pytest.raises(DataError, match=r"'features' has size 16 in video 'video_1' but 18 in video 'video_3'"):
        read_h5(h5)


def test_file_level_problems(tmp_path, h5):
    empty = str(tmp_path / "empty.h5")
    h5py.File(empty, "w").close()
    with pytest.raises(DataError, match="no videos"):
        read_h5(empty)
    with h5py.File(h5, "a") as f:
        f["stray"] = np.zeros(3)
    with pytest.raises(DataError, match="'stray' is not a video group"):
        read_h5(h5)


def write_splits(tmp_path, splits):
    p = tmp_path / "splits.json"
    p.write_text(json.dumps(splits))
    return str(p)


@pytest.mark.parametrize("splits,message", [
    ([], "non-empty JSON list"),
    ({"train_keys": ["a"]}, "non-empty JSON list"),
    (["video_1"], "not an object"),
    ([{"train_keys": ["a"]}], "no key 'test_keys'"),
    ([{"train_keys": ["a"], "test_keys": []}], "'test_keys' is empty"),
    ([{"train_keys": [], "test_keys": ["b"]}], "'train_keys' is empty"),
    ([{"train_keys": "a", "test_keys": ["b"]}], "must be a list of video keys"),
    ([{"train_keys": [1, 2], "test_keys": ["b"]}], "must be a list of video keys"),
    ([{"train_keys": ["a", "a"], "test_keys": ["b"]}], "more than once"),
    ([{"train_keys": ["a", "b"], "test_keys": ["b"]}], "both train and test"),
])
def test_each_split_file_invariant(tmp_path, splits, message):
    path = write_splits(tmp_path, splits)
    with pytest.raises(DataError, match=message) as e:
        load_splits(path)
    assert path in str(e.value)


def test_split_path_problems(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        load_splits(str(tmp_path))
    with pytest.raises(DataError, match="not found"):
        load_splits(str(tmp_path / "none.json"))
    with pytest.raises(DataError, match="split_path is empty"):
        load_splits("")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe[")
    with pytest.raises(DataError, match="not valid JSON"):
        load_splits(str(bad))
