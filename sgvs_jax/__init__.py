"""sgvs_jax: Semantic-Guided Unsupervised Video Summarization in JAX/Flax."""

__version__ = "0.1.0"


def require_extra(module: str, purpose: str):
    """Imports a package of the optional ``[video]`` extra, or says how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs '{module}': pip install -e '.[video]'") from e
