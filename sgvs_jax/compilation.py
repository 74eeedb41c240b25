"""How sgvs_jax compiles its programs: XLA options, the persistent cache, a compile count.

**CPU: the memory-optimised scheduler** (``xla_cpu_scheduler_type``).  XLA's
default CPU scheduler orders an update's operations for parallelism and keeps
their buffers alive side by side; the memory-optimised order is another order of
the same operations, with the same results and less temporary memory
(``tests/test_compilation.py`` checks both).

**GPU: no GEMM autotuning** (``xla_gpu_autotune_level=0``).  Autotuning times
candidate kernels while compiling and keeps the fastest; timings vary, so two
processes can pick other kernels and train to other bits.  A reproducibility
study needs the same bits from the same seed.

The options go to each program through ``jax.jit(compiler_options=...)``
(:func:`jit`), where the installed XLA takes them; an option the user names in
``XLA_FLAGS`` wins.  Other backends (TPU) get none.

**Memory before compiling** (:func:`check_update_memory`): attention's score
tensors grow with the square of a bucket's length, so one long video can ask an
update for more memory than the machine has; that is refused, naming the video and
an ``model.attention_block`` that fits, before minutes of compiling end in an
out-of-memory error.

**The persistent compilation cache** (:func:`enable`): a program compiled once
on a machine is read back by every later run that builds the same program.
``config.compilation_cache_dir``: '' = the per-user folder (``$SGVS_JAX_CACHE``,
else ``$XDG_CACHE_HOME/sgvs_jax/xla``, else ``~/.cache/sgvs_jax/xla``), 'none' =
off, anything else = that folder.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from absl import logging

OPTIONS = {"cpu": {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"},
           "gpu": {"xla_gpu_autotune_level": 0}}
# XLA flags that, named in XLA_FLAGS, are the user's choice over a backend's options.
USER_FLAGS = {"cpu": ("xla_cpu_scheduler_type", "xla_cpu_enable_concurrency_optimized_scheduler"),
              "gpu": ("xla_gpu_autotune_level",)}
_EVENTS = {"/jax/compilation_cache/cache_hits": "cache_hits",
           "/jax/compilation_cache/cache_misses": "cache_misses"}
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_COUNTS = {"compiled": 0, "cache_hits": 0, "cache_misses": 0}


def compiler_options(backend: str | None = None, environ=None) -> dict:
    """The options for a program compiled for ``backend`` (default: JAX's default
    backend): the backend's :data:`OPTIONS` where XLA takes them and ``XLA_FLAGS``
    names none of its :data:`USER_FLAGS`, else ``{}``."""
    backend = backend or jax.default_backend()
    flags = (os.environ if environ is None else environ).get("XLA_FLAGS", "")
    options = OPTIONS.get(backend)
    if not options or any(f"--{name}" in flags for name in USER_FLAGS[backend]):
        return {}
    return dict(options) if supported(tuple(sorted(options.items()))) else {}


@functools.lru_cache(maxsize=None)
def supported(options: tuple) -> bool:
    """Whether the default backend's compiler takes ``options`` ((name, value) pairs)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(np.float32(0)).compile()
        return True
    except Exception as e:  # XLA names the option it does not know or the value it rejects
        logging.warning("XLA here does not take the compiler options %s (%s); its defaults are used",
                        dict(options), e)
        return False


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` for the default backend."""
    return jax.jit(fun, compiler_options=compiler_options() or None, **kwargs)


def default_cache_dir() -> str:
    if os.environ.get("SGVS_JAX_CACHE"):
        return os.environ["SGVS_JAX_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sgvs_jax", "xla")


def enable(directory: str = "") -> str | None:
    """Turns the persistent cache on in ``directory`` ('' = :func:`default_cache_dir`,
    'none' = off); returns the folder used, or None.  Every program is cached, however
    fast it compiled, so a warm run compiles nothing."""
    if directory.lower() in ("none", "off"):
        return None
    directory = os.path.abspath(os.path.expanduser(directory or default_cache_dir()))
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


def _on_event(event: str, **_) -> None:
    if event in _EVENTS:
        _COUNTS[_EVENTS[event]] += 1


def _on_duration(event: str, duration: float, **_) -> None:
    if event == _COMPILE_EVENT:
        _COUNTS["compiled"] += 1


jax.monitoring.register_event_listener(_on_event)
jax.monitoring.register_event_duration_secs_listener(_on_duration)


def counts() -> dict:
    """``{'compiled', 'cache_hits', 'cache_misses'}`` so far in this process: programs
    XLA compiled, and programs read from / written to the persistent cache."""
    return dict(_COUNTS)


# Buffers of (rows x steps x keys) float32 alive at once in one training update: score-sized
# ones per head, and per-query masks and biases shared by the heads.  XLA's memory_analysis
# of the update counts 11-15 per head and up to ~8 shared (tests/test_compilation.py checks
# that this bound holds); the rest of an update's memory is linear in the steps.
ATTENTION_COPIES = 16
SHARED_COPIES = 8
BLOCK_CHOICES = (1024, 512, 256, 128, 64)


def update_bytes(rows: int, heads: int, length: int, block: int = 0) -> int:
    """An upper estimate of a training update's temporary memory for ``rows`` videos of
    ``length`` steps per device: full attention (``block`` 0) holds ``length`` keys per
    query, blocked attention 3 blocks."""
    keys = length if block <= 0 else min(length, 3 * block)
    return (ATTENTION_COPIES * heads + SHARED_COPIES) * rows * length * keys * 4


def available_bytes(device=None) -> int | None:
    """Memory a program may still take on ``device`` (default: the first): the
    accelerator's limit less what is in use, or the host's MemAvailable; None if unknown."""
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # not every backend reports
        pass
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if device.platform == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    return None


def check_update_memory(longest: tuple, bucket: int, rows: int, heads: int, block: int,
                        available: int | None = None) -> None:
    """Refuses a run whose largest bucket cannot be trained in this device's memory.
    ``longest``: (key, steps) of the longest video.  The message names it and the largest
    ``model.attention_block`` that fits (half of the memory: the estimate is a bound, and
    the scorer and the data need room beside it)."""
    available = available_bytes() if available is None else available
    need = update_bytes(rows, heads, bucket, block)
    if available is None or need <= available:
        return
    gib = 2 ** 30
    fits = [b for b in BLOCK_CHOICES if b < bucket and (block <= 0 or b < block)
            and update_bytes(rows, heads, bucket, b) <= available // 2]
    remedy = (f"set --config.model.attention_block={fits[0]} (about "
              f"{update_bytes(rows, heads, bucket, fits[0]) / gib:.1f} GiB)" if fits
              else "lower train.batch_size or model.num_heads")
    key, steps = longest
    raise MemoryError(f"video '{key}' ({steps} steps, bucket {bucket}) needs about {need / gib:.1f} GiB for one "
                      f"training update with model.attention_block={block} and {rows} videos per device; "
                      f"{available / gib:.1f} GiB is available: {remedy}, or leave the video out")
