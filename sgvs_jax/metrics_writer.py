"""Scalars to a TensorBoard event file and a JSON-lines file, with no TensorFlow.

The event file is a TFRecord stream of ``Event`` protos, encoded here by hand
(the few fields TensorBoard's scalar dashboard reads), so TensorBoard opens the
workdir as usual.
"""

from __future__ import annotations

import json
import os
import struct
import time

from sgvs_jax.files import atomic_path

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint((number << 3) | wire) + payload


def _len_field(number: int, payload: bytes) -> bytes:
    return _field(number, 2, _varint(len(payload)) + payload)


def encode_event(wall_time: float, step: int, tag: str | None = None, value: float | None = None,
                 file_version: str | None = None) -> bytes:
    msg = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        msg += _len_field(3, file_version.encode())
    if tag is not None:
        val = _len_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", float(value)))
        msg += _len_field(5, _len_field(1, val))
    return msg


def tfrecord(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


def read_tfrecords(path: str) -> list[bytes]:
    """Reads and CRC-checks every record (used by the tests)."""
    out = []
    with open(path, "rb") as f:
        while header := f.read(8):
            (n,) = struct.unpack("<Q", header)
            if struct.unpack("<I", f.read(4))[0] != masked_crc(header):
                raise ValueError(f"{path}: bad length CRC")
            data = f.read(n)
            if struct.unpack("<I", f.read(4))[0] != masked_crc(data):
                raise ValueError(f"{path}: bad data CRC")
            out.append(data)
    return out


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
        with atomic_path(os.path.join(self.logdir, EVENTS)) as tmp, open(tmp, "wb") as f:
            f.write(tfrecord(encode_event(time.time(), 0, file_version="brain.Event:2")))
            for line in lines:
                f.write(self._records(line))
        self._events = open(os.path.join(self.logdir, EVENTS), "ab")
        self._jsonl = open(self.jsonl_path, "a")

    @staticmethod
    def _records(line: dict) -> bytes:
        now = line.get("time", 0.0)
        return b"".join(tfrecord(encode_event(now, int(line["step"]), tag, float(value)))
                        for tag, value in line.items() if tag not in NOT_TAGS)

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
        self._events.write(self._records(line))
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
