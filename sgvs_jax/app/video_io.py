"""Reading and writing video files with PyAV (the optional ``[video]`` extra).

Frames are counted in decode order; the frame index is what ``picks``,
``change_points`` and ``n_frames`` refer to, as in the community h5 files.
Errors name the file: a missing file, a file that is not a video, a video
stream that yields no frame or whose codec cannot be decoded raise
:class:`VideoError`.  Output files are written under a temporary name in the
target folder and renamed when complete, so a failure never leaves a partial
file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import os
import queue
import threading
from typing import Callable, Iterator, Optional

import numpy as np

from sgvs_jax import require_extra
from sgvs_jax.files import atomic_path
from sgvs_jax.errors import VideoError


def _av():
    return require_extra("av", "reading and writing videos")


@contextlib.contextmanager
def open_video(path: str):
    """Opens ``path`` for reading; yields ``(container, video_stream)``."""
    av = _av()
    if not os.path.isfile(path):
        raise VideoError(f"{path}: file not found")
    try:
        container = av.open(path, "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"{path}: not a readable video file ({type(e).__name__}: {e})") from e
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream (streams: "
                             f"{[s.type for s in container.streams] or 'none'})")
        stream = container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.name is None:
            raise VideoError(f"{path}: video stream has no decodable codec")
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


def frame_rate(stream) -> fractions.Fraction:
    """The stream's average frame rate (falls back to its base rate, then 25)."""
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return fractions.Fraction(rate)
    return fractions.Fraction(25)


def decode_frames(path: str) -> Iterator[tuple[int, float, "object"]]:
    """Yields ``(index, seconds, av.VideoFrame)`` for every frame of ``path``.

    Raises VideoError if the codec fails midway or the stream has no frame.
    """
    av = _av()
    with open_video(path) as (container, stream):
        rate = frame_rate(stream)
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / float(rate)
                yield index, t, frame
        except av.error.FFmpegError as e:
            where = f"frame {index + 1}" if index >= 0 else "the first frame"
            raise VideoError(f"{path}: cannot decode {where} with codec "
                             f"'{stream.codec_context.name}' ({type(e).__name__}: {e})") from e
        if index < 0:
            raise VideoError(f"{path}: video stream '{stream.codec_context.name}' has no decodable frames")


def _resize_crop(frame, size: Optional[int]) -> np.ndarray:
    """RGB uint8 (H, W, 3); with ``size``, shorter side resized to it (bicubic) and centre-cropped."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    w, h = frame.width, frame.height
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    rgb = frame.reformat(width=nw, height=nh, format="rgb24", interpolation="BICUBIC").to_ndarray()
    top, left = (nh - size) // 2, (nw - size) // 2
    return rgb[top:top + size, left:left + size]


@dataclasses.dataclass
class SampledVideo:
    """Frames sampled at a fixed rate.

    Attributes:
      frames: (T, S, S, 3) uint8 (or (T, H, W, 3) without resizing).
      picks: (T,) decode-order index of each sampled frame.
      times: (T,) seconds of each sampled frame.
      n_frames: frames in the whole video.
      fps: the video's frame rate.
      width, height: the video's frame size.
    """

    frames: np.ndarray
    picks: np.ndarray
    times: np.ndarray
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def _samples(path: str, sample_fps: float, size: Optional[int], info: dict) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yields ``(index, seconds, rgb)`` of the first frame of every ``1 / sample_fps``
    seconds (every frame with ``sample_fps <= 0``); ``info`` gets the video's ``fps``
    and ``expected_frames`` (the container's count, 0 if unknown) first, then
    ``n_frames``, ``width`` and ``height`` when decoding ends."""
    with open_video(path) as (_, stream):
        info["fps"] = float(frame_rate(stream))
        seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
        info["expected_frames"] = stream.frames or round(seconds * info["fps"])  # 0: unknown
    last_slot = None
    for index, t, frame in decode_frames(path):
        info.update(n_frames=index + 1, width=frame.width, height=frame.height)
        slot = index if sample_fps <= 0 else int(np.floor(max(t, 0.0) * sample_fps + 1e-6))
        if last_slot is None or slot > last_slot:
            last_slot = slot
            yield index, t, _resize_crop(frame, size)


def _sampled_video(frames, picks, times, info) -> SampledVideo:
    return SampledVideo(frames=frames, picks=np.asarray(picks, np.int64), times=np.asarray(times, np.float64),
                        n_frames=info["n_frames"], fps=info["fps"], width=info["width"], height=info["height"])


def sample_frames(path: str, sample_fps: float = 2.0, size: Optional[int] = None) -> SampledVideo:
    """Decodes ``path`` and keeps the first frame of every ``1 / sample_fps`` seconds.

    Args:
      path: the video file.
      sample_fps: sampling rate in frames per second (<= 0: every frame).
      size: resize the shorter side to ``size`` and centre-crop to a square
        (CLIP's preprocessing); None keeps the full frame.
    """
    info: dict = {}
    picks, times, frames = zip(*_samples(path, sample_fps, size, info))
    return _sampled_video(np.stack(frames), picks, times, info)


def sample_and_encode(path: str, encode: Callable[[np.ndarray], np.ndarray], sample_fps: float = 2.0,
                      size: Optional[int] = None, batch_size: int = 64,
                      progress: bool = True) -> tuple[SampledVideo, np.ndarray]:
    """:func:`sample_frames` feeding ``encode`` as it goes, without holding the pixels.

    A second thread decodes while this one runs ``encode`` ((B, S, S, 3) uint8 -> (B, D),
    e.g. CLIP) on each ``batch_size`` sampled frames (the last batch fewer), so decoding
    and encoding overlap and at most a few batches of frames exist at a time.  With
    ``progress``, a bar with ETA over the sampled frames on a terminal.

    Returns:
      (the SampledVideo with an empty ``frames``, (T, D) the encodings in order).
    """
    info: dict = {}
    picks, times, outputs, batch = [], [], [], []
    bar = require_extra("tqdm", "progress bars").tqdm(desc=os.path.basename(path), unit="frame", leave=False,
                                                      disable=None if progress else True)
    with bar, contextlib.closing(_prefetched(_samples(path, sample_fps, size, info), 2 * batch_size)) as samples:
        for index, t, rgb in samples:
            if bar.total is None and info["expected_frames"]:
                n = info["expected_frames"]
                bar.total = n if sample_fps <= 0 else int(np.ceil(n / info["fps"] * sample_fps))
            picks.append(index)
            times.append(t)
            batch.append(rgb)
            if len(batch) == batch_size:
                outputs.append(encode(np.stack(batch)))
                bar.update(len(batch))
                batch = []
        if batch:
            outputs.append(encode(np.stack(batch)))
            bar.update(len(batch))
    return _sampled_video(np.zeros((0,), np.uint8), picks, times, info), np.concatenate(outputs)


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """The items of ``items``, produced by a second thread up to ``depth`` ahead of the
    consumer.  The producer's exception is raised here; a consumer that stops early (an
    exception, ``close``) stops the producer and waits for it, so no thread outlives it."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop, end = threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        try:
            for x in items:
                if not put((None, x)):
                    return
            put((None, end))
        except BaseException as e:  # handed to the consumer
            put((e, None))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="sgvs_jax-decode", daemon=True)
    thread.start()
    try:
        while True:
            error, x = q.get()
            if error is not None:
                raise error
            if x is end:
                return
            yield x
    finally:
        stop.set()
        thread.join()


def segments(keep: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, stop)`` frame ranges of the runs of true values in ``keep``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(keep, np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


SEEK_GAP_S = 2.0  # a gap shorter than this is decoded through, a longer one is skipped by a seek


def _selected_video_frames(src: str, keep: np.ndarray):
    """Yields ``(index, frame)`` for the kept frames of ``src``, in order, seeking over
    the gaps between segments longer than SEEK_GAP_S instead of decoding them.  A
    frame's index comes from its timestamp (the source's frame rate), which is its
    decode-order index in a constant-rate video; a stream without timestamps is
    decoded whole, counting frames.  Raises VideoError if a kept frame is never found."""
    av = _av()
    runs = segments(keep)
    with open_video(src) as (container, stream):
        rate, tb = frame_rate(stream), stream.time_base
        origin = stream.start_time or 0
        gap = int(round(SEEK_GAP_S * rate))
        index, position, done = -1, 0, -1  # the last index seen; where decoding goes on; the last yielded
        try:
            for a, b in runs:
                if a - position > gap:
                    container.seek(origin + int(a / rate / tb), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        raise _NoTimestamps
                    index = int(round((frame.pts - origin) * tb * rate))
                    if index >= a:
                        if index < b:
                            done = index
                            yield index, frame
                        if index >= b - 1:
                            break
                position = index + 1
        except _NoTimestamps:
            pass
        except av.error.FFmpegError as e:
            raise VideoError(f"{src}: cannot decode near frame {index + 1} with codec "
                             f"'{stream.codec_context.name}' ({type(e).__name__}: {e})") from e
        else:
            if runs and index < runs[-1][1] - 1:
                raise VideoError(f"{src}: the summary covers frame {runs[-1][1] - 1}, but the video ends at "
                                 f"frame {index}")
            return
    for index, _, frame in decode_frames(src):  # no timestamps: count frames in decode order
        if done < index < len(keep) and keep[index]:  # (none yielded twice if they ran out midway)
            yield index, frame


class _NoTimestamps(Exception):
    pass


def _audio_segments(src: str, runs, fps: float):
    """Yields ``(samples (channels, n) float32, rate, layout)`` of the source's first audio
    track inside the kept ``runs`` (frame ranges at ``fps``), cut at sample precision;
    nothing where the file has no audio."""
    av = _av()
    with av.open(src) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        origin = float((container.streams.video[0].start_time or 0) * container.streams.video[0].time_base)
        resampler, spans, k = None, [(a / fps, b / fps) for a, b in runs], 0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            rate = frame.sample_rate
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=rate)
            start = float(frame.pts * frame.time_base) - origin
            for out in resampler.resample(frame):
                x = out.to_ndarray()
                t0, t1 = start, start + x.shape[1] / rate
                while k < len(spans) and spans[k][1] <= t0:
                    k += 1
                j = k
                while j < len(spans) and spans[j][0] < t1:
                    lo = max(0, int(round((spans[j][0] - t0) * rate)))
                    hi = min(x.shape[1], int(round((spans[j][1] - t0) * rate)))
                    if hi > lo:
                        yield x[:, lo:hi], rate, out.layout.name
                    j += 1
                start = t1
            if k >= len(spans):
                break


def write_selected_frames(src: str, dst: str, keep: np.ndarray, codec: str = "libx264",
                          crf: int = 23, audio: bool = True, preset: str = "veryfast") -> dict:
    """Writes the frames of ``src`` with ``keep[index]`` true to ``dst``, in order, at the
    source frame rate, with the source's sound of those frames (its first audio track,
    AAC; ``audio=False`` or a silent source: video only).

    Only the kept segments are decoded: gaps longer than ``SEEK_GAP_S`` are skipped by
    seeking.  H.264 at ``crf`` with x264's ``preset`` (default 'veryfast': a larger file
    than 'medium' at the same quality, in a fraction of the encoding time).  The
    container format follows ``dst``'s extension (``.mp4``, ``.mkv`` ...); the file is
    written atomically (see :func:`sgvs_jax.files.atomic_path`).

    Returns:
      dict with ``frames`` written, ``fps``, ``seconds`` and ``audio_seconds``.
    """
    av = _av()
    keep = np.asarray(keep, bool)
    if keep.ndim != 1:
        raise ValueError(f"keep must be a 1-D frame mask, got shape {keep.shape}")
    if not keep.any():
        raise ValueError("no frame selected: nothing to write")
    with open_video(src) as (container, stream):
        rate = frame_rate(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if stream.frames and stream.frames != len(keep):  # the container's count, where it has one
            raise VideoError(f"{src}: has {stream.frames} frames, but the summary covers {len(keep)}")
        audio_in = container.streams.audio[0] if audio and container.streams.audio else None
        audio_rate = audio_in.codec_context.sample_rate if audio_in is not None else None
        audio_layout = audio_in.codec_context.layout.name if audio_in is not None else None
    width, height = width - width % 2, height - height % 2  # yuv420p needs even sizes
    written, samples = 0, 0
    with atomic_path(dst) as tmp:
        fmt = os.path.splitext(dst)[1].lstrip(".").lower() or "mp4"
        fmt = {"mkv": "matroska", "m4v": "mp4"}.get(fmt, fmt)
        try:
            out = av.open(tmp, "w", format=fmt)
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoError(f"{dst}: cannot write this container format ({e})") from e
        with out:
            ostream = out.add_stream(codec, rate=rate)
            ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":  # the quality is crf's; the preset trades file size for encoding time
                ostream.options = {"crf": str(crf), "preset": preset}
            astream = None if audio_in is None else out.add_stream("aac", rate=audio_rate, layout=audio_layout)
            for _, frame in _selected_video_frames(src, keep):
                f = frame.reformat(width=width, height=height, format="yuv420p")
                f.pts, f.time_base = written, fractions.Fraction(1) / rate
                for packet in ostream.encode(f):
                    out.mux(packet)
                written += 1
            for packet in ostream.encode(None):
                out.mux(packet)
            if astream is not None:
                fifo = av.AudioFifo()  # the encoder takes frames of its own size, stamped in samples

                def encode(chunk):
                    nonlocal samples
                    if chunk is not None:
                        chunk.pts, samples = samples, samples + chunk.samples
                    for packet in astream.encode(chunk):
                        out.mux(packet)

                for x, sr, layout in _audio_segments(src, segments(keep), float(rate)):
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
                    frame.sample_rate = sr
                    fifo.write(frame)
                    for chunk in fifo.read_many(astream.codec_context.frame_size or 1024):
                        encode(chunk)
                rest = fifo.read()
                if rest is not None:
                    encode(rest)
                encode(None)
    return {"frames": written, "fps": float(rate), "seconds": written / float(rate),
            "audio_seconds": samples / audio_rate if audio_rate else 0.0}
