"""Discriminator: original or reconstructed video?"""

from __future__ import annotations

from flax import linen as nn

from sgvs_jax.models.generator import Encoder
from sgvs_jax.models.layers import masked_mean


class Discriminator(nn.Module):
    """x (B, T, D), mask (B, T) -> dict(states (B, T, d), hidden (B, d), prob (B,)).

    The sequence model is a Transformer encoder (same block as the generator's
    encoder).  The SUM-GAN-AAE reconstruction loss compares ``hidden`` (masked mean
    of the states) of original and reconstruction, or the ``states`` step by step.
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
    def __call__(self, x, mask, deterministic: bool = True, row_offset=None):
        h = Encoder(self.d_model, self.num_layers, self.num_heads, self.mlp_dim, self.dropout, self.block,
                    name="sequence_model")(x, mask, deterministic, row_offset=row_offset)
        hidden = masked_mean(h, mask[..., None], axis=1)
        prob = nn.sigmoid(nn.Dense(1, name="classifier")(hidden)[..., 0])
        return {"states": h, "hidden": hidden, "prob": prob}
