"""Transformer encoder-decoder that reconstructs a video from its score-weighted features."""

from __future__ import annotations

from flax import linen as nn

from sgvs_jax.models.layers import DecoderLayer, TransformerEncoder, sinusoidal_positions


class Encoder(nn.Module):
    """x_weighted (B, T, D), mask (B, T) -> memory (B, T, d)."""

    d_model: int = 256
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    block: int = 0

    @nn.compact
    def __call__(self, x, mask, deterministic: bool = True):
        T = x.shape[1]
        h = nn.Dense(self.d_model, name="input_proj")(x) + sinusoidal_positions(T, self.d_model)[None]
        return TransformerEncoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, self.block,
                                  name="layers")(h, mask, deterministic)


class Decoder(nn.Module):
    """Non-autoregressive decoder: position queries attend to the memory.

    memory (B, T, d), mask (B, T) -> reconstruction (B, T, D) with D = ``out_dim``
    (all T steps are decoded at once, unlike the step-by-step LSTM decoders of the
    PyTorch originals).
    """

    out_dim: int
    d_model: int = 256
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    block: int = 0

    @nn.compact
    def __call__(self, memory, mask, deterministic: bool = True):
        B, T, _ = memory.shape
        q = nn.Dense(self.d_model, name="query_proj")(memory) + sinusoidal_positions(T, self.d_model)[None]
        for i in range(self.num_layers):
            q = DecoderLayer(self.num_heads, self.mlp_dim, self.dropout, self.block, name=f"layer_{i}")(
                q, memory, mask, deterministic)
        return nn.Dense(self.out_dim, name="output_proj")(nn.LayerNorm(name="out_norm")(q))
