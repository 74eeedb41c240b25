"""The XLA compiler options and JAX settings sgvs_jax compiles its programs with.

On the CPU, one compiler option: ``xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED``.
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

On a GPU, one JAX setting: ``jax_threefry_gpu_kernel_lowering``.  JAX lowers the
threefry hash behind every random draw (a dropout mask per site, the gate noise,
the random-score fake) to twenty unrolled rounds of integer operations on
accelerators (on the CPU, to rolled loops).  In the update that is a large
share of the program XLA compiles: on the CPU the unrolled form doubles the
SumMe-shaped program (0.31 -> 0.62 GiB) and its compile (17.9 -> 34.6 s), and
an H100 spent about a minute compiling one update.  With the setting JAX calls
one CUDA kernel of the same hash instead.  It is integer arithmetic, so the bits
are the same; :func:`gpu_prng_kernel` checks that on 4,096 draws before it
turns the setting on (once per process, by the first :func:`jit`) and leaves it
off, with a warning, where the kernel is missing or differs.  A
``JAX_THREEFRY_GPU_KERNEL_LOWERING`` in the environment is the user's choice
and wins.  The setting is process-wide (it is part of JAX's jit cache key, so
a program is never reused across it).
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from absl import logging

CPU_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
SCHEDULER_FLAGS = ("xla_cpu_scheduler_type", "xla_cpu_enable_concurrency_optimized_scheduler")
PRNG_KERNEL = "jax_threefry_gpu_kernel_lowering"


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


@functools.lru_cache(maxsize=None)
def gpu_prng_kernel(backend: str | None = None) -> bool:
    """Turns on JAX's threefry kernel on a GPU backend (module docstring); returns
    whether sgvs_jax did.  Off the GPU, or where the environment names the
    setting, nothing changes and the answer is False."""
    backend = backend or jax.default_backend()
    if backend != "gpu" or PRNG_KERNEL.upper() in os.environ or getattr(jax.config, PRNG_KERNEL, True):
        return False

    def draws():  # a fresh function each time: the setting is part of jit's key anyway
        return np.asarray(jax.jit(lambda k: jax.random.bits(k, (4096,)))(jax.random.PRNGKey(7)))

    try:
        unrolled = draws()
        jax.config.update(PRNG_KERNEL, True)
        if np.array_equal(draws(), unrolled):
            logging.info("sgvs_jax: %s on (the same random bits, a smaller program to compile)", PRNG_KERNEL)
            return True
        problem = "its random bits differ from JAX's unrolled lowering"
    except Exception as e:  # a jaxlib without the kernel names the missing custom call
        problem = str(e).splitlines()[0] if str(e) else type(e).__name__
    jax.config.update(PRNG_KERNEL, False)
    logging.warning("sgvs_jax: JAX's threefry GPU kernel is not used (%s); random draws compile unrolled, "
                    "which takes longer (sgvs_jax/xla_options.py)", problem)
    return False


def settings() -> dict:
    """What sgvs_jax's programs compile with on the default backend (for provenance)."""
    gpu_prng_kernel()
    return {"xla_compiler_options": compiler_options(), PRNG_KERNEL: bool(getattr(jax.config, PRNG_KERNEL, False))}


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` for the default
    backend (and, on a GPU, JAX's threefry kernel: :func:`gpu_prng_kernel`)."""
    gpu_prng_kernel()
    return jax.jit(fun, compiler_options=compiler_options() or None, **kwargs)
