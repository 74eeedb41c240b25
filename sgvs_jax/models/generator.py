"""Transformer encoder-decoder that reconstructs a video from its selected steps."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from sgvs_jax.models.layers import DecoderLayer, TransformerConfig, TransformerEncoder, sinusoidal_positions

DECODER_QUERIES = ("memory", "positions")


class Encoder(nn.Module):
    """x (B, T, d) projected video, mask (B, T) -> memory (B, T, d).

    ``key_bias`` (B, T), optional, is added to the self-attention logits of each
    key step (``log g`` of the selection gate: unselected steps are not attended).
    """

    config: TransformerConfig
    num_layers: int = 2

    @nn.compact
    def __call__(self, x, mask, deterministic: bool = True, key_bias=None):
        d = self.config.d_model
        h = nn.Dense(d, name="input_proj")(x) + sinusoidal_positions(x.shape[1], d)[None]
        return TransformerEncoder(self.config, self.num_layers, name="layers")(h, mask, deterministic, key_bias)


class Decoder(nn.Module):
    """Non-autoregressive decoder: one query per step attends to the memory.

    memory (B, T, d), mask (B, T) -> reconstruction (B, T, d) of the projected video
    (all T steps are decoded at once, unlike the step-by-step LSTM decoders of the
    PyTorch originals).

    ``queries``:
      'memory'     the query of step t is a projection of memory_t plus its position
                   (no bottleneck: step t's own memory carries x_t through)
      'positions'  the query is a learned projection of the position alone, so step
                   t can only be rebuilt from what the memory keys it attends to hold
    ``memory_bias`` (B, T), optional, is added to the cross-attention logits per
    memory step (``log g`` of the selection gate).
    """

    config: TransformerConfig
    num_layers: int = 2
    queries: str = "memory"

    @nn.compact
    def __call__(self, memory, mask, deterministic: bool = True, memory_bias=None):
        B, T, d = memory.shape
        pos = sinusoidal_positions(T, d)[None]
        if self.queries == "memory":
            q = nn.Dense(d, name="query_proj")(memory) + pos
        elif self.queries == "positions":
            q = jnp.broadcast_to(nn.Dense(d, name="query_proj")(pos), (B, T, d))
        else:
            raise ValueError(f"unknown model.decoder_queries {self.queries!r} (use one of {DECODER_QUERIES})")
        for i in range(self.num_layers):
            q = DecoderLayer(self.config, name=f"layer_{i}")(q, memory, mask, deterministic, memory_bias)
        return nn.Dense(d, name="output_proj")(nn.LayerNorm(name="out_norm")(q))
