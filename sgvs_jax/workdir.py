"""A run's folder: one process at a time, resumed only by the config that made it.

``workdir/run_config.json`` holds the config of the run that wrote the folder.
A later run with the same training config and the same data (a fingerprint of
the arrays read) resumes the splits' checkpoints; one whose training config or
data differs stops with the keys that differ, unless told to ``restart``, which
first removes the old run's own files (nothing else in the folder).  Files named
like a run's but without the run's record are never removed: the folder is refused.  Keys that
do not change what is trained or measured (which splits to run, the compile
cache, precompiling, how often to checkpoint, multi-host start-up, and the
number of epochs, which continues the run) may change between runs.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil

from sgvs_jax.files import read_json, write_json
from sgvs_jax.errors import WorkdirError

RUN_CONFIG = "run_config.json"
LOCK = ".lock"
# Config keys free to change between a run and its resumption.  train.num_epochs is one: nothing
# depends on it but where the loop stops (no schedule over epochs), so a larger value continues a
# run exactly as an uninterrupted longer run would (tests/test_train_e2e.py); a value below an
# existing checkpoint is refused by train.train_split.
NOT_TRAINING = ("splits", "distributed", "compilation_cache_dir", "train.num_epochs", "checkpoint.every",
                "checkpoint.keep")
# Keys added to the config after runs were made, with the value that trains as those runs did: a
# recorded config without the key is the same training config as one with this value.
ADDED_KEYS = {"model.visual_norm": "layer", "train.teacher": "",
              "train.teacher_weight": 1.0}


def training_config(config) -> dict:
    """The config as a JSON-ready dict, without the keys in NOT_TRAINING and the
    synthetic generator's settings where the data is not synthetic."""
    d = json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else dict(config)))

    def parent_of(dotted):
        *parents, last = dotted.split(".")
        node = d
        for p in parents:
            node = node.get(p, {})
        return node, last

    for dotted in NOT_TRAINING + (() if d.get("data", {}).get("source") == "synthetic" else ("data.synthetic",)):
        node, last = parent_of(dotted)
        node.pop(last, None)
    return d


def with_added_keys(config: dict) -> dict:
    """A recorded config (a dict) with every ADDED_KEYS key it lacks set to the value it
    trained with, so that code reading an older run's config finds every current key."""
    if not isinstance(config, dict):
        return config  # not a recorded config: its reader names the file
    out = json.loads(json.dumps(config))
    for dotted, value in ADDED_KEYS.items():
        *parents, last = dotted.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node.setdefault(last, value)
    return out


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``['train.seed: 0 -> 1', ...]`` for every leaf that differs (a key of ADDED_KEYS absent
    from ``old`` is its old-behaviour value there)."""
    out = []
    for k in sorted(set(old) | set(new)):
        absent = ADDED_KEYS.get(f"{prefix}{k}", "<absent>")
        a, b = old.get(k, absent), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def own_files(path: str) -> list[str]:
    """The files and folders a run writes into its workdir."""
    names = [RUN_CONFIG, "results.json", "metrics.jsonl"]
    found = [os.path.join(path, n) for n in names if os.path.exists(os.path.join(path, n))]
    found += glob.glob(os.path.join(path, "events.out.tfevents.*"))
    found += [d for d in glob.glob(os.path.join(path, "split_*")) if os.path.isdir(d)]
    return sorted(found)


class Workdir:
    """``with Workdir(path, config, restart) as wd:`` locks ``path`` for this
    process, checks that it may be resumed by ``config`` and records the config."""

    def __init__(self, path: str, config, restart: bool = False, enabled: bool = True, fingerprint: str = ""):
        self.path, self.config, self.restart, self.enabled = path, config, restart, enabled
        self.fingerprint = fingerprint  # of the data read (sgvs_jax.data.fingerprint): another file, another run
        self._lock = None

    def __enter__(self) -> "Workdir":
        if not self.enabled:  # non-main processes of a multi-host run write nothing
            return self
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise WorkdirError(f"--workdir {self.path} is a file, not a folder")
        os.makedirs(self.path, exist_ok=True)
        self._lock = open(os.path.join(self.path, LOCK), "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            self._lock = None
            raise WorkdirError(f"--workdir {self.path} is in use by {holder}; wait for it to finish or use "
                               "another --workdir") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}\n")
        self._lock.flush()
        try:
            self._check_or_clear()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _recorded(self) -> dict | None:
        """The training config this folder's own record holds (``run_config.json``, or the
        provenance in ``results.json`` of older runs); None: sgvs_jax wrote nothing here."""
        recorded = read_json(os.path.join(self.path, RUN_CONFIG))
        if recorded is not None:
            return recorded.get("training_config")
        return ((read_json(os.path.join(self.path, "results.json")) or {}).get("provenance") or {}).get("config")

    def _check_or_clear(self) -> None:
        new = training_config(self.config)
        if self.fingerprint:
            new["data_fingerprint"] = self.fingerprint
        existing = own_files(self.path)
        recorded = self._recorded() if existing else None
        if existing and recorded is None:  # named like a run's files, but not written by one: not ours to touch
            raise WorkdirError(f"--workdir {self.path} holds {', '.join(os.path.basename(p) for p in existing[:4])}"
                               f", which sgvs_jax did not write (no {RUN_CONFIG}); nothing was removed: use another "
                               "--workdir")
        # A run's own files are removed on --restart, and also when it stopped before its first
        # checkpoint: its leftovers (metrics of epoch 0, an event file) hold nothing to resume.
        if existing and (self.restart or not self._has_progress()):
            for p in existing:
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
            existing = []
        if existing:
            diff = differences(training_config(recorded), new)
            if diff:
                raise WorkdirError(
                    f"--workdir {self.path} holds a run with another training config or data ({len(diff)} "
                    f"difference(s): {'; '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}); resuming it would "
                    "mix two runs. Pass --restart to discard it, or use another --workdir")
        write_json(os.path.join(self.path, RUN_CONFIG),
                   {"training_config": new, "config": json.loads(json.dumps(self.config.to_dict()))})

    def _has_progress(self) -> bool:
        """Whether a finished split or any checkpoint exists."""
        return os.path.exists(os.path.join(self.path, "results.json")) or any(
            name.isdigit() for d in glob.glob(os.path.join(self.path, "split_*", "checkpoints"))
            for name in os.listdir(d))

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
