import jax
import jax.numpy as jnp
import numpy as np

from sgvs_jax.models.layers import Attention, local_attention


def test_local_attention_equals_masked_full_attention():
    rng = np.random.default_rng(0)
    B, T, H, D, block = 2, 37, 2, 8, 8
    q, k, v = (jnp.asarray(rng.normal(size=(B, T, H, D)), jnp.float32) for _ in range(3))
    mask = jnp.asarray(np.arange(T)[None, :] < np.array([[37], [21]]))
    got = local_attention(q, k, v, mask, mask, block)
    blk = np.arange(T) // block
    band = np.abs(blk[:, None] - blk[None, :]) <= 1
    full_mask = mask[:, None, :, None] & mask[:, None, None, :] & band[None, None]
    want = jax.nn.dot_product_attention(q, k, v, mask=full_mask)
    m = np.asarray(mask)
    np.testing.assert_allclose(np.asarray(got)[m], np.asarray(want)[m], rtol=1e-5, atol=1e-5)


def test_attention_masks_padding_and_local_path_is_finite():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 50, 16)), jnp.float32)
    mask = jnp.asarray(np.arange(50)[None, :] < np.array([[50], [10]]))
    for block in (0, 8):  # 50 > 3 * 8: the local path
        layer = Attention(num_heads=2, block=block)
        params = layer.init(jax.random.PRNGKey(0), x, x, mask, mask)
        y = layer.apply(params, x, x, mask, mask)
        assert np.all(np.isfinite(y))
        # Padded positions neither produce output nor influence real positions.
        x2 = x.at[1, 10:].set(1e3)
        y2 = layer.apply(params, x2, x2, mask, mask)
        np.testing.assert_allclose(y2[1, :10], y[1, :10], rtol=1e-5, atol=1e-5)


def test_key_bias_local_equals_full_attention():
    rng = np.random.default_rng(2)
    B, T, H, D, block = 2, 40, 2, 8, 8
    q, k, v = (jnp.asarray(rng.normal(size=(B, T, H, D)), jnp.float32) for _ in range(3))
    mask = jnp.ones((B, T), bool)
    bias = jnp.asarray(np.log(rng.uniform(1e-3, 1, size=(B, T))), jnp.float32)
    got = local_attention(q, k, v, mask, mask, block, bias)
    blk = np.arange(T) // block
    band = np.abs(blk[:, None] - blk[None, :]) <= 1
    want = jax.nn.dot_product_attention(q, k, v, bias=bias[:, None, None, :], mask=jnp.asarray(band)[None, None])
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    # A key with a very negative bias is effectively removed.
    far = bias.at[:, 3].set(-1e4)
    removed = local_attention(q, k, v.at[:, 3].set(1e3), mask, mask, block, far)
    np.testing.assert_allclose(np.asarray(removed), np.asarray(local_attention(q, k, v, mask, mask, block, far)),
                               atol=1e-4)
