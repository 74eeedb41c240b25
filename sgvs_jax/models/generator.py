"""Transformer encoder-decoder that reconstructs a video from its selected steps."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from sgvs_jax.models.layers import DecoderLayer, TransformerEncoder, sinusoidal_positions


class Encoder(nn.Module):
    """x (B, T, D), mask (B, T) -> memory (B, T, d).

    ``key_bias`` (B, T), optional, is added to the self-attention logits of each
    key step (``log g`` of the selection gate: unselected steps are not attended).
    ``row_offset`` (int, optional): the batch is rows ``[row_offset, row_offset + B)`` of a
    taller batch and draws those rows' dropout (:class:`sgvs_jax.models.layers.Dropout`).
    """

    d_model: int = 256
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    block: int = 0

    @nn.compact
    def __call__(self, x, mask, deterministic: bool = True, key_bias=None, row_offset=None):
        T = x.shape[1]
        h = nn.Dense(self.d_model, name="input_proj")(x) + sinusoidal_positions(T, self.d_model)[None]
        return TransformerEncoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, self.block,
                                  name="layers")(h, mask, deterministic, key_bias, row_offset=row_offset)


class Decoder(nn.Module):
    """Non-autoregressive decoder: one query per step attends to the memory.

    memory (B, T, d), mask (B, T) -> reconstruction (B, T, D) with D = ``out_dim``
    (all T steps are decoded at once, unlike the step-by-step LSTM decoders of the
    PyTorch originals).

    ``queries``:
      'memory'     the query of step t is a projection of memory_t plus its position
                   (no bottleneck: step t's own memory carries x_t through)
      'positions'  the query is a learned projection of the position alone, so step
                   t can only be rebuilt from what the memory keys it attends to hold
    ``memory_bias`` (B, T), optional, is added to the cross-attention logits per
    memory step (``log g`` of the selection gate).
    ``row_offset`` (int, optional): the batch is rows ``[row_offset, row_offset + B)`` of a
    taller batch and draws those rows' dropout (:class:`sgvs_jax.models.layers.Dropout`).
    """

    out_dim: int
    d_model: int = 256
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    block: int = 0
    queries: str = "memory"

    @nn.compact
    def __call__(self, memory, mask, deterministic: bool = True, memory_bias=None, row_offset=None):
        B, T, _ = memory.shape
        pos = sinusoidal_positions(T, self.d_model)[None]
        if self.queries == "memory":
            q = nn.Dense(self.d_model, name="query_proj")(memory) + pos
        elif self.queries == "positions":
            q = jnp.broadcast_to(nn.Dense(self.d_model, name="query_proj")(pos), (B, T, self.d_model))
        else:
            raise ValueError(f"unknown decoder queries {self.queries!r} (use 'memory' or 'positions')")
        for i in range(self.num_layers):
            q = DecoderLayer(self.num_heads, self.mlp_dim, self.dropout, self.block, name=f"layer_{i}")(
                q, memory, mask, deterministic, memory_bias, row_offset=row_offset)
        return nn.Dense(self.out_dim, name="output_proj")(nn.LayerNorm(name="out_norm")(q))
