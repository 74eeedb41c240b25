"""Mask-aware Transformer building blocks shared by the selector, generator and discriminator."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """The Transformer settings every network shares (``config.model``), passed by keyword.

    d_model          width of every network
    num_heads        attention heads (divides d_model)
    mlp_dim          hidden width of each block's MLP
    dropout          dropout rate after attention and MLP (training only)
    attention_block  > 0: blocked local attention (block +- 1 neighbour), linear in T
    """

    d_model: int = 256
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    attention_block: int = 0

    @classmethod
    def from_config(cls, model_cfg) -> "TransformerConfig":
        return cls(**{f.name: model_cfg[f.name] for f in dataclasses.fields(cls)})


class Compress(nn.Module):
    """The one projection of the features every network reads, computed once per pass.

    x (B, T, D) -> dict(raw (B, T, d) = x W, the video the generator rebuilds and the
    discriminator judges, at the raw features' magnitude; selector (B, T, d), the
    selector's input: with ``visual_norm='layer'`` the projection of each step's
    standardized features, ``(x - mean) / std`` over its D values, so its scale is
    removed (a LayerNorm before the projection, taken from ``x W`` and two numbers per
    step rather than a second product with W); 'none': ``x W``, the scale kept; plus a
    bias).
    """

    d_model: int
    visual_norm: str = "layer"

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.d_model))
        raw = x @ kernel
        view = raw
        if self.visual_norm == "layer":
            mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
            view = (raw - mean * kernel.sum(0)) * jax.lax.rsqrt(var + 1e-6)
        elif self.visual_norm != "none":
            raise ValueError(f"unknown model.visual_norm {self.visual_norm!r} (use 'layer' or 'none')")
        return {"raw": raw, "selector": view + self.param("bias", nn.initializers.zeros, (self.d_model,))}


def sinusoidal_positions(length: int, dim: int) -> jnp.ndarray:
    """(length, dim) fixed sinusoidal position encoding."""
    pos = np.arange(length)[:, None]
    i = np.arange(dim // 2)[None, :]
    angle = pos / np.power(10000.0, 2 * i / dim)
    enc = np.zeros((length, dim), np.float32)
    enc[:, 0::2] = np.sin(angle)
    enc[:, 1::2] = np.cos(angle)[:, : dim // 2]
    return jnp.asarray(enc)


def local_attention(q, k, v, q_mask, k_mask, block: int, key_bias=None):
    """Blocked local attention: each query block attends to its own and the two
    neighbouring key blocks, so cost and memory grow as T * 3 * block, not T^2.

    q (B, T, H, Dh), k/v (B, Tk, H, Dh) with Tk == T (aligned sequences),
    q_mask (B, T), k_mask (B, T), key_bias (B, T) or None (added to the logits of
    each key) -> (B, T, H, Dh).
    """
    B, T, H, D = q.shape
    nb = -(-T // block)
    pad = nb * block - T

    def blocks(x):
        x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
        return x.reshape((B, nb, block) + x.shape[2:])

    def windows(x):  # (B, nb, block, ...) -> (B, nb, 3 * block, ...)
        x = jnp.pad(x, [(0, 0), (1, 1)] + [(0, 0)] * (x.ndim - 2))
        return jnp.concatenate([x[:, :-2], x[:, 1:-1], x[:, 2:]], axis=2)

    qb, qm = blocks(q), blocks(q_mask)
    kw, vw, km = windows(blocks(k)), windows(blocks(v)), windows(blocks(k_mask))
    logits = jnp.einsum("bnqhd,bnkhd->bnhqk", qb, kw) / jnp.sqrt(D).astype(q.dtype)
    if key_bias is not None:
        logits = logits + windows(blocks(key_bias))[:, :, None, None, :]
    mask = qm[:, :, None, :, None] & km[:, :, None, None, :]
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits, axis=-1) * mask
    out = jnp.einsum("bnhqk,bnkhd->bnqhd", weights, vw)
    return out.reshape(B, nb * block, H, D)[:, :T]


class Attention(nn.Module):
    """Multi-head attention with boolean masks.

    x (B, T, d) queries, context (B, Tk, d), q_mask (B, T), k_mask (B, Tk) -> (B, T, d).
    ``key_bias`` (B, Tk), optional, is added to every query's logit for that key:
    ``log g`` of a gate g in (0, 1] softly removes a key (the selection bottleneck).
    ``block > 0`` (self- or aligned cross-attention only) uses blocked local
    attention, linear in T, for sequences longer than ``3 * block`` (shorter ones
    fit in one local window anyway and use full attention, which is cheaper
    there); otherwise full attention through ``jax.nn.dot_product_attention``.
    Rows of padded queries are zeroed.
    """

    num_heads: int
    block: int = 0

    @nn.compact
    def __call__(self, x, context, q_mask, k_mask, key_bias=None):
        d = x.shape[-1]
        head_dim = d // self.num_heads
        q = nn.DenseGeneral((self.num_heads, head_dim), name="query")(x)
        k = nn.DenseGeneral((self.num_heads, head_dim), name="key")(context)
        v = nn.DenseGeneral((self.num_heads, head_dim), name="value")(context)
        if self.block > 0 and x.shape[1] > 3 * self.block:
            if context.shape[1] != x.shape[1]:
                raise ValueError("local attention needs aligned query and key sequences")
            out = local_attention(q, k, v, q_mask, k_mask, self.block, key_bias)
        else:
            mask = q_mask[:, None, :, None] & k_mask[:, None, None, :]
            bias = None if key_bias is None else key_bias[:, None, None, :].astype(q.dtype)
            out = jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask)
        out = out * q_mask[:, :, None, None].astype(out.dtype)
        return nn.DenseGeneral(d, axis=(-2, -1), name="out")(out)


class MLP(nn.Module):
    """x (B, T, d) -> (B, T, d): Dense(mlp_dim) -> gelu -> dropout -> Dense(d)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, deterministic: bool):
        d = x.shape[-1]
        x = nn.gelu(nn.Dense(self.config.mlp_dim)(x))
        x = nn.Dropout(self.config.dropout)(x, deterministic)
        return nn.Dense(d)(x)


class EncoderLayer(nn.Module):
    """Pre-LN self-attention block.  x: (B, T, d), mask: (B, T) -> (B, T, d)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, mask, deterministic: bool, key_bias=None):
        cfg = self.config
        y = nn.LayerNorm()(x)
        y = Attention(cfg.num_heads, cfg.attention_block)(y, y, mask, mask, key_bias)
        x = x + nn.Dropout(cfg.dropout)(y, deterministic)
        y = MLP(cfg)(nn.LayerNorm()(x), deterministic)
        return x + nn.Dropout(cfg.dropout)(y, deterministic)


class DecoderLayer(nn.Module):
    """Pre-LN self-attention + cross-attention block.

    x: (B, T, d) queries, memory: (B, T, d) (aligned), mask (B, T) -> (B, T, d);
    ``memory_bias`` (B, T), optional, is added to the cross-attention logits per
    memory step.
    """

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, memory, mask, deterministic: bool, memory_bias=None):
        cfg = self.config
        y = nn.LayerNorm()(x)
        y = Attention(cfg.num_heads, cfg.attention_block, name="self_attention")(y, y, mask, mask)
        x = x + nn.Dropout(cfg.dropout)(y, deterministic)
        y = nn.LayerNorm()(x)
        y = Attention(cfg.num_heads, cfg.attention_block, name="cross_attention")(y, memory, mask, mask,
                                                                               memory_bias)
        x = x + nn.Dropout(cfg.dropout)(y, deterministic)
        y = MLP(cfg)(nn.LayerNorm()(x), deterministic)
        return x + nn.Dropout(cfg.dropout)(y, deterministic)


class TransformerEncoder(nn.Module):
    """``num_layers`` EncoderLayers and a final LayerNorm.  x: (B, T, d), mask: (B, T) -> (B, T, d);
    ``key_bias`` (B, T), optional, is added to every self-attention logit per key."""

    config: TransformerConfig
    num_layers: int

    @nn.compact
    def __call__(self, x, mask, deterministic: bool, key_bias=None):
        for _ in range(self.num_layers):
            x = EncoderLayer(self.config)(x, mask, deterministic, key_bias)
        return nn.LayerNorm()(x)


def masked_mean(x, mask, axis):
    """Mean of x over ``axis`` where mask is True (mask broadcasts against x)."""
    mask = mask.astype(x.dtype)
    return (x * mask).sum(axis) / jnp.maximum(mask.sum(axis), 1.0)
