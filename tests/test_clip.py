"""sgvs_jax's own Flax CLIP (app/clip_model.py) and its loader (app/clip.py): the same
features as a reference implementation (transformers 4's FlaxCLIPModel, a test-only
dependency) reading the same tiny random checkpoint in the published layout; the same
token ids as transformers' CLIPTokenizer; folders of the old layout convert; bad folders
are named."""

import json
import os
import shutil

import numpy as np
import pytest

from sgvs_jax.app.clip import (BOS, EOS, ClipEncoder, ClipError, clip_tokenizer, convert_transformers_flax,
                                    resolve_matmul_dtype, save_random_clip)

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_random_clip(str(tmp_path_factory.mktemp("clip")), seed=0)


@pytest.fixture(scope="module")
def encoder(clip_dir):
    return ClipEncoder(clip_dir, batch_size=8)


def reference(directory):
    return transformers.FlaxCLIPModel.from_pretrained(directory, from_pt=True)  # reads model.safetensors


# The tower shapes of the published checkpoints, at tiny width: B/32 and B/16 (224 / 32, 224 / 16
# patches), L/14 (patch 14), and the GELU of the newer checkpoints.
@pytest.mark.parametrize("image_size, patch_size, act", [(32, 8, "quick_gelu"), (32, 16, "quick_gelu"),
                                                         (28, 14, "gelu")])
def test_same_features_as_the_reference_on_the_same_checkpoint(tmp_path, image_size, patch_size, act):
    d = save_random_clip(str(tmp_path / "clip"), seed=1, image_size=image_size, patch_size=patch_size, act=act)
    ours, ref = ClipEncoder(d, batch_size=4), reference(d)
    frames = np.random.default_rng(0).integers(0, 256, (5, image_size, image_size, 3), dtype=np.uint8)
    expected = np.asarray(ref.get_image_features(ours.preprocess(frames).transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(ours.encode_images(frames), expected, rtol=1e-4, atol=1e-5)
    text = "A dog on a skateboard, 2 times!"
    tokens, pooled = ours.encode_text(text)
    ids = ours.token_ids(text)[None]
    np.testing.assert_allclose(pooled, np.asarray(ref.get_text_features(ids, np.ones_like(ids)))[0],
                               rtol=1e-4, atol=1e-5)
    assert tokens.shape == (ids.shape[1], 24)


def test_image_features_batch_and_vary(encoder):
    assert (encoder.image_size, encoder.dim) == (32, 24)
    frames = np.random.default_rng(0).integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)
    feats = encoder.encode_images(frames)
    assert feats.shape == (11, 24) and feats.dtype == np.float32
    # batching (8 + a padded 3) gives the rows of one-by-one encoding
    np.testing.assert_allclose(feats[9:], encoder.encode_images(frames[9:]), rtol=1e-5, atol=1e-5)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert (unit @ unit.T)[np.triu_indices(11, 1)].max() < 0.999
    with pytest.raises(ClipError, match=r"expected \(N, 32, 32, 3\)"):
        encoder.encode_images(frames[:, :16])


def test_bfloat16_products_agree_with_float32(clip_dir, encoder, monkeypatch):
    """bf16 operands with float32 accumulation: the float32 features to about 1e-3 (not the
    same bits: the products really are bf16); 'auto' picks bf16 on a CPU with bf16 units only."""
    import jax

    import sgvs_jax.provenance as prov
    bf16 = ClipEncoder(clip_dir, batch_size=8, matmul_dtype="bfloat16")
    frames = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    a, b = encoder.encode_images(frames), bf16.encode_images(frames)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.999 and not np.array_equal(a, b)
    (_, pa), (_, pb) = encoder.encode_text("a dog"), bf16.encode_text("a dog")
    assert pa @ pb / np.linalg.norm(pa) / np.linalg.norm(pb) > 0.999
    assert (encoder.describe()["clip_matmul_dtype"], bf16.describe()["clip_matmul_dtype"]) == ("float32", "bfloat16")
    monkeypatch.setattr(prov, "cpu", lambda: {"features": ["avx2", "fma"]})
    assert resolve_matmul_dtype("auto") == "float32"
    monkeypatch.setattr(prov, "cpu", lambda: {"features": ["avx2", "avx512_bf16"]})
    assert resolve_matmul_dtype("auto") == ("bfloat16" if jax.default_backend() == "cpu" else "float32")
    with pytest.raises(ClipError, match="'float16' is not one of"):
        ClipEncoder(clip_dir, matmul_dtype="float16")


def test_text_tokens_share_the_joint_space(encoder):
    tokens, pooled = encoder.encode_text("a dog on a skateboard")
    np.testing.assert_allclose(tokens[-1], pooled)
    other_tokens, other = encoder.encode_text("cooking pasta", max_tokens=5)
    assert other_tokens.shape == (5, 24)
    assert other @ pooled / np.linalg.norm(other) / np.linalg.norm(pooled) < 0.99
    long_ids = encoder.token_ids("word " * 200)
    assert len(long_ids) == 77 and long_ids[-1] == encoder.config.eos_token_id
    with pytest.raises(ClipError, match="empty text"):
        encoder.encode_text("  ")


def test_same_token_ids_as_transformers_clip_tokenizer(tmp_path):
    from transformers.models.clip.tokenization_clip import bytes_to_unicode
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    merges = [("d", "o"), ("do", "g</w>"), ("s", "k"), ("sk", "a"), ("t", "e</w>"), ("i", "n"), ("in", "g</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab.update({BOS: len(vocab), EOS: len(vocab) + 1})
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    theirs = transformers.CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    ours = clip_tokenizer(vocab, merges)
    for text in ("a dog skating", "A DOG's   skate!!", "dogs, 42 dogs; it'll do", "café – naïve 🙂", "do-it-yourself"):
        assert ours.encode(text).ids == theirs(text)["input_ids"], text


def test_a_folder_of_transformers_flax_layout_converts(tmp_path):
    old = str(tmp_path / "old")
    cfg = transformers.CLIPConfig(text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64,
                                                   num_hidden_layers=1, num_attention_heads=2,
                                                   eos_token_id=299, bos_token_id=298, pad_token_id=299),
                                  vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                     num_attention_heads=2, image_size=32, patch_size=16),
                                  projection_dim=16)
    model = transformers.FlaxCLIPModel(cfg, seed=0)
    model.save_pretrained(old)
    from transformers.models.clip.tokenization_clip import bytes_to_unicode
    chars = list(bytes_to_unicode().values())[:149]
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    vocab.update({BOS: 298, EOS: 299})
    (tmp_path / "old" / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "old" / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ClipError, match="convert it once with python -m sgvs_jax.app.clip"):
        ClipEncoder(old)
    new = str(tmp_path / "new")
    convert_transformers_flax(old, new)
    ours = ClipEncoder(new, batch_size=2)
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    expected = np.asarray(model.get_image_features(ours.preprocess(frames).transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(ours.encode_images(frames), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ClipError, match="exists"):
        convert_transformers_flax(old, new)


def test_preprocessing_reads_the_model_folder(clip_dir, tmp_path):
    d = str(tmp_path / "clip")
    shutil.copytree(clip_dir, d)
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}, f)
    enc = ClipEncoder(d)
    x = enc.preprocess(np.full((1, 32, 32, 3), 255, np.uint8))
    assert x.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(x, 2.0)
    assert enc.describe()["clip_mean"] == [0.5, 0.5, 0.5]


def test_bad_model_folders_are_named(clip_dir, tmp_path):
    with pytest.raises(ClipError, match="CLIP model directory not found"):
        ClipEncoder(str(tmp_path / "nope"))

    def copy(name, change):
        d = str(tmp_path / name)
        shutil.copytree(clip_dir, d)
        change(d)
        return d

    broken = copy("broken", lambda d: open(os.path.join(d, "config.json"), "w").write("{ not json"))
    with pytest.raises(ClipError, match=f"{broken}/config.json: not a CLIP config.json"):
        ClipEncoder(broken)
    no_tok = copy("no_tokenizer", lambda d: os.remove(os.path.join(d, "tokenizer.json")))
    with pytest.raises(ClipError, match="tokenizer.json: cannot load the CLIP tokenizer"):
        ClipEncoder(no_tok)

    def wider(d):
        path = os.path.join(d, "config.json")
        cfg = json.load(open(path))
        cfg["projection_dim"] = 32
        json.dump(cfg, open(path, "w"))

    with pytest.raises(ClipError, match="'visual_projection.weight' has shape .* config.json implies"):
        ClipEncoder(copy("wider", wider))

    def drop(d):
        from safetensors.numpy import load_file, save_file
        path = os.path.join(d, "model.safetensors")
        tensors = load_file(path)
        del tensors["text_projection.weight"]
        save_file(tensors, path)

    with pytest.raises(ClipError, match="no tensor 'text_projection.weight'"):
        ClipEncoder(copy("missing", drop))
    truncated = copy("truncated", lambda d: open(os.path.join(d, "model.safetensors"), "r+b").truncate(100))
    with pytest.raises(ClipError, match="model.safetensors: unreadable"):
        ClipEncoder(truncated)


def convert_cli(argv, capsys):
    """``python -m sgvs_jax.app.clip OLD NEW`` in this process: (exit status, stderr lines)."""
    from sgvs_jax.app import clip as clip_features
    with pytest.raises(SystemExit) as e:
        clip_features.main(argv)
        raise SystemExit(0)
    return e.value.code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_the_converter_names_what_is_wrong_in_one_line_and_writes_nothing(clip_dir, tmp_path, capsys):
    """A missing, empty, already converted or garbage OLD; an existing NEW, NEW = OLD; no vocab.json."""
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{}")
    (garbage / "flax_model.msgpack").write_bytes(b"\xc1\xc1 not msgpack")
    (garbage / "vocab.json").write_text("{}")
    (garbage / "merges.txt").write_text("#version: 0.2\n")
    bad_config = tmp_path / "bad_config"
    shutil.copytree(garbage, bad_config)
    (bad_config / "config.json").write_text("{ nope")
    no_vocab = tmp_path / "no_vocab"
    shutil.copytree(garbage, no_vocab)
    os.remove(no_vocab / "vocab.json")
    (tmp_path / "taken").mkdir()
    new = str(tmp_path / "new")
    cases = [([str(tmp_path / "missing"), new], "missing: folder not found"),
             ([str(empty), new], "empty: no config.json, flax_model.msgpack, vocab.json, merges.txt"),
             ([clip_dir, new], "is already in the layout sgvs_jax reads"),
             ([str(garbage), new], "flax_model.msgpack: not a Flax msgpack checkpoint"),
             ([str(bad_config), new], "bad_config/config.json: not a CLIP config.json"),
             ([str(no_vocab), new], "no_vocab: no vocab.json"),
             ([str(garbage), str(tmp_path / "taken")], "taken exists: give a new folder"),
             ([str(garbage), str(garbage)], "is OLD itself"),
             ([str(garbage), str(garbage / "sub")], "is inside OLD"),
             ([str(garbage)], "the following arguments are required: NEW_DIR")]
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(garbage))
    for argv, message in cases:
        code, lines = convert_cli(argv, capsys)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (argv, lines)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(garbage))) == before


def test_the_tokenizer_builds_with_the_sep_and_cls_tokens_by_position():
    """tokenizers 0.23 renamed RobertaProcessing's ``cls`` keyword: by position both work."""
    vocab = {"a</w>": 0, "b</w>": 1, BOS: 2, EOS: 3}
    assert clip_tokenizer(vocab, []).encode("a b").ids == [2, 0, 1, 3]
