"""The Flax CLIP loader, with a tiny randomly initialised CLIP saved to disk."""

import json
import os

import numpy as np
import pytest

from sgvs_jax.clip_features import ClipEncoder, ClipError, save_random_clip


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_random_clip(str(tmp_path_factory.mktemp("clip")), seed=0)


@pytest.fixture(scope="module")
def encoder(clip_dir):
    return ClipEncoder(clip_dir, batch_size=8)


def test_image_features(encoder):
    assert (encoder.image_size, encoder.dim) == (32, 24)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)
    feats = encoder.encode_images(frames)
    assert feats.shape == (11, 24) and feats.dtype == np.float32
    # batching (8 + a padded 3) gives the rows of one-by-one encoding, and the model's own call
    np.testing.assert_allclose(feats[9:], encoder.encode_images(frames[9:]), rtol=1e-5, atol=1e-5)
    direct = np.asarray(encoder.model.get_image_features(encoder.preprocess(frames[:2])))
    np.testing.assert_allclose(feats[:2], direct, rtol=1e-5, atol=1e-5)
    # different images, different directions (a random CLIP with the library's init fails this)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert (unit @ unit.T)[np.triu_indices(11, 1)].max() < 0.999
    with pytest.raises(ClipError, match=r"expected \(N, 32, 32, 3\)"):
        encoder.encode_images(frames[:, :16])


def test_text_tokens_share_the_joint_space(encoder):
    tokens, pooled = encoder.encode_text("a dog on a skateboard")
    ids = encoder.tokenizer(["a dog on a skateboard"])["input_ids"][0]
    assert tokens.shape == (len(ids), 24)  # start + one token per character + end
    enc = encoder.tokenizer(["a dog on a skateboard"], padding="max_length", max_length=77, return_tensors="np")
    reference = np.asarray(encoder.model.get_text_features(enc["input_ids"], enc["attention_mask"]))[0]
    np.testing.assert_allclose(pooled, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tokens[-1], pooled)
    other_tokens, other = encoder.encode_text("cooking pasta", max_tokens=5)
    assert other_tokens.shape == (5, 24)
    assert other @ pooled / np.linalg.norm(other) / np.linalg.norm(pooled) < 0.99
    with pytest.raises(ClipError, match="empty text"):
        encoder.encode_text("  ")


def test_preprocessing_reads_the_model_folder(clip_dir, tmp_path):
    import shutil
    d = str(tmp_path / "clip")
    shutil.copytree(clip_dir, d)
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}, f)
    enc = ClipEncoder(d)
    x = enc.preprocess(np.full((1, 32, 32, 3), 255, np.uint8))
    assert x.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(x, 2.0)
    assert enc.describe()["clip_mean"] == [0.5, 0.5, 0.5]


def test_bad_model_folders(clip_dir, tmp_path):
    with pytest.raises(ClipError, match="CLIP model directory not found"):
        ClipEncoder(str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ClipError, match=f"{broken}: cannot load a Flax CLIP model"):
        ClipEncoder(str(broken))
    import shutil
    no_tok = str(tmp_path / "no_tokenizer")
    shutil.copytree(clip_dir, no_tok)
    os.remove(os.path.join(no_tok, "vocab.json"))
    with pytest.raises(ClipError, match="cannot load the CLIP tokenizer"):
        ClipEncoder(no_tok)
