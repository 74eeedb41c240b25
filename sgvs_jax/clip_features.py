"""CLIP image and text features with a Flax CLIP (``transformers`` 4.x ``FlaxCLIPModel``).

The model is loaded from a local directory (``save_pretrained`` layout: config.json,
flax_model.msgpack, tokenizer files) or a hub name where the hub is reachable.
Image features are ``get_image_features`` (CLIP's joint space); text tokens are
the text transformer's final hidden states passed through the same
``text_projection``, so the pooled title embedding equals the token at the EOS
position and both live in the image features' space.

Image preprocessing is CLIP's: shorter side resized to ``image_size`` (bicubic, by
PyAV when decoding), centre crop, per-channel normalisation with the mean and std
of the model directory's ``preprocessor_config.json`` (OpenAI's values if absent).
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from sgvs_jax import require_extra

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipError(ValueError):
    """A CLIP model that cannot be loaded or used; the message names it."""


def _transformers():
    return require_extra("transformers", "CLIP features")


class ClipEncoder:
    """A Flax CLIP with its tokenizer and preprocessing constants.

    Attributes:
      name: what it was loaded from (directory or hub name).
      image_size: side of the square CLIP input.
      dim: dimension of the joint (projection) space.
    """

    def __init__(self, name_or_path: str, batch_size: int = 64):
        tf = _transformers()
        import jax
        self.name = name_or_path
        self.batch_size = batch_size
        local = os.path.isdir(name_or_path)
        looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
        if not local and looks_like_path:
            raise ClipError(f"{name_or_path}: CLIP model directory not found")
        try:
            self.model = tf.FlaxCLIPModel.from_pretrained(name_or_path)
        except Exception as e:  # missing/corrupt files, offline hub, PyTorch-only weights
            hint = ("" if local else " (no local directory of that name; downloading needs the hub: "
                    "save the model with save_pretrained() and pass the directory)")
            raise ClipError(f"{name_or_path}: cannot load a Flax CLIP model{hint}: "
                            f"{type(e).__name__}: {str(e)[:300]}") from e
        try:
            self.tokenizer = tf.CLIPTokenizer.from_pretrained(name_or_path)
        except Exception as e:
            raise ClipError(f"{name_or_path}: cannot load the CLIP tokenizer (vocab.json, merges.txt): "
                            f"{type(e).__name__}: {str(e)[:300]}") from e
        cfg = self.model.config
        self.image_size = int(cfg.vision_config.image_size)
        self.dim = int(cfg.projection_dim)
        self.context_length = int(cfg.text_config.max_position_embeddings)
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        pre = os.path.join(name_or_path, "preprocessor_config.json")
        if local and os.path.exists(pre):
            with open(pre) as f:
                p = json.load(f)
            self.mean = tuple(p.get("image_mean", self.mean))
            self.std = tuple(p.get("image_std", self.std))
        model = self.model
        self._image = jax.jit(lambda params, px: model.get_image_features(px, params=params))
        self._text = jax.jit(self._text_fn)

    def describe(self) -> dict:
        """What to record next to features extracted with this model."""
        return {"clip_model": self.name, "clip_dim": self.dim, "clip_image_size": self.image_size,
                "clip_mean": list(self.mean), "clip_std": list(self.std)}

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB, S = image_size -> (N, 3, S, S) float32 normalised."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.image_size, self.image_size, 3):
            raise ClipError(f"{self.name}: expected (N, {self.image_size}, {self.image_size}, 3) frames, "
                            f"got {frames.shape}")
        x = frames.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x.transpose(0, 3, 1, 2)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, dim) float32 CLIP image features (unnormalised).

        Runs in fixed-size batches (the last one padded) so jit compiles once.
        """
        n = len(frames)
        out = []
        for i in range(0, n, self.batch_size):
            chunk = self.preprocess(frames[i:i + self.batch_size])
            m = chunk.shape[0]
            if m < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - m,) + chunk.shape[1:], np.float32)])
            out.append(np.asarray(self._image(self.model.params, chunk))[:m])
        feats = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        if not np.all(np.isfinite(feats)):
            raise ClipError(f"{self.name}: image features contain NaN/inf")
        return feats

    def _text_fn(self, params, input_ids, attention_mask):
        import jax.numpy as jnp

        def tokens(module, ids, am):
            pos = jnp.broadcast_to(jnp.arange(ids.shape[1]), ids.shape)
            return module.text_model(input_ids=ids, attention_mask=am, position_ids=pos,
                                     deterministic=True).last_hidden_state

        hidden = self.model.module.apply({"params": params}, input_ids, attention_mask, method=tokens)
        return hidden @ params["text_projection"]["kernel"]

    def encode_text(self, text: str, max_tokens: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """A title or prompt -> (tokens (L, dim), pooled (dim,)) in CLIP's joint space.

        ``tokens`` holds the L real tokens (start, words, end; no padding), at most
        ``max_tokens`` (the first ones); ``pooled`` is the end token's feature, what
        ``get_text_features`` returns.
        """
        if not text or not text.strip():
            raise ClipError("empty text: give a title or prompt")
        enc = self.tokenizer([text], padding="max_length", max_length=self.context_length, truncation=True,
                             return_tensors="np")
        ids, am = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
        proj = np.asarray(self._text(self.model.params, ids, am))[0]
        length = int(am.sum())
        tokens = proj[:length]
        pooled = tokens[-1]
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        return tokens.astype(np.float32), pooled.astype(np.float32)


def save_random_clip(directory: str, seed: int = 0, width: int = 32, layers: int = 2, image_size: int = 32,
                     patch_size: int = 8, projection_dim: int = 24) -> str:
    """Saves a tiny randomly initialised Flax CLIP (weights, config, byte-level
    tokenizer) to ``directory``, loadable by :class:`ClipEncoder`.

    For tests and offline demos only: its features carry no semantics.  The
    weights are redrawn LeCun-normal (embeddings N(0, 0.5^2)): with the library's
    std-0.02 initialisation every image maps to almost the same feature (cosine
    1.000), while these vary with the image as a trained CLIP's do.  The
    tokenizer has CLIP's byte-level alphabet and special tokens but no merges,
    so words split into characters.
    """
    import jax

    tf = _transformers()
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    os.makedirs(directory, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    bos, eos = len(vocab), len(vocab) + 1
    vocab.update({"<|startoftext|>": bos, "<|endoftext|>": eos})
    with open(os.path.join(directory, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(directory, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    tf.CLIPTokenizer(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")) \
        .save_pretrained(directory)
    common = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                  num_attention_heads=2)
    config = tf.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=bos,
                         eos_token_id=eos, pad_token_id=eos, **common),
        vision_config=dict(image_size=image_size, patch_size=patch_size, **common),
        projection_dim=projection_dim)
    model = tf.FlaxCLIPModel(config, seed=seed)
    rng = np.random.default_rng(seed)

    def redraw(path, x):
        name, x = jax.tree_util.keystr(path), np.asarray(x)
        if name.endswith("['kernel']"):
            return (rng.standard_normal(x.shape) / np.sqrt(np.prod(x.shape[:-1]))).astype(np.float32)
        if "embedding" in name:
            return (0.5 * rng.standard_normal(x.shape)).astype(np.float32)
        return x

    model.params = jax.tree_util.tree_map_with_path(redraw, model.params)
    model.save_pretrained(directory)
    return directory
