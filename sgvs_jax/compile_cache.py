"""The persistent XLA compilation cache, on by default, and how often it was used.

A program compiled once on a machine is read back by every later run (another
seed, split or config that leaves the program the same) instead of being
compiled again: ``config.compilation_cache_dir`` '' = the per-user folder
(``$SGVS_JAX_CACHE``, else ``$XDG_CACHE_HOME/sgvs_jax/xla``, else
``~/.cache/sgvs_jax/xla``), 'none' = off, anything else = that folder.
"""

from __future__ import annotations

import os

import jax

_COUNTS = {"hits": 0, "misses": 0}
_EVENTS = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}
_LISTENING = False


def default_dir() -> str:
    if os.environ.get("SGVS_JAX_CACHE"):
        return os.environ["SGVS_JAX_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sgvs_jax", "xla")


def _listen(event: str, **kwargs) -> None:
    if event in _EVENTS:
        _COUNTS[_EVENTS[event]] += 1


def enable(directory: str = "") -> str | None:
    """Turns the cache on in ``directory`` ('' = :func:`default_dir`, 'none' = off);
    returns the folder used, or None.  Every program is cached, however fast it
    compiled, so a warm run compiles nothing."""
    global _LISTENING
    if directory.lower() in ("none", "off"):
        return None
    directory = os.path.abspath(os.path.expanduser(directory or default_dir()))
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not _LISTENING:
        jax.monitoring.register_event_listener(_listen)
        _LISTENING = True
    return directory


def counts() -> dict:
    """``{'hits', 'misses'}``: programs read from the cache, and compiled and written to it, so far."""
    return dict(_COUNTS)
