"""SUM-GAN-AAE losses, per video and averaged over the real videos of a padded batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgvs_jax.models.layers import masked_mean


def batch_mean(per_video, valid):
    """Mean of (B,) values over the videos with valid=True."""
    return masked_mean(per_video, valid, axis=0)


def reconstruction(h_original, h_reconstructed, valid):
    """L2 distance between discriminator hidden states (B, d) of original and reconstruction."""
    return batch_mean(jnp.sqrt(jnp.sum((h_original - h_reconstructed) ** 2, -1) + 1e-12), valid)


def stepwise_reconstruction(states_original, states_reconstructed, mask, valid):
    """L2 distance between the discriminator states (B, T, d) of original and
    reconstruction at each step, averaged over the real steps: every step must be
    rebuilt, not only the video's mean state."""
    dist = jnp.sqrt(jnp.sum((states_original - states_reconstructed) ** 2, -1) + 1e-12)
    return batch_mean(masked_mean(dist, mask, axis=1), valid)


def masked_std(scores, mask):
    """(B, T) -> (B,) standard deviation over each video's real steps."""
    mean = masked_mean(scores, mask, axis=1)
    return jnp.sqrt(masked_mean((scores - mean[:, None]) ** 2, mask, axis=1))


def feature_reconstruction(x, x_hat, mask, valid):
    """Mean squared error per step, averaged over real steps (the whole
    reconstruction term when the adversarial part is ablated)."""
    per_step = jnp.mean((x - x_hat) ** 2, -1)
    return batch_mean(masked_mean(per_step, mask, axis=1), valid)


def sparsity(scores, mask, valid, sigma):
    """|mean_t s_t - sigma| over each video's real steps."""
    return batch_mean(jnp.abs(masked_mean(scores, mask, axis=1) - sigma), valid)


def rank_agreement(scores, teacher, mask, valid):
    """1 - Pearson correlation, over each video's real steps, of the scores with the
    ``teacher``'s ranks (B, T): scale-free, so it leaves the level of the scores to the
    budget term.  A video whose teacher is constant contributes a constant (no gradient)."""
    def centred(x):
        return jnp.where(mask, x - masked_mean(x, mask, axis=1)[:, None], 0.0)
    s, t = centred(scores), centred(teacher)
    corr = (s * t).sum(1) / jnp.sqrt((s * s).sum(1) * (t * t).sum(1) + 1e-12)
    return batch_mean(1.0 - corr, valid)


def lsgan_generator(prob_fake, valid):
    """Least-squares GAN generator term: (D(G(x)) - 1)^2."""
    return batch_mean((prob_fake - 1.0) ** 2, valid)


def lsgan_discriminator(prob_real, prob_fakes, valid):
    """(D(x) - 1)^2 + sum over fakes of D(fake)^2."""
    loss = (prob_real - 1.0) ** 2
    for p in prob_fakes:
        loss = loss + p ** 2
    return batch_mean(loss, valid)


def _unit(x):
    return x / jnp.sqrt(jnp.sum(x * x, -1, keepdims=True) + 1e-12)


def pooled_contrast(view, scores, mask, own, bank, valid, temperature: float):
    """InfoNCE through the selector, one positive: the score-weighted mean over a
    video's steps of cos(view_t, anchor) must be higher for its own anchor than for
    every other anchor of ``bank``:

        v_u = sum_t s_t cos(view_t, anchor_u) / sum_t s_t
        loss = -log softmax_u(v_u / temperature)[own]

    So the selector is pushed to score highly the steps whose view singles out the
    video's own anchor, and the view (a learned projection of the visual features)
    is pulled towards it: the **video-title** contrast (anchor: the title's CLIP
    embedding, bank: the training titles, view: FSSA's ``X_t``).

    view (B, T, Da), scores (B, T), mask (B, T), own (B, Da), bank (N, Da) (copies of the
    own anchor in the bank are ignored), valid (B,) -> scalar.
    """
    f, own, bank = _unit(view), _unit(own), _unit(bank)
    w = scores * mask
    w = w / jnp.maximum(w.sum(1, keepdims=True), 1e-6)
    pos = jnp.einsum("bt,bt->b", w, jnp.einsum("btd,bd->bt", f, own))
    neg = jnp.einsum("bt,btn->bn", w, jnp.einsum("btd,nd->btn", f, bank))
    same = jnp.einsum("bd,nd->bn", own, bank) > 0.999
    logits = jnp.concatenate([pos[:, None], jnp.where(same, -1e9, neg)], axis=1) / temperature
    return batch_mean(-jax.nn.log_softmax(logits, axis=1)[:, 0], valid)
