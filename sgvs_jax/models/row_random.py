"""Random draws for a slice of a batch's rows, equal to the whole batch's draw.

``train.microbatch`` computes a stage's gradient a few videos at a time.  For it
to train the same model as the whole batch, each slice must draw the same
dropout masks, gate noise and uniform fakes as those videos get in the whole
batch.  With JAX's default PRNG (threefry2x32, ``jax_threefry_partitionable``
on, the default since JAX 0.5) the bits of ``jax.random.bits(key, shape)`` at
position p are the threefry hash of ``key`` and p's flattened (uint64) index,
so the rows ``[r, r + m)`` of an (N, ...) draw can be computed alone, from
their own indices, for any N:

    uniform(key, (m,) + rest, row_offset=r)
        == jax.random.uniform(key, (N,) + rest)[r : r + m]      (bit for bit)

``row_offset=None`` is ``jax.random.uniform`` / ``jax.random.bernoulli`` itself,
so a whole-batch computation is unchanged by this module.  ``supported()``
says whether the running JAX draws this way (tests check the equality).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

try:  # JAX's threefry primitive (public in jax.extend); without it slices draw their own
    from jax.extend.random import threefry2x32_p
except ImportError:  # pragma: no cover - a JAX without it
    threefry2x32_p = None


def supported(key=None) -> bool:
    """True where row slices reproduce the whole draw: partitionable threefry2x32 keys, and
    float32 draws (not under ``jax_enable_x64``, where jax.random draws float64)."""
    if threefry2x32_p is None or not getattr(jax.config, "jax_threefry_partitionable", True):
        return False
    if jax.config.jax_enable_x64:
        return False
    if key is not None and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(key)
    else:
        impl = jax.config.jax_default_prng_impl
    return "threefry2x32" in str(impl)


def _mul_add_u64(r, n: int, j):
    """(hi, lo) uint32 words of the uint64 ``r * n + j`` (r, j uint32 arrays, 0 <= n < 2**32)."""
    r_hi, r_lo = r >> 16, r & 0xFFFF
    n_hi, n_lo = np.uint32(n >> 16), np.uint32(n & 0xFFFF)
    low, mid1, mid2, high = r_lo * n_lo, r_hi * n_lo, r_lo * n_hi, r_hi * n_hi  # each < 2**32
    lo1 = low + (mid1 << 16)
    lo2 = lo1 + (mid2 << 16)
    lo = lo2 + j
    carries = (lo1 < low).astype(jnp.uint32) + (lo2 < lo1).astype(jnp.uint32) + (lo < lo2).astype(jnp.uint32)
    return high + (mid1 >> 16) + (mid2 >> 16) + carries, lo


def _row_bits(key, shape, row_offset):
    """uint32 bits of rows [row_offset, row_offset + shape[0]) of a draw of shape (N,) + shape[1:]."""
    if not supported(key):
        raise ValueError("row slices of a random draw need JAX's partitionable threefry2x32 PRNG and float32 "
                         "(jax_threefry_partitionable=True, jax_default_prng_impl='threefry2x32', "
                         "jax_enable_x64=False: the defaults)")
    k1, k2 = jax.random.key_data(key)
    n = math.prod(shape[1:])
    if n >= 2 ** 32:
        raise ValueError(f"a row of {n} random values is too long (at most 2**32 - 1)")
    rows = lax.iota(jnp.uint32, shape[0]) + jnp.asarray(row_offset).astype(jnp.uint32)
    hi, lo = _mul_add_u64(rows[:, None], n, lax.iota(jnp.uint32, n)[None, :])
    b1, b2 = threefry2x32_p.bind(k1, k2, hi, lo)
    return (b1 ^ b2).reshape(shape)


def uniform(key, shape, row_offset=None, minval=0.0, maxval=1.0):
    """Uniform draws in [minval, maxval) (float32); with ``row_offset`` the rows
    ``[row_offset, row_offset + shape[0])`` of the draw of any taller batch."""
    if row_offset is None:
        return jax.random.uniform(key, shape, minval=minval, maxval=maxval)
    bits = _row_bits(key, tuple(shape), row_offset)
    # jax.random.uniform's float32 conversion: 23 mantissa bits under the exponent of 1.0.
    floats = lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32) - jnp.float32(1.0)
    lo, hi = jnp.float32(minval), jnp.float32(maxval)
    return lax.max(lo, floats * (hi - lo) + lo)


def bernoulli(key, p: float, shape, row_offset=None):
    """Boolean draws with mean ``p``: ``jax.random.bernoulli`` (its 'low' mode), row-sliceable."""
    if row_offset is None:
        return jax.random.bernoulli(key, p, shape)
    return uniform(key, shape, row_offset) < jnp.float32(p)
