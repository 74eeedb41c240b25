"""Discriminator: original or reconstructed video?"""

from __future__ import annotations

from flax import linen as nn

from sgvs_jax.models.generator import Encoder
from sgvs_jax.models.layers import TransformerConfig, masked_mean


class Discriminator(nn.Module):
    """x (B, T, d) projected video, mask (B, T) -> dict(states (B, T, d), hidden (B, d), prob (B,)).

    The sequence model is a Transformer encoder (the generator's encoder block).
    The SUM-GAN-AAE reconstruction loss compares ``hidden`` (masked mean of the
    states) of original and reconstruction, or the ``states`` step by step.
    """

    config: TransformerConfig
    num_layers: int = 2

    @nn.compact
    def __call__(self, x, mask, deterministic: bool = True):
        h = Encoder(self.config, self.num_layers, name="sequence_model")(x, mask, deterministic)
        hidden = masked_mean(h, mask[..., None], axis=1)
        prob = nn.sigmoid(nn.Dense(1, name="classifier")(hidden)[..., 0])
        return {"states": h, "hidden": hidden, "prob": prob}
