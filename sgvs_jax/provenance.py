"""What to record next to every result: config, seeds, package versions, platform."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "h5py", "ml-collections",
            "scipy", "av", "safetensors", "tokenizers")


def _git(*args) -> str | None:
    """Output of ``git ARGS`` run in this checkout, or None (no git, not a checkout, an error)."""
    try:
        p = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                           cwd=__file__.rsplit("/", 2)[0])
    except Exception:
        return None
    return p.stdout if p.returncode == 0 else None


def git_commit() -> str | None:
    return (_git("rev-parse", "HEAD") or "").strip() or None


def git_dirty() -> bool | None:
    """Whether the checkout has changes to tracked files (None: not a git checkout)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def digest(tree) -> str:
    """SHA-256 (hex) of a pytree's leaves, in order, as their bytes: equal digests
    mean bit-identical numbers (parameters after training, say)."""
    import jax
    import numpy as np
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        h.update(np.asarray(jax.device_get(leaf)).tobytes())
    return h.hexdigest()


# The vector extensions XLA:CPU may compile for: two CPUs that differ in them can round the
# same program differently, so bit-identical results are a claim per CPU, not per "cpu" backend.
CPU_FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "avx_vnni", "amx_tile", "amx_bf16", "asimd", "sve")


def cpu() -> dict:
    """The host CPU's model name and which of ``CPU_FEATURES`` it has (Linux's /proc/cpuinfo;
    ``platform.processor()`` and no features elsewhere)."""
    model, flags = platform.processor() or None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and model in (None, "", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"model": model, "features": [f for f in CPU_FEATURES if f in flags], "cores": os.cpu_count()}


def provenance(config=None) -> dict:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = None
    out = {
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu(),
        "packages": versions,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        import jax

        from sgvs_jax import compilation
        out["jax_backend"] = jax.default_backend()
        out["jax_devices"] = [str(d) for d in jax.devices()]
        out["jax_device_kind"] = jax.devices()[0].device_kind
        out["xla_compiler_options"] = compilation.compiler_options()  # what sgvs_jax's programs compile with
    except Exception:  # pragma: no cover
        pass
    if config is not None:
        out["config"] = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return out
