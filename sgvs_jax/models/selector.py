"""Keyframe selector with FSSA (frame-level semantic alignment attention)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from sgvs_jax.models.layers import TransformerEncoder, sinusoidal_positions


def cosine(a, b, eps: float = 1e-6):
    """Cosine similarity over the last axis."""
    num = (a * b).sum(-1)
    return num / jnp.maximum(jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1), eps)


class Selector(nn.Module):
    """Scores each step of a video.

    FSSA: every frame attends over the video's semantic tokens (CLIP text tokens
    and/or the pooled title embedding).  The attention output in the tokens' own
    (CLIP) space is the frame-aligned semantic feature ``T_t``; the frame's
    semantic view ``X_t`` is its CLIP image feature where the data has one
    (``use_frame_semantics``), else a learned projection of the visual feature.
    The score is

        S_t = a * c(cos(X_t, T_t)) + (1 - a) * h_t,   a = sigmoid(alpha_logit)

    where ``c`` maps the cosine into [0, 1] so S_t is a valid importance for the
    sparsity term: ``cosine_term='relu'`` (default) c = max(cos, 0): unrelated
    frames (cos <= 0) get nothing from the semantic term, so it does not eat the
    sparsity budget sigma; ``'affine'`` c = (1 + cos) / 2, which is 0.5 for an
    orthogonal frame (then with a = 0.5 the mean score is >= 0.25 before h_t
    adds anything, and h_t must be pushed to ~0 to meet sigma = 0.3: it
    saturates and stops learning).  ``h_t`` comes from a Transformer encoder
    over the visual features, to which the attended semantics are added.  With
    ``use_fssa=False`` (the visual-only ablation) S_t = h_t.

    Inputs:
      x          (B, T, D)  visual features
      mask       (B, T)     bool, True on real steps
      tokens     (B, L, Ds) semantic tokens
      token_mask (B, L)     bool
      frame_sem  (B, T, Ds) CLIP frame features (ignored unless use_frame_semantics)
      row_offset ()         int, optional: the batch is rows [row_offset, row_offset + B)
                            of a taller batch, and draws its dropout as those rows
                            (:class:`sgvs_jax.models.layers.Dropout`)
    Returns:
      dict with scores (B, T) in [0, 1] (0 on padding), h (B, T), and with FSSA
      cos (B, T), alpha (), attention (B, T, L), frame_view (B, T, Ds) = X_t.
    """

    d_model: int = 256
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    block: int = 0
    use_fssa: bool = True
    use_frame_semantics: bool = False
    alpha_init: float = 0.0
    cosine_term: str = "relu"

    @nn.compact
    def __call__(self, x, mask, tokens, token_mask, frame_sem, deterministic: bool = True, row_offset=None):
        B, T, _ = x.shape
        xp = nn.Dense(self.d_model, name="visual_proj")(nn.LayerNorm(name="visual_norm")(x))
        xp = xp + sinusoidal_positions(T, self.d_model)[None]
        seq_in = xp
        out = {}
        if self.use_fssa:
            query = xp
            if self.use_frame_semantics:
                query = query + nn.Dense(self.d_model, name="frame_sem_proj")(frame_sem)
            q = nn.DenseGeneral((self.num_heads, self.d_model // self.num_heads), name="fssa_query")(query)
            k = nn.DenseGeneral((self.num_heads, self.d_model // self.num_heads), name="fssa_key")(tokens)
            logits = jnp.einsum("bthd,blhd->bhtl", q, k) / jnp.sqrt(q.shape[-1])
            m = mask[:, None, :, None] & token_mask[:, None, None, :]
            logits = jnp.where(m, logits, -1e9)
            weights = nn.softmax(logits, axis=-1) * m  # rows with no token give all-zero weights
            weights = weights.mean(axis=1)  # (B, T, L), average of heads
            aligned = jnp.einsum("btl,bls->bts", weights, tokens)  # T_t in the tokens' space
            if self.use_frame_semantics:
                frame_view = frame_sem
            else:
                frame_view = nn.Dense(tokens.shape[-1], name="visual_to_semantic")(xp)
            cos = cosine(frame_view, aligned)
            seq_in = xp + nn.Dense(self.d_model, name="semantic_proj")(aligned)
            alpha = nn.sigmoid(self.param("alpha_logit", nn.initializers.constant(self.alpha_init), ()))
            out.update(cos=cos, alpha=alpha, attention=weights, frame_view=frame_view)
        hid = TransformerEncoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, self.block,
                                 name="sequence_model")(seq_in, mask, deterministic, row_offset=row_offset)
        h = nn.sigmoid(nn.Dense(1, name="score_head")(hid)[..., 0])
        if self.use_fssa:
            if self.cosine_term == "relu":
                c = jnp.maximum(out["cos"], 0.0)
            elif self.cosine_term == "affine":
                c = (1.0 + out["cos"]) / 2.0
            else:
                raise ValueError(f"unknown model.cosine_term {self.cosine_term!r} (use 'relu' or 'affine')")
            scores = out["alpha"] * c + (1.0 - out["alpha"]) * h
        else:
            scores = h
        out.update(scores=jnp.where(mask, scores, 0.0), h=h)
        return out
