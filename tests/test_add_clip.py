"""python -m sgvs_jax.app.add_clip: CLIP keys for a community h5, published keys untouched;
files matched by name, frame counts checked, every problem named; the community configs
then run the full method, and say when a file has no CLIP keys."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sgvs_jax.app.add_clip import add_clip, read_titles
from sgvs_jax.data.video import DataError

pytest.importorskip("av")


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    """Three videos (10 fps) and a community-layout h5 over them: picks every 5th frame,
    shots of 5 frames; SumMe-like video_name in two groups, none in the third."""
    from sgvs_jax.app.clip import save_random_clip
    from tests.synthetic_video import make_scene_video
    root = tmp_path_factory.mktemp("community")
    (root / "videos").mkdir()
    lengths = {}
    for name, scenes in (("Air_Force_One", (2.0, 2.0)), ("Cooking", (1.5, 2.5, 1.0)), ("Bike Polo", (3.0, 1.0))):
        lengths[name] = len(make_scene_video(str(root / "videos" / f"{name}.mp4"), scenes, fps=10))
    h5 = str(root / "eccv16_dataset_summe_google_pool5.h5")
    rng = np.random.default_rng(0)
    with h5py.File(h5, "w") as f:
        for i, (name, n) in enumerate(lengths.items()):
            g = f.create_group(f"video_{i + 1}")
            picks = np.arange(0, n, 5)
            g["features"] = rng.normal(size=(len(picks), 16)).astype(np.float32)
            g["gtscore"] = rng.random(len(picks)).astype(np.float32)
            g["user_summary"] = (rng.random((3, n)) > 0.8).astype(np.float32)
            starts = np.arange(0, n, 5)  # shots of 5 frames
            cp = np.stack([starts, np.append(starts[1:] - 1, n - 1)], 1)
            g["change_points"] = cp.astype(np.int32)
            g["n_frame_per_seg"] = (cp[:, 1] - cp[:, 0] + 1).astype(np.int32)
            g["n_frames"] = np.int32(n)
            g["picks"] = picks.astype(np.int32)
            if i < 2:
                g["video_name"] = np.bytes_(name.encode())
        f.attrs["published"] = "yes"
    clip = save_random_clip(str(root / "clip"), seed=0)
    return {"root": root, "h5": h5, "videos": str(root / "videos"), "clip": clip, "lengths": lengths}


def test_adds_clip_keys_and_keeps_every_published_byte(community, tmp_path):
    from sgvs_jax.app.clip import ClipEncoder
    from sgvs_jax.app.video_io import sample_frames
    titles = tmp_path / "info.tsv"
    titles.write_text("category\tvideo_id\ttitle\turl\tlength\nBK\tCooking\tHow to cook pasta\tx\t1:00\n")
    out = str(tmp_path / "with_clip.h5")
    files = add_clip(community["h5"], community["videos"], community["clip"], out,
                     names={"video_3": "Bike Polo"}, titles=read_titles(str(titles)))
    assert {k: v.rsplit("/", 1)[-1] for k, v in files.items()} == {
        "video_1": "Air_Force_One.mp4", "video_2": "Cooking.mp4", "video_3": "Bike Polo.mp4"}
    encoder = ClipEncoder(community["clip"])
    with h5py.File(community["h5"]) as src, h5py.File(out) as dst:
        assert dst.attrs["published"] == "yes"
        record = json.loads(dst.attrs["sgvs_jax_add_clip"])
        assert record["videos"]["video_2"]["title"] == "How to cook pasta"  # from the TSV
        assert record["videos"]["video_1"]["title"] == "Air Force One"  # from the name
        for key in src:
            for name in src[key]:
                a, b = src[key][name], dst[key][name]
                assert a.dtype == b.dtype and np.array_equal(a[()], b[()]), (key, name)
            picks = src[key]["picks"][()]
            # the frames at the group's own picks (every 5th frame at 10 fps = 2 fps sampling)
            sampled = sample_frames(files[key], 2.0, encoder.image_size)
            assert sampled.picks.tolist() == picks.tolist()
            np.testing.assert_allclose(dst[key]["clip_frames"][()], encoder.encode_images(sampled.frames),
                                       rtol=1e-5, atol=1e-5)
            tokens, pooled = encoder.encode_text(record["videos"][key]["title"])
            np.testing.assert_allclose(dst[key]["text_pooled"][()], pooled, rtol=1e-5, atol=1e-6)
            assert dst[key]["text_tokens"].shape == tokens.shape


def test_every_unmatched_video_and_frame_mismatch_is_named(community, tmp_path):
    out = str(tmp_path / "x.h5")
    with pytest.raises(DataError, match=r"1 of 3 videos unmatched: video_3 has no video_name \(give --names\)"):
        add_clip(community["h5"], community["videos"], community["clip"], out)
    with pytest.raises(DataError, match=r"video_3 \(Nope\) has no file in"):
        add_clip(community["h5"], community["videos"], community["clip"], out, names={"video_3": "Nope"})
    # a file two frames shorter than its group's n_frames, another with picks past its end
    bad = tmp_path / "bad.h5"
    with h5py.File(community["h5"]) as src, h5py.File(bad, "w") as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        del dst["video_1"]["n_frames"]
        dst["video_1"]["n_frames"] = np.int32(community["lengths"]["Air_Force_One"] + 2)
        del dst["video_2"]["picks"]
        dst["video_2"]["picks"] = np.arange(0, 500, 5).astype(np.int32)
    with pytest.raises(DataError) as e:
        add_clip(str(bad), community["videos"], community["clip"], out, names={"video_3": "Bike Polo"})
    msg = str(e.value)
    assert "2 of 3" in msg and "video_1 (Air_Force_One.mp4): the file has 40 frames, n_frames is 42" in msg
    assert "video_2 (Cooking.mp4)" in msg and "last pick 495" in msg
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(DataError, match="1 of 3") as e:  # a tolerance forgives a count, never a missing pick
        add_clip(str(bad), community["videos"], community["clip"], out, names={"video_3": "Bike Polo"},
                 frame_tolerance=2)
    assert "video_2" in str(e.value) and not (tmp_path / "x.h5").exists()


def test_cli_refuses_to_write_over_its_input(community):
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.app.add_clip", "--h5", community["h5"], "--videos",
                        community["videos"], "--clip_model", community["clip"], "--out", community["h5"]],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.strip().count("\n") == 0
    assert "is an input of this command" in p.stderr
    with pytest.raises(DataError, match="clip/config.json: not a readable h5 file"):
        add_clip(community["clip"] + "/config.json", community["videos"], community["clip"], "/tmp/x.h5")


def test_a_matched_video_is_an_input_even_with_overwrite(community):
    """The videos add_clip matches are among its inputs: an --out onto one is refused before
    anything is decoded, --overwrite or not."""
    from sgvs_jax.files import OutputError
    video = community["root"] / "videos" / "Cooking.mp4"
    before = video.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="Cooking.mp4 is an input of this command"):
            add_clip(community["h5"], community["videos"], community["clip"], str(video),
                     names={"video_3": "Bike Polo"}, overwrite=overwrite)
    assert video.read_bytes() == before


@pytest.mark.parametrize("content, message", [(None, "file not found"), ("{oops", "not valid JSON")])
def test_cli_names_a_bad_names_file_in_one_line(community, tmp_path, content, message):
    names = tmp_path / "names.json"
    if content is not None:
        names.write_text(content)
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.app.add_clip", "--h5", community["h5"], "--videos",
                        community["videos"], "--clip_model", community["clip"], "--names", str(names),
                        "--out", str(tmp_path / "out.h5")], capture_output=True, text=True)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and lines == [lines[0]] and f"--names {names}: {message}" in lines[0], p.stderr
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.slow
def test_community_config_runs_the_full_method_with_the_keys(community, tmp_path):
    """configs/summe_h5.py ('auto' sources) on the published file: visual only, said once;
    on add_clip's output: FSSA over the CLIP keys with the video-title term."""
    from configs import summe_h5
    from sgvs_jax import train
    from sgvs_jax.data import load_dataset, resolve_sources
    from tests.tiny import tiny_config
    out = str(tmp_path / "with_clip.h5")
    add_clip(community["h5"], community["videos"], community["clip"], out, names={"video_3": "Bike Polo"})
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps([{"train_keys": ["video_1", "video_2"], "test_keys": ["video_3"]}]))
    cfg = summe_h5.get_config()
    tiny = tiny_config(num_epochs=1)
    cfg.model, cfg.train, cfg.eval = tiny.model, tiny.train, tiny.eval
    cfg.train.batch_size, cfg.data.h5_path, cfg.data.split_path = 2, community["h5"], str(splits)
    published, note = resolve_sources(cfg, load_dataset(cfg.data)[0])  # (trained: test_train_e2e.py)
    assert tuple(published.data.semantic_sources) == () and not published.model.use_fssa and "visual only" in note
    cfg.data.h5_path = out
    run = train.train_and_evaluate(cfg, str(tmp_path / "clip"))
    used = run["provenance"]["config"]
    assert tuple(used["data"]["semantic_sources"]) == ("text_tokens", "text_pooled", "clip_frames")
    assert used["model"]["use_fssa"] and "stage1/semantic" in run["splits"]["0"]["history"][-1]["train"]


@pytest.mark.parametrize("keep, sources, fssa, title_term", [
    (("text_tokens", "text_pooled", "clip_frames"), ("text_tokens", "text_pooled", "clip_frames"), True, True),
    (("clip_frames",), ("clip_frames",), True, False),  # FSSA over the frames' own CLIP features
    ((), (), False, False)])
def test_auto_sources_are_what_every_video_has(keep, sources, fssa, title_term):
    import dataclasses

    from configs import tvsum_h5
    from sgvs_jax.data import resolve_sources
    from sgvs_jax.data.synthetic import make_dataset
    videos = make_dataset(n_videos=3, min_steps=20, max_steps=30, feature_dim=8, sem_dim=4, seed=0)
    videos = {k: dataclasses.replace(v, **{n: None for n in ("text_tokens", "text_pooled", "clip_frames")
                                           if n not in keep}) for k, v in videos.items()}
    cfg = tvsum_h5.get_config()
    resolved, note = resolve_sources(cfg, videos)
    assert tuple(resolved.data.semantic_sources) == sources and resolved.model.use_fssa == fssa
    assert bool(resolved.train.semantic_weight) == title_term and note.startswith("semantic sources 'auto'")
    assert note.endswith("; the feature_norm teacher on")  # what trains without a title, said too
    assert tuple(cfg.data.semantic_sources) == ("auto",)  # the caller's config is left as it was
    assert resolve_sources(resolved, videos) == (resolved, None)
