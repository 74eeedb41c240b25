"""SGVS networks: a shared projection, the selector (FSSA), the Transformer generator
(encoder, decoder) and the discriminator.

Every network reads the visual features through **one shared projection**
(:class:`~sgvs_jax.models.layers.Compress`: (B, T, D) -> (B, T, d)), computed once per
forward pass, as SUM-GAN-AAE's ``linear_compress`` feeds its selector, auto-encoder and
discriminator: the generator rebuilds ``x W`` and the discriminator judges it there,
the selector reads the projection of each step's standardized features, so the
D-dimensional features (2048 for I3D) are multiplied once per pass, not in every
network's input and the decoder's output.  The semantic tokens (FSSA's ``T_t``) and
the training-free teacher keep the features as they are.

Parameters live in one plain dict with a top-level key per part, so that the
incremental training stages can freeze and unfreeze whole subtrees::

    {'compress': ..., 'selector': ..., 'encoder': ..., 'decoder': ..., 'discriminator': ...}
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from sgvs_jax.data.batching import FRAME_SOURCES, TOKEN_SOURCES
from sgvs_jax.models.discriminator import Discriminator
from sgvs_jax.models.generator import Decoder, Encoder
from sgvs_jax.models.layers import Compress, TransformerConfig
from sgvs_jax.models.selector import Selector

PARTS = ("compress", "selector", "encoder", "decoder", "discriminator")


@dataclasses.dataclass(frozen=True)
class SGVS:
    """The Flax modules of SGVS (:func:`build_model`)."""

    compress_net: Compress
    selector: Selector
    encoder: Encoder
    decoder: Decoder
    discriminator: Discriminator

    def init(self, rng, batch) -> dict:
        """Parameters for a batch's shapes: ``{part: params}``."""
        k = jax.random.split(rng, 5)
        x, mask = jnp.asarray(batch["features"]), jnp.asarray(batch["mask"])
        params = {"compress": self.compress_net.init(k[4], x)["params"]}
        c = self.compress(params, x)
        params["selector"] = self.selector.init(k[0], c["selector"], mask, *(jnp.asarray(batch[f]) for f in
                                                                   ("tokens", "token_mask", "frame_sem")))["params"]
        params["encoder"] = self.encoder.init(k[1], c["raw"], mask)["params"]
        memory = self.encoder.apply({"params": params["encoder"]}, c["raw"], mask)
        params["decoder"] = self.decoder.init(k[2], memory, mask)["params"]
        params["discriminator"] = self.discriminator.init(k[3], c["raw"], mask)["params"]
        return params

    def compress(self, params, x) -> dict:
        """(B, T, D) visual features -> the projected video (``raw``) and the selector's view of it."""
        return self.compress_net.apply({"params": params["compress"]}, x)

    def select(self, params, batch, rng=None, compressed=None):
        """Selector outputs (see :class:`Selector`); dropout on when ``rng`` is given.
        ``compressed``: the batch's features already through :meth:`compress` (the train step's)."""
        c = self.compress(params, batch["features"]) if compressed is None else compressed
        return _apply_fn(self.selector, rng is None)({"params": params["selector"]}, c["selector"], batch["mask"],
                                                        batch["tokens"], batch["token_mask"],
                                                        batch["frame_sem"], rngs=_rngs(rng))

    def reconstruct(self, params, x_weighted, mask, rng=None, key_bias=None):
        """(B, T, d) weighted projected video -> (B, T, d) reconstruction.

        ``key_bias`` (B, T): the selection bottleneck's ``log g`` (see
        :mod:`sgvs_jax.models.bottleneck`), added to every attention over the steps.
        """
        r = jax.random.split(rng) if rng is not None else (None, None)
        memory = _apply_fn(self.encoder, rng is None)({"params": params["encoder"]}, x_weighted, mask,
                                                         rngs=_rngs(r[0]), key_bias=key_bias)
        return _apply_fn(self.decoder, rng is None)({"params": params["decoder"]}, memory, mask,
                                                       rngs=_rngs(r[1]), memory_bias=key_bias)

    def discriminate(self, params, x, mask, rng=None) -> dict:
        """(B, T, d) projected video -> dict(states (B, T, d), hidden (B, d), prob (B,))."""
        return _apply_fn(self.discriminator, rng is None)({"params": params["discriminator"]}, x, mask,
                                                             rngs=_rngs(rng))


def build_model(config) -> SGVS:
    """The model of a run config (``config.model``, ``config.data.semantic_sources``); the
    shared projection takes the visual features' size from the first batch (``init``)."""
    m, sources = config.model, tuple(config.data.semantic_sources)
    use_tokens = any(s in TOKEN_SOURCES for s in sources)
    use_frames = any(s in FRAME_SOURCES for s in sources)
    if m.use_fssa and not (use_tokens or use_frames):
        raise ValueError("model.use_fssa=True needs a token source in data.semantic_sources "
                         f"({TOKEN_SOURCES}) or CLIP frame features {FRAME_SOURCES}; got {sources}. "
                         "Set model.use_fssa=False for visual only.")
    tc = TransformerConfig.from_config(m)
    return SGVS(
        compress_net=Compress(d_model=m.d_model, visual_norm=m.visual_norm),
        selector=Selector(config=tc, num_layers=m.num_layers, use_fssa=m.use_fssa, use_frame_semantics=use_frames,
                          use_tokens=use_tokens, cosine_term=m.cosine_term),
        encoder=Encoder(config=tc, num_layers=m.num_layers),
        decoder=Decoder(config=tc, num_layers=m.num_layers, queries=m.decoder_queries),
        discriminator=Discriminator(config=tc, num_layers=m.num_layers),
    )


@functools.lru_cache(maxsize=None)
def _apply_fn(module, deterministic: bool):
    """``module.apply`` as a nested ``jax.jit``: an update calls each network several
    times (stages, generator and discriminator passes), and a nested jit traces Flax's
    module code once per input shapes instead of once per call.  XLA inlines it into
    the enclosing program (the train step, the scorer), so the numbers do not change."""
    return jax.jit(functools.partial(module.apply, deterministic=deterministic))


def _rngs(rng):
    return {"dropout": rng} if rng is not None else {}


def count_params(params) -> dict:
    out = {p: int(sum(x.size for x in jax.tree_util.tree_leaves(params[p]))) for p in params}
    out["total"] = sum(out.values())
    return out


__all__ = ["PARTS", "SGVS", "Selector", "Encoder", "Decoder", "Discriminator", "TransformerConfig",
           "build_model", "count_params"]
