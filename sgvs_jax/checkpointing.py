"""Orbax checkpoints of the train state plus the per-epoch history (JSON).

Orbax writes each step to a temporary folder and renames it when complete, so a
run killed mid-save resumes from the previous complete step.  Saves are
asynchronous: ``save`` returns once the state is copied off the devices and the
files are written while training goes on; ``close`` (and the next save) waits for
them: a caller reports a step (results.json) only after ``close``.
Each save records the SHA-256 of the state and of everything else a resume reads
(the history and the training config); a checkpoint that is present but unreadable,
or whose bytes changed since (a flipped bit, an edited number), raises CheckpointError
naming the folder; it is never silently used or replaced by a fresh start.
"""

from __future__ import annotations

import errno
import logging as pylogging
import os
import shutil
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from sgvs_jax.provenance import digest
from sgvs_jax.errors import CheckpointError


class Checkpointer:
    """Saves and restores ``(state, history)`` by step.  The folder is created by
    the first save, so a run that fails before it leaves no empty folder."""

    def __init__(self, directory: str, keep: int = 2, asynchronous: bool = True):
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self.asynchronous = asynchronous
        self._manager = None
        self._saving = None  # the step of the last save started
        _quiet_full_disk()

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            self._manager = ocp.CheckpointManager(
                self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True,
                                                                     enable_async_checkpointing=self.asynchronous))
        return self._manager

    def latest_step(self):
        if self._manager is None and not os.path.isdir(self.directory):
            return None
        return self.manager.latest_step()

    def save(self, step: int, state, history: list, config: dict | None = None) -> None:
        """``config``: the training config (JSON), checked by :meth:`restore`.

        Returns once ``state`` is copied to host memory (the caller may donate or
        overwrite it); the files are complete after :meth:`wait` or :meth:`close`.
        """
        self.check_space(step, state)
        self._saving = step
        meta = {"epochs": list(history), **({"training_config": config} if config is not None else {})}
        meta.update(state_sha256=digest(state), history_sha256=history_digest(meta))
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        history=ocp.args.JsonSave(meta)))
        if not self.asynchronous:
            self.wait()

    def check_space(self, step: int, state) -> None:
        """Refuses a save the folder's disk cannot hold (the state's bytes plus a margin for
        the history and orbax's metadata), before orbax's writer threads start: a full disk
        is one line naming the folder, and the checkpoints already there stay intact."""
        need = sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(state))
        need = int(need * 1.1) + (1 << 20)
        folder = self.directory
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        free = shutil.disk_usage(folder).free
        if free < need:
            raise CheckpointError(self._no_space(step, f"{free / 2**20:.1f} MiB free, about {need / 2**20:.1f} "
                                                       "MiB needed"))

    def _no_space(self, step, detail):
        return (f"checkpoint folder {self.directory}: no space left on the device for epoch {step} ({detail}); "
                "free some space and rerun the same command: it resumes from the last complete checkpoint")

    def wait(self) -> None:
        """Blocks until every save started so far is on disk."""
        if self._manager is not None:
            try:
                self._manager.wait_until_finished()
            except Exception as e:
                if _out_of_space(e):
                    raise CheckpointError(self._no_space(self._saving, "[Errno 28] while writing")) from e
                raise

    def shapes(self, step: int) -> dict | None:
        """``{leaf path: shape}`` of the saved state, from its metadata (None if unreadable)."""
        verbosity = logging.get_verbosity()
        logging.set_verbosity(logging.ERROR)  # orbax warns about a metadata file it does not need
        try:
            meta = ocp.StandardCheckpointer().metadata(os.path.join(self.directory, str(step), "state"))
            tree = getattr(meta, "item_metadata", meta)
            return {jax.tree_util.keystr(p): tuple(l.shape)
                    for p, l in jax.tree_util.tree_flatten_with_path(tree)[0]}
        except Exception:
            return None
        finally:
            logging.set_verbosity(verbosity)

    def restore(self, step: int, target_state, config: dict | None = None):
        """Restores (state, history) at ``step`` into the structure of ``target_state``;
        with ``config``, a checkpoint saved under another training config is refused."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target_state)
        path = os.path.join(self.directory, str(step))
        saved = self.shapes(step)
        if saved is not None:
            wanted = {jax.tree_util.keystr(p): tuple(l.shape)
                      for p, l in jax.tree_util.tree_flatten_with_path(abstract)[0]}
            bad = [k for k in wanted if k in saved and saved[k] != wanted[k]]
            if bad:
                raise CheckpointError(f"checkpoint {path}: parameter shapes do not match this config, e.g. "
                                      f"{bad[0]} is {saved[bad[0]]} in the checkpoint and {wanted[bad[0]]} "
                                      f"here ({len(bad)} leaves differ)")
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                     history=ocp.args.JsonRestore()))
        except Exception as e:
            raise CheckpointError(f"checkpoint {path} is unreadable or does not match this config "
                                  f"({type(e).__name__}: {str(e)[:300]}); delete it to restart from the "
                                  f"previous step") from e
        history = out["history"]
        if not isinstance(history, dict) or "epochs" not in history:
            raise CheckpointError(f"checkpoint {path}: history is missing or malformed")
        from sgvs_jax.workdir import differences, training_config, with_added_keys
        saved_config = history.get("training_config")  # keys added since it was saved: their old values
        saved_config = None if saved_config is None else training_config(with_added_keys(saved_config))
        if config is not None and saved_config is not None and saved_config != config:
            diff = differences(saved_config, config)
            raise CheckpointError(f"checkpoint {path} was saved under another training config "
                                  f"({'; '.join(diff[:4])}); use --restart or another --workdir")
        leaves_ok = all(l.shape == t.shape for l, t in zip(jax.tree_util.tree_leaves(out["state"]),
                                                           jax.tree_util.tree_leaves(target_state)))
        if not leaves_ok:
            raise CheckpointError(f"checkpoint {path}: parameter shapes do not match this config")
        recorded = history.get("history_sha256")
        if recorded is not None and recorded != history_digest(history):
            raise CheckpointError(f"checkpoint {path}: its history or config changed after it was saved (SHA-256 "
                                  "differs from the one recorded at save); delete it to resume from the previous "
                                  "step")
        recorded = history.get("state_sha256")
        if recorded is not None and recorded != digest(out["state"]):
            raise CheckpointError(f"checkpoint {path}: its data changed after it was saved (SHA-256 of the state "
                                  "differs from the one recorded at save); delete it to resume from the previous step")
        return out["state"], history["epochs"]

    def restore_params(self, step: int, target_params):
        """Only the parameters (``state['params']``) at ``step``, into the structure of
        ``target_params``: no optimizer state is read (scoring a video needs none)."""
        path = os.path.join(self.directory, str(step), "state")
        abstract = {"params": jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target_params)}
        restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), abstract)
        try:
            with ocp.PyTreeCheckpointer() as ckptr:
                out = ckptr.restore(path, args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args,
                                                                      partial_restore=True))
        except Exception as e:
            raise CheckpointError(f"checkpoint {path} is unreadable or does not match this config "
                                  f"({type(e).__name__}: {str(e)[:300]})") from e
        bad = [jax.tree_util.keystr(p) for (p, a), b in zip(jax.tree_util.tree_flatten_with_path(out)[0],
                                                            jax.tree_util.tree_leaves(abstract))
               if tuple(a.shape) != tuple(b.shape)]
        if bad:
            raise CheckpointError(f"checkpoint {path}: parameter shapes do not match this config, e.g. {bad[0]} "
                                  f"({len(bad)} leaves differ)")
        return out["params"]

    def close(self):
        """Waits for pending saves (a save is committed only then) and releases the manager."""
        if self._manager is not None:
            self.wait()
            self._manager.close()
            self._manager = None


def history_digest(meta: dict) -> str:
    """SHA-256 (hex) of what a resume reads besides the state: the history of every epoch and
    the training config (canonical JSON)."""
    import hashlib
    import json
    body = {k: meta.get(k) for k in ("epochs", "training_config")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class _FullDiskFilter(pylogging.Filter):
    """Drops orbax's own reports of a full disk (an ERROR record with the traceback from
    each of its writer threads): the CheckpointError names the folder once."""

    def filter(self, record):
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        return not ("orbax" in record.pathname and ("No space left on device" in text
                                                    or "os_error_code='28'" in text))


_QUIET = []


def _quiet_full_disk():
    """Once per process: orbax's full-disk reports filtered from the absl log, and the
    'Event loop is closed' errors that tensorstore's callbacks raise into the event loop
    of an aborted save (printed as unraisable exceptions, hundreds of them) dropped."""
    if _QUIET:
        return
    _QUIET.append(True)
    pylogging.getLogger("absl").addFilter(_FullDiskFilter())
    previous = sys.unraisablehook

    def hook(unraisable):
        e = unraisable.exc_value
        if not (isinstance(e, RuntimeError) and str(e) == "Event loop is closed"):
            previous(unraisable)

    sys.unraisablehook = hook


def _out_of_space(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a full disk: orbax's writers report it as
    ``OSError(ENOSPC)`` or as tensorstore's RESOURCE_EXHAUSTED ... [os_error_code='28']."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
