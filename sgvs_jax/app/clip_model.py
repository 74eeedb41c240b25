"""CLIP in Flax linen: the ViT image tower and the text transformer, with the
published weights read from the Hugging Face layout (``config.json``,
``model.safetensors`` with PyTorch parameter names, ``tokenizer.json``) by the
``safetensors`` and ``tokenizers`` packages; no ``transformers``, no torch.

Every published ViT CLIP (B/32, B/16, L/14, ...) is these modules with other sizes
(:class:`ClipConfig`, read from ``config.json``).  :func:`names` maps each of our
parameters to its name in the checkpoint, both ways, so :func:`save_clip` writes
the same layout (tiny random checkpoints for tests and offline demos).
"""

from __future__ import annotations

import dataclasses
import json
import os

import flax.linen as nn
from flax.traverse_util import flatten_dict, unflatten_dict
import jax
import jax.numpy as jnp
import numpy as np
from sgvs_jax.errors import ClipError


ACTIVATIONS = {"quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
               "gelu": lambda x: jax.nn.gelu(x, approximate=False),
               "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
               "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
               "relu": jax.nn.relu}


@dataclasses.dataclass(frozen=True)
class TowerConfig:
    """One transformer's sizes; ``matmul_dtype``: the operand type of its dense layers'
    products (a run-time choice, not the checkpoint's: see :func:`dense`)."""

    width: int
    layers: int
    heads: int
    mlp: int
    act: str = "quick_gelu"
    eps: float = 1e-5
    matmul_dtype: str = "float32"


def dense(features: int, matmul_dtype: str = "float32", **kw) -> nn.Dense:
    """``nn.Dense`` whose product takes its operands in ``matmul_dtype`` and accumulates
    and returns float32 (parameters, normalisation, softmax and residuals stay float32).
    'bfloat16' halves the products' cost on hardware with bf16 units (CPUs with
    AVX512-BF16 or AMX, GPUs, TPUs) for features within about 1e-4 of float32's."""
    if matmul_dtype == "float32":
        return nn.Dense(features, **kw)
    dt = jnp.dtype(matmul_dtype)

    def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
        return jax.lax.dot_general(lhs.astype(dt), rhs.astype(dt), dimension_numbers, precision=precision,
                                   preferred_element_type=jnp.float32)

    return nn.Dense(features, dot_general=dot_general, **kw)


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """The sizes of one CLIP.  ``image_size`` / ``patch_size``: the square input and
    its patches; ``context_length``: the text positions; ``eos_token_id``: the
    token whose state is the pooled text feature."""

    text: TowerConfig
    vision: TowerConfig
    vocab_size: int
    context_length: int
    image_size: int
    patch_size: int
    projection_dim: int
    eos_token_id: int

    def with_matmul_dtype(self, matmul_dtype: str) -> "ClipConfig":
        """The same sizes with every dense product in ``matmul_dtype`` (see :func:`dense`)."""
        return dataclasses.replace(self, text=dataclasses.replace(self.text, matmul_dtype=matmul_dtype),
                                   vision=dataclasses.replace(self.vision, matmul_dtype=matmul_dtype))

    @classmethod
    def from_hf(cls, d: dict) -> "ClipConfig":
        """From a Hugging Face ``config.json`` (its defaults where a key is absent)."""
        t, v = d.get("text_config") or {}, d.get("vision_config") or {}

        def tower(c, width, layers, heads, mlp):
            act = c.get("hidden_act", "quick_gelu")
            if act not in ACTIVATIONS:
                raise ClipError(f"hidden_act {act!r} is not one of {sorted(ACTIVATIONS)}")
            return TowerConfig(c.get("hidden_size", width), c.get("num_hidden_layers", layers),
                               c.get("num_attention_heads", heads), c.get("intermediate_size", mlp), act,
                               c.get("layer_norm_eps", 1e-5))

        return cls(text=tower(t, 512, 12, 8, 2048), vision=tower(v, 768, 12, 12, 3072),
                   vocab_size=t.get("vocab_size", 49408), context_length=t.get("max_position_embeddings", 77),
                   image_size=v.get("image_size", 224), patch_size=v.get("patch_size", 32),
                   projection_dim=d.get("projection_dim", 512), eos_token_id=t.get("eos_token_id", 49407))

    def to_hf(self) -> dict:
        def tower(c):
            return {"hidden_size": c.width, "num_hidden_layers": c.layers, "num_attention_heads": c.heads,
                    "intermediate_size": c.mlp, "hidden_act": c.act, "layer_norm_eps": c.eps}

        return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": self.projection_dim,
                "text_config": {**tower(self.text), "vocab_size": self.vocab_size, "eos_token_id": self.eos_token_id,
                                "bos_token_id": self.eos_token_id - 1, "pad_token_id": self.eos_token_id,
                                "max_position_embeddings": self.context_length, "projection_dim": self.projection_dim},
                "vision_config": {**tower(self.vision), "image_size": self.image_size, "patch_size": self.patch_size,
                                  "num_channels": 3, "projection_dim": self.projection_dim}}


class Attention(nn.Module):
    """Multi-head self-attention.  x: (N, L, W), bias: additive, broadcast to (N, H, L, L)."""
    config: TowerConfig

    @nn.compact
    def __call__(self, x, bias=None):
        c = self.config
        n, length, _ = x.shape
        split = lambda y: y.reshape(n, length, c.heads, c.width // c.heads)  # noqa: E731
        q, k, v = (split(dense(c.width, c.matmul_dtype, name=f"{p}_proj")(x)) for p in "qkv")
        logits = jnp.einsum("nqhd,nkhd->nhqk", q, k) / np.sqrt(c.width // c.heads)
        if bias is not None:
            logits = logits + bias
        y = jnp.einsum("nhqk,nkhd->nqhd", jax.nn.softmax(logits, -1), v).reshape(n, length, c.width)
        return dense(c.width, c.matmul_dtype, name="out_proj")(y)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block.  x: (N, L, W) -> (N, L, W)."""
    config: TowerConfig

    @nn.compact
    def __call__(self, x, bias=None):
        c = self.config
        x = x + Attention(c, name="self_attn")(nn.LayerNorm(c.eps, name="layer_norm1")(x), bias)
        h = dense(c.mlp, c.matmul_dtype, name="fc1")(nn.LayerNorm(c.eps, name="layer_norm2")(x))
        return x + dense(c.width, c.matmul_dtype, name="fc2")(ACTIVATIONS[c.act](h))


class VisionTower(nn.Module):
    """pixels (N, S, S, 3), normalised -> (N, W) the class token's final state."""
    config: ClipConfig

    @nn.compact
    def __call__(self, pixels):
        c, w = self.config, self.config.vision.width
        x = nn.Conv(w, (c.patch_size,) * 2, strides=(c.patch_size,) * 2, padding="VALID", use_bias=False,
                    name="patch_embedding")(pixels)
        x = x.reshape(x.shape[0], -1, w)
        cls = self.param("class_embedding", nn.initializers.normal(1.0), (w,))
        x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, w)), x], 1)
        x = x + self.param("position_embedding", nn.initializers.normal(0.02), (x.shape[1], w))
        x = nn.LayerNorm(c.vision.eps, name="pre_layrnorm")(x)
        for i in range(c.vision.layers):
            x = Block(c.vision, name=f"layers_{i}")(x)
        return nn.LayerNorm(c.vision.eps, name="post_layernorm")(x[:, 0])


class TextTower(nn.Module):
    """ids (N, L) int, mask (N, L) bool -> (N, L, W) final states (causal attention)."""
    config: ClipConfig

    @nn.compact
    def __call__(self, ids, mask):
        c, w = self.config, self.config.text.width
        x = nn.Embed(c.vocab_size, w, name="token_embedding")(ids)
        x = x + self.param("position_embedding", nn.initializers.normal(0.01), (c.context_length, w))[:ids.shape[1]]
        allowed = jnp.tril(jnp.ones((ids.shape[1],) * 2, bool))[None, None] & mask[:, None, None, :]
        bias = jnp.where(allowed, 0.0, jnp.finfo(jnp.float32).min)
        for i in range(c.text.layers):
            x = Block(c.text, name=f"layers_{i}")(x, bias)
        return nn.LayerNorm(c.text.eps, name="final_layer_norm")(x)


class CLIP(nn.Module):
    """The two towers and their projections into the joint space (no bias)."""
    config: ClipConfig

    def setup(self):
        self.vision_model = VisionTower(self.config)
        self.text_model = TextTower(self.config)
        c = self.config
        self.visual_projection = dense(c.projection_dim, c.vision.matmul_dtype, use_bias=False)
        self.text_projection = dense(c.projection_dim, c.text.matmul_dtype, use_bias=False)

    def image_features(self, pixels):
        """(N, S, S, 3) -> (N, P) CLIP image features (``get_image_features``)."""
        return self.visual_projection(self.vision_model(pixels))

    def text_tokens(self, ids, mask):
        """(N, L) -> (N, L, P) every token's final state in the joint space; the EOS
        token's is the pooled text feature (``get_text_features``)."""
        return self.text_projection(self.text_model(ids, mask))

    def __call__(self, pixels, ids, mask):
        return self.image_features(pixels), self.text_tokens(ids, mask)


def _tower_names(prefix: str, ours: tuple, layers: int) -> list:
    out = []
    for i in range(layers):
        hf, me = f"{prefix}.encoder.layers.{i}", ours + (f"layers_{i}",)
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(f"{hf}.self_attn.{p}.weight", me + ("self_attn", p, "kernel"), "linear"),
                    (f"{hf}.self_attn.{p}.bias", me + ("self_attn", p, "bias"), None)]
        for p, q in (("layer_norm1", "layer_norm1"), ("layer_norm2", "layer_norm2")):
            out += [(f"{hf}.{p}.weight", me + (q, "scale"), None), (f"{hf}.{p}.bias", me + (q, "bias"), None)]
        for p in ("fc1", "fc2"):
            out += [(f"{hf}.mlp.{p}.weight", me + (p, "kernel"), "linear"), (f"{hf}.mlp.{p}.bias", me + (p, "bias"), None)]
    return out


def names(config: ClipConfig) -> list:
    """``[(checkpoint name, our parameter path, transform)]``: transform 'linear'
    transposes (out, in) <-> (in, out), 'conv' (out, in, kh, kw) <-> (kh, kw, in, out)."""
    v, t = ("vision_model",), ("text_model",)
    ln = lambda hf, me: [(f"{hf}.weight", me + ("scale",), None), (f"{hf}.bias", me + ("bias",), None)]  # noqa: E731
    return ([("vision_model.embeddings.class_embedding", v + ("class_embedding",), None),
             ("vision_model.embeddings.patch_embedding.weight", v + ("patch_embedding", "kernel"), "conv"),
             ("vision_model.embeddings.position_embedding.weight", v + ("position_embedding",), None)]
            + ln("vision_model.pre_layrnorm", v + ("pre_layrnorm",))
            + _tower_names("vision_model", v, config.vision.layers)
            + ln("vision_model.post_layernorm", v + ("post_layernorm",))
            + [("text_model.embeddings.token_embedding.weight", t + ("token_embedding", "embedding"), None),
               ("text_model.embeddings.position_embedding.weight", t + ("position_embedding",), None)]
            + _tower_names("text_model", t, config.text.layers)
            + ln("text_model.final_layer_norm", t + ("final_layer_norm",))
            + [("visual_projection.weight", ("visual_projection", "kernel"), "linear"),
               ("text_projection.weight", ("text_projection", "kernel"), "linear")])


def _to_ours(x, transform):
    return x.T if transform == "linear" else x.transpose(2, 3, 1, 0) if transform == "conv" else x


def _to_checkpoint(x, transform):
    return x.T if transform == "linear" else x.transpose(3, 2, 0, 1) if transform == "conv" else x


def abstract_params(config: ClipConfig) -> dict:
    """The parameter shapes of :class:`CLIP` (no arrays are made)."""
    s = config.image_size
    return jax.eval_shape(lambda: CLIP(config).init(jax.random.PRNGKey(0), jnp.zeros((1, s, s, 3)),
                                                    jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), bool)))["params"]


def load_clip(directory: str) -> tuple[ClipConfig, dict]:
    """(config, params) from a folder in the Hugging Face layout; a missing file, key
    or a shape that disagrees with ``config.json`` is a ClipError naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    cfg_path, weights = os.path.join(directory, "config.json"), os.path.join(directory, "model.safetensors")
    if not os.path.exists(weights):
        hint = (" (it holds flax_model.msgpack, the layout of transformers 4's Flax models: convert it once "
                f"with python -m sgvs_jax.app.clip {directory} NEW_DIR)"
                if os.path.exists(os.path.join(directory, "flax_model.msgpack")) else "")
        raise ClipError(f"{directory}: no model.safetensors{hint}")
    try:
        with open(cfg_path) as f:
            config = ClipConfig.from_hf(json.load(f))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ClipError(f"{cfg_path}: not a CLIP config.json ({type(e).__name__}: {e})") from e
    try:
        tensors = load_file(weights)
    except (OSError, SafetensorError) as e:
        raise ClipError(f"{weights}: unreadable ({type(e).__name__}: {e})") from e
    shapes = flatten_dict(abstract_params(config))
    params = {}
    for name, path, transform in names(config):
        if name not in tensors:
            raise ClipError(f"{weights}: no tensor '{name}'")
        x = _to_ours(np.asarray(tensors[name], np.float32), transform)
        if x.shape != tuple(shapes[path].shape):
            raise ClipError(f"{weights}: '{name}' has shape {x.shape} (as ours), config.json implies "
                            f"{shapes[path].shape}")
        params[path] = x
    return config, unflatten_dict(params)


def save_clip(directory: str, config: ClipConfig, params: dict) -> None:
    """Writes ``config.json`` and ``model.safetensors`` in the Hugging Face layout."""
    from safetensors.numpy import save_file
    os.makedirs(directory, exist_ok=True)
    flat, tensors = flatten_dict(params), {}
    for name, path, transform in names(config):
        tensors[name] = np.ascontiguousarray(_to_checkpoint(np.asarray(flat[path], np.float32), transform))
    tensors["logit_scale"] = np.asarray(np.log(1 / 0.07), np.float32)  # CLIP's; unused here
    save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config.to_hf(), f, indent=1)
