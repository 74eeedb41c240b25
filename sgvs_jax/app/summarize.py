r"""Summarize a video file with a trained run: an mp4 summary, a JSON and a PNG plot.

    python -m sgvs_jax.app.summarize --video in.mp4 --workdir RUN_DIR --out summary.mp4 \
        [--title "what the video is about"] [--budget 0.15] [--fps 2] [--clip_model DIR]

``RUN_DIR`` is the ``--workdir`` of a ``sgvs_jax.main`` run trained on CLIP
features (an h5 written by ``python -m sgvs_jax.app.extract_features``); the CLIP
model, sampling rate and KTS setting default to the ones recorded in that h5,
so the video is featurised exactly as the training videos were.

Pipeline: PyAV decode at ``--fps`` -> CLIP image features (and CLIP text features
of ``--title``, default: the file name) -> KTS shots -> selector scores of the
run's checkpoint -> shot scores -> 0/1 knapsack at ``--budget`` of the length ->
the selected shots' frames, in order, re-encoded (H.264, with the source's sound of those frames as AAC;
only the selected segments are decoded).
Bad input raises a clear error before any output file is created.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from sgvs_jax.app.from_video import DEFAULTS, EXTRACTION_ATTR, title_from_filename, video_from_file
from sgvs_jax.data.h5io import read_h5_attrs
from sgvs_jax.evaluation.summary import check_budget, select_keyshots
from sgvs_jax.files import atomic_path, check_outputs, files_in, read_json
from sgvs_jax.app.inference import Scorer, read_run_config
from sgvs_jax.provenance import provenance
from sgvs_jax.app.video_io import write_selected_frames
from sgvs_jax.workdir import own_files


def extraction_settings(config) -> dict:
    """How the run's training features were extracted (from its h5), or {}."""
    if config.data.source != "h5" or not os.path.exists(config.data.h5_path):
        return {}
    return dict(read_h5_attrs(config.data.h5_path).get(EXTRACTION_ATTR, {}))


def summarize_video(video_path: str, run_dir: str, out_path: str, title: Optional[str] = None,
                    clip_model: Optional[str] = None, sample_fps: Optional[float] = None,
                    budget: float = 0.15, split=None, json_path: Optional[str] = None,
                    plot_path: Optional[str] = None,
                    kts_mean_shot_seconds: Optional[float] = None, overwrite: bool = False,
                    clip_dtype: str = "auto") -> dict:
    """Writes ``out_path`` (summary video), ``json_path`` and ``plot_path``
    (default: beside ``out_path`` with .json / .png); returns the JSON record.

    No output may be an input (the video, every file the run wrote, every file of
    the CLIP folder, the run's h5 and split file), and an existing file
    is replaced only if an earlier summarize wrote it (its JSON names it) or
    ``overwrite``; both are checked before any work.  ``clip_dtype``: CLIP's dense
    products (:func:`sgvs_jax.app.clip.resolve_matmul_dtype`)."""
    from sgvs_jax.app.clip import ClipEncoder

    budget = check_budget(budget)
    base = os.path.splitext(out_path)[0]
    json_path = json_path or base + ".json"
    plot_path = plot_path or base + ".png"
    config, _ = read_run_config(run_dir)
    settings = {**DEFAULTS, **extraction_settings(config)}
    clip_model = clip_model or settings.get("clip_model")
    check_outputs({"--out": out_path, "--json": json_path, "--plot": plot_path},
                  inputs=[video_path, config.data.get("h5_path"), config.data.get("split_path")]
                  + [f for p in own_files(run_dir) for f in (files_in(p) or [p])] + files_in(clip_model),
                  overwrite=overwrite, ours=earlier_outputs(json_path, out_path, plot_path),
                  kinds={"--out": "mp4", "--json": "json", "--plot": "png"})
    if not clip_model:
        raise ValueError(f"{run_dir}: its training data records no CLIP model (config data.h5_path="
                         f"'{config.data.h5_path}'); pass --clip_model")
    if sample_fps is not None:
        settings["sample_fps"] = sample_fps
    if kts_mean_shot_seconds is not None:
        settings["kts_mean_shot_seconds"] = kts_mean_shot_seconds
    encoder = ClipEncoder(clip_model, matmul_dtype=clip_dtype)
    title = title if title is not None else title_from_filename(video_path)
    video, sampled = video_from_file(video_path, encoder, key="video_1", sample_fps=settings["sample_fps"],
                                     title=title, max_text_tokens=settings["max_text_tokens"],
                                     kts_mean_shot_seconds=settings["kts_mean_shot_seconds"],
                                     kts_vmax=settings["kts_vmax"], shot_budget=settings["shot_budget"])
    scorer = Scorer(run_dir, video.features.shape[1], encoder.dim, split)
    scores = scorer.scores(video)
    shot_values, selected = select_keyshots(scores, video.change_points, video.n_frames, video.picks, budget)
    if not selected.any():
        lengths = (video.change_points[:, 1] - video.change_points[:, 0] + 1) / sampled.fps
        raise ValueError(f"{video_path}: a {100 * budget:.0f} % budget ({budget * video.n_frames / sampled.fps:.1f} s"
                         f") is shorter than every shot (shortest {lengths.min():.1f} s of {len(lengths)}): "
                         "raise --budget or lower --kts_mean_shot_seconds")
    keep = np.zeros(video.n_frames, bool)
    for start, end in video.change_points[selected]:
        keep[start:end + 1] = True
    fps = sampled.fps
    cps = video.change_points
    shots_s = np.stack([cps[:, 0] / fps, (cps[:, 1] + 1) / fps], axis=1)
    record = {
        "video": os.path.abspath(video_path),
        "summary_video": os.path.abspath(out_path),
        "plot": os.path.abspath(plot_path),
        "title": title,
        "n_frames": video.n_frames, "fps": fps, "duration_s": video.n_frames / fps,
        "width": sampled.width, "height": sampled.height,
        "budget": budget,
        "summary_frames": int(keep.sum()), "summary_duration_s": float(keep.sum() / fps),
        "run": {"workdir": os.path.abspath(run_dir), "split": scorer.split, "epoch": scorer.epoch,
                "checkpoint": scorer.checkpoint},
        "features": {**encoder.describe(), "sample_fps": settings["sample_fps"],
                     "kts_mean_shot_seconds": settings["kts_mean_shot_seconds"], "kts_vmax": settings["kts_vmax"],
                     "shot_budget": settings["shot_budget"]},
        "steps": {"frame": video.picks.tolist(), "time_s": sampled.times.round(4).tolist(),
                  "score": scores.round(6).tolist()},
        "shots": [{"start_frame": int(s), "end_frame": int(e), "start_s": round(float(a), 4),
                   "end_s": round(float(b), 4), "score": round(float(v), 6), "selected": bool(c)}
                  for (s, e), (a, b), v, c in zip(cps, shots_s, shot_values, selected)],
        "selected_segments_s": [[round(float(a), 4), round(float(b), 4)]
                                for (a, b), c in zip(shots_s, selected) if c],
        "provenance": provenance(),
    }
    from sgvs_jax.app.plotting import plot_summary
    name = os.path.basename(video_path)
    with atomic_path(plot_path) as tmp_plot, atomic_path(json_path) as tmp_json:
        plot_summary(tmp_plot, sampled.times, scores, shots_s, selected, duration=video.n_frames / fps,
                     title=f"{name}: {record['summary_duration_s']:.1f} s of {record['duration_s']:.1f} s "
                           f"({100 * budget:.0f} % budget, {int(selected.sum())}/{len(cps)} shots)")
        written = write_selected_frames(video_path, out_path, keep)
        record["summary_video_written"] = written
        with open(tmp_json, "w") as f:
            json.dump(record, f, indent=1)
    return record


def earlier_outputs(json_path: str, out_path: str, plot_path: str) -> dict:
    """Predicates telling whether existing files at the output paths were written
    by an earlier summarize: its JSON record, and the video and plot it names."""
    r = read_json(json_path)
    record = r if isinstance(r, dict) and "summary_video" in r and "provenance" in r else None

    def names(key, path):
        return lambda p: record is not None and record.get(key) == os.path.abspath(path)

    return {"--json": lambda p: record is not None, "--out": names("summary_video", out_path),
            "--plot": names("plot", plot_path)}


def main(argv):
    from absl import flags

    from sgvs_jax import cli
    del argv
    FLAGS = flags.FLAGS

    def work():
        if FLAGS.split not in (None, "all") and not FLAGS.split.isdigit():
            raise cli.ArgumentError(f"--split={FLAGS.split!r}: give a split index or 'all'")
        return summarize_video(FLAGS.video, FLAGS.workdir, FLAGS.out, title=FLAGS.title, clip_model=FLAGS.clip_model,
                               sample_fps=FLAGS.fps, budget=FLAGS.budget, split=FLAGS.split,
                               json_path=FLAGS.json, plot_path=FLAGS.plot,
                               kts_mean_shot_seconds=FLAGS.kts_mean_shot_seconds, overwrite=FLAGS.overwrite,
                               clip_dtype=FLAGS.clip_dtype)

    r = cli.run(work, FLAGS.debug)
    n_sel = sum(s["selected"] for s in r["shots"])
    print(f"{r['summary_video']}: {r['summary_duration_s']:.1f} s of {r['duration_s']:.1f} s, "
          f"{n_sel}/{len(r['shots'])} shots (run {r['run']['workdir']} split {r['run']['split']} "
          f"epoch {r['run']['epoch']})")
    base = os.path.splitext(FLAGS.out)[0]
    print(f"scores and shots: {FLAGS.json or base + '.json'}   plot: {FLAGS.plot or base + '.png'}")


def define_flags():
    from absl import flags
    flags.DEFINE_string("video", None, "input video file", required=True)
    flags.DEFINE_string("workdir", None, "run folder of sgvs_jax.main (results.json + checkpoints)",
                        required=True)
    flags.DEFINE_string("out", None, "summary video to write (.mp4)", required=True)
    flags.DEFINE_string("title", None, "title or prompt for the semantic tokens (default: the file name)")
    flags.DEFINE_string("clip_model", None, "CLIP folder (config.json, model.safetensors, tokenizer.json; default: the run's)")
    from sgvs_jax.app.clip import MATMUL_DTYPES
    flags.DEFINE_enum("clip_dtype", "auto", list(MATMUL_DTYPES),
                      "CLIP's dense products: 'auto' is bfloat16 on a CPU with bf16 units (AVX512-BF16, AMX), "
                      "where it was measured 1.7x faster; float32 elsewhere")
    flags.DEFINE_float("fps", None, "sampling rate (default: the run's, else 2)")
    flags.DEFINE_float("budget", 0.15, "summary length as a fraction of the video")
    flags.DEFINE_string("split", None, "which split's model: its index, or 'all' for the mean score of every "
                        "finished split's model (default: the first finished)")
    flags.DEFINE_string("json", None, "JSON output (default: OUT with .json)")
    flags.DEFINE_string("plot", None, "PNG plot (default: OUT with .png)")
    flags.DEFINE_bool("overwrite", False, "replace existing output files that an earlier summarize did not write "
                                          "(an input is never replaced)")
    flags.DEFINE_bool("debug", False, "show the traceback of an error")
    flags.DEFINE_float("kts_mean_shot_seconds", None,
                       "mean shot length for KTS, 0: KTS chooses the number (default: the run's, else 4)")


if __name__ == "__main__":
    from absl import app
    define_flags()
    app.run(main)
