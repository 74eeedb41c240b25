"""SUM-GAN-AAE terms and the semantic alignment term."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgvs_jax import losses


def titles_and_frames():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(5, 16)).astype(np.float32)
    # Video 0 (title = bank[0]): steps 0-2 show its topic, steps 3-9 unrelated content.
    frames = rng.normal(size=(1, 10, 16)).astype(np.float32)
    frames[0, :3] = bank[0] + 0.1 * rng.normal(size=(3, 16))
    return jnp.asarray(frames), jnp.asarray(bank[:1]), jnp.asarray(bank)


def test_contrast_rewards_scoring_the_steps_that_single_out_the_anchor():
    frames, title, bank = titles_and_frames()
    mask, valid = jnp.ones((1, 10), bool), jnp.ones((1,), bool)

    def loss(scores):
        return losses.pooled_contrast(frames, scores, mask, title, bank, valid, 0.2)

    on_topic = jnp.asarray([[0.9] * 3 + [0.1] * 7])
    off_topic = jnp.asarray([[0.1] * 3 + [0.9] * 7])
    assert loss(on_topic) < loss(off_topic)
    g = np.asarray(jax.grad(loss)(jnp.full((1, 10), 0.3)))[0]
    assert g[:3].max() < g[3:].min()  # descent raises the title steps' scores


def test_own_title_copies_in_the_bank_are_not_negatives():
    frames, title, bank = titles_and_frames()
    mask, valid = jnp.ones((1, 10), bool), jnp.ones((1,), bool)
    s = jnp.full((1, 10), 0.3)
    a = losses.pooled_contrast(frames, s, mask, title, bank, valid, 0.2)
    b = losses.pooled_contrast(frames, s, mask, title, jnp.concatenate([bank, bank[:1], bank[:1]]), valid, 0.2)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_stepwise_reconstruction_sees_what_the_pooled_one_misses():
    rng = np.random.default_rng(1)
    states = jnp.asarray(rng.normal(size=(1, 8, 4)), jnp.float32)
    shuffled = states[:, ::-1]  # same steps, other order: same mean state
    mask, valid = jnp.ones((1, 8), bool), jnp.ones((1,), bool)
    pooled = losses.reconstruction(states.mean(1), shuffled.mean(1), valid)
    assert float(pooled) < 1e-5
    assert float(losses.stepwise_reconstruction(states, shuffled, mask, valid)) > 0.5
    # padding steps do not count
    padded = jnp.concatenate([states, jnp.zeros((1, 4, 4))], 1)
    other = jnp.concatenate([states, jnp.ones((1, 4, 4))], 1)
    m = jnp.asarray([[True] * 8 + [False] * 4])
    assert float(losses.stepwise_reconstruction(padded, other, m, valid)) < 1e-5


def test_rank_agreement_asks_for_the_teachers_order_not_its_scale():
    """0 for scores in the teacher's order at any level and scale, 2 for the reverse order; blind
    to padding; a constant teacher (nothing to learn) gives a constant without gradient."""
    from sgvs_jax.evaluation.baselines import criterion_ranks
    from sgvs_jax.losses import rank_agreement
    T = 8
    mask = jnp.asarray([[True] * T + [False] * 3])
    valid = jnp.ones((1,), bool)
    teacher = jnp.asarray(np.pad(criterion_ranks(np.arange(T, dtype=float)[:, None] + 1.0, "feature_norm"), (0, 3)))[None]
    rising = jnp.concatenate([0.25 + 0.01 * jnp.arange(T), jnp.full((3,), 9.0)])[None]
    assert float(rank_agreement(rising, teacher, mask, valid)) == pytest.approx(0.0, abs=1e-5)
    assert float(rank_agreement(-rising, teacher, mask, valid)) == pytest.approx(2.0, abs=1e-5)
    g = jax.grad(lambda s: rank_agreement(s, teacher, mask, valid))(jnp.full((1, T + 3), 0.3))[0]
    assert (g[:T // 2] > 0).all() and (g[T // 2:T] < 0).all() and (g[T:] == 0).all()  # low ranks down, high up
    flat = jnp.zeros_like(teacher)
    assert float(rank_agreement(rising, flat, mask, valid)) == pytest.approx(1.0)
    assert not np.any(np.asarray(jax.grad(lambda s: rank_agreement(s, flat, mask, valid))(rising)))


def test_criterion_ranks_are_ranks_in_0_1_with_ties_shared():
    from sgvs_jax.evaluation.baselines import criterion_ranks
    x = np.asarray([[3.0], [1.0], [2.0], [1.0]])
    np.testing.assert_allclose(criterion_ranks(x, "feature_norm"), [1.0, 0.0, 0.5, 0.0])


def test_a_criterion_constant_up_to_rounding_teaches_nothing():
    """Steps scaled to one norm (the synthetic data) differ in norm by float32 rounding only:
    every step shares one rank (no order to learn), while a real 0.1 % difference still ranks."""
    from sgvs_jax.evaluation.baselines import criterion_ranks
    x = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    unit = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    assert np.ptp(np.linalg.norm(unit.astype(np.float64), axis=1)) > 0  # rounding does differ
    assert not criterion_ranks(unit, "feature_norm").any()
    np.testing.assert_allclose(criterion_ranks(unit * np.float32(1.001) ** np.arange(50)[:, None], "feature_norm"),
                               np.arange(50) / 49, atol=1e-6)
    assert criterion_ranks(np.zeros((3, 4)), "feature_norm").tolist() == [0.0, 0.0, 0.0]
    assert criterion_ranks(np.ones((1, 4)), "feature_norm").tolist() == [0.0]
