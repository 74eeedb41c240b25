"""sgvs_jax: Semantic-Guided Unsupervised Video Summarization in JAX/Flax."""

from sgvs_jax import xla_flags as _xla_flags

__version__ = "0.1.0"

_xla_flags.apply()  # before any backend starts (see sgvs_jax/xla_flags.py)


def require_extra(module: str, purpose: str):
    """Imports a package of the optional ``[video]`` extra, or says how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs '{module}': pip install -e '.[video]'") from e
