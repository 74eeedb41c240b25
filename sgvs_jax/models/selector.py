"""Keyframe selector: a Transformer over the visual features, with FSSA (:mod:`sgvs_jax.models.fssa`)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from sgvs_jax.models.fssa import FSSA, cosine_importance
from sgvs_jax.models.layers import TransformerConfig, TransformerEncoder, sinusoidal_positions


class Selector(nn.Module):
    """Scores each step of a video.

    With FSSA the attended semantics are added to the sequence model's input and the
    score is ``S_t = a * c(cos(X_t, T_t)) + (1 - a) * h_t`` (``c``: ``cosine_term``,
    :func:`sgvs_jax.models.fssa.cosine_importance`); without (``use_fssa=False``, the
    visual-only ablation) ``S_t = h_t``.

    Inputs:
      x          (B, T, d)  the selector's view of the projected features (:class:`~sgvs_jax.models.layers.Compress`)
      mask       (B, T)     bool, True on real steps
      tokens     (B, L, Ds) semantic tokens
      token_mask (B, L)     bool
      frame_sem  (B, T, Ds) CLIP frame features (ignored unless use_frame_semantics)
    Returns:
      dict with scores (B, T) in [0, 1] (0 on padding), h (B, T), and with FSSA
      cos (B, T), alpha (), attention (B, T, L), frame_view (B, T, Ds) = X_t.
    """

    config: TransformerConfig
    num_layers: int = 2
    use_fssa: bool = True
    use_frame_semantics: bool = False
    use_tokens: bool = True
    cosine_term: str = "relu"

    @nn.compact
    def __call__(self, x, mask, tokens, token_mask, frame_sem, deterministic: bool = True):
        d = self.config.d_model
        xp = x + sinusoidal_positions(x.shape[1], d)[None]
        seq_in, out = xp, {}
        if self.use_fssa:
            out = FSSA(d, self.config.num_heads, self.use_frame_semantics, self.use_tokens, name="fssa")(
                xp, mask, tokens, token_mask, frame_sem)
            seq_in = xp + out.pop("context")
        hid = TransformerEncoder(self.config, self.num_layers, name="sequence_model")(seq_in, mask, deterministic)
        h = nn.sigmoid(nn.Dense(1, name="score_head")(hid)[..., 0])
        scores = h
        if self.use_fssa:
            scores = out["alpha"] * cosine_importance(out["cos"], self.cosine_term) + (1.0 - out["alpha"]) * h
        out.update(scores=jnp.where(mask, scores, 0.0), h=h)
        return out
