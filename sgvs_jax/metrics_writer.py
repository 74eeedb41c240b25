"""Scalars to a TensorBoard event file and a JSON-lines file, with no TensorFlow.

The event file is a TFRecord stream of ``Event`` protos, encoded here by hand
(the few fields TensorBoard's scalar dashboard reads), so TensorBoard opens the
workdir as usual.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time

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


class MetricWriter:
    """``write_scalars(step, {name: value})`` to ``logdir/events.out.tfevents.*`` and ``metrics.jsonl``."""

    def __init__(self, logdir: str, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._events = open(os.path.join(logdir, name), "ab")
        self._events.write(tfrecord(encode_event(time.time(), 0, file_version="brain.Event:2")))
        self._jsonl = open(os.path.join(logdir, "metrics.jsonl"), "a")

    def write_scalars(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        now = time.time()
        for tag, value in scalars.items():
            self._events.write(tfrecord(encode_event(now, int(step), tag, float(value))))
        self._jsonl.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")
        self.flush()

    def flush(self):
        if self.enabled:
            self._events.flush()
            self._jsonl.flush()

    def close(self):
        if self.enabled:
            self._events.close()
            self._jsonl.close()
