"""The XLA compiler options sgvs_jax gives the programs it compiles.

One option, on the CPU only: ``xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED``.
XLA's default CPU scheduler orders an update's thousands of operations for
parallelism and so keeps their buffers alive side by side.  The memory-optimised
order needs 2.56 GiB of XLA temp memory instead of 5.98 for the SumMe-shaped
update at bucket 1024 (0.63 instead of 1.08 with ``train.microbatch=1``), at the
same speed and with bit-identical results: it is another order of the same
operations (benchmarks/RESULTS.md, tests/test_xla_options.py).

The option goes to each program through ``jax.jit(compiler_options=...)``
(:func:`jit`), not through ``XLA_FLAGS``: nothing in the environment changes,
it does not matter whether JAX started a backend before ``sgvs_jax`` was
imported, and other backends (GPU, TPU) get no options at all.  It is used
where the installed XLA takes it (checked once per process by compiling a
one-operation program); an XLA that does not is warned about and compiles with
its default.  A scheduler named in ``XLA_FLAGS`` (``--xla_cpu_scheduler_type``
or the older ``--xla_cpu_enable_concurrency_optimized_scheduler``) is the
user's choice and wins: then no option is given.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from absl import logging

CPU_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
SCHEDULER_FLAGS = ("xla_cpu_scheduler_type", "xla_cpu_enable_concurrency_optimized_scheduler")


def compiler_options(backend: str | None = None, environ=None) -> dict:
    """The options for a program compiled for ``backend`` (default: JAX's
    default backend): :data:`CPU_OPTIONS` on the CPU where XLA takes them and
    ``XLA_FLAGS`` names no scheduler, else ``{}``."""
    backend = backend or jax.default_backend()
    flags = (os.environ if environ is None else environ).get("XLA_FLAGS", "")
    if backend != "cpu" or any(f"--{name}" in flags for name in SCHEDULER_FLAGS):
        return {}
    return dict(CPU_OPTIONS) if supported(tuple(sorted(CPU_OPTIONS.items()))) else {}


@functools.lru_cache(maxsize=None)
def supported(options: tuple) -> bool:
    """Whether the CPU compiler takes ``options`` ((name, value) pairs)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(np.float32(0)).compile()
        return True
    except Exception as e:  # XLA names the option it does not know or the value it rejects
        logging.warning("XLA here does not take the compiler options %s (%s); its default CPU scheduler "
                        "is used, which needs more memory (sgvs_jax/xla_options.py)", dict(options), e)
        return False


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` for the default backend."""
    return jax.jit(fun, compiler_options=compiler_options() or None, **kwargs)
