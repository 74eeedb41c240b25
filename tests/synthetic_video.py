"""Synthetic videos made with PyAV (tests, demos): coloured scenes, each frame stamped with its index.

The top row of every frame holds the frame index in binary (12 blocks of
8x8 pixels, black = 0, white = 1), which survives lossy coding, so a test can
read back exactly which source frames a summary video contains.
"""

from __future__ import annotations

import fractions

import numpy as np

BLOCK, BITS = 8, 12
COLOURS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 210, 40), (200, 40, 200), (40, 210, 210),
           (240, 140, 30), (120, 120, 120)]


def frame_image(index: int, colour, width: int, height: int, rng=None) -> np.ndarray:
    img = np.empty((height, width, 3), np.uint8)
    img[:] = colour
    if rng is not None:  # a little texture so scenes are not perfectly flat
        img[BLOCK:] = np.clip(img[BLOCK:].astype(int) + rng.integers(-20, 21, img[BLOCK:].shape), 0, 255)
    for b in range(BITS):
        img[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255 if (index >> b) & 1 else 0
    return img


def make_scene_video(path: str, scene_seconds=(2.0, 2.0, 2.0, 2.0, 2.0), fps: int = 10,
                     width: int = 112, height: int = 64, seed: int = 0, colours=None, audio=None,
                     audio_rate: int = 16000, gop: int = 0) -> np.ndarray:
    """Writes an H.264 mp4 of solid-colour scenes; returns (n_frames,) scene id of each frame.

    ``audio``: (samples,) mono float in [-1, 1] at ``audio_rate``, written as an AAC track
    beside the video.  ``gop`` > 0: a keyframe every ``gop`` frames (seeking tests).
    """
    import av
    rng = np.random.default_rng(seed)
    colours = colours or COLOURS
    scene_of = np.concatenate([np.full(int(round(s * fps)), i) for i, s in enumerate(scene_seconds)])
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop:
            stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        a = None if audio is None else out.add_stream("aac", rate=audio_rate, layout="mono")  # before any mux
        for i, scene in enumerate(scene_of):
            frame = av.VideoFrame.from_ndarray(frame_image(i, colours[scene % len(colours)], width, height, rng),
                                               format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if a is not None:
            samples = np.asarray(audio, np.float32)
            for i in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, i:i + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = audio_rate, i
                for packet in a.encode(frame):
                    out.mux(packet)
            for packet in a.encode(None):
                out.mux(packet)
    return scene_of


def read_frame_indices(path: str) -> list[int]:
    """The index stamped on each frame of ``path``, in order."""
    import av
    out = []
    with av.open(path) as c:
        for frame in c.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            bits = [img[:BLOCK, b * BLOCK:(b + 1) * BLOCK].mean() > 127 for b in range(BITS)]
            out.append(int(sum(1 << b for b, on in enumerate(bits) if on)))
    return out
