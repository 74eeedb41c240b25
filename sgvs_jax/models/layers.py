"""Mask-aware Transformer building blocks shared by the selector, generator and discriminator."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def sinusoidal_positions(length: int, dim: int) -> jnp.ndarray:
    """(length, dim) fixed sinusoidal position encoding."""
    pos = np.arange(length)[:, None]
    i = np.arange(dim // 2)[None, :]
    angle = pos / np.power(10000.0, 2 * i / dim)
    enc = np.zeros((length, dim), np.float32)
    enc[:, 0::2] = np.sin(angle)
    enc[:, 1::2] = np.cos(angle)[:, : dim // 2]
    return jnp.asarray(enc)


def attention_mask(q_mask, k_mask, window: int = 0):
    """(B, 1, Tq, Tk) boolean mask; ``window > 0`` keeps only |i - j| <= window."""
    m = q_mask[:, None, :, None] & k_mask[:, None, None, :]
    if window > 0:
        i = jnp.arange(q_mask.shape[1])[:, None]
        j = jnp.arange(k_mask.shape[1])[None, :]
        m = m & (jnp.abs(i - j) <= window)[None, None]
    return m


class MLP(nn.Module):
    hidden: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, deterministic: bool):
        d = x.shape[-1]
        x = nn.gelu(nn.Dense(self.hidden)(x))
        x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        return nn.Dense(d)(x)


class EncoderLayer(nn.Module):
    """Pre-LN self-attention block.  x: (B, T, d), mask: (B, 1, T, T) -> (B, T, d)."""

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dropout_rate=self.dropout,
                                            deterministic=deterministic)(y, y, mask=mask)
        x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
        y = MLP(self.mlp_dim, self.dropout)(nn.LayerNorm()(x), deterministic)
        return x + nn.Dropout(self.dropout)(y, deterministic=deterministic)


class DecoderLayer(nn.Module):
    """Pre-LN self-attention + cross-attention block.

    x: (B, T, d) queries, memory: (B, Tm, d), self_mask (B, 1, T, T),
    cross_mask (B, 1, T, Tm) -> (B, T, d).
    """

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, memory, self_mask, cross_mask, deterministic: bool):
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dropout_rate=self.dropout,
                                            deterministic=deterministic)(y, y, mask=self_mask)
        x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dropout_rate=self.dropout,
                                            deterministic=deterministic)(y, memory, mask=cross_mask)
        x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
        y = MLP(self.mlp_dim, self.dropout)(nn.LayerNorm()(x), deterministic)
        return x + nn.Dropout(self.dropout)(y, deterministic=deterministic)


class TransformerEncoder(nn.Module):
    """Stack of EncoderLayers with a final LayerNorm.  x: (B, T, d), mask: (B, T) -> (B, T, d)."""

    num_layers: int
    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    window: int = 0

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        m = attention_mask(mask, mask, self.window)
        for _ in range(self.num_layers):
            x = EncoderLayer(self.num_heads, self.mlp_dim, self.dropout)(x, m, deterministic)
        return nn.LayerNorm()(x)


def masked_mean(x, mask, axis):
    """Mean of x over ``axis`` where mask is True (mask broadcasts against x)."""
    mask = mask.astype(x.dtype)
    return (x * mask).sum(axis) / jnp.maximum(mask.sum(axis), 1.0)
