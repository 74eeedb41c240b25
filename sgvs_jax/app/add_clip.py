r"""CLIP semantics for a community h5 (``eccv16_dataset_{summe,tvsum}_google_pool5.h5``).

    python -m sgvs_jax.app.add_clip --h5 eccv16_dataset_tvsum_google_pool5.h5 --videos tvsum/video \
        --clip_model CLIP_DIR --out tvsum_clip.h5 [--names names.json] [--titles ydata-tvsum50-info.tsv]

Writes a copy of ``--h5`` in which every video group also holds, in the keys
:mod:`sgvs_jax.data.h5io` names,

  clip_frames  (T, Ds)  CLIP image features of the frames at the group's own ``picks``
  text_tokens  (L, Ds)  CLIP text features of the video's title
  text_pooled  (Ds,)    its pooled text embedding

and every published key byte for byte as it was.  The configs for the community
files (``configs/tvsum_h5.py``, ``summe_h5.py``) then run the full method.

Which file is which group: ``--names`` (JSON ``{"video_1": "AwmHb44_ouw", ...}``,
file names or stems), else the group's ``video_name`` (SumMe's files carry it).
Titles: ``--titles``, a JSON ``{name or stem: title}`` or a TSV with ``video_id``
and ``title`` columns (TVSum's ``ydata-tvsum50-info.tsv``); else the name itself
(SumMe's names are titles: ``Air_Force_One`` -> "Air Force One").  Every group's
file is found before any is decoded (every missing one named in one error), and
every file's frame count is compared with its ``n_frames`` (every mismatch named
in one error; nothing is written then).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Mapping, Optional

import h5py
import numpy as np

from sgvs_jax import require_extra
from sgvs_jax.app.from_video import title_from_filename
from sgvs_jax.data.h5io import REQUIRED_KEYS, SEMANTIC_KEYS, decode_text, open_h5, written_by
from sgvs_jax.data.video import DataError
from sgvs_jax.files import atomic_path, check_outputs, files_in
from sgvs_jax.provenance import provenance

CLIP_ATTR = "sgvs_jax_add_clip"  # root attribute: how the CLIP keys were made


def read_titles(path: str) -> dict:
    """``{name or stem: title}`` from a JSON object or a TSV with ``video_id`` and ``title`` columns."""
    if path.lower().endswith((".tsv", ".txt")):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "video_id" not in header or "title" not in header:
            raise DataError(f"--titles {path}: a TSV needs a header with 'video_id' and 'title' columns "
                            f"(got {header[:6]})")
        i, j = header.index("video_id"), header.index("title")
        return {r[i].strip(): r[j].strip() for r in rows[1:] if len(r) > max(i, j)}
    from sgvs_jax.cli import read_json_arg
    titles = read_json_arg(path, "--titles", what="a JSON object {name: title} (or a TSV)")
    return {str(k): str(v) for k, v in titles.items()}


def _stem(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0]


def match_videos(h5_path: str, groups: Mapping[str, Optional[str]], folder: str,
                 names: Optional[Mapping[str, str]] = None) -> dict:
    """``{group: video file}``: each group's name (``names[group]``, else its ``video_name``)
    found in ``folder`` by file name or stem.  One DataError lists every group without a file."""
    from sgvs_jax.app.extract_features import list_videos
    files = list_videos(folder)
    by_name = {**{_stem(p): p for p in files}, **{os.path.basename(p): p for p in files}}
    names, found, problems = names or {}, {}, []
    for key, video_name in groups.items():
        name = names.get(key, video_name)
        if name is None:
            problems.append(f"{key} has no video_name (give --names)")
        elif name in by_name or _stem(name) in by_name:
            found[key] = by_name.get(name, by_name.get(_stem(name)))
        else:
            problems.append(f"{key} ({name}) has no file in {folder}")
    if problems:
        raise DataError(f"{h5_path}: {len(problems)} of {len(groups)} videos unmatched: " + "; ".join(problems))
    return found


def frames_at(path: str, picks: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """The frames of ``path`` at decode-order indices ``picks``, resized and centre-cropped
    to ``size`` (CLIP's preprocessing), and the number of frames in the file."""
    from sgvs_jax.app.video_io import _resize_crop, decode_frames
    wanted, out, n = set(int(p) for p in picks), {}, 0
    for index, _, frame in decode_frames(path):
        n = index + 1
        if index in wanted:
            out[index] = _resize_crop(frame, size)
    missing = sorted(wanted - set(out))
    if missing:
        return np.zeros((0, size, size, 3), np.uint8), n
    return np.stack([out[int(p)] for p in picks]), n


def add_clip(h5_path: str, videos: str, clip_model: str, out: str, names: Optional[Mapping[str, str]] = None,
             titles: Optional[Mapping[str, str]] = None, max_text_tokens: int = 31, frame_tolerance: int = 0,
             overwrite: bool = False, inputs: tuple = ()) -> dict:
    """Writes ``out``: ``h5_path`` plus the CLIP keys of every video (see the module docstring).

    ``frame_tolerance``: how many frames a file may have more or fewer than the
    group's ``n_frames`` (decoders differ by a few at the end); a pick past the
    file's last frame is always an error.  Returns ``{group: file}``.
    """
    from sgvs_jax.app.clip import ClipEncoder
    named = [h5_path, *inputs, *files_in(clip_model)]
    # First the inputs named on the command line (before the h5 is read); all of them, the matched
    # videos too, with the rest of the rule below, once the videos are matched.
    check_outputs({"--out": out}, inputs=named, ours={"--out": lambda _: True})
    groups, picks, n_frames = {}, {}, {}
    with open_h5(h5_path) as f:
        for key in f:
            g = f[key]
            missing = [k for k in REQUIRED_KEYS if not isinstance(g, h5py.Group) or k not in g]
            if missing:
                raise DataError(f"{h5_path}: '{key}' is not a community video group (no {missing})")
            groups[key] = decode_text(g["video_name"][()]) if "video_name" in g else None
            picks[key] = np.asarray(g["picks"][()], np.int64)
            n_frames[key] = int(np.asarray(g["n_frames"][()]).reshape(-1)[0])
    if not groups:
        raise DataError(f"{h5_path}: no video groups")
    files = match_videos(h5_path, groups, videos, names)
    # The matched videos are inputs too: checked with them, before anything is decoded.
    check_outputs({"--out": out}, inputs=named + list(files.values()),
                  overwrite=overwrite, ours={"--out": written_by(CLIP_ATTR)}, kinds={"--out": "hdf5"})
    encoder = ClipEncoder(clip_model)
    titles = titles or {}
    added, problems = {}, []
    bar = require_extra("tqdm", "progress bars").tqdm(list(files.items()), desc="videos", unit="video",
                                                      disable=None)
    for key, path in bar:
        frames, n = frames_at(path, picks[key], encoder.image_size)
        if abs(n - n_frames[key]) > frame_tolerance or len(frames) == 0:
            problems.append(f"{key} ({os.path.basename(path)}): the file has {n} frames, n_frames is "
                            f"{n_frames[key]}" + ("" if len(frames) else
                                                  f", last pick {int(picks[key].max())}"))
            continue
        name = (names or {}).get(key) or groups[key] or _stem(path)
        title = titles.get(name, titles.get(_stem(name), title_from_filename(name)))
        tokens, pooled = encoder.encode_text(title, max_tokens=max_text_tokens)
        added[key] = {"clip_frames": encoder.encode_images(frames), "text_tokens": tokens, "text_pooled": pooled,
                      "title": title, "file": os.path.basename(path)}
    if problems:
        raise DataError(f"{h5_path}: frame counts differ from the videos in {videos} "
                        f"({len(problems)} of {len(files)}; --frame_tolerance {frame_tolerance}): "
                        + "; ".join(problems))
    with atomic_path(out, make_dirs=True) as tmp:
        with h5py.File(h5_path, "r") as src, h5py.File(tmp, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            dst.attrs[CLIP_ATTR] = json.dumps({**encoder.describe(), "max_text_tokens": max_text_tokens,
                                               "source": os.path.abspath(h5_path), "provenance": provenance(),
                                               "videos": {k: {"file": a["file"], "title": a["title"]}
                                                          for k, a in added.items()}})
            for key in src:
                src.copy(src[key], dst, name=key)
                for name in SEMANTIC_KEYS:
                    if name in dst[key]:
                        del dst[key][name]  # an earlier add_clip's keys (the published ones are never these)
                    dst[key][name] = added[key][name].astype(np.float32)
    return files


def main(argv):
    from absl import flags

    from sgvs_jax import cli
    del argv
    FLAGS = flags.FLAGS

    def work():
        names = cli.read_json_arg(FLAGS.names, "--names", what="a JSON object {group: video file name}") \
            if FLAGS.names else None
        titles = read_titles(FLAGS.titles) if FLAGS.titles else None
        return add_clip(FLAGS.h5, FLAGS.videos, FLAGS.clip_model, FLAGS.out, names, titles,
                        FLAGS.max_text_tokens, FLAGS.frame_tolerance, FLAGS.overwrite,
                        inputs=(FLAGS.names, FLAGS.titles))

    files = cli.run(work, FLAGS.debug)
    print(f"wrote {FLAGS.out}: {len(files)} videos with clip_frames, text_tokens, text_pooled")


def define_flags():
    from absl import flags
    flags.DEFINE_string("h5", None, "the community h5 to read (never written)", required=True)
    flags.DEFINE_string("videos", None, "the folder of the dataset's video files", required=True)
    flags.DEFINE_string("clip_model", None, "CLIP folder in the published layout (config.json, "
                        "model.safetensors, tokenizer.json)", required=True)
    flags.DEFINE_string("out", None, "the h5 to write: the input's groups plus the CLIP keys", required=True)
    flags.DEFINE_string("names", None, "JSON {group: video file name or stem} (default: each group's video_name)")
    flags.DEFINE_string("titles", None, "JSON {name: title} or TSV with video_id and title columns "
                        "(default: the name)")
    flags.DEFINE_integer("max_text_tokens", 31, "title tokens kept")
    flags.DEFINE_integer("frame_tolerance", 0, "frames a file may differ from the group's n_frames")
    flags.DEFINE_bool("overwrite", False, "replace an existing --out h5 that add_clip did not write (an input, the "
                      "matched videos included, is never replaced)")
    flags.DEFINE_bool("debug", False, "show the traceback of an error")


if __name__ == "__main__":
    from absl import app
    define_flags()
    app.run(main)
