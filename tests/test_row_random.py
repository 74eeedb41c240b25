"""A slice of a batch draws exactly the whole batch's rows (what makes train.microbatch
train the whole batch's model)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from sgvs_jax.models import row_random
from sgvs_jax.models.layers import Dropout

KEYS = {"raw": jax.random.PRNGKey(3), "typed": jax.random.key(5)}


@pytest.mark.parametrize("key", list(KEYS))
@pytest.mark.parametrize("shape", [(4, 7, 5), (5, 33), (3, 1)])
def test_rows_equal_the_whole_draw(key, shape):
    key = KEYS[key]
    n = shape[0]
    full_u = np.asarray(jax.random.uniform(key, shape, minval=1e-6, maxval=1 - 1e-6))
    full_b = np.asarray(jax.random.bernoulli(key, 0.9, shape))
    uniform = jax.jit(lambda k, r, m: row_random.uniform(k, (m,) + shape[1:], r, 1e-6, 1 - 1e-6), static_argnums=2)
    bernoulli = jax.jit(lambda k, r, m: row_random.bernoulli(k, 0.9, (m,) + shape[1:], r), static_argnums=2)
    for m in range(1, n + 1):
        for r in range(n - m + 1):  # the offset is traced: one program per slice height
            np.testing.assert_array_equal(np.asarray(uniform(key, r, m)), full_u[r:r + m])
            np.testing.assert_array_equal(np.asarray(bernoulli(key, r, m)), full_b[r:r + m])
    assert 0 < full_b.mean() < 1


def test_no_offset_is_jax_random_itself():
    key = KEYS["raw"]
    np.testing.assert_array_equal(row_random.uniform(key, (3, 4)), jax.random.uniform(key, (3, 4)))
    np.testing.assert_array_equal(row_random.bernoulli(key, 0.7, (3, 4)), jax.random.bernoulli(key, 0.7, (3, 4)))


@pytest.mark.parametrize("n", [0, 1, 12345, 2 ** 31 + 7, 2 ** 32 - 1])
def test_64_bit_counters(n):
    """The counters of rows far into a draw (past 2**32 values) carry into the high word."""
    rng = np.random.default_rng(n % 97)
    r = rng.integers(0, 2 ** 32, 500, dtype=np.uint64)
    j = rng.integers(0, 2 ** 32, 500, dtype=np.uint64)
    hi, lo = row_random._mul_add_u64(jnp.asarray(r.astype(np.uint32)), n, jnp.asarray(j.astype(np.uint32)))
    got = [(int(h) << 32) | int(v) for h, v in zip(np.asarray(hi), np.asarray(lo))]
    assert got == [(int(a) * n + int(b)) % 2 ** 64 for a, b in zip(r, j)]


def test_dropout_slice_drops_what_the_whole_batch_drops():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 8))
    layer = Dropout(0.3)
    rngs = {"dropout": jax.random.PRNGKey(1)}
    whole = layer.apply({}, x, False, rngs=rngs)
    np.testing.assert_array_equal(whole, nn.Dropout(0.3).apply({}, x, False, rngs=rngs))  # flax's, bit for bit
    for r in range(3):
        part = layer.apply({}, x[r:r + 2], False, jnp.int32(r), rngs=rngs)
        np.testing.assert_array_equal(part, whole[r:r + 2])
    np.testing.assert_array_equal(layer.apply({}, x, True, rngs=rngs), x)


def test_other_prngs_are_refused_for_rows():
    if "rbg" not in str(jax.random.key_impl(jax.random.key(0, impl="rbg"))):
        pytest.skip("this JAX has no rbg PRNG")
    key = jax.random.key(0, impl="rbg")
    assert not row_random.supported(key)
    with pytest.raises(ValueError, match="partitionable threefry2x32"):
        row_random.uniform(key, (2, 3), 1)


def test_unpartitionable_threefry_is_refused_for_rows():
    """With jax_threefry_partitionable off, a draw's bits depend on its whole shape: rows
    cannot be drawn alone (train.microbatch then lets each slice draw its own, warned)."""
    with jax.threefry_partitionable(False):
        assert not row_random.supported()
        with pytest.raises(ValueError, match="partitionable threefry2x32"):
            row_random.uniform(jax.random.PRNGKey(0), (2, 3), 1)
    assert row_random.supported()


def test_x64_is_refused_for_rows():
    """Under jax_enable_x64 jax.random draws float64, which the rows (float32) would not match."""
    with jax.enable_x64(True):
        assert not row_random.supported()
    assert row_random.supported()
