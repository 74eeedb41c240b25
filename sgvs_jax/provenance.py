"""What to record next to every result: config, seeds, package versions, platform."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "h5py", "ml-collections",
            "scipy", "av", "transformers")


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
        "packages": versions,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        import jax

        from sgvs_jax.xla_options import compiler_options
        out["jax_backend"] = jax.default_backend()
        out["jax_devices"] = [str(d) for d in jax.devices()]
        out["xla_compiler_options"] = compiler_options()  # what sgvs_jax's programs compile with
    except Exception:  # pragma: no cover
        pass
    if config is not None:
        out["config"] = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return out
