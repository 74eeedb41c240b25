"""The selection bottleneck between the selector and the generator.

The generator may only rebuild the video from the steps the selector keeps.
``gate`` turns scores into a per-step gate g in [0, 1] that both weights the
features fed to the encoder (``x * g``) and, as ``log g`` added to the attention
logits of every key, removes unselected steps from what the encoder and decoder
can attend to.

Modes:
  'soft'      g = s (the SUM-GAN-AAE weighting; no bottleneck: with uniform
              scores every step stays fully visible, so nothing pushes the scores
              apart)
  'concrete'  g ~ RelaxedBernoulli(s, temperature): a random subset of about
              mean(s) * T steps per draw (the sparsity term pins it near sigma),
              relaxed so that the reconstruction error reaches each step's
              probability of being *chosen* (Maddison et al. 2017; Jang et al.
              2017).  A step whose presence lowers the error is pushed up, one that
              others can stand in for is pushed down.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MODES = ("soft", "concrete")
_EPS = 1e-6


def gate(scores, mask, rng, mode: str, temperature: float = 0.5):
    """scores (B, T) in [0, 1], mask (B, T) -> (gate (B, T), key_bias (B, T) or None).

    ``rng`` None (evaluation) gives the expected gate ``s`` for 'concrete'.
    """
    if mode == "soft":
        return scores, None
    if mode != "concrete":
        raise ValueError(f"unknown train.selection {mode!r} (use one of {MODES})")
    p = jnp.clip(scores, _EPS, 1.0 - _EPS)
    if rng is None:
        g = p
    else:
        u = jax.random.uniform(rng, p.shape, minval=_EPS, maxval=1.0 - _EPS)
        logits = jnp.log(p) - jnp.log1p(-p) + jnp.log(u) - jnp.log1p(-u)
        g = jax.nn.sigmoid(logits / temperature)
    g = jnp.where(mask, g, 0.0)
    return g, jnp.log(jnp.maximum(g, _EPS))
