"""FSSA: frame-level semantic alignment attention, the paper's selector head.

    S_t = a * c(cos(X_t, T_t)) + (1 - a) * h_t,    a = sigmoid(alpha_logit) (learned)

``X_t`` is the frame's semantic view (its CLIP image feature where the data has
one, else a learned projection of the visual feature), ``T_t`` the semantic
tokens (CLIP title tokens) attended by the frame, and ``h_t`` the score of the
sequence model over the visual features.  Without tokens (``use_tokens=False``:
CLIP frame features and no title) ``T_t`` is the frame's own CLIP feature and
``X_t`` the learned projection of its visual feature, as the paper writes it.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

COSINE_TERMS = ("relu", "affine")


def cosine(a, b, eps: float = 1e-6):
    """Cosine similarity over the last axis; 0 with a finite gradient where a vector is 0
    (a padded step: the norm's own gradient is not finite there)."""
    num = (a * b).sum(-1)
    return num / jnp.sqrt(jnp.maximum((a * a).sum(-1) * (b * b).sum(-1), eps * eps))


def cosine_importance(cos, term: str):
    """Maps a cosine to an importance in [0, 1].

    'relu'    max(cos, 0): unrelated frames (cos <= 0) get nothing from the semantic
              term, so it does not eat the sparsity budget sigma
    'affine'  (1 + cos) / 2: 0.5 for an orthogonal frame, so the mean score is >= a / 2
              before h_t adds anything, and h_t saturates to meet a small sigma
    """
    if term == "relu":
        return jnp.maximum(cos, 0.0)
    if term == "affine":
        return (1.0 + cos) / 2.0
    raise ValueError(f"unknown model.cosine_term {term!r} (use one of {COSINE_TERMS})")


class FSSA(nn.Module):
    """Every frame attends over the video's semantic tokens.

    Inputs:
      xp         (B, T, d)  the frames' projected visual features (with positions)
      mask       (B, T)     bool, True on real steps
      tokens     (B, L, Ds) semantic tokens
      token_mask (B, L)     bool
      frame_sem  (B, T, Ds) CLIP frame features (used when ``use_frame_semantics``)
    Returns dict:
      cos        (B, T)     cos(X_t, T_t)
      alpha      ()         the learned balance a
      attention  (B, T, L)  attention weights (mean over heads); (B, T, 1) ones without tokens
      frame_view (B, T, Ds) X_t
      context    (B, T, d)  T_t projected to d, added to the sequence model's input
    """

    d_model: int
    num_heads: int
    use_frame_semantics: bool = False
    use_tokens: bool = True
    alpha_init: float = 0.0

    @nn.compact
    def __call__(self, xp, mask, tokens, token_mask, frame_sem):
        alpha = nn.sigmoid(self.param("alpha_logit", nn.initializers.constant(self.alpha_init), ()))
        if not self.use_tokens:  # T_t: the frame's own CLIP feature; X_t: its visual feature, projected
            if not self.use_frame_semantics:
                raise ValueError("FSSA needs semantic tokens or CLIP frame features")
            frame_view = nn.Dense(frame_sem.shape[-1], name="visual_to_semantic")(xp)
            return {"cos": cosine(frame_view, frame_sem), "alpha": alpha, "attention": mask[..., None] * 1.0,
                    "frame_view": frame_view, "context": nn.Dense(self.d_model, name="semantic_proj")(frame_sem)}
        heads = (self.num_heads, self.d_model // self.num_heads)
        query = xp
        if self.use_frame_semantics:
            query = query + nn.Dense(self.d_model, name="frame_sem_proj")(frame_sem)
        q = nn.DenseGeneral(heads, name="fssa_query")(query)
        k = nn.DenseGeneral(heads, name="fssa_key")(tokens)
        logits = jnp.einsum("bthd,blhd->bhtl", q, k) / jnp.sqrt(q.shape[-1])
        m = mask[:, None, :, None] & token_mask[:, None, None, :]
        logits = jnp.where(m, logits, -1e9)
        weights = (nn.softmax(logits, axis=-1) * m).mean(axis=1)  # rows with no token: all zero
        aligned = jnp.einsum("btl,bls->bts", weights, tokens)  # T_t in the tokens' space
        if self.use_frame_semantics:
            frame_view = frame_sem
        else:
            frame_view = nn.Dense(tokens.shape[-1], name="visual_to_semantic")(xp)
        return {"cos": cosine(frame_view, aligned), "alpha": alpha, "attention": weights,
                "frame_view": frame_view, "context": nn.Dense(self.d_model, name="semantic_proj")(aligned)}
