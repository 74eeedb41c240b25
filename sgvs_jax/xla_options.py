"""The XLA compiler options and JAX settings sgvs_jax compiles its programs with.

**CPU: the memory-optimised scheduler**
(``xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED``).  XLA's
default CPU scheduler orders an update's thousands of operations for
parallelism and so keeps their buffers alive side by side.  The memory-optimised
order needs 2.56 GiB of XLA temp memory instead of 5.98 for the SumMe-shaped
update at bucket 1024 (0.63 instead of 1.08 with ``train.microbatch=1``), at the
same speed and with bit-identical results: it is another order of the same
operations (benchmarks/RESULTS.md, tests/test_xla_options.py).

**GPU: no GEMM autotuning** (``xla_gpu_autotune_level=0``).  XLA's GPU compiler
times candidate matrix-multiply kernels while it compiles and keeps the fastest;
timings vary, so two processes compiling the same update with the same seed
picked other kernels and trained to other bits (four processes, four parameter
digests, on an H200).  Without autotuning it takes its default kernels: two
processes gave identical parameters, the update was as fast (8 ms) and the
compile about as long (26 s against 20-21 s).  A reproducibility study needs
the first more than the last (benchmarks/RESULTS.md, "Accelerator check").

The options go to each program through ``jax.jit(compiler_options=...)``
(:func:`jit`), not through ``XLA_FLAGS``: nothing in the environment changes,
it does not matter whether JAX started a backend before ``sgvs_jax`` was
imported, and other backends (TPU) get no options.  They are used where the
installed XLA takes them (checked once per process by compiling a
one-operation program); an XLA that does not is warned about and compiles with
its defaults.  An option named in ``XLA_FLAGS`` is the user's choice and wins
(for the CPU scheduler also the older
``--xla_cpu_enable_concurrency_optimized_scheduler``): then no option is given.

**GPU: JAX's threefry kernel** (the JAX setting ``jax_threefry_gpu_kernel_lowering``).
JAX lowers the threefry hash behind every random draw (a dropout mask per site,
the gate noise, the random-score fake) to twenty unrolled rounds of integer
operations on accelerators (on the CPU, to rolled loops).  That was 41 % of the
default's update program on an H200 (46.2k -> 27.1k HLO instructions with the
kernel) and half its compile (43.8 -> 20.9 s).  With the setting JAX calls one
CUDA kernel of the same hash instead.  It is integer arithmetic, so the bits
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
GPU_OPTIONS = {"xla_gpu_autotune_level": 0}
OPTIONS = {"cpu": CPU_OPTIONS, "gpu": GPU_OPTIONS}
# XLA flags that, named in XLA_FLAGS, are the user's choice over a backend's options.
USER_FLAGS = {"cpu": ("xla_cpu_scheduler_type", "xla_cpu_enable_concurrency_optimized_scheduler"),
              "gpu": ("xla_gpu_autotune_level",)}
PRNG_KERNEL = "jax_threefry_gpu_kernel_lowering"


def compiler_options(backend: str | None = None, environ=None) -> dict:
    """The options for a program compiled for ``backend`` (default: JAX's
    default backend): the backend's :data:`OPTIONS` where XLA takes them and
    ``XLA_FLAGS`` names none of its :data:`USER_FLAGS`, else ``{}``."""
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
        logging.warning("XLA here does not take the compiler options %s (%s); its defaults are used "
                        "(sgvs_jax/xla_options.py)", dict(options), e)
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
