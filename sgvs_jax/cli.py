"""The front door of every command: one error line, guarded outputs, strict arguments.

Every command goes through here: ``sgvs_jax.main``, ``sgvs_jax.study``, ``summarize``,
``extract_features``, ``add_clip``, the CLIP converter (``python -m sgvs_jax.app.clip``)
and every script in ``benchmarks/`` that writes ``--out``.

* :func:`run` runs a command's work with every expected error (bad argument, config, data,
  file, checkpoint, a missing extra) as one ``error: ...`` line and exit status 1;
  ``--debug`` raises it instead, with the traceback.
* :func:`guard` refuses, before any work, an output that is one of the command's inputs,
  or an existing file the command did not write itself. ``--overwrite`` lets it replace
  another file *of the output's kind* (a JSON by a JSON, an h5 by an h5), never an input.
  A rerun replaces what the same command wrote before (:func:`written_by`).
* :func:`parse_seeds`, :func:`parse_names`, :func:`parse_grid`, :func:`parse_commit` and
  :func:`read_json_arg` are the one strict parser of seed lists, name lists, grids, commits
  and JSON arguments: anything they cannot read exactly is refused, naming the flag.
* :class:`ArgumentParser` is argparse with its usage errors as that one line too.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import sys
from typing import Callable, Iterable, Mapping, Optional

from sgvs_jax.files import check_outputs, files_in, read_json, write_json
from sgvs_jax.errors import ArgumentError

# What a command expects to go wrong with its input (DataError, ConfigError, OutputError,
# WorkdirError, CheckpointError, ClipError, VideoError and OSError are among them; ImportError is
# a missing extra); anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, RuntimeError, OSError, ArithmeticError, MemoryError, ImportError)


def fail(message: str) -> None:
    """Prints ``error: message`` (one line) to stderr and exits with status 1."""
    text = " ".join(str(message).split()) or "unknown error"
    print(f"error: {text}", file=sys.stderr)
    sys.exit(1)


def run(work: Callable[[], object], debug: bool = False):
    """``work()`` with the expected errors (:data:`EXPECTED`) as one error line and exit 1;
    ``debug``: raised with the traceback.  Quiets absl's INFO log (orbax logs every file)."""
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    try:
        return work()
    except EXPECTED as e:
        if debug:
            raise
        fail(str(e) or type(e).__name__)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error: ...`` line and exit status 1, with
    ``--debug`` and, where a command writes files, ``--overwrite`` declared once here."""

    def __init__(self, *args, outputs: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of an error")
        if outputs:
            self.add_argument("--overwrite", action="store_true",
                              help="replace an existing output of the same kind that this command did not "
                                   "write (an input is never replaced)")

    def error(self, message):
        fail(message)


# --- outputs -------------------------------------------------------------------------------------

def written_by(program: str) -> Callable[[str], bool]:
    """Whether an existing JSON file was written by ``program`` (its ``command`` names it):
    a rerun of the same command may replace it."""
    def ours(path: str) -> bool:
        r = read_json(path)
        return isinstance(r, dict) and isinstance(r.get("command"), str) and program in r["command"].split()[:3]
    return ours


def command_line(program: str, argv: Optional[list] = None) -> str:
    """How this command was run, to record beside its results: ``python -m sgvs_jax.study ...``
    for a module, ``python benchmarks/x.py ...`` for a script."""
    argv = sys.argv[1:] if argv is None else argv
    head = ["python", program] if program.endswith(".py") else ["python", "-m", program]
    return shlex.join(head + list(argv))


def write_result(path: str, obj: dict, program: str) -> None:
    """A command's JSON result, atomically, with the command that made it (``command``), which
    is also how a rerun knows the file as its own (:func:`written_by`)."""
    write_json(path, {**obj, "command": command_line(program)}, make_dirs=True)


def config_inputs(config, config_file: Optional[str] = None) -> list[str]:
    """Every file a run of ``config`` reads: the config file and its sibling modules (a config
    imports ``configs/default.py``), and every file or folder a ``config.data`` value names
    (the h5, the split file, the shared data folder's files)."""
    out = []
    if config_file:
        path = config_file.split(":", 1)[0]
        folder = os.path.dirname(os.path.abspath(path))
        out += [path] + [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".py")] \
            if os.path.isdir(folder) else [path]
    data = config.get("data", {}) if hasattr(config, "get") else {}
    for value in (data.values() if hasattr(data, "values") else ()):
        if isinstance(value, str) and value and os.path.exists(value):
            out += files_in(value) if os.path.isdir(value) else [value]
    return out


def guard(outputs: Mapping[str, str], inputs: Iterable[Optional[str]], overwrite: bool = False,
          ours: Optional[Mapping[str, Callable[[str], bool]]] = None,
          kinds: Optional[Mapping[str, str]] = None) -> None:
    """:func:`sgvs_jax.files.check_outputs`: refuses, before any work, an output that is an
    input, or an existing file that ``ours`` does not call this command's and that is not of
    the kind the command writes there (``kinds``, default by extension; with ``overwrite``),
    naming the flag."""
    check_outputs(outputs, inputs, overwrite=overwrite, ours=ours, kinds=kinds)


# --- arguments -----------------------------------------------------------------------------------

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,3,7' -> [0, 3, 7]; '0-2,9' mixes both.  Refused: an open
    or descending range ('0-', '3-1'), an empty part, a repeated seed, anything not a number."""
    seeds = []
    for part in str(text).split(","):
        m = _RANGE.match(part.strip())
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ArgumentError(f"{flag} {text!r}: {part.strip()!r} is not a seed or an ascending range; "
                                "use a range '0-4' or a list '0,3,7'")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        seeds += range(lo, hi + 1)
    if len(set(seeds)) != len(seeds):
        raise ArgumentError(f"{flag} {text!r}: a seed is repeated")
    return seeds


def parse_names(text: str, flag: str, choices: Optional[Iterable[str]] = None, what: str = "name") -> list[str]:
    """'a,b' -> ['a', 'b']: at least one name, none empty or repeated, each one of ``choices``
    (``what`` a name is, for the message: 'variant')."""
    names = [n.strip() for n in str(text).split(",")]
    if not any(names):
        raise ArgumentError(f"{flag} {text!r}: give at least one {what}")
    if not all(names):
        raise ArgumentError(f"{flag} {text!r}: an empty {what} between commas")
    if len(set(names)) != len(names):
        raise ArgumentError(f"{flag} {text!r}: a {what} is repeated")
    if choices is not None:
        choices = list(choices)
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise ArgumentError(f"{flag}: unknown {what} {unknown[0]!r}; choose from {', '.join(choices)}")
    return names


_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def parse_grid(text: str, flag: str = "--grid") -> tuple[str, list]:
    """'train.teacher_weight=1,0.3' -> ('train.teacher_weight', [1, 0.3]).  Each value is a
    Python literal, or else the bare word as a string ('train.teacher=feature_norm,'')."""
    key, sep, values = str(text).partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise ArgumentError(f"{flag} {text!r}: use KEY=V1,V2,... (e.g. train.teacher_weight=1,0.1)")
    parsed = []
    for v in values.split(","):
        v = v.strip()
        if not v:
            raise ArgumentError(f"{flag} {text!r}: an empty value; use KEY=V1,V2,...")
        try:
            parsed.append(ast.literal_eval(v))
        except (ValueError, SyntaxError):
            if not re.match(r"^[\w.\-]+$", v):
                raise ArgumentError(f"{flag} {text!r}: {v!r} is not a value (a number, True/False, a quoted "
                                    "string or a bare word)") from None
            parsed.append(v)
    if len({repr(v) for v in parsed}) != len(parsed):
        raise ArgumentError(f"{flag} {text!r}: a value is repeated")
    return key, parsed


def parse_commit(rev: str, flag: str, repo: str) -> str:
    """The full hash of the commit ``rev`` names in the git repository at ``repo``; anything
    else (a typo, a tree, no repository) is refused, naming the flag."""
    import subprocess
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                           capture_output=True, text=True)
    if found.returncode:
        raise ArgumentError(f"{flag} {rev}: not a commit of {repo}")
    return found.stdout.strip()


def read_json_arg(path: str, flag: str, expect: type = dict, what: str = "a JSON object"):
    """The JSON in ``path`` as ``expect``; a missing file, invalid JSON or another type is
    refused naming the flag and the file."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise ArgumentError(f"{flag} {path}: file not found") from None
    except IsADirectoryError:
        raise ArgumentError(f"{flag} {path}: is a folder, not a JSON file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ArgumentError(f"{flag} {path}: not valid JSON ({e})") from None
    if not isinstance(value, expect):
        raise ArgumentError(f"{flag} {path}: expected {what}, got {type(value).__name__}")
    return value


# --- the training commands' flags (main, study) ---------------------------------------------------

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "default.py")


def define_run_flags(default_workdir: str) -> None:
    """``--config`` (a ``configs/<name>.py``; ``--config.KEY=VALUE`` overrides any key),
    ``--workdir``, ``--restart`` and ``--debug``: the flags of every training command."""
    from absl import flags
    from ml_collections import config_flags
    try:  # without --config, ml_collections applies the --config.KEY overrides to the default here
        config_flags.DEFINE_config_file(
            "config", DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else "configs/default.py",
            "Training configuration: a configs/<name>.py file. Override any key with --config.KEY=VALUE, "
            "e.g. --config.train.num_epochs=20 --config.splits='(0,)'.", lock_config=True)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        _config_error(e, sys.argv)
    flags.DEFINE_string("workdir", default_workdir, "Where checkpoints, metrics and results go.")
    flags.DEFINE_bool("restart", False, "Discard the run already in --workdir (its own files only) and train anew.")
    flags.DEFINE_bool("debug", False, "Show the full traceback of an error.")


def config_file() -> str:
    """The ``--config`` file this process was given (the default's where none was)."""
    from absl import flags
    from ml_collections import config_flags
    return config_flags.get_config_filename(flags.FLAGS["config"])


def parse_run_flags(argv):
    """absl's parsing, with a missing ``--config`` file and a bad ``--config.KEY`` (unknown,
    mistyped, wrong type) as one error line."""
    from absl import flags
    for i, a in enumerate(argv[1:], 1):
        name = a[len("--config="):] if a.startswith("--config=") else \
            argv[i + 1] if a == "--config" and i + 1 < len(argv) else None
        if name is not None and not os.path.isfile(name.split(":", 1)[0]):
            fail(f"--config {name}: file not found (give a configs/<name>.py file)")
        if name is not None:  # its `from configs import default` works from any folder
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(name.split(":", 1)[0]))))
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        _config_error(e, argv)
    except flags.Error as e:
        if "--debug" in argv:
            raise
        fail(str(e))


def _config_error(e: Exception, argv) -> None:
    """A bad ``--config.KEY`` as one error line naming the flag (and the closest known key
    where the key is unknown); with ``--debug`` the error itself."""
    if "--debug" in argv:
        raise e
    text = str(e)
    if isinstance(e, (AttributeError, KeyError)):  # an unknown key: name it and the closest known one
        keys = [a.split("=")[0][len("--config."):] for a in argv[1:] if a.startswith("--config.")]
        known = _known_keys()
        bad = next((k for k in keys if known and k not in known), None) or next(
            (k for k in keys if any(re.search(rf"\b{re.escape(part)}\b", text) for part in k.split("."))), None)
        if bad is not None:
            import difflib
            close = difflib.get_close_matches(bad, known, n=1, cutoff=0.75)
            fail(f"--config.{bad}: unknown config key" + (f"; did you mean --config.{close[0]}?" if close else ""))
    fail(text)


def _known_keys() -> list:
    """Every key of the default config, dotted ('train.num_epochs')."""
    import runpy
    try:
        config = runpy.run_path(DEFAULT_CONFIG)["get_config"]().to_dict()
    except Exception:  # noqa: BLE001 - only a hint for the message
        return []
    out = []

    def walk(d, prefix):
        for k, v in d.items():
            walk(v, f"{prefix}{k}.") if isinstance(v, dict) else out.append(f"{prefix}{k}")

    walk(config, "")
    return out


def load_config(path: str, flag: str = "--config"):
    """``get_config()`` of a ``configs/<name>.py`` file; a missing file or one without
    ``get_config`` is refused naming the flag."""
    import runpy
    if not os.path.isfile(path):
        raise ArgumentError(f"{flag} {path}: file not found (give a configs/<name>.py file)")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(path))))  # `from configs import ...`
    get_config = runpy.run_path(path).get("get_config")
    if get_config is None:
        raise ArgumentError(f"{flag} {path}: defines no get_config()")
    return get_config()


def set_config_key(config, dotted: str, value, flag: str) -> None:
    """``config.a.b = value`` for ``dotted`` = 'a.b', refusing (naming ``flag``) a key the config
    does not have, a key that is a block of keys, and a value of another type."""
    node, parts = config, dotted.split(".")
    for i, part in enumerate(parts):
        if not hasattr(node, "keys") or part not in node:
            raise ArgumentError(f"{flag}: {'.'.join(parts[:i + 1])} is not a config key")
        if i < len(parts) - 1:
            node = node[part]
    if hasattr(node[parts[-1]], "keys"):
        raise ArgumentError(f"{flag}: {dotted} is a block of keys ({', '.join(node[parts[-1]].keys())}), not a "
                            "value; name one of them")
    try:
        node[parts[-1]] = value
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{flag}: {dotted}={value!r}: {e}") from None


def guard_result(out: Optional[str], program: str, inputs: Iterable[Optional[str]] = (),
                 overwrite: bool = False) -> None:
    """A script's ``--out`` JSON (none: nothing to check), before any work: never an input,
    and an existing file only where ``program`` wrote it (:func:`written_by`) or, with
    ``overwrite``, another JSON file."""
    if out:
        guard({"--out": out}, inputs, overwrite, {"--out": written_by(program)}, {"--out": "json"})
