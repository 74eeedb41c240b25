"""Discriminator: original or reconstructed video?"""

from __future__ import annotations

from flax import linen as nn

from sgvs_jax.models.layers import TransformerEncoder, masked_mean, sinusoidal_positions


class Discriminator(nn.Module):
    """x (B, T, D), mask (B, T) -> (hidden (B, d), probability (B,)).

    ``hidden`` (masked mean of the sequence model's states) is what the
    SUM-GAN-AAE reconstruction loss compares between original and reconstruction.
    """

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
        h = TransformerEncoder(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, self.block,
                               name="layers")(h, mask, deterministic)
        hidden = masked_mean(h, mask[..., None], axis=1)
        prob = nn.sigmoid(nn.Dense(1, name="classifier")(hidden)[..., 0])
        return hidden, prob
