"""Scalars to a JSON-lines file and a TensorBoard event file (tensorboardX's protos and
record framing; no TensorFlow), so TensorBoard opens the workdir as usual."""

from __future__ import annotations

import json
import os
import time

from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import RecordWriter

from sgvs_jax.files import atomic_path


def encode_event(wall_time: float, step: int, tag: str | None = None, value: float | None = None,
                 file_version: str | None = None) -> bytes:
    """One serialized ``Event`` proto: a scalar (``tag``, ``value``) or the file's version header."""
    event = event_pb2.Event(wall_time=wall_time, step=step)
    if file_version is not None:
        event.file_version = file_version
    if tag is not None:
        event.summary.value.add(tag=tag, simple_value=float(value))
    return event.SerializeToString()


EVENTS = "events.out.tfevents.sgvs_jax"  # one event file per workdir, rebuilt from metrics.jsonl
NOT_TAGS = ("step", "time")  # the keys of a metrics.jsonl line that are not scalars


class MetricWriter:
    """``write_scalars(step, {name: value})`` to ``logdir/metrics.jsonl`` and the
    TensorBoard event file ``logdir/events.out.tfevents.sgvs_jax``.

    metrics.jsonl is the record; the event file is rebuilt from it whenever the
    writer opens or a split resumes, so a rerun never leaves duplicate points or
    a second event file.  ``resume(prefix, step)`` drops the lines of one split
    (tags starting with ``prefix``) after ``step``, the epochs its checkpoint does
    not hold, before they are written again.
    """

    def __init__(self, logdir: str, enabled: bool = True):
        self.enabled = enabled
        self.logdir = logdir
        self._events = self._jsonl = None
        if enabled:
            os.makedirs(logdir, exist_ok=True)
            self._rewrite(lambda line: True)

    @property
    def jsonl_path(self) -> str:
        return os.path.join(self.logdir, "metrics.jsonl")

    def _lines(self) -> list[dict]:
        if not os.path.exists(self.jsonl_path):
            return []
        out = []
        with open(self.jsonl_path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a killed run
                    continue
        return out

    def _rewrite(self, keep) -> None:
        """Keeps the lines ``keep`` accepts, rebuilds the event file from them, and
        reopens both for appending."""
        self.close()
        lines = [line for line in self._lines() if keep(line)]
        with atomic_path(self.jsonl_path) as tmp, open(tmp, "w") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        with atomic_path(os.path.join(self.logdir, EVENTS)) as tmp:
            self._events = RecordWriter(tmp)  # stays open for appending once renamed
            self._events.write(encode_event(time.time(), 0, file_version="brain.Event:2"))
            for line in lines:
                self._write_events(line)
            self._events.flush()
        self._jsonl = open(self.jsonl_path, "a")

    def _write_events(self, line: dict) -> None:
        for tag, value in line.items():
            if tag not in NOT_TAGS:
                self._events.write(encode_event(line.get("time", 0.0), int(line["step"]), tag, float(value)))

    def resume(self, prefix: str, step: int) -> None:
        """Drops this split's lines (tags starting with ``prefix``) of steps after
        ``step`` (all of them when ``step`` < 0)."""
        if not self.enabled:
            return

        def keep(line):
            tags = [t for t in line if t not in NOT_TAGS]
            return line["step"] <= step or not tags or not all(t.startswith(prefix) for t in tags)
        self._rewrite(keep)

    def write_scalars(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        line = {"step": int(step), "time": round(time.time(), 3), **{k: float(v) for k, v in scalars.items()}}
        self._write_events(line)
        self._jsonl.write(json.dumps(line) + "\n")
        self.flush()

    def flush(self):
        if self.enabled and self._events is not None:
            self._events.flush()
            self._jsonl.flush()

    def close(self):
        for f in (self._events, self._jsonl):
            if f is not None:
                f.close()
        self._events = self._jsonl = None
