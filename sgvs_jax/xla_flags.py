"""XLA flags that sgvs_jax sets for the process, before the backend starts.

One flag, for the CPU: ``--xla_cpu_enable_concurrency_optimized_scheduler=false``.
XLA's CPU scheduler otherwise orders an update's thousands of operations for
parallelism and so keeps their buffers alive side by side.  With it off, the
SumMe-shaped update at bucket 1024 needs 2.56 GiB of XLA temp memory instead
of 5.98 (0.63 instead of 1.08 with ``train.microbatch=1``), at the same speed
and with bit-identical results: it is one order of the same operations
(benchmarks/RESULTS.md, tests/test_xla_flags.py).  It does not touch other
backends' compilers.  Where ``libtpu`` is installed nothing is added: the TPU
runtime parses ``XLA_FLAGS`` with its own copy of XLA, whose version sgvs_jax
does not control, and stops on a flag it does not know.

XLA reads ``XLA_FLAGS`` once, when the first backend starts, and the CPU
compiler takes this flag from there only (not from ``jax.jit``'s
``compiler_options``), so :func:`apply` runs when ``sgvs_jax`` is imported.  A
process that started a JAX backend before importing sgvs_jax keeps XLA's
default.  To keep the default anyway, name the flag yourself:
``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=true``.
"""

from __future__ import annotations

import importlib.util
import os

FLAGS = {"xla_cpu_enable_concurrency_optimized_scheduler": "false"}


def apply(environ=None, tpu_runtime: bool | None = None) -> list:
    """Adds each flag of :data:`FLAGS` to ``XLA_FLAGS`` unless it names that flag
    already, or a TPU runtime is installed (``tpu_runtime``, default: whether
    ``libtpu`` can be imported); returns the flags added."""
    environ = os.environ if environ is None else environ
    if tpu_runtime is None:
        tpu_runtime = importlib.util.find_spec("libtpu") is not None
    if tpu_runtime:
        return []
    current = environ.get("XLA_FLAGS", "")
    added = [f"--{name}={value}" for name, value in FLAGS.items() if f"--{name}" not in current]
    if added:
        environ["XLA_FLAGS"] = " ".join([current] + added).strip()
    return added
