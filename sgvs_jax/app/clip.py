"""CLIP image and text features with sgvs_jax's own Flax CLIP (:mod:`sgvs_jax.app.clip_model`).

The model is loaded from a local folder in the Hugging Face layout: ``config.json``,
``model.safetensors`` (the published checkpoints' files) and ``tokenizer.json``
(read by the ``tokenizers`` package).  Image features are CLIP's joint-space image
embedding; text tokens are the text transformer's final states passed through the
same ``text_projection``, so the pooled title embedding equals the token at the end
position and both live in the image features' space.

Image preprocessing is CLIP's: shorter side resized to ``image_size`` (bicubic, by
PyAV when decoding), centre crop, per-channel normalisation with the mean and std
of the model folder's ``preprocessor_config.json`` (OpenAI's values if absent).
A folder written by transformers 4's ``FlaxCLIPModel.save_pretrained`` converts
once: ``python -m sgvs_jax.app.clip OLD_DIR NEW_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from sgvs_jax import require_extra
from sgvs_jax.app.clip_model import CLIP, ClipConfig, ClipError, TowerConfig, load_clip, names, save_clip

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# CLIP's pre-tokenisation: special tokens, contractions, letter runs, single digits, other symbol runs.
SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def clip_tokenizer(vocab: dict, merges: list):
    """CLIP's byte-level BPE tokenizer (lower-cased, ``</w>`` word ends, start and end
    tokens around every text) as a ``tokenizers.Tokenizer``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=EOS, end_of_word_suffix="</w>", fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(SPLIT), behavior="removed", invert=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    # (sep, cls) by position: tokenizers 0.23 renamed the keyword ``cls`` (``cls_token``).
    tok.post_processor = processors.RobertaProcessing((EOS, vocab[EOS]), (BOS, vocab[BOS]),
                                                      trim_offsets=False, add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def tokenizer_from_vocab(vocab_path: str, merges_path: str):
    """The tokenizer of a ``vocab.json`` + ``merges.txt`` pair (the older CLIP layout)."""
    with open(vocab_path) as f:
        vocab = json.load(f)
    with open(merges_path) as f:
        merges = [tuple(line.split()) for line in f.read().splitlines()[1:] if line.strip()]
    return clip_tokenizer(vocab, merges)


MATMUL_DTYPES = ("auto", "float32", "bfloat16")


def resolve_matmul_dtype(matmul_dtype: str) -> str:
    """'auto': bfloat16 products where they were measured faster (a CPU with AVX512-BF16
    or AMX-BF16: 1.7x the float32 image features, benchmarks/summarize_speed.py), else
    float32 (CPUs without bf16 units, and accelerators, where it was not measured)."""
    if matmul_dtype not in MATMUL_DTYPES:
        raise ClipError(f"CLIP matmul dtype {matmul_dtype!r} is not one of {MATMUL_DTYPES}")
    if matmul_dtype != "auto":
        return matmul_dtype
    import jax

    from sgvs_jax.provenance import cpu
    bf16_units = {"avx512_bf16", "amx_bf16"} & set(cpu()["features"])
    return "bfloat16" if jax.default_backend() == "cpu" and bf16_units else "float32"


class ClipEncoder:
    """A CLIP with its tokenizer and preprocessing constants.

    ``matmul_dtype``: the operand type of the dense products ('float32', 'bfloat16' or
    'auto', see :func:`resolve_matmul_dtype`); float32 reproduces the published model's
    features to float rounding, bfloat16 to about 1e-4 (cosine > 0.9999).

    Attributes:
      name: the folder it was loaded from.
      image_size: side of the square CLIP input.
      dim: dimension of the joint (projection) space.
    """

    def __init__(self, name_or_path: str, batch_size: int = 64, matmul_dtype: str = "float32"):
        import jax
        require_extra("safetensors", "CLIP features")
        Tokenizer = require_extra("tokenizers", "CLIP features").Tokenizer
        self.name, self.batch_size = name_or_path, batch_size
        if not os.path.isdir(name_or_path):
            raise ClipError(f"{name_or_path}: CLIP model directory not found (a folder with config.json, "
                            "model.safetensors and tokenizer.json; nothing is downloaded)")
        self.matmul_dtype = resolve_matmul_dtype(matmul_dtype)
        self.config, self.params = load_clip(name_or_path)
        tok_path = os.path.join(name_or_path, "tokenizer.json")
        try:
            self.tokenizer = Tokenizer.from_file(tok_path)
        except Exception as e:  # missing or malformed
            raise ClipError(f"{tok_path}: cannot load the CLIP tokenizer ({type(e).__name__}: "
                            f"{str(e)[:300]})") from e
        cfg = self.config
        self.image_size, self.dim, self.context_length = cfg.image_size, cfg.projection_dim, cfg.context_length
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        pre = os.path.join(name_or_path, "preprocessor_config.json")
        if os.path.exists(pre):
            with open(pre) as f:
                p = json.load(f)
            self.mean = tuple(p.get("image_mean", self.mean))
            self.std = tuple(p.get("image_std", self.std))
        model = CLIP(cfg.with_matmul_dtype(self.matmul_dtype))
        self._image = jax.jit(lambda params, px: model.apply({"params": params}, px, method=CLIP.image_features))
        self._text = jax.jit(lambda params, ids, mask: model.apply({"params": params}, ids, mask,
                                                                   method=CLIP.text_tokens))

    def describe(self) -> dict:
        """What to record next to features extracted with this model."""
        return {"clip_model": self.name, "clip_dim": self.dim, "clip_image_size": self.image_size,
                "clip_mean": list(self.mean), "clip_std": list(self.std), "clip_matmul_dtype": self.matmul_dtype}

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB, S = image_size -> (N, S, S, 3) float32 normalised."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.image_size, self.image_size, 3):
            raise ClipError(f"{self.name}: expected (N, {self.image_size}, {self.image_size}, 3) frames, "
                            f"got {frames.shape}")
        x = frames.astype(np.float32) / 255.0
        return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, dim) float32 CLIP image features (unnormalised).

        Runs in fixed-size batches (the last one padded) so jit compiles once.
        """
        n = len(frames)
        out = []
        starts = range(0, n, self.batch_size)
        if len(starts) > 1:  # a bar with ETA on a terminal (tqdm leaves it out elsewhere)
            starts = require_extra("tqdm", "progress bars").tqdm(starts, desc="CLIP frames", unit="batch",
                                                                 leave=False, disable=None)
        for i in starts:
            chunk = self.preprocess(frames[i:i + self.batch_size])
            m = chunk.shape[0]
            if m < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - m,) + chunk.shape[1:], np.float32)])
            out.append(np.asarray(self._image(self.params, chunk))[:m])
        feats = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        if not np.all(np.isfinite(feats)):
            raise ClipError(f"{self.name}: image features contain NaN/inf")
        return feats

    def token_ids(self, text: str) -> np.ndarray:
        """The text's token ids, start and end tokens included, cut to the context length
        (the end token kept)."""
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.context_length:
            ids = ids[:self.context_length - 1] + ids[-1:]
        return np.asarray(ids, np.int32)

    def encode_text(self, text: str, max_tokens: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """A title or prompt -> (tokens (L, dim), pooled (dim,)) in CLIP's joint space.

        ``tokens`` holds the L real tokens (start, words, end; no padding), at most
        ``max_tokens`` (the first ones); ``pooled`` is the end token's feature (CLIP's
        text embedding).
        """
        if not text or not text.strip():
            raise ClipError("empty text: give a title or prompt")
        ids = self.token_ids(text)
        length = len(ids)
        padded = np.full((1, self.context_length), self.config.eos_token_id, np.int32)
        padded[0, :length] = ids
        mask = np.arange(self.context_length)[None] < length
        tokens = np.asarray(self._text(self.params, padded, mask))[0, :length]
        pooled = tokens[-1]
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        return tokens.astype(np.float32), pooled.astype(np.float32)


TRANSFORMERS_FLAX_FILES = ("config.json", "flax_model.msgpack", "vocab.json", "merges.txt")


def convert_transformers_flax(source: str, directory: str) -> None:
    """A folder saved by transformers 4's ``FlaxCLIPModel.save_pretrained``
    (``config.json``, ``flax_model.msgpack``, ``vocab.json``, ``merges.txt``) -> a folder
    in the layout :class:`ClipEncoder` reads.  ``directory`` must not exist; it appears
    complete or not at all (written beside it, then renamed), and ``source`` is only read."""
    import tempfile

    from flax.serialization import msgpack_restore
    if not os.path.isdir(source):
        raise ClipError(f"{source}: folder not found (OLD: a folder saved by transformers' FlaxCLIPModel)")
    if os.path.exists(directory):
        what = "is OLD itself" if os.path.realpath(directory) == os.path.realpath(source) else "exists"
        raise ClipError(f"{directory} {what}: give a new folder for NEW (nothing is written over)")
    if os.path.realpath(directory).startswith(os.path.realpath(source) + os.sep):
        raise ClipError(f"{directory} is inside OLD {source}: give a folder outside it")
    missing = [n for n in TRANSFORMERS_FLAX_FILES if not os.path.isfile(os.path.join(source, n))]
    if missing and os.path.isfile(os.path.join(source, "model.safetensors")):
        raise ClipError(f"{source} is already in the layout sgvs_jax reads (model.safetensors): use it as the "
                        "CLIP folder directly, no conversion needed")
    if missing:
        raise ClipError(f"{source}: no {', '.join(missing)} (a folder saved by transformers' "
                        f"FlaxCLIPModel.save_pretrained has {', '.join(TRANSFORMERS_FLAX_FILES)})")
    cfg_path = os.path.join(source, "config.json")
    try:
        with open(cfg_path) as f:
            config = ClipConfig.from_hf(json.load(f))
    except (ValueError, TypeError, AttributeError, KeyError, UnicodeDecodeError) as e:
        raise ClipError(f"{cfg_path}: not a CLIP config.json ({type(e).__name__}: {e})") from e
    weights = os.path.join(source, "flax_model.msgpack")
    try:
        with open(weights, "rb") as f:
            flat = flatten_dict(msgpack_restore(f.read()), sep=".")
    except Exception as e:  # msgpack raises its own types on garbage
        raise ClipError(f"{weights}: not a Flax msgpack checkpoint ({type(e).__name__}: {str(e)[:200]})") from e
    params = {}
    for name, path, transform in names(config):
        base, leaf = name.rsplit(".", 1)
        if leaf == "weight":  # transformers' Flax names; its arrays are already in our layout
            key = f"{base}.{'kernel' if transform else 'scale' if 'norm' in base else 'embedding'}"
        else:
            key = name
        if key not in flat:
            raise ClipError(f"{weights}: no parameter '{key}'")
        params[path] = np.asarray(flat[key], np.float32)
    try:
        tokenizer = tokenizer_from_vocab(os.path.join(source, "vocab.json"), os.path.join(source, "merges.txt"))
    except Exception as e:  # noqa: BLE001 - json's and the tokenizers package's (Rust) errors alike
        raise ClipError(f"{source}/vocab.json, merges.txt: not a CLIP vocabulary ({type(e).__name__}: {e})") from e
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(parent):
        raise ClipError(f"{directory}: its folder {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".partial", dir=parent)
    try:
        save_clip(tmp, config, unflatten_dict(params))
        tokenizer.save(os.path.join(tmp, "tokenizer.json"))
        if os.path.exists(os.path.join(source, "preprocessor_config.json")):
            shutil.copyfile(os.path.join(source, "preprocessor_config.json"),
                            os.path.join(tmp, "preprocessor_config.json"))
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def byte_level_vocab() -> dict:
    """CLIP's byte-level alphabet (each byte as a character, alone and as a word end)
    with its start and end tokens, and no merges: words split into characters."""
    from tokenizers.pre_tokenizers import ByteLevel
    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    vocab.update({BOS: len(vocab), EOS: len(vocab) + 1})
    return vocab


def save_random_clip(directory: str, seed: int = 0, width: int = 32, layers: int = 2, image_size: int = 32,
                     patch_size: int = 8, projection_dim: int = 24, act: str = "quick_gelu",
                     config: Optional[ClipConfig] = None) -> str:
    """Saves a randomly initialised CLIP in the published layout (config.json,
    model.safetensors, a byte-level tokenizer.json) to ``directory``: tiny by default,
    or of ``config``'s sizes (``ClipConfig.from_hf({})`` is ViT-B/32).

    For tests, benchmarks and offline demos only: its features carry no semantics.
    The weights are LeCun-normal (embeddings N(0, 0.5^2)), so that features vary with
    the image as a trained CLIP's do (std-0.02 weights map every image to almost one
    feature).
    """
    import dataclasses

    import jax
    import jax.numpy as jnp
    vocab = byte_level_vocab()
    if config is None:
        tower = TowerConfig(width, layers, 2, 2 * width, act)
        config = ClipConfig(text=tower, vision=tower, vocab_size=len(vocab), context_length=77,
                            image_size=image_size, patch_size=patch_size, projection_dim=projection_dim,
                            eos_token_id=vocab[EOS])
    config = dataclasses.replace(config, eos_token_id=vocab[EOS], vocab_size=max(config.vocab_size, len(vocab)))
    image_size = config.image_size
    params = CLIP(config).init(jax.random.PRNGKey(seed), jnp.zeros((1, image_size, image_size, 3)),
                               jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), bool))["params"]
    rng = np.random.default_rng(seed)

    def redraw(path, x):
        name, x = jax.tree_util.keystr(path), np.asarray(x)
        if name.endswith("['kernel']"):
            return (rng.standard_normal(x.shape) / np.sqrt(np.prod(x.shape[:-1]))).astype(np.float32)
        if "embedding" in name:
            return (0.5 * rng.standard_normal(x.shape)).astype(np.float32)
        return x

    save_clip(directory, config, jax.tree_util.tree_map_with_path(redraw, params))
    clip_tokenizer(vocab, []).save(os.path.join(directory, "tokenizer.json"))
    return directory


def main(argv=None):
    """``python -m sgvs_jax.app.clip OLD_FLAX_CLIP_DIR NEW_DIR``."""
    from sgvs_jax import cli
    p = cli.ArgumentParser(description="Convert a transformers-Flax CLIP folder to the layout sgvs_jax reads.",
                           outputs=False)
    p.add_argument("old", metavar="OLD_FLAX_CLIP_DIR", help="a folder saved by FlaxCLIPModel.save_pretrained")
    p.add_argument("new", metavar="NEW_DIR", help="the folder to create (must not exist)")
    a = p.parse_args(argv)
    cli.run(lambda: convert_transformers_flax(a.old, a.new), a.debug)
    print(f"wrote {a.new} (config.json, model.safetensors, tokenizer.json)")


if __name__ == "__main__":
    main()
