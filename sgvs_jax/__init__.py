"""sgvs_jax: Semantic-Guided Unsupervised Video Summarization in JAX/Flax."""

__version__ = "0.1.0"
