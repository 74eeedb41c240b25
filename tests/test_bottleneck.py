"""The selection bottleneck: what the generator can see, and where the gradient goes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgvs_jax.models import bottleneck
from sgvs_jax.models.generator import Decoder, Encoder
from sgvs_jax.models.layers import TransformerConfig


def test_soft_gate_is_the_scores():
    s = jnp.asarray([[0.1, 0.9, 0.0]])
    g, bias = bottleneck.gate(s, jnp.asarray([[True, True, False]]), jax.random.PRNGKey(0), "soft")
    np.testing.assert_array_equal(g, s)
    assert bias is None


def test_concrete_gate_draws_near_binary_subsets_that_follow_the_scores():
    T = 4000
    p = jnp.concatenate([jnp.full((T // 2,), 0.1), jnp.full((T // 2,), 0.6)])[None]
    mask = jnp.ones((1, T), bool).at[0, -10:].set(False)
    g, bias = bottleneck.gate(p, mask, jax.random.PRNGKey(0), "concrete", temperature=0.5)
    g = np.asarray(g)[0]
    assert np.all(g[-10:] == 0) and np.all((g >= 0) & (g <= 1))
    low, high = g[: T // 2].mean(), g[T // 2: -10].mean()
    assert low < 0.2 and 0.5 < high < 0.7  # about p of the steps are kept
    assert abs(np.mean(g[: T // 2] > 0.5) - 0.1) < 0.03 and abs(np.mean(g[T // 2: -10] > 0.5) - 0.6) < 0.03
    cold, _ = bottleneck.gate(p, mask, jax.random.PRNGKey(0), "concrete", temperature=0.1)
    assert np.mean((np.asarray(cold) > 0.05) & (np.asarray(cold) < 0.95)) < 0.15  # colder: nearly 0 or 1
    np.testing.assert_allclose(np.asarray(bias)[0, :-10], np.log(np.maximum(g[:-10], 1e-6)), rtol=1e-5)
    # Without a key (evaluation) the gate is the expected one.
    g0, _ = bottleneck.gate(p, mask, None, "concrete")
    np.testing.assert_allclose(np.asarray(g0)[0, :-10], np.asarray(p)[0, :-10], rtol=1e-5)


def test_concrete_gate_passes_gradient_to_the_choice_of_steps():
    p = jnp.full((1, 6), 0.3)
    mask = jnp.ones((1, 6), bool)
    value = jnp.asarray([[0.0, 0.0, 5.0, 0.0, 0.0, 0.0]])  # only step 2 is worth keeping

    def kept_value(p, key):
        g, _ = bottleneck.gate(p, mask, key, "concrete")
        return (g * value).sum()

    grads = np.mean([np.asarray(jax.grad(kept_value)(p, jax.random.PRNGKey(i)))[0] for i in range(64)], 0)
    assert grads[2] > 10 * np.abs(np.delete(grads, 2)).max()


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="train.selection"):
        bottleneck.gate(jnp.zeros((1, 2)), jnp.ones((1, 2), bool), None, "hard")


@pytest.mark.parametrize("queries, leaks", [("positions", False), ("memory", True)])
def test_unselected_steps_cannot_be_rebuilt_from_themselves(queries, leaks):
    """With position queries and the gate's key bias, the reconstruction does not
    depend on an unselected step's features; with memory queries and soft
    weighting (the old generator) it does, whatever its score."""
    T, D = 12, 8
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, T, D)), jnp.float32)
    mask = jnp.ones((1, T), bool)
    tc = TransformerConfig(d_model=16, num_heads=2, mlp_dim=32, dropout=0.0)
    enc = Encoder(config=tc, num_layers=1)
    dec = Decoder(config=tc, num_layers=1, queries=queries)
    pe = enc.init(jax.random.PRNGKey(0), x, mask)
    pd = dec.init(jax.random.PRNGKey(1), enc.apply(pe, x, mask), mask)
    g = jnp.ones((1, T)).at[0, 5].set(0.0) if not leaks else jnp.full((1, T), 0.3)
    bias = jnp.log(jnp.maximum(g, 1e-6)) if not leaks else None

    def rebuild(x):
        return dec.apply(pd, enc.apply(pe, x * g[..., None], mask, key_bias=bias), mask, memory_bias=bias)

    jac = jax.jacobian(lambda x5: rebuild(x.at[0, 5].set(x5))[0, 5])(x[0, 5])
    assert (np.abs(np.asarray(jac)).max() > 1e-3) == leaks
