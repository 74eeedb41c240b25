"""Own videos end to end: extract_features -> train -> summarize, with a tiny random
CLIP and synthetic scene videos made with PyAV."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sgvs_jax import train
from sgvs_jax.checkpointing import CheckpointError, Checkpointer
from sgvs_jax.app.clip import ClipEncoder, save_random_clip
from sgvs_jax.data import check_split_keys, load_splits, read_h5
from sgvs_jax.app.from_video import EXTRACTION_ATTR, title_from_filename
from sgvs_jax.data.h5io import read_h5_attrs
from tests.synthetic_video import make_scene_video, read_frame_indices
from sgvs_jax.evaluation.knapsack import knapsack
from sgvs_jax.app.extract_features import extract_features
from sgvs_jax.app.inference import Scorer
from sgvs_jax.app.summarize import summarize_video
from sgvs_jax.app.video_io import VideoError
from tests.test_video_io import bad_videos
from tests.tiny import tiny_clip_config

pytestmark = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves it out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENES = [(4.0, 4.0, 4.0, 4.0), (2.5, 3.0, 1.5, 4.0, 3.0), (3.0, 2.0, 3.5, 2.5), (2.0, 4.0, 2.0, 3.0, 2.0)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    clip = save_random_clip(str(d / "clip"))
    (d / "videos").mkdir()
    scenes = {}
    for i, secs in enumerate(SCENES):
        name = f"trip_{i}-day.mp4"
        scenes[name] = make_scene_video(str(d / "videos" / name), secs, fps=10, seed=i)
    extracted = extract_features(str(d / "videos"), str(d / "own.h5"), clip, n_splits=2,
                                 titles={"trip_1-day": "a day at the beach"})
    workdir = str(d / "run")
    config = tiny_clip_config(extracted["h5"], extracted["splits"])
    config.splits = (0, 1)  # two models: --split all averages them
    train.train_and_evaluate(config, workdir)
    return {"dir": d, "clip": clip, "h5": extracted["h5"], "splits": extracted["splits"], "scenes": scenes,
            "workdir": workdir, "config": config, "extracted": extracted}


def test_extract_features_writes_a_community_h5(run):
    videos = read_h5(run["h5"], require=("text_tokens", "text_pooled", "clip_frames"))
    assert list(videos) == ["video_1", "video_2", "video_3", "video_4"]
    assert [v.name for v in videos.values()] == sorted(run["scenes"])
    encoder = ClipEncoder(run["clip"])
    for v in videos.values():
        n = len(run["scenes"][v.name])
        assert v.n_frames == n
        np.testing.assert_array_equal(v.picks, np.arange(0, n, 5))  # 2 fps of 10 fps
        assert v.features.shape == (len(v.picks), 24)
        np.testing.assert_array_equal(v.clip_frames, v.features)
        cps = v.change_points
        assert cps[0, 0] == 0 and cps[-1, 1] == n - 1 and np.all(cps[1:, 0] == cps[:-1, 1] + 1)
        assert not v.user_summary.any()
    # titles: from the titles file, else from the file name
    _, pooled = encoder.encode_text("a day at the beach")
    np.testing.assert_allclose(videos["video_2"].text_pooled, pooled, rtol=1e-5, atol=1e-6)
    assert title_from_filename("trip_0-day.mp4") == "trip 0 day"
    _, pooled = encoder.encode_text("trip 0 day")
    np.testing.assert_allclose(videos["video_1"].text_pooled, pooled, rtol=1e-5, atol=1e-6)
    # four 4-s scenes, 4-s mean shots: KTS puts the 3 change points on the scene cuts; each 40-frame
    # scene is longer than 15 % of the 160 frames, so it is cut in two (every shot fits the budget)
    np.testing.assert_array_equal(videos["video_1"].change_points[:, 0], [0, 20, 40, 60, 80, 100, 120, 140])
    for v in videos.values():
        assert v.n_frame_per_seg.max() <= int(v.n_frames * 0.15)
    attrs = read_h5_attrs(run["h5"])[EXTRACTION_ATTR]
    assert attrs["clip_model"] == run["clip"] and attrs["sample_fps"] == 2.0 and attrs["clip_dim"] == 24
    splits = load_splits(run["splits"])
    assert len(splits) == 2 and sorted(splits[0]["test_keys"] + splits[1]["test_keys"]) == list(videos)
    for i, s in enumerate(splits):
        check_split_keys(s, videos, run["splits"], run["h5"], i)
    results = json.load(open(os.path.join(run["workdir"], "results.json")))
    assert results["unannotated_videos"] == list(videos)


def test_summarize_end_to_end(run):
    d = run["dir"]
    src = str(d / "new_video.mp4")
    make_scene_video(src, (2.0, 3.0, 1.5, 2.5, 3.0, 2.0), fps=10, seed=7)
    out = str(d / "out" / "summary.mp4")
    os.makedirs(os.path.dirname(out))
    r = summarize_video(src, run["workdir"], out, title="coloured scenes")
    assert sorted(os.listdir(d / "out")) == ["summary.json", "summary.mp4", "summary.png"]
    n = 140
    assert r["n_frames"] == n and r["fps"] == 10.0 and r["run"]["split"] == 0 and r["run"]["epoch"] == 2
    # the knapsack's choice over the reported shots, within 15 %
    shots = r["shots"]
    lengths = [s["end_frame"] - s["start_frame"] + 1 for s in shots]
    best = set(knapsack(np.array([s["score"] for s in shots]), np.array(lengths), int(n * 0.15)))
    assert {i for i, s in enumerate(shots) if s["selected"]} == best
    expected = [f for s in shots if s["selected"] for f in range(s["start_frame"], s["end_frame"] + 1)]
    assert 0 < len(expected) <= int(n * 0.15)
    # the output video: exactly the selected shots' frames, in order, at the source rate
    assert read_frame_indices(out) == expected
    import av
    with av.open(out) as c:
        s = c.streams.video[0]
        assert abs(float(s.duration * s.time_base) - len(expected) / 10.0) < 1e-6
    assert r["summary_duration_s"] == pytest.approx(len(expected) / 10.0)
    record = json.load(open(d / "out" / "summary.json"))
    assert record["title"] == "coloured scenes" and len(record["steps"]["score"]) == 28
    assert record["selected_segments_s"] == [[s["start_s"], s["end_s"]] for s in shots if s["selected"]]
    assert record["features"]["clip_model"] == run["clip"]
    with open(d / "out" / "summary.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_scorer_loads_the_trained_parameters(run):
    scorer = Scorer(run["workdir"], feature_dim=24, semantic_dim=24)
    videos = read_h5(run["h5"])
    trainer = train.Trainer(run["config"], videos)
    state = trainer.init_states([np.array([0, 0], np.uint32)], videos["video_1"])  # one member
    ckpt = Checkpointer(os.path.join(run["workdir"], "split_0", "checkpoints"))
    restored, _ = ckpt.restore(ckpt.latest_step(), state)
    ckpt.close()
    fresh = trainer.outputs(state["params"], [videos["video_3"]])[0]["video_3"]["scores"]
    trained = trainer.outputs(restored["params"], [videos["video_3"]])[0]["video_3"]["scores"]
    np.testing.assert_allclose(scorer.scores(videos["video_3"]), trained, rtol=1e-5, atol=1e-6)
    assert np.abs(fresh - trained).max() > 1e-4


def test_split_all_scores_with_the_mean_of_every_splits_model(run):
    videos = read_h5(run["h5"])
    each = [Scorer(run["workdir"], 24, 24, split=s) for s in (0, 1)]
    both = Scorer(run["workdir"], 24, 24, split="all")
    assert both.split == "all" and both.epoch == [e.epoch for e in each] and len(both.checkpoint) == 2
    for key in ("video_2", "video_4"):
        per_split = [e.scores(videos[key]) for e in each]
        assert np.abs(per_split[0] - per_split[1]).max() > 1e-4
        np.testing.assert_allclose(both.scores(videos[key]), np.mean(per_split, 0), rtol=1e-6, atol=1e-7)


def test_bad_videos_leave_no_output(run, tmp_path):
    good = str(run["dir"] / "videos" / "trip_0-day.mp4")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, (path, message) in bad_videos(tmp_path, good).items():
        with pytest.raises(VideoError, match=message):
            summarize_video(path, run["workdir"], str(out_dir / "s.mp4"))
        assert os.listdir(out_dir) == [], name
    # a budget below every shot: a clear error, nothing written
    with pytest.raises(ValueError, match="shorter than every shot"):
        summarize_video(good, run["workdir"], str(out_dir / "s.mp4"), budget=0.01)
    assert os.listdir(out_dir) == []


def test_wrong_run_or_model(run, tmp_path):
    good = str(run["dir"] / "videos" / "trip_0-day.mp4")
    other = save_random_clip(str(tmp_path / "clip16"), projection_dim=16)
    with pytest.raises(CheckpointError, match="features have dimension 16"):
        summarize_video(good, run["workdir"], str(tmp_path / "s.mp4"), clip_model=other)
    with pytest.raises(CheckpointError, match="run folder not found"):
        summarize_video(good, str(tmp_path / "nope"), str(tmp_path / "s.mp4"))
    synthetic = tmp_path / "synthetic_run"
    synthetic.mkdir()
    from configs import default
    (synthetic / "results.json").write_text(json.dumps({"provenance": {"config": default.get_config().to_dict()},
                                                        "splits": {}}))
    with pytest.raises(ValueError, match="records no CLIP model.*pass --clip_model"):
        summarize_video(good, str(synthetic), str(tmp_path / "s.mp4"))
    assert sorted(os.listdir(tmp_path)) == ["clip16", "synthetic_run"]


def test_an_unfinished_or_uncommitted_split_is_named_not_scored(run, tmp_path):
    """A split results.json does not list (killed before it finished) is named; so is one whose
    reported epoch is not the latest complete checkpoint."""
    import shutil
    workdir = tmp_path / "run"
    shutil.copytree(run["workdir"], workdir)
    results = json.loads((workdir / "results.json").read_text())
    video = read_h5(run["h5"], require=("text_tokens", "text_pooled", "clip_frames"))["video_1"]
    dims = video.features.shape[1], video.clip_frames.shape[1]
    unfinished = {**results, "splits": {"0": results["splits"]["0"]}}
    (workdir / "results.json").write_text(json.dumps(unfinished))
    with pytest.raises(CheckpointError, match=r"split 1 is unfinished \(results.json lists finished splits \[0\]\)"):
        Scorer(str(workdir), *dims, split="1")
    last = results["splits"]["0"]["history"][-1]["epoch"]
    unfinished["splits"]["0"]["history"][-1]["epoch"] = last + 1
    (workdir / "results.json").write_text(json.dumps(unfinished))
    with pytest.raises(CheckpointError, match=f"reports epoch {last + 1} of split 0, but the latest complete "
                                              f"checkpoint is epoch {last}"):
        Scorer(str(workdir), *dims, split="all")


def test_extract_features_bad_video(run, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_scene_video(str(folder / "a.mp4"), (2.0, 2.0), fps=10)
    (folder / "b.mp4").write_text("not a video")
    with pytest.raises(VideoError, match="b.mp4: not a readable video file"):
        extract_features(str(folder), str(tmp_path / "x.h5"), run["clip"])
    assert not (tmp_path / "x.h5").exists()
    r = extract_features(str(folder), str(tmp_path / "x.h5"), run["clip"], skip_bad=True)
    assert list(r["skipped"]) == [str(folder / "b.mp4")] and r["splits"] is None  # one video: no folds
    assert list(read_h5(str(tmp_path / "x.h5"))) == ["video_1"]


def test_command_lines(run, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = str(tmp_path / "cli.mp4")
    src = str(run["dir"] / "videos" / "trip_2-day.mp4")
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.app.summarize", "--video", src, "--workdir", run["workdir"],
                        "--out", out, "--budget", "0.3"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "cli.mp4:" in p.stdout and os.path.exists(out)
    assert json.load(open(tmp_path / "cli.json"))["budget"] == 0.3
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.app.summarize", "--video", str(tmp_path / "missing.mp4"),
                        "--workdir", run["workdir"], "--out", str(tmp_path / "m.mp4")],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 1 and "missing.mp4: file not found" in p.stderr
    assert not os.path.exists(tmp_path / "m.mp4")
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.app.extract_features", "--videos", str(run["dir"] / "videos"),
                        "--clip_model", run["clip"], "--out", str(tmp_path / "cli.h5"), "--n_splits", "3"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(load_splits(str(tmp_path / "cli_splits.json"))) == 3
    a, b = read_h5(str(tmp_path / "cli.h5")), read_h5(run["h5"])
    for k in b:  # same settings, same features: extraction is deterministic
        np.testing.assert_array_equal(a[k].features, b[k].features)
        np.testing.assert_array_equal(a[k].change_points, b[k].change_points)


def test_no_command_overwrites_an_input_or_a_strangers_file(run, tmp_path):
    from sgvs_jax.app.extract_features import EXTRACTION_ATTR, _names_split_file
    from sgvs_jax.data.h5io import written_by
    _is_our_h5 = written_by(EXTRACTION_ATTR)
    from sgvs_jax.files import OutputError
    video = run["dir"] / "videos" / "trip_0-day.mp4"
    original = video.read_bytes()
    # summarize: the input video as --out, --json or --plot; with or without --overwrite
    for kwargs in ({"out_path": str(video)}, {"out_path": str(tmp_path / "s.mp4"), "json_path": str(video)},
                   {"out_path": str(tmp_path / "s.mp4"), "plot_path": str(video)}):
        for overwrite in (False, True):
            with pytest.raises(OutputError, match="is an input"):
                summarize_video(str(video), run["workdir"], overwrite=overwrite, **kwargs)
    with pytest.raises(OutputError, match="is an input"):  # the run's own files are inputs too
        summarize_video(str(video), run["workdir"], str(tmp_path / "s.mp4"),
                        json_path=os.path.join(run["workdir"], "results.json"), overwrite=True)
    # every file of the CLIP folder and every file the run wrote are inputs too, even with --overwrite
    clip_file = next(os.path.join(run["clip"], f) for f in sorted(os.listdir(run["clip"])))
    clip_bytes = open(clip_file, "rb").read()
    for kwargs in ({"out_path": str(tmp_path / "s.mp4"), "json_path": clip_file},
                   {"out_path": os.path.join(run["workdir"], "run_config.mp4")}):  # its JSON: run_config.json
        with pytest.raises(OutputError, match="is an input"):
            summarize_video(str(video), run["workdir"], overwrite=True, **kwargs)
    with pytest.raises(OutputError, match="is an input"):
        extract_features(str(run["dir"] / "videos"), clip_file, run["clip"], overwrite=True)
    assert open(clip_file, "rb").read() == clip_bytes
    # extract_features: one of the videos (or the only one) as --out
    for source in (str(run["dir"] / "videos"), str(video)):
        with pytest.raises(OutputError, match="is an input|video file's extension"):
            extract_features(source, str(video), run["clip"], overwrite=True)
    with pytest.raises(OutputError, match="video file's extension"):
        extract_features(str(video), str(tmp_path / "new.mp4"), run["clip"])
    assert video.read_bytes() == original and not (tmp_path / "new.mp4").exists()
    # a file someone else wrote is kept unless --overwrite
    stranger = tmp_path / "summary.json"
    stranger.write_text('{"mine": true}')
    with pytest.raises(OutputError, match="--json .* exists and was not written by this command"):
        summarize_video(str(video), run["workdir"], str(tmp_path / "summary.mp4"))
    thesis = tmp_path / "thesis.h5"
    thesis.write_bytes(b"not ours")
    with pytest.raises(OutputError, match="--out .*thesis.h5 exists"):
        extract_features(str(run["dir"] / "videos"), str(thesis), run["clip"])
    assert stranger.read_text() == '{"mine": true}' and thesis.read_bytes() == b"not ours"
    # our own outputs may be written again (a rerun), without --overwrite
    assert _is_our_h5(run["h5"]) and _names_split_file(run["h5"], run["splits"])
    assert not _is_our_h5(str(thesis)) and not _names_split_file(run["h5"], str(stranger))
    first = summarize_video(str(video), run["workdir"], str(tmp_path / "again.mp4"), budget=0.3)
    second = summarize_video(str(video), run["workdir"], str(tmp_path / "again.mp4"), budget=0.3)
    assert first["shots"] == second["shots"]
