"""Seconds per stage of ``sgvs_jax.app.summarize`` on one generated video, with a
randomly initialised CLIP of ViT-B/32 size (the weights cannot be downloaded
here; the cost depends on the architecture, not on the values).

    python benchmarks/summarize_speed.py [--seconds 120] [--width 640] [--height 360] [--fps 30] [--repeat 1]
        [--clip_dtype auto] [--runs 1]

Prints the times of summarize's stages (decoding, with CLIP image features of each
batch computed meanwhile; CLIP text; KTS; writing the summary), the whole as a
multiple of real time (medians over ``--runs``) and the pipeline's peak resident memory; then, not in the
total, decoding and CLIP each alone, and with ``--clip_dtype`` resolving to bfloat16
(summarize's default 'auto' on a CPU with bf16 units) the float32 CLIP's time and the
smallest cosine between the two features.  ``--seconds 600 --width 1920 --height 1080
--repeat 10``: a 10-minute 1080p video.  ``--clip_only N`` times just the CLIP image
features of N random 224x224 frames (no PyAV needed; for accelerators).
The selector's scoring is timed by benchmarks/train_speed.py's predict figures
(milliseconds per video).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import numpy as np

from sgvs_jax.provenance import provenance


def build_b32(directory: str) -> str:
    """A random CLIP of ViT-B/32's sizes (512-d joint space) in the published layout."""
    from sgvs_jax.app.clip import save_random_clip
    from sgvs_jax.app.clip_model import ClipConfig
    return save_random_clip(directory, config=ClipConfig.from_hf({}))


def repeat_video(src: str, dst: str, copies: int) -> None:
    """``dst``: ``copies`` copies of ``src`` one after the other, by copying its packets with
    shifted timestamps (no re-encoding: a long video in the time a short one takes to make)."""
    import av
    with av.open(src) as inp, av.open(dst, "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        length = dict.fromkeys(streams, 0)  # each stream's span in its time base: the end of its last packet
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is not None:
                i = packet.stream.index
                length[i] = max(length[i], max(packet.pts, packet.dts) + (packet.duration or 0) + 1)
        last = dict.fromkeys(streams, None)
        for k in range(copies):
            inp.seek(0)
            for packet in inp.demux(*[inp.streams[i] for i in streams]):
                i = packet.stream.index
                if packet.dts is None or (last[i] is not None and packet.dts + k * length[i] <= last[i]):
                    continue  # the flush packet, or the audio encoder's priming at a copy's start
                packet.pts, packet.dts = packet.pts + k * length[i], packet.dts + k * length[i]
                last[i], packet.stream = packet.dts, streams[i]
                out.mux(packet)


def peak_rss_gib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def print_provenance():
    prov = provenance()
    print(json.dumps({"packages": prov["packages"], "platform": prov["platform"],
                      "jax_devices": prov.get("jax_devices")}))


def clip_only(n_frames: int, clip_dtype: str):
    import jax

    from sgvs_jax.app.clip import ClipEncoder

    work = tempfile.mkdtemp(prefix="clip_speed_")
    try:
        encoder = ClipEncoder(build_b32(os.path.join(work, "clip")), matmul_dtype=clip_dtype)
        frames = np.random.default_rng(0).integers(0, 256, (n_frames, encoder.image_size, encoder.image_size, 3),
                                                   dtype=np.uint8)
        t0 = time.perf_counter()
        encoder.encode_images(frames[:1])
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        encoder.encode_images(frames)
        sec = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"CLIP image features ({encoder.matmul_dtype} products) on {jax.devices()[0].platform}: {n_frames} frames of "
          f"{encoder.image_size}x{encoder.image_size} in {sec:.2f} s = {n_frames / sec:.0f} frames/s "
          f"(first batch incl. compile {compile_s:.1f} s) = {n_frames / sec / 2:.0f} s of video "
          f"per second at 2 fps")
    print_provenance()


PROGRAM = "benchmarks/summarize_speed.py"


def main():
    from sgvs_jax import cli
    p = cli.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--sample_fps", type=float, default=2.0)
    p.add_argument("--clip_only", type=int, default=0, help="time CLIP image features of N random frames only")
    p.add_argument("--repeat", type=int, default=1, help="make seconds/repeat of video and repeat it (long videos)")
    p.add_argument("--runs", type=int, default=1, help="run the pipeline this many times; report medians")
    from sgvs_jax.app.clip import MATMUL_DTYPES
    p.add_argument("--clip_dtype", default="auto", choices=MATMUL_DTYPES,
                   help="CLIP's dense products (as summarize's --clip_dtype)")
    p.add_argument("--out", default="", help="also write the figures to this JSON file")
    args = p.parse_args()
    cli.run(lambda: summarize_speed(args), args.debug)


def summarize_speed(args):
    from sgvs_jax import cli
    cli.guard_result(args.out, PROGRAM, (), args.overwrite)
    if args.clip_only:
        return clip_only(args.clip_only, args.clip_dtype)

    from sgvs_jax.app.clip import ClipEncoder
    from sgvs_jax.data.kts import segment_features
    from tests.synthetic_video import make_scene_video
    from sgvs_jax.app.video_io import sample_and_encode, sample_frames, write_selected_frames

    work = tempfile.mkdtemp(prefix="summarize_speed_")
    try:
        video = os.path.join(work, "video.mp4")
        n_scenes = max(1, int(args.seconds // 4))
        rng = np.random.default_rng(0)
        secs = rng.uniform(2.0, 6.0, n_scenes)
        secs *= args.seconds / secs.sum()
        audio_rate = 44100  # with a sound track, as a real video has: the summary keeps its sound
        part = args.seconds / args.repeat
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(part * audio_rate)) / audio_rate)
        make_scene_video(video if args.repeat == 1 else video + ".part.mp4", tuple(secs / args.repeat),
                         fps=args.fps, width=args.width, height=args.height, audio=tone, audio_rate=audio_rate)
        if args.repeat > 1:
            repeat_video(video + ".part.mp4", video, args.repeat)
        t0 = time.perf_counter()
        import multiprocessing  # the random weights are made in a child: its memory is not the pipeline's
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            clip_dir = pool.apply(build_b32, (os.path.join(work, "clip"),))
        encoder = ClipEncoder(clip_dir, matmul_dtype=args.clip_dtype)
        load = time.perf_counter() - t0
        runs, parts = [], {}
        encoder.encode_images(np.zeros((1, encoder.image_size, encoder.image_size, 3), np.uint8))  # compile once
        encoder.encode_text("warm up")
        for _ in range(args.runs):  # the whole pipeline again: the figures are each stage's median
            times = {}
            t0 = time.perf_counter()  # summarize's path: CLIP runs on each batch while the next is decoded
            sampled, feats = sample_and_encode(video, encoder.encode_images, args.sample_fps, encoder.image_size,
                                               encoder.batch_size, progress=False)
            times["decode + sample + CLIP image features (overlapped)"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            encoder.encode_text("a video of coloured scenes")
            times["CLIP text features"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            shots = segment_features(feats, mean_shot_steps=4.0 * args.sample_fps)
            times["KTS"] = time.perf_counter() - t0
            keep = np.zeros(sampled.n_frames, bool)  # 15 %: a 3-s segment in every 20 s, as selected shots lie
            for start in range(0, sampled.n_frames, int(20 * args.fps)):
                keep[start + int(8 * args.fps): start + int(11 * args.fps)] = True
            t0 = time.perf_counter()
            write_selected_frames(video, os.path.join(work, "summary.mp4"), keep)
            times["write 15 % summary (seek, H.264 + AAC)"] = time.perf_counter() - t0
            runs.append(times)
        rss = peak_rss_gib()  # the pipeline's; the parts below hold every frame and a second CLIP
        t0 = time.perf_counter()
        frames = sample_frames(video, args.sample_fps, encoder.image_size).frames
        parts["decode + sample + resize alone"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        encoder.encode_images(frames)
        parts[f"CLIP image features alone, {encoder.matmul_dtype}"] = time.perf_counter() - t0
        if encoder.matmul_dtype != "float32":
            f32 = ClipEncoder(clip_dir, matmul_dtype="float32")
            f32.encode_images(frames[:1])
            t0 = time.perf_counter()
            ref = f32.encode_images(frames)
            parts["CLIP image features alone, float32"] = time.perf_counter() - t0
            cos = (ref * feats).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(feats, axis=1)
            parts["min cosine with float32's features"] = float(cos.min())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    totals = [sum(t.values()) for t in runs]
    times = {k: float(np.median([t[k] for t in runs])) for k in runs[0]}
    total = float(np.median(totals))
    print(f"video: {args.seconds:.0f} s, {args.width}x{args.height} @ {args.fps} fps = {sampled.n_frames} frames; "
          f"{len(sampled.picks)} steps at {args.sample_fps} fps; {len(shots)} KTS shots")
    print(f"CLIP: random ViT-B/32-sized CLIP ({encoder.dim}-d), {encoder.matmul_dtype} products, "
          f"load {load:.1f} s (not counted)")
    for k, v in times.items():
        print(f"  {k:<42} {v:7.2f} s")
    print(f"  {'total':<42} {total:7.2f} s  = {total / args.seconds:.3f} x real time"
          + (f" (median of {len(runs)} runs: {', '.join(f'{t:.2f}' for t in totals)} s)" if len(runs) > 1 else ""))
    for k, v in parts.items():
        print(f"  ({k}: {v:.5g}{'' if k.startswith('min') else ' s'}, not in the total)")
    print(f"peak resident memory of the pipeline: {rss:.2f} GiB")
    print_provenance()
    if args.out:
        cli.write_result(args.out, {"video": {"seconds": args.seconds, "width": args.width, "height": args.height,
                                        "fps": args.fps, "sample_fps": args.sample_fps},
                              "clip": f"random ViT-B/32-sized CLIP ({encoder.dim}-d)",
                              "clip_dtype": args.clip_dtype, "clip_matmul_dtype": encoder.matmul_dtype,
                              "not_in_total": {k: round(v, 6) for k, v in parts.items()},
                              "seconds": {k: round(v, 3) for k, v in times.items()}, "total_s": round(total, 3),
                              "x_real_time": round(total / args.seconds, 4),
                              "runs": len(runs), "totals_s": [round(t, 3) for t in totals],
                              "peak_rss_gib": round(rss, 3), "repeat": args.repeat,
                              "provenance": {k: v for k, v in provenance().items() if k != "config"}},
                         PROGRAM)


if __name__ == "__main__":
    main()
