r"""Community-format h5 (plus CLIP keys) for a folder of one's own videos, to train on.

    python -m sgvs_jax.app.extract_features --videos DIR --clip_model CLIP_DIR --out my_videos.h5 \
        [--fps 2] [--titles titles.json] [--n_splits 5]

Writes ``my_videos.h5`` (groups ``video_1`` ... in sorted file-name order, with
``video_name``; see sgvs_jax.app.from_video for the keys) and
``my_videos_splits.json`` (``n_splits`` random folds over the keys).  The videos
have no annotations, so ``user_summary``/``gtscore`` are zeros and the F1 / tau
printed while training on them are not meaningful.  How the features were made
(CLIP model, sampling rate, KTS) is stored in the file's root attribute
``sgvs_jax_extraction``; ``sgvs_jax.app.summarize`` reads it back.  Then train:

    python -m sgvs_jax.main --config configs/clip_h5.py --config.data.h5_path=my_videos.h5 \
        --config.data.split_path=my_videos_splits.json --workdir runs/my_videos
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional


from sgvs_jax import require_extra
from sgvs_jax.app.from_video import DEFAULTS, EXTRACTION_ATTR, video_from_file
from sgvs_jax.data.folds import make_folds
from sgvs_jax.data.h5io import read_h5_attrs, write_h5, written_by
from sgvs_jax.files import OutputError, check_outputs, files_in, write_json
from sgvs_jax.provenance import provenance

SPLITS_ATTR = "sgvs_jax_splits"  # root attribute: the split file written with the h5
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")


def list_videos(path: str) -> list[str]:
    """A video file, or the video files of a folder (sorted by name)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(VIDEO_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f"{path}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return files


def extract_features(videos: str, out: str, clip_model: str, sample_fps: float = 2.0,
                     titles: Optional[dict] = None, n_splits: int = 5, seed: int = 0,
                     kts_mean_shot_seconds: Optional[float] = DEFAULTS["kts_mean_shot_seconds"],
                     max_text_tokens: int = DEFAULTS["max_text_tokens"],
                     skip_bad: bool = False, splits_out: Optional[str] = None, overwrite: bool = False,
                     titles_path: Optional[str] = None, shot_budget: Optional[float] = DEFAULTS["shot_budget"]) -> dict:
    """Extracts every video of ``videos`` and writes ``out`` (+ its split file).

    No output may be an input (a video, ``titles_path``, a file of the CLIP folder), and an existing file is
    replaced only if an earlier extract_features wrote it or ``overwrite``; both
    are checked before any video is read.

    Returns:
      {'h5': path, 'splits': path or None, 'videos': {key: file name}, 'skipped': {file: error}}.
    """
    from sgvs_jax.app.clip import ClipEncoder
    from sgvs_jax.app.video_io import VideoError

    files = list_videos(videos)
    if out.lower().endswith(VIDEO_EXTENSIONS):
        raise OutputError(f"--out {out} has a video file's extension; the features go to an .h5 file")
    splits_out = splits_out or os.path.splitext(out)[0] + "_splits.json"
    outputs = {"--out": out} if len(files) < 2 else {"--out": out, "split file": splits_out}
    check_outputs(outputs, inputs=files + [titles_path] + files_in(clip_model), overwrite=overwrite,
                  ours={"--out": written_by(EXTRACTION_ATTR), "split file": lambda p: _names_split_file(out, p)},
                  kinds={"--out": "hdf5", "split file": "json"})
    encoder = ClipEncoder(clip_model)
    titles = titles or {}
    records, skipped = {}, {}
    bar = require_extra("tqdm", "progress bars").tqdm(files, desc="videos", unit="video", disable=None)
    for path in bar:
        name = os.path.basename(path)
        title = titles.get(name, titles.get(os.path.splitext(name)[0]))
        key = f"video_{len(records) + 1}"
        t0 = time.time()
        try:
            video, sampled = video_from_file(path, encoder, key=key, sample_fps=sample_fps, title=title,
                                             max_text_tokens=max_text_tokens,
                                             kts_mean_shot_seconds=kts_mean_shot_seconds,
                                             kts_vmax=DEFAULTS["kts_vmax"], shot_budget=shot_budget)
        except VideoError as e:
            if not skip_bad:
                raise
            skipped[path] = str(e)
            bar.write(f"skipped {e}", file=sys.stderr)
            continue
        records[key] = video
        bar.write(f"{key} {name}: {video.n_frames} frames, {video.length} steps, "
                  f"{len(video.change_points)} shots ({time.time() - t0:.1f} s)", file=sys.stdout)
    if not records:
        raise ValueError(f"{videos}: no video could be read")
    settings = {**encoder.describe(), "sample_fps": sample_fps, "kts_mean_shot_seconds": kts_mean_shot_seconds,
                "kts_vmax": DEFAULTS["kts_vmax"], "max_text_tokens": max_text_tokens, "shot_budget": shot_budget}
    attrs = {EXTRACTION_ATTR: settings, "sgvs_jax_provenance": provenance()}
    if len(records) >= 2:
        attrs[SPLITS_ATTR] = os.path.abspath(splits_out)
    write_h5(out, records, attrs=attrs)
    result = {"h5": out, "splits": None, "videos": {k: v.name for k, v in records.items()}, "skipped": skipped}
    if len(records) >= 2:
        write_json(splits_out, make_folds(list(records), n_splits, seed))
        result["splits"] = splits_out
    return result


def _names_split_file(h5_path: str, path: str) -> bool:
    """Whether the h5 at ``h5_path`` is ours and records ``path`` as its split file."""
    try:
        return read_h5_attrs(h5_path).get(SPLITS_ATTR) == os.path.abspath(path)
    except (ValueError, OSError):
        return False


def main(argv):
    from absl import flags

    from sgvs_jax import cli
    del argv
    FLAGS = flags.FLAGS

    def work():
        titles = cli.read_json_arg(FLAGS.titles, "--titles", what="a JSON object {file name: title}") \
            if FLAGS.titles else None
        return extract_features(FLAGS.videos, FLAGS.out, FLAGS.clip_model, FLAGS.fps, titles, FLAGS.n_splits,
                                FLAGS.seed, FLAGS.kts_mean_shot_seconds, FLAGS.max_text_tokens, FLAGS.skip_bad,
                                overwrite=FLAGS.overwrite, titles_path=FLAGS.titles, shot_budget=FLAGS.shot_budget)

    r = cli.run(work, FLAGS.debug)
    print(f"wrote {r['h5']} ({len(r['videos'])} videos)" + (f" and {r['splits']}" if r["splits"] else
                                                           " (one video: no split file)"))
    if r["skipped"]:
        print(f"skipped {len(r['skipped'])} unreadable file(s)")


def define_flags():
    from absl import flags
    flags.DEFINE_string("videos", None, "a folder of videos (or one video file)", required=True)
    flags.DEFINE_string("out", None, "h5 file to write", required=True)
    flags.DEFINE_string("clip_model", None, "CLIP folder in the published layout (config.json, model.safetensors, tokenizer.json)",
                        required=True)
    flags.DEFINE_float("fps", DEFAULTS["sample_fps"], "frames sampled per second")
    flags.DEFINE_string("titles", None, "JSON {file name or stem: title} (default: titles from file names)")
    flags.DEFINE_integer("n_splits", 5, "folds in the split file")
    flags.DEFINE_integer("seed", 0, "seed of the folds")
    flags.DEFINE_float("kts_mean_shot_seconds", DEFAULTS["kts_mean_shot_seconds"],
                       "mean shot length for KTS; 0: KTS chooses the number of shots (cpd_auto)")
    flags.DEFINE_integer("max_text_tokens", DEFAULTS["max_text_tokens"], "title tokens kept")
    flags.DEFINE_float("shot_budget", DEFAULTS["shot_budget"], "cut KTS shots longer than this share of the video "
                       "into equal pieces, so a summary at that budget can hold any part; 0: KTS's shots as they are")
    flags.DEFINE_bool("skip_bad", False, "skip unreadable videos instead of stopping")
    flags.DEFINE_bool("overwrite", False, "replace existing output files that an earlier extract_features did not "
                                          "write (an input video is never replaced)")
    flags.DEFINE_bool("debug", False, "show the traceback of an error")


if __name__ == "__main__":
    from absl import app
    define_flags()
    app.run(main)
