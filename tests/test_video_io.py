"""PyAV decoding/encoding and the bad-input errors of sgvs_jax.app.video_io."""

import os
import threading

import av
import numpy as np
import pytest

from sgvs_jax.app import video_io
from tests.synthetic_video import make_scene_video, read_frame_indices
from sgvs_jax.app.video_io import VideoError


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("v") / "scenes.mp4")
    scene_of = make_scene_video(path, (2.0, 1.5, 3.0), fps=10)
    return path, scene_of


def test_stamps_survive_coding(scene_video):
    path, scene_of = scene_video
    assert read_frame_indices(path) == list(range(len(scene_of)))


def test_sample_frames_at_2fps(scene_video):
    path, scene_of = scene_video
    full = video_io.sample_frames(path, 2.0)
    assert full.n_frames == len(scene_of) == 65
    assert full.fps == 10.0
    np.testing.assert_array_equal(full.picks, np.arange(0, 65, 5))
    np.testing.assert_allclose(full.times, full.picks / 10.0, atol=1e-6)
    assert full.frames.shape == (13, 64, 112, 3)
    # the pixels are those of the picked frames (their stamps), and every frame with <= 0 fps
    stamps = [int(sum(1 << b for b in range(12) if f[:8, 8 * b:8 * b + 8].mean() > 127)) for f in full.frames]
    assert stamps == full.picks.tolist()
    assert video_io.sample_frames(path, 0).picks.tolist() == list(range(65))
    small = video_io.sample_frames(path, 2.0, size=32)
    assert small.frames.shape == (13, 32, 32, 3) and small.frames.dtype == np.uint8


def test_write_selected_frames(scene_video, tmp_path):
    path, scene_of = scene_video
    keep = np.zeros(len(scene_of), bool)
    keep[3:12] = True
    keep[40:47] = True
    out = str(tmp_path / "sel.mp4")
    info = video_io.write_selected_frames(path, out, keep)
    assert info == {"frames": 16, "fps": 10.0, "seconds": 1.6, "audio_seconds": 0.0}  # the source is silent
    assert read_frame_indices(out) == np.flatnonzero(keep).tolist()
    with av.open(out) as c:
        s = c.streams.video[0]
        assert abs(float(s.duration * s.time_base) - 1.6) < 1e-6 and not c.streams.audio
    assert os.listdir(tmp_path) == ["sel.mp4"]
    with pytest.raises(VideoError, match="has 65 frames, but the summary covers 10"):
        video_io.write_selected_frames(path, str(tmp_path / "bad.mp4"), keep[:10])
    with pytest.raises(ValueError, match="no frame selected"):
        video_io.write_selected_frames(path, str(tmp_path / "none.mp4"), np.zeros(65, bool))
    assert os.listdir(tmp_path) == ["sel.mp4"]


def test_summary_keeps_the_sound_of_its_frames_in_sync_and_seeks_over_gaps(tmp_path, monkeypatch):
    """A 440 Hz burst at 7.30-7.50 s of the source lies in the second kept segment (70..77,
    after 0.9 s of the first): the summary has it at 1.20-1.40 s, to the sample; a burst in
    a dropped part (2.5 s) is not in it.  The 5-s gap is skipped by a seek (keyframes every
    5 frames), and the frames written are exactly the kept ones."""
    rate = 16000
    t = np.arange(rate * 10) / rate
    sound = np.zeros_like(t)
    for a, b in ((7.30, 7.50), (2.5, 2.7)):
        on = (t >= a) & (t < b)
        sound[on] = 0.5 * np.sin(2 * np.pi * 440 * t[on])
    src = str(tmp_path / "tone.mp4")
    make_scene_video(src, (2.0, 3.0, 5.0), fps=10, audio=sound, audio_rate=rate, gop=5)
    keep = np.zeros(100, bool)
    keep[3:12] = True
    keep[70:77] = True
    decoded, real = [], video_io.decode_frames
    monkeypatch.setattr(video_io, "decode_frames", lambda p: (decoded.append(1) or x for x in real(p)))
    info = video_io.write_selected_frames(src, str(tmp_path / "sum.mp4"), keep)
    monkeypatch.undo()
    assert not decoded  # the timestamped stream was read by seeking, not frame by frame
    assert info["frames"] == 16 and info["audio_seconds"] == pytest.approx(1.6)
    assert read_frame_indices(str(tmp_path / "sum.mp4")) == np.flatnonzero(keep).tolist()
    with av.open(str(tmp_path / "sum.mp4")) as c:
        summary = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    loud = np.flatnonzero(np.abs(summary) > 0.1) / rate
    assert loud[0] == pytest.approx(1.20, abs=0.005) and loud[-1] == pytest.approx(1.40, abs=0.005)
    assert len(summary) / rate == pytest.approx(1.6, abs=0.07)  # + at most one AAC frame of padding
    with pytest.raises(VideoError, match="has 100 frames, but the summary covers 120"):
        video_io.write_selected_frames(src, str(tmp_path / "long.mp4"), np.ones(120, bool))
    silent = video_io.write_selected_frames(src, str(tmp_path / "mute.mp4"), keep, audio=False)
    assert silent["audio_seconds"] == 0.0


def _zero_frame_avi(path):
    out = av.open(path, "w")
    s = out.add_stream("mpeg4", rate=10)
    s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
    out.start_encoding()
    out.close()


def bad_videos(directory, good_path):
    """name -> (path, expected message) for each kind of bad input."""
    d = str(directory)
    good = open(good_path, "rb").read()
    with open(f"{d}/text.mp4", "w") as f:
        f.write("not a video\n" * 20)
    with open(f"{d}/truncated.mp4", "wb") as f:
        f.write(good[: len(good) // 2])
    garbled = bytearray(good)
    i = good.find(b"mdat") + 8
    garbled[i:i + len(good) // 2] = np.random.default_rng(0).integers(0, 256, len(good) // 2, np.uint8).tobytes()
    with open(f"{d}/garbled.mp4", "wb") as f:
        f.write(bytes(garbled))
    _zero_frame_avi(f"{d}/empty.avi")
    with av.open(f"{d}/audio.m4a", "w") as out:
        s = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for p in list(s.encode(frame)) + list(s.encode(None)):
            out.mux(p)
    return {
        "missing": (f"{d}/missing.mp4", "file not found"),
        "not a video": (f"{d}/text.mp4", "not a readable video file"),
        "truncated": (f"{d}/truncated.mp4", "not a readable video file"),
        "unreadable codec data": (f"{d}/garbled.mp4", "cannot decode the first frame with codec 'h264'"),
        "zero frames": (f"{d}/empty.avi", "has no decodable frames"),
        "no video stream": (f"{d}/audio.m4a", r"has no video stream \(streams: \['audio'\]\)"),
    }


def test_bad_inputs_name_the_file(scene_video, tmp_path):
    for name, (path, message) in bad_videos(tmp_path, scene_video[0]).items():
        for sample in (lambda p: video_io.sample_frames(p, 2.0, 32),
                       lambda p: video_io.sample_and_encode(p, lambda b: b[:, 0, 0], 2.0, 32)):
            with pytest.raises(VideoError, match=message) as e:
                sample(path)
            assert path in str(e.value), name


def test_sample_and_encode_streams_what_sample_frames_keeps(scene_video):
    """The same samples as sample_frames, encoded in order in batches as they are decoded."""
    path, _ = scene_video
    full = video_io.sample_frames(path, 2.0, size=32)
    sizes = []

    def encode(batch):
        sizes.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :7].astype(np.float32)

    sampled, encoded = video_io.sample_and_encode(path, encode, 2.0, size=32, batch_size=5)
    assert sizes == [5, 5, 3] and sampled.frames.size == 0
    np.testing.assert_array_equal(encoded, full.frames.reshape(13, -1)[:, :7])
    np.testing.assert_array_equal(sampled.picks, full.picks)
    np.testing.assert_array_equal(sampled.times, full.times)
    assert ((sampled.n_frames, sampled.fps, sampled.width, sampled.height)
            == (full.n_frames, full.fps, full.width, full.height) == (65, 10.0, 112, 64))


def test_sample_and_encode_errors_stop_the_decoding_thread(scene_video, monkeypatch):
    path, _ = scene_video

    def broken_encoder(batch):
        raise RuntimeError("encoder broke")

    with pytest.raises(RuntimeError, match="encoder broke"):
        video_io.sample_and_encode(path, broken_encoder, 2.0, 32, batch_size=2)
    real = video_io.decode_frames

    def fails_midway(p):  # the codec gives up after 20 frames
        for item in real(p):
            if item[0] == 20:
                raise VideoError(f"{p}: cannot decode frame 21")
            yield item

    monkeypatch.setattr(video_io, "decode_frames", fails_midway)
    with pytest.raises(VideoError, match="cannot decode frame 21"):
        video_io.sample_and_encode(path, lambda b: b[:, 0, 0], 2.0, 32, batch_size=2)
    assert not [t for t in threading.enumerate() if t.name == "sgvs_jax-decode"]


def test_missing_extra_says_how_to_install():
    from sgvs_jax import require_extra
    with pytest.raises(ImportError, match=r"reading videos needs 'no_such_package_x': pip install -e '\.\[video\]'"):
        require_extra("no_such_package_x", "reading videos")
