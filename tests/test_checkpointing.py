"""Checkpointer on a full disk: refused before orbax writes, or named after it failed; never
a wall of writer-thread tracebacks, and the checkpoints already there stay intact."""

import collections
import errno
import logging
import os
import sys

import numpy as np
import pytest

from sgvs_jax import checkpointing
from sgvs_jax.checkpointing import CheckpointError, Checkpointer

STATE = {"params": {"w": np.arange(4096, dtype=np.float32)}, "step": np.zeros((), np.int32)}


def saved(directory, step=1):
    ckpt = Checkpointer(directory, asynchronous=False)
    ckpt.save(step, STATE, [{"epoch": step}])
    ckpt.close()
    return Checkpointer(directory)


def test_a_save_the_disk_cannot_hold_is_refused_naming_the_folder(tmp_path, monkeypatch):
    directory = str(tmp_path / "run" / "checkpoints")
    ckpt = saved(directory)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 1000))
    with pytest.raises(CheckpointError) as e:
        ckpt.save(2, STATE, [{"epoch": 1}, {"epoch": 2}])
    message = str(e.value)
    assert directory in message and "no space left" in message and "\n" not in message
    ckpt.close()
    assert sorted(os.listdir(directory)) == ["1"]
    state, history = Checkpointer(directory).restore(1, STATE)
    np.testing.assert_array_equal(state["params"]["w"], STATE["params"]["w"])


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    ValueError("RESOURCE_EXHAUSTED: Error writing \"params.w/0\" in OCDBT database: Failed to write 128049 bytes "
               "to file 7: No space left on device [os_error_code='28']"),
])
def test_a_disk_that_fills_while_writing_is_one_error_naming_the_folder(tmp_path, monkeypatch, error):
    directory = str(tmp_path / "checkpoints")
    ckpt = saved(directory)
    ckpt.save(2, STATE, [{"epoch": 1}, {"epoch": 2}])
    ckpt.wait()

    def fail():
        try:
            raise RuntimeError("save finalize thread failed") from error
        except RuntimeError as wrapped:
            raise wrapped

    monkeypatch.setattr(ckpt.manager, "wait_until_finished", fail)
    with pytest.raises(CheckpointError, match=r"no space left on the device for epoch 2") as e:
        ckpt.wait()
    assert directory in str(e.value)


def test_other_errors_while_writing_are_not_called_a_full_disk(tmp_path, monkeypatch):
    ckpt = saved(str(tmp_path / "checkpoints"))
    ckpt.manager  # opened

    def fail():
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(ckpt.manager, "wait_until_finished", fail)
    with pytest.raises(PermissionError):
        ckpt.wait()


def test_only_orbaxs_own_full_disk_reports_are_dropped(tmp_path):
    Checkpointer(str(tmp_path / "c"))  # installs the filters
    full = logging.LogRecord("absl", logging.ERROR, "/x/orbax/checkpoint/future.py", 1,
                             "write failed: No space left on device [os_error_code='28']", None, None)
    other_orbax = logging.LogRecord("absl", logging.ERROR, "/x/orbax/checkpoint/future.py", 1, "bad metadata",
                                    None, None)
    ours = logging.LogRecord("absl", logging.ERROR, "/x/sgvs_jax/train.py", 1, "No space left on device", None, None)
    absl = logging.getLogger("absl")
    assert not absl.filter(full) and absl.filter(other_orbax) and absl.filter(ours)

    seen = []
    previous, sys.unraisablehook = sys.unraisablehook, None
    try:
        checkpointing._QUIET.clear()
        sys.unraisablehook = lambda u: seen.append(str(u.exc_value))
        checkpointing._quiet_full_disk()
        Unraisable = collections.namedtuple("Unraisable", "exc_type exc_value exc_traceback err_msg object")
        sys.unraisablehook(Unraisable(RuntimeError, RuntimeError("Event loop is closed"), None, None, None))
        sys.unraisablehook(Unraisable(ValueError, ValueError("something else"), None, None, None))
    finally:
        sys.unraisablehook = previous
    assert seen == ["something else"]
