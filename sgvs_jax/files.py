"""Files sgvs_jax writes: atomically, with the user's umask, never over an input
and never over a file it did not write itself unless told to (``overwrite``).

Every command checks all of its outputs with :func:`check_outputs` before it
does any work, so a refused output costs nothing and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from typing import Callable, Iterable, Mapping, Optional
from sgvs_jax.errors import OutputError


def file_mode(base: int = 0o666) -> int:
    """``base`` under the process umask (what ``open(path, 'w')`` would give)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


@contextlib.contextmanager
def atomic_path(path: str, make_dirs: bool = False):
    """Yields a temporary path beside ``path`` (same extension); on success it
    gets the umask's mode and is renamed to ``path``; on any error it is removed,
    so ``path`` is either the old file or the complete new one."""
    directory = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(directory, exist_ok=True)
    elif not os.path.isdir(directory):
        raise OutputError(f"{path}: output folder {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".partial"
                                   + os.path.splitext(path)[1], dir=directory)
    except OSError as e:  # a read-only or full folder: name the output, not the temporary file
        raise OutputError(f"{path}: cannot write in {directory} ({e.strerror or e})") from e
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def finite_or_none(obj):
    """``obj`` with every NaN / inf float replaced by None (strict JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path: str, obj, make_dirs: bool = False) -> None:
    """Strict JSON (NaN / inf written as null), atomically."""
    with atomic_path(path, make_dirs) as tmp, open(tmp, "w") as f:
        json.dump(finite_or_none(obj), f, indent=1, allow_nan=False)


def read_json(path: str):
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (through links, ``..`` or hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def files_in(folder: Optional[str]) -> list[str]:
    """Every file below ``folder`` (none if it is not a folder): a model's or a run's files,
    all of them inputs of a command that reads the folder."""
    if not folder or not os.path.isdir(folder):
        return []
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


# An output's kind by its extension; ``overwrite`` replaces only an existing file of that kind.
KIND_OF_EXTENSION = {".json": "json", ".h5": "hdf5", ".hdf5": "hdf5", ".png": "png", ".mp4": "mp4",
                     ".m4v": "mp4", ".mov": "mp4"}


def file_kind(path: str) -> str:
    """What an existing file holds, by its content: 'hdf5', 'png', 'mp4' (an ISO media file),
    'json', else 'text .ext' or 'binary .ext' (its extension)."""
    import h5py
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"\x89PNG"):
        return "png"
    if head[4:8] == b"ftyp":
        return "mp4"
    if h5py.is_hdf5(path):
        return "hdf5"
    ext = os.path.splitext(path)[1].lower()
    if b"\0" in head:
        return f"binary {ext}"
    try:
        with open(path, encoding="utf-8") as f:
            json.load(f)
        return "json"
    except (ValueError, UnicodeDecodeError):
        return f"text {ext}"


def output_kind(path: str) -> str:
    """The kind of file an output path is for (:func:`file_kind`'s names)."""
    ext = os.path.splitext(path)[1].lower()
    return KIND_OF_EXTENSION.get(ext, f"text {ext}")


def check_outputs(outputs: Mapping[str, str], inputs: Iterable[Optional[str]], overwrite: bool = False,
                  ours: Optional[Mapping[str, Callable[[str], bool]]] = None,
                  kinds: Optional[Mapping[str, str]] = None) -> None:
    """Refuses, before any work, outputs that would lose a user's file.

    Args:
      outputs: role (as the user knows it, e.g. '--out') -> path to be written.
      inputs: files the command reads; no output may be one of them, even with
        ``overwrite``.
      overwrite: allow replacing an existing file that is not an input and holds the
        output's kind (:func:`output_kind`): a JSON output replaces a JSON file, not an h5.
      ours: role -> predicate telling whether an existing file at that path was
        written by this command before (it may then be replaced without
        ``overwrite``, as a rerun does).
      kinds: role -> the kind of file the command writes there (:func:`file_kind`'s
        names, e.g. 'json'); default: by the path's extension (:func:`output_kind`).
    Raises:
      OutputError naming the flag and the path.
    """
    ours = ours or {}
    inputs = [p for p in inputs if p]
    roles = list(outputs.items())
    for i, (role, path) in enumerate(roles):
        for other_role, other in roles[:i]:
            if same_file(path, other):
                raise OutputError(f"{role} and {other_role} are the same file: {path}")
        for src in inputs:
            if same_file(path, src):
                raise OutputError(f"{role} {path} is an input of this command ({src}); it is never "
                                  "overwritten: choose another output path")
        if os.path.isdir(path):
            raise OutputError(f"{role} {path} is a folder; give a file path")
        if not os.path.exists(path) or ours.get(role, lambda p: False)(path):
            continue
        if not overwrite:
            raise OutputError(f"{role} {path} exists and was not written by this command; "
                              "pass --overwrite to replace it")
        have, want = file_kind(path), (kinds or {}).get(role) or output_kind(path)
        if have != want:
            raise OutputError(f"{role} {path} holds a {have} file, not {want}: --overwrite replaces only a "
                              "file of the output's kind; choose another output path")
