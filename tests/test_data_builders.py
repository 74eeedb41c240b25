import numpy as np
import pytest

from sgvs_jax.data import DataError, bucket_lengths_for, iterate_batches, make_batch
from sgvs_jax.data.synthetic import make_dataset
from sgvs_jax.evaluation import evaluate_videos, random_baseline, rank_normalize, training_free_baselines


def test_tvsum_builder(tvsum_videos):
    vs = tvsum_videos
    assert list(vs) == [f"video_{i}" for i in range(1, 51)]
    v1 = vs["video_1"]
    assert v1.name == "AwmHb44_ouw" and v1.n_frames == 10597
    assert v1.features.shape == (176, 2048) and v1.text_tokens.shape[1] == 512
    for v in vs.values():
        cp = v.change_points
        assert cp[0, 0] == 0 and cp[-1, 1] == v.n_frames - 1
        np.testing.assert_array_equal(cp[1:, 0], cp[:-1, 1] + 1)  # contiguous shots
        assert v.user_summary.shape == (20, v.n_frames)
        assert np.all(v.user_summary.mean(1) <= 0.15 + 1e-9) and np.all(v.user_summary.mean(1) > 0.05)
        assert np.all(np.diff(v.picks) > 0) and v.picks[-1] < v.n_frames
        assert 0 <= v.gtscore.min() and v.gtscore.max() <= 1


def test_synthetic_is_deterministic_and_learnable():
    a, b = make_dataset(n_videos=4, seed=3), make_dataset(n_videos=4, seed=3)
    np.testing.assert_array_equal(a["video_4"].features, b["video_4"].features)
    vs = make_dataset(n_videos=10, seed=0)
    gt = evaluate_videos({k: v.gtscore for k, v in vs.items()}, vs, "avg")
    rnd = random_baseline(vs, list(vs), "avg", n_draws=3)
    assert gt["f1"] > rnd["f1"] + 20
    # The topic shots are in the semantic view: cosine with the title finds them...
    sem = evaluate_videos({k: rank_normalize(v.clip_frames @ v.text_pooled) for k, v in vs.items()}, vs, "avg")
    assert sem["f1"] > rnd["f1"] + 20 and sem["tau"] > 0.3
    # ...but no training-free criterion of the visual features does: only a model that
    # learns the visual -> title map from many videos can.
    for name, r in training_free_baselines(vs, list(vs), "avg").items():
        assert r["f1"] < rnd["f1"] + 5 and r["tau"] < sem["tau"] - 0.25, name


@pytest.mark.parametrize("lengths,min_bucket,multiple,expected", [
    ([648, 100], 64, 64, [64, 128, 256, 512, 704]),  # the SumMe h5's longest video
    ([648, 100], 64, 0, [64, 128, 256, 512, 1024]),
    ([1293], 64, 64, [64, 128, 256, 512, 1024, 1344]),  # TVSum's
    ([512], 128, 64, [128, 256, 512]),  # a power of two already
    ([513], 128, 64, [128, 256, 512, 576]),
    ([90], 128, 64, [128]),  # min_bucket itself is never cut
    ([400], 120, 64, [120, 240, 448]),
    ([470], 120, 64, [120, 240, 480]),  # the multiple past the doubled bucket: the doubled one
])
def test_bucket_lengths(lengths, min_bucket, multiple, expected):
    assert bucket_lengths_for(lengths, min_bucket, multiple) == expected


def test_bucketing_and_masks():
    vs = list(make_dataset(n_videos=5, min_steps=30, max_steps=150, feature_dim=8, sem_dim=4).values())
    buckets = bucket_lengths_for([v.length for v in vs], min_bucket=32)
    assert buckets[-1] >= max(v.length for v in vs) and all(b & (b - 1) == 0 for b in buckets)
    seen = []
    for keys, batch in iterate_batches(vs, 2, buckets, np.random.default_rng(0),
                                       sources=("text_tokens", "text_pooled", "clip_frames")):
        B, Tb, _ = batch["features"].shape
        assert B == 2 and Tb in buckets
        for i, k in enumerate(keys):
            if k is None:
                assert not batch["valid"][i] and not batch["mask"][i].any()
                continue
            v = next(x for x in vs if x.key == k)
            assert batch["mask"][i].sum() == v.length and batch["token_mask"][i].sum() == 7
            np.testing.assert_array_equal(batch["features"][i, :v.length], v.features)
            assert not batch["features"][i, v.length:].any()
            seen.append(k)
    assert sorted(seen) == sorted(v.key for v in vs)


def test_a_shared_bucket_order_gives_every_seed_one_shape_per_step():
    """Seeds that share ``bucket_rng`` step through the same bucket lengths (one vmapped
    program for a study's members), each still sees every video once, in its own groups;
    with one bucket the shared order changes nothing."""
    vs = list(make_dataset(n_videos=13, min_steps=30, max_steps=150, feature_dim=8, sem_dim=4).values())
    buckets = bucket_lengths_for([v.length for v in vs], min_bucket=32)

    def epoch(seed, shared, buckets=buckets):
        return [(b["features"].shape[1], tuple(k)) for k, b in iterate_batches(
            vs, 2, buckets, np.random.default_rng(seed), None if shared is None else np.random.default_rng(shared))]

    a, b = epoch(0, 7), epoch(1, 7)
    assert len(set(length for length, _ in a)) > 1
    assert [length for length, _ in a] == [length for length, _ in b]
    assert [keys for _, keys in a] != [keys for _, keys in b]
    for run in (a, b):
        assert sorted(k for _, keys in run for k in keys if k) == sorted(v.key for v in vs)
    one = [max(buckets)]
    assert epoch(0, 7, one) == epoch(0, None, one) == epoch(0, 8, one)


def test_missing_semantic_source_is_named():
    import dataclasses
    v = make_dataset(n_videos=1, feature_dim=8, sem_dim=4)["video_1"]
    with pytest.raises(DataError, match="video 'video_1' has no key 'text_tokens'"):
        make_batch([dataclasses.replace(v, text_tokens=None)], 256, 1, sources=("text_tokens",))


def test_video_tokens_are_the_videos_own_parts():
    """'video_tokens': FSSA's semantic tokens from the video itself (no text): the means of
    equal parts of its features as the model sees them; no title is made up from them."""
    import numpy as np

    from sgvs_jax.data.batching import VIDEO_TOKENS, make_batch, normalize
    from sgvs_jax.data.synthetic import make_dataset

    v = make_dataset(n_videos=1, min_steps=40, max_steps=41, feature_dim=12)["video_1"]
    b = make_batch([v], 64, 1, sources=("video_tokens",), max_tokens=16, normalization="video")
    feats = normalize(v.features, "video")
    assert b["tokens"].shape == (1, 16, 12) and b["token_mask"][0].sum() == VIDEO_TOKENS
    np.testing.assert_allclose(b["tokens"][0, 0], feats[: -(-len(feats) // VIDEO_TOKENS)].mean(0), rtol=1e-5)
    np.testing.assert_allclose(b["tokens"][0, :VIDEO_TOKENS].mean(0), feats.mean(0), rtol=1e-4, atol=1e-6)
    assert not b["title"].any()
