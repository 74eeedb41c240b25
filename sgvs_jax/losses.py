"""SUM-GAN-AAE losses, per video and averaged over the real videos of a padded batch."""

from __future__ import annotations

import jax.numpy as jnp

from sgvs_jax.models.layers import masked_mean


def batch_mean(per_video, valid):
    """Mean of (B,) values over the videos with valid=True."""
    return masked_mean(per_video, valid, axis=0)


def reconstruction(h_original, h_reconstructed, valid):
    """L2 distance between discriminator hidden states (B, d) of original and reconstruction."""
    return batch_mean(jnp.sqrt(jnp.sum((h_original - h_reconstructed) ** 2, -1) + 1e-12), valid)


def feature_reconstruction(x, x_hat, mask, valid):
    """Mean squared L2 error per step (used when the adversarial part is ablated)."""
    per_step = jnp.mean((x - x_hat) ** 2, -1)
    return batch_mean(masked_mean(per_step, mask, axis=1), valid)


def sparsity(scores, mask, valid, sigma):
    """|mean_t s_t - sigma| over each video's real steps."""
    return batch_mean(jnp.abs(masked_mean(scores, mask, axis=1) - sigma), valid)


def lsgan_generator(prob_fake, valid):
    """Least-squares GAN generator term: (D(G(x)) - 1)^2."""
    return batch_mean((prob_fake - 1.0) ** 2, valid)


def lsgan_discriminator(prob_real, prob_fakes, valid):
    """(D(x) - 1)^2 + sum over fakes of D(fake)^2."""
    loss = (prob_real - 1.0) ** 2
    for p in prob_fakes:
        loss = loss + p ** 2
    return batch_mean(loss, valid)
