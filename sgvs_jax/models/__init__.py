"""SGVS networks: selector (FSSA), Transformer generator (encoder, decoder), discriminator.

Parameters live in one plain dict with a top-level key per part, so that the
incremental training stages can freeze and unfreeze whole subtrees::

    {'selector': ..., 'encoder': ..., 'decoder': ..., 'discriminator': ...}
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from sgvs_jax.models.discriminator import Discriminator
from sgvs_jax.models.generator import Decoder, Encoder
from sgvs_jax.models.selector import Selector

PARTS = ("selector", "encoder", "decoder", "discriminator")


@dataclasses.dataclass(frozen=True)
class SGVS:
    """The four Flax modules of SGVS, built from ``config.model``."""

    selector: Selector
    encoder: Encoder
    decoder: Decoder
    discriminator: Discriminator

    @classmethod
    def from_config(cls, cfg, feature_dim: int) -> "SGVS":
        common = dict(d_model=cfg.d_model, num_heads=cfg.num_heads, mlp_dim=cfg.mlp_dim,
                      dropout=cfg.dropout, block=cfg.attention_block)
        return cls(
            selector=Selector(num_layers=cfg.selector_layers, use_fssa=cfg.use_fssa,
                              use_frame_semantics=cfg.use_frame_semantics,
                              cosine_term=cfg.get("cosine_term", "affine"), **common),
            encoder=Encoder(num_layers=cfg.encoder_layers, **common),
            decoder=Decoder(out_dim=feature_dim, num_layers=cfg.decoder_layers,
                            queries=cfg.get("decoder_queries", "memory"), **common),
            discriminator=Discriminator(num_layers=cfg.discriminator_layers, **common),
        )

    def init(self, rng, batch) -> dict:
        """Parameters for a batch's shapes: ``{part: params}``."""
        k = jax.random.split(rng, 4)
        x, mask = jnp.asarray(batch["features"]), jnp.asarray(batch["mask"])
        sel = self.selector.init(k[0], x, mask, jnp.asarray(batch["tokens"]), jnp.asarray(batch["token_mask"]),
                                 jnp.asarray(batch["frame_sem"]))["params"]
        enc = self.encoder.init(k[1], x, mask)["params"]
        memory = self.encoder.apply({"params": enc}, x, mask)
        dec = self.decoder.init(k[2], memory, mask)["params"]
        dis = self.discriminator.init(k[3], x, mask)["params"]
        return {"selector": sel, "encoder": enc, "decoder": dec, "discriminator": dis}

    def select(self, params, batch, rng=None, row_offset=None):
        """Selector outputs (see :class:`Selector`); dropout on when ``rng`` is given.

        ``row_offset`` (here and below): the batch is rows ``[row_offset, row_offset + B)`` of
        a taller batch, and draws what those rows draw there (``train.microbatch``)."""
        return _apply_fn(self.selector, rng is None)({"params": params["selector"]}, batch["features"],
                                                        batch["mask"], batch["tokens"], batch["token_mask"],
                                                        batch["frame_sem"], rngs=_rngs(rng), row_offset=row_offset)

    def reconstruct(self, params, x_weighted, mask, rng=None, key_bias=None, row_offset=None):
        """(B, T, D) weighted features -> (B, T, D) reconstruction.

        ``key_bias`` (B, T): the selection bottleneck's ``log g`` (see
        :mod:`sgvs_jax.models.bottleneck`), added to every attention over the steps.
        """
        r = jax.random.split(rng) if rng is not None else (None, None)
        memory = _apply_fn(self.encoder, rng is None)({"params": params["encoder"]}, x_weighted, mask,
                                                         rngs=_rngs(r[0]), key_bias=key_bias, row_offset=row_offset)
        return _apply_fn(self.decoder, rng is None)({"params": params["decoder"]}, memory, mask,
                                                       rngs=_rngs(r[1]), memory_bias=key_bias, row_offset=row_offset)

    def discriminate(self, params, x, mask, rng=None, row_offset=None) -> dict:
        """-> dict(states (B, T, d), hidden (B, d), prob (B,))."""
        return _apply_fn(self.discriminator, rng is None)({"params": params["discriminator"]}, x, mask,
                                                             rngs=_rngs(rng), row_offset=row_offset)


@functools.lru_cache(maxsize=None)
def _apply_fn(module, deterministic: bool):
    """``module.apply`` as a nested ``jax.jit``.

    An update calls each network several times (three stages, two generator and
    three discriminator passes each); as a nested jit a network is traced once
    per input shapes and reused by JAX for every such call and its derivatives,
    instead of tracing Flax's module code each time.  XLA inlines the calls
    into the enclosing program, so it trains to the same parameters bit for bit
    (the default's update: 55,607 -> 55,556 HLO instructions after XLA's passes,
    the same SHA-256 after three updates); lowering an update takes about half
    as long (the default's 4.1-4.3 -> 2.0-2.2 s, the four SumMe-shaped ones
    26.7-28.6 -> 12.7-13.1 s on the 2-core CPU).  Only ever called under an
    enclosing jit (the train step, the scorer), whose compiler options apply.
    """
    return jax.jit(functools.partial(module.apply, deterministic=deterministic))


def _rngs(rng):
    return {"dropout": rng} if rng is not None else {}


def count_params(params) -> dict:
    out = {p: int(sum(x.size for x in jax.tree_util.tree_leaves(params[p]))) for p in params}
    out["total"] = sum(out.values())
    return out


__all__ = ["PARTS", "SGVS", "Selector", "Encoder", "Decoder", "Discriminator", "count_params"]
