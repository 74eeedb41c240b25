"""End-to-end runs of train_and_evaluate on small synthetic data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sgvs_jax import compilation, provenance, report, train
from sgvs_jax.checkpointing import CheckpointError
from sgvs_jax.data import load_dataset
from tests.tiny import tiny_config

pytestmark = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves it out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("full"))
    return workdir, train.train_and_evaluate(tiny_config(num_epochs=4), workdir)


def test_results_file(full_run):
    workdir, results = full_run
    on_disk = json.load(open(os.path.join(workdir, "results.json")))
    assert on_disk["summary"] == results["summary"]
    split = on_disk["splits"]["0"]
    assert [h["epoch"] for h in split["history"]] == [0, 1, 2, 3, 4]  # epoch 0: the untrained model
    assert split["history"][0]["train"] == {}
    assert set(split["selection"]) == set(report.RULES) | {"untrained"}
    assert split["selection"]["untrained"]["epoch"] == 0
    for rule in list(report.RULES) + ["untrained"]:
        assert set(on_disk["summary"][rule]) == {"f1", "tau", "rho", "ap", "spread"}
    assert set(on_disk["summary"]["random"]) == {"f1", "tau", "rho", "ap"}
    assert set(on_disk["summary"]["training_free"]) == {"uniqueness", "local_dissimilarity", "global_consistency",
                                                         "representativeness", "feature_norm"}
    for h in split["history"]:
        assert {"spread", "alpha", "cos_share"} <= set(h["test"])
    gain = on_disk["summary"]["learning_gain"]
    assert gain["tau"]["mean"] == pytest.approx(split["selection"]["last_epoch"]["tau"]
                                                - split["selection"]["untrained"]["tau"])
    assert on_disk["provenance"]["config"]["seed"] == 0
    assert on_disk["provenance"]["packages"]["jax"]
    if sys.platform == "linux":  # the CPU, whose vector extensions set XLA:CPU's rounding
        cpu = on_disk["provenance"]["cpu"]
        assert cpu["model"] and cpu["cores"] >= 1 and set(cpu["features"]) <= set(provenance.CPU_FEATURES)
    best = max(h["test"]["f1"] for h in split["history"] if h["epoch"] > 0)
    assert split["selection"]["max_test_f1_optimistic"]["f1"] == best
    events = [f for f in os.listdir(workdir) if f.startswith("events.out.tfevents")]
    scalars = read_scalars(os.path.join(workdir, events[0]))
    taus = [(step, v) for step, tag, v in scalars if tag == "split0/test/tau"]
    assert taus == [(h["epoch"], pytest.approx(h["test"]["tau"], rel=1e-6)) for h in split["history"]]


def read_scalars(path):
    """(step, tag, value) of every scalar in an event file, as TensorBoard itself reads it
    (its EventAccumulator; tensorboard is a test-only dependency)."""
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = ea.EventAccumulator(path, size_guidance={ea.SCALARS: 0}).Reload()
    return [(e.step, tag, e.value) for tag in events.Tags()["scalars"] for e in events.Scalars(tag)]


def test_reference_rows_are_the_evaluation_librarys(full_run):
    """The random and training-free rows, computed by a worker thread while the split
    trains, are what the evaluation library gives for the split's test videos."""
    from sgvs_jax.data import load_dataset
    from sgvs_jax.data.batching import normalize
    from sgvs_jax.evaluation import random_baseline, training_free_baselines

    _, results = full_run
    cfg = tiny_config(num_epochs=4)
    videos, _, _ = load_dataset(cfg.data)
    keys = results["splits"]["0"]["test_keys"]
    assert results["splits"]["0"]["random"] == random_baseline(videos, keys, "avg", cfg.eval.random_draws, seed=0)
    assert results["splits"]["0"]["training_free"] == training_free_baselines(
        videos, keys, "avg", features=lambda v: normalize(v.features, cfg.data.normalization))


def test_a_failure_of_the_reference_rows_stops_the_run(tmp_path, monkeypatch):
    """Raised in the worker thread, it ends the run at the next epoch, not after the last."""
    def broken(*_):
        raise ValueError("reference rows broke")

    monkeypatch.setattr(train, "reference_rows", broken)
    with pytest.raises(ValueError, match="reference rows broke"):
        train.train_and_evaluate(tiny_config(num_epochs=3), str(tmp_path / "run"))
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        assert max(json.loads(line)["step"] for line in f) == 1  # stopped after epoch 1 of 3


def test_training_finds_what_untrained_and_training_free_scores_miss(tmp_path):
    """The embedded default's data (sgvs_jax/data/synthetic.py): the topic shots
    render the title, which only a model trained over many videos can map back.
    One split of configs/default.py as it is (split 4: its test videos' best
    training-free tau is 0.07, the untrained model's -0.07; trained 0.36)."""
    from configs import default
    cfg = default.get_config()
    cfg.splits, cfg.eval.random_draws = (4,), 3
    s = train.train_and_evaluate(cfg, str(tmp_path))["summary"]
    trained, untrained = s["last_epoch"], s["untrained"]
    assert trained["tau"]["mean"] > untrained["tau"]["mean"] + 0.15
    assert trained["tau"]["mean"] > max(b["tau"]["mean"] for b in s["training_free"].values())
    assert trained["tau"]["mean"] > s["random"]["tau"]["mean"] + 0.15
    assert trained["spread"]["mean"] > 0.05 and not s["collapsed"]


def test_resume_gives_identical_results(full_run, tmp_path):
    _, uninterrupted = full_run
    workdir = str(tmp_path)
    train.train_and_evaluate(tiny_config(num_epochs=2), workdir)  # "killed" after epoch 2...
    partial = os.path.join(workdir, "split_0", "checkpoints", "3.orbax-checkpoint-tmp-1")
    os.makedirs(partial)  # ...while saving epoch 3: orbax's half-written folder
    open(os.path.join(partial, "junk"), "w").write("x")
    resumed = train.train_and_evaluate(tiny_config(num_epochs=4), workdir)
    a = uninterrupted["splits"]["0"]["history"]
    b = resumed["splits"]["0"]["history"]
    assert [h["test"] for h in a] == [h["test"] for h in b]
    assert [h["train"] for h in a] == [h["train"] for h in b]


def test_same_seed_same_numbers_other_seed_differs(full_run, tmp_path):
    _, first = full_run
    again = train.train_and_evaluate(tiny_config(num_epochs=4), str(tmp_path / "a"))
    assert again["summary"] == first["summary"]
    cfg = tiny_config(num_epochs=4)
    cfg.seed = 1
    other = train.train_and_evaluate(cfg, str(tmp_path / "b"))
    assert other["splits"]["0"]["history"][-1]["train"] != first["splits"]["0"]["history"][-1]["train"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    workdir = str(tmp_path)
    train.train_and_evaluate(tiny_config(num_epochs=1), workdir)
    ckpt = os.path.join(workdir, "split_0", "checkpoints", "1", "state")
    for root, _, files in os.walk(ckpt):
        for f in files:
            if f not in ("commit_success.txt",):
                with open(os.path.join(root, f), "wb") as fh:
                    fh.write(b"garbage")
    with pytest.raises(CheckpointError, match="split_0/checkpoints/1"):
        train.train_and_evaluate(tiny_config(num_epochs=2), workdir)


def test_ablation_switches_build_their_programs():
    """Each switch's whole update and scorer trace (``jax.eval_shape``: every shape and key
    is checked, nothing compiles; the study's variants train them for real) with the losses
    the switch implies."""
    import jax

    no_title = {"data.semantic_sources": ("video_tokens",), "train.semantic_weight": 0.0}
    # (the joint schedule is checked step by step in tests/test_train_steps.py)
    for name, changes in {"no_fssa": {"model.use_fssa": False},
                          "no_adversarial": {"train.adversarial": False},
                          "no_title": no_title}.items():
        cfg = tiny_config(num_epochs=1)
        for key, v in changes.items():
            block, leaf = key.split(".")
            cfg[block][leaf] = v
        videos = load_dataset(cfg.data)[0]
        trainer = train.Trainer(cfg, videos)
        part = list(videos.values())[:4]
        states = trainer.init_states([jax.random.PRNGKey(0)], part[0])
        batch = trainer.place_batch([next(trainer.data.training(part, (None, None), trainer.data.banks(part)))])
        active = train.active_stages(trainer.stages, 1)
        _, metrics = jax.eval_shape(lambda s, b, r: trainer.members_step(s, b, r, active), states, batch,
                                    jax.random.PRNGKey(0)[None])
        scoring = next(trainer.data.scoring(part))[1]
        scores = jax.eval_shape(trainer.predict, states["params"], scoring)["scores"]
        assert scores.shape == (1,) + scoring["mask"].shape, name
        assert ("stage3/loss" in metrics) == (name != "no_adversarial"), name
        assert ("stage1/semantic" in metrics) == (name not in ("no_title", "no_fssa")), name


def test_data_parallel_8_devices_matches_1(tmp_path):
    """The batch sharded over 8 (forced host) devices gives the results of one device."""
    script = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from sgvs_jax import train; from tests.tiny import tiny_config\n"
        "r = train.train_and_evaluate(tiny_config(num_epochs=1, batch_size=8), sys.argv[1])\n"
        "import jax; print(json.dumps({'n': jax.device_count(), 'h': r['splits']['0']['history']}))\n"
    ) % ROOT
    out = {}
    for n in (1, 8):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        p = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"d{n}")], env=env, capture_output=True,
                           text=True, timeout=900, cwd=ROOT)
        assert p.returncode == 0, p.stderr[-3000:]
        out[n] = json.loads(p.stdout.strip().splitlines()[-1])
    assert out[1]["n"] == 1 and out[8]["n"] == 8
    for a, b in zip(out[1]["h"], out[8]["h"]):
        for k in a["train"]:
            assert a["train"][k] == pytest.approx(b["train"][k], rel=1e-4, abs=1e-5), k
        assert a["test"]["f1"] == pytest.approx(b["test"]["f1"], abs=1e-6)
        assert a["test"]["tau"] == pytest.approx(b["test"]["tau"], abs=1e-3)


def test_community_h5_source_visual_only(tmp_path):
    """configs/summe_h5.py path: a community-layout file (no CLIP keys) + split JSON, F1 = max."""
    import dataclasses

    from configs import summe_h5
    from sgvs_jax.data import write_h5
    from sgvs_jax.data.synthetic import make_dataset, make_splits
    videos = make_dataset(n_videos=8, min_steps=40, max_steps=100, feature_dim=32, sem_dim=16, seed=2)
    videos = {k: dataclasses.replace(v, text_tokens=None, text_pooled=None, clip_frames=None, user_scores=None)
              for k, v in videos.items()}
    h5 = str(tmp_path / "eccv16_dataset_summe_google_pool5.h5")
    write_h5(h5, videos)
    split_path = tmp_path / "splits.json"
    split_path.write_text(json.dumps(make_splits(videos, seed=0)))
    cfg = summe_h5.get_config()
    tiny = tiny_config(num_epochs=1)
    cfg.model, cfg.train, cfg.eval, cfg.splits = tiny.model, tiny.train, tiny.eval, (0, 1)
    cfg.model.use_fssa = False
    cfg.data.h5_path, cfg.data.split_path, cfg.data.min_bucket = h5, str(split_path), 128
    r = train.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert r["eval_mode"] == "max" and set(r["splits"]) == {"0", "1"}
    assert 0 <= r["summary"]["last_epoch"]["f1"]["mean"] <= 100
    cfg.model.use_fssa, cfg.data.semantic_sources = True, ()  # FSSA without semantics: a config error, said clearly
    with pytest.raises(ValueError, match="use_fssa=True needs a token source"):
        train.train_and_evaluate(cfg, str(tmp_path / "run2"))


def test_no_program_is_compiled_after_the_first_epoch(tmp_path):
    """The update and the scorer compile once per bucket, in the first epoch (and the
    untrained model's evaluation); later epochs, and the warm-up's end, compile nothing."""
    from sgvs_jax.data import load_dataset

    cfg = tiny_config(warmup_epochs=1, num_epochs=4)
    cfg.data.min_bucket = 32  # steps 40..100: buckets 64 and 128
    videos, splits, _ = load_dataset(cfg.data)
    compiled = []

    class EachEpoch:  # a metric writer that records, when an epoch is written, what has compiled
        def resume(self, *_):
            pass

        def write_scalars(self, epoch, _):
            counts = compilation.counts()  # with the session's cache a program may be read, not compiled
            compiled.append(counts["compiled"] + counts["cache_hits"])

    train.train_split(train.Trainer(cfg, videos), videos, splits[0], 0, str(tmp_path), EachEpoch())
    # epoch 1: warm-up (no discriminator); epoch 2 compiles the full update; 3 and 4 nothing
    assert compiled[2] > compiled[1] and compiled[4] == compiled[3] == compiled[2], compiled


def test_placed_state_is_updated_in_place():
    """The update donates the state: every buffer that ``Trainer.place_states`` places is
    reused for the new state, also at the first update.  Of a state placed from host
    memory the first update copies a part instead (the CPU runtime cannot reuse the
    buffers that alias host arrays), which costs memory beside the update's own."""
    import jax

    from sgvs_jax.data import load_dataset

    cfg = tiny_config()
    videos, splits, _ = load_dataset(cfg.data)
    trainer = train.Trainer(cfg, videos)
    train_videos = [videos[k] for k in splits[0]["train_keys"]]
    fresh = trainer.init_states([jax.random.PRNGKey(0)], train_videos[0])
    from_host = jax.tree_util.tree_map(lambda x: trainer._put(np.asarray(x), trainer.members), fresh)
    order = (np.random.default_rng(0), None)
    batch = trainer.place_batch([next(trainer.data.training(train_videos, order, trainer.data.banks(train_videos)))])

    def reused(state):
        before = [x.unsafe_buffer_pointer() for x in jax.tree_util.tree_leaves(state)]
        new, _ = trainer.step(state, batch, jax.random.PRNGKey(0)[None], active=("stage1", "stage2", "stage3"))
        after = [x.unsafe_buffer_pointer() for x in jax.tree_util.tree_leaves(new)]
        return np.mean([a == b for a, b in zip(before, after)])

    assert reused(trainer.place_states(fresh)) == 1.0
    assert reused(from_host) < 1.0  # what the check above tells apart


def test_largest_bucket_is_cut_to_the_longest_video():
    """With ``data.buckets=()`` the Trainer's buckets are powers of two from
    ``min_bucket`` with the last cut to the longest video (a multiple of ``min_bucket``)."""
    from sgvs_jax.data import load_dataset

    cfg = tiny_config()
    cfg.data.buckets, cfg.data.min_bucket = (), 16
    videos, _, _ = load_dataset(cfg.data)
    assert max(v.length for v in videos.values()) == 97
    assert train.Trainer(cfg, videos).buckets == (16, 32, 64, 112)
    cfg.data.min_bucket = 64  # 97 -> 128, the power of two itself
    assert train.Trainer(cfg, videos).buckets == (64, 128)
