"""End-to-end runs of train_and_evaluate on small synthetic data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sgvs_jax import provenance, train
from sgvs_jax.checkpointing import CheckpointError
from sgvs_jax.metrics_writer import read_tfrecords
from tests.tiny import tiny_config

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
    assert set(split["selection"]) == set(train.RULES) | {"untrained"}
    assert split["selection"]["untrained"]["epoch"] == 0
    for rule in list(train.RULES) + ["untrained"]:
        assert set(on_disk["summary"][rule]) == {"f1", "tau", "rho", "spread"}
    assert set(on_disk["summary"]["random"]) == {"f1", "tau", "rho"}
    assert set(on_disk["summary"]["training_free"]) == {"uniqueness", "local_dissimilarity", "global_consistency",
                                                         "representativeness", "feature_norm"}
    for h in split["history"]:
        assert {"spread", "alpha", "cos_share"} <= set(h["test"])
    gain = on_disk["summary"]["learning_gain"]
    assert gain["tau"]["mean"] == pytest.approx(split["selection"]["last_epoch"]["tau"]
                                                - split["selection"]["untrained"]["tau"])
    assert on_disk["provenance"]["config"]["seed"] == 0
    assert on_disk["update_slices"] == {"128": 0}  # train.microbatch=-1: a small bucket keeps the whole batch
    assert on_disk["update_programs"] == "fused"  # train.fuse_stages=None, train.batched_passes=None on the CPU
    assert on_disk["provenance"]["packages"]["jax"]
    if sys.platform == "linux":  # the CPU, whose vector extensions set XLA:CPU's rounding
        cpu = on_disk["provenance"]["cpu"]
        assert cpu["model"] and cpu["cores"] >= 1 and set(cpu["features"]) <= set(provenance.CPU_FEATURES)
    best = max(h["test"]["f1"] for h in split["history"] if h["epoch"] > 0)
    assert split["selection"]["max_test_f1_optimistic"]["f1"] == best
    events = [f for f in os.listdir(workdir) if f.startswith("events.out.tfevents")]
    assert events and len(read_tfrecords(os.path.join(workdir, events[0]))) > 4


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


def test_slices_of_one_video_give_the_whole_batch_results(full_run, tmp_path):
    """train.microbatch=1 draws the whole batch's randomness: the same losses up to float
    rounding and the same test metrics, epoch by epoch."""
    _, whole = full_run
    sliced = train.train_and_evaluate(tiny_config(num_epochs=2, microbatch=1), str(tmp_path / "mb1"))
    assert sliced["update_slices"] == {"128": 1}
    for a, b in zip(whole["splits"]["0"]["history"][:3], sliced["splits"]["0"]["history"]):
        assert a["epoch"] == b["epoch"]
        for k in a["train"]:
            assert b["train"][k] == pytest.approx(a["train"][k], rel=1e-4, abs=1e-6), k
        for m in ("f1", "tau", "rho"):
            assert b["test"][m] == pytest.approx(a["test"][m], abs=1e-6), m


def test_training_finds_what_untrained_and_training_free_scores_miss(tmp_path):
    """The embedded default's data (sgvs_jax/data/synthetic.py): the topic shots
    render the title, which only a model trained over many videos can map back.
    One split of configs/default.py as it is (split 3: its test videos' best
    training-free tau is 0.07, the untrained model's -0.10; trained 0.24)."""
    from configs import default
    cfg = default.get_config()
    cfg.splits, cfg.eval.random_draws = (3,), 3
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


def test_ablation_switches_run(tmp_path):
    for name, (model, trn) in {"no_fssa": ({"use_fssa": False}, {}),
                               "no_adversarial": ({}, {"adversarial": False}),
                               "joint": ({}, {"schedule": "joint"}),
                               "per_stage_jit_warmup": ({}, {"fuse_stages": False, "warmup_epochs": 1})}.items():
        cfg = tiny_config(num_epochs=2, **trn)
        for k, v in model.items():
            cfg.model[k] = v
        r = train.train_and_evaluate(cfg, str(tmp_path / name))
        h = r["splits"]["0"]["history"]
        assert [x["epoch"] for x in h] == [0, 1, 2] and np.isfinite(h[-1]["test"]["f1"])
        has_d = "stage3/loss" in h[-1]["train"]
        assert has_d == (name != "no_adversarial"), name


def test_data_parallel_8_devices_matches_1(tmp_path):
    """Batch sharded over 8 (forced host) devices gives the results of one device, also
    when the sharded batch is cut into slices of one video (train.microbatch=1) and
    with the accelerators' defaults: one update program per stage (train.fuse_stages=False)
    and one vmapped call over each network's passes (train.batched_passes=True)."""
    script = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from sgvs_jax import train; from tests.tiny import tiny_config\n"
        "cfg = tiny_config(num_epochs=2, batch_size=8, microbatch=int(sys.argv[2]), fuse_stages=eval(sys.argv[3]),\n"
        "                 batched_passes=True if eval(sys.argv[3]) is False else None)\n"
        "r = train.train_and_evaluate(cfg, sys.argv[1])\n"
        "import jax; print(json.dumps({'n': jax.device_count(), 'programs': r['update_programs'], "
        "'h': r['splits']['0']['history']}))\n"
    ) % ROOT
    out = {}
    for n, microbatch, fuse in ((1, 0, None), (8, 0, None), (8, 1, None), (8, 0, False)):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        p = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"d{n}m{microbatch}{fuse}"), str(microbatch),
                            repr(fuse)], env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert p.returncode == 0, p.stderr[-3000:]
        out[n, microbatch, fuse] = json.loads(p.stdout.strip().splitlines()[-1])
    assert [r["n"] for r in out.values()] == [1, 8, 8, 8]
    assert out[8, 0, False]["programs"] == "per_stage_batched" and out[8, 0, None]["programs"] == "fused"
    one = out[1, 0, None]["h"]
    for a, b in [pair for key, run in out.items() if key[0] == 8 for pair in zip(one, run["h"])]:
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
    cfg.model.use_fssa = True  # FSSA without semantic features is a config error, said clearly
    with pytest.raises(ValueError, match="use_fssa=True needs a token source"):
        train.train_and_evaluate(cfg, str(tmp_path / "run2"))


@pytest.mark.parametrize("threads", [1, 3])
def test_programs_compile_while_later_ones_are_lowered(threads):
    """compile_in_parallel starts each program's compile as soon as the caller has
    lowered it: the generator below only lowers program i + 1 once program i is
    compiling, so a version that took every program before compiling any would
    wait here and fail.  Every program compiles once, on the worker threads."""
    import threading

    started = [threading.Event() for _ in range(4)]
    calls = []

    class Lowered:
        def __init__(self, i):
            self.i = i

        def compile(self):
            calls.append((self.i, threading.current_thread() is threading.main_thread()))
            started[self.i].set()

    def lowered():
        for i in range(4):
            if i:
                assert started[i - 1].wait(timeout=10), f"program {i - 1} was not compiling while {i} was lowered"
            yield Lowered(i)

    train.compile_in_parallel(lowered(), threads=threads)
    assert sorted(i for i, _ in calls) == [0, 1, 2, 3]
    assert not any(on_main for _, on_main in calls)


@pytest.mark.parametrize("fuse_stages", [True, False])
def test_precompile_leaves_nothing_to_compile(fuse_stages):
    """Trainer.precompile compiles every bucket's update (both discriminator
    settings) and scorer in parallel; training and scoring then compile none."""
    import jax

    from sgvs_jax.data import load_dataset
    from sgvs_jax.data.batching import bucket_of

    cfg = tiny_config(fuse_stages=fuse_stages)
    cfg.data.min_bucket = 32  # steps 40..100: buckets 64 and 128
    videos, splits, _ = load_dataset(cfg.data)
    trainer = train.Trainer(cfg, videos)
    train_videos = [videos[k] for k in splits[0]["train_keys"]]
    test_videos = [videos[k] for k in splits[0]["test_keys"]]
    state = trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(0), train_videos[0]))
    info = trainer.precompile(state, train_videos, test_videos, (False, True))
    train_buckets = {bucket_of(v.length, trainer.buckets) for v in train_videos}
    test_buckets = {bucket_of(v.length, trainer.buckets) for v in test_videos}
    assert train_buckets == {64, 128} and info["buckets"] == [64, 128]
    # per train bucket: one fused program per discriminator setting, or the three stage programs
    # (stages 1-2 serve both settings); plus the scorer per test bucket
    per_bucket = 2 if fuse_stages else 3
    assert info["programs"] == per_bucket * len(train_buckets) + len(test_buckets)
    rngs = [jax.random.PRNGKey(i) for i in range(2)]
    compiled = []

    def listener(event, duration, fun_name="", **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for flag, rng in zip((False, True), rngs):
            for batch in trainer.train_batches(train_videos, None):
                state, _ = trainer.step(state, batch, rng, flag)  # as the benchmarks call
        trainer.predict_scores(state["params"], test_videos)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    ours = [n for n in compiled if "step" in n or "predict" in n]  # train_step, stage steps, predict
    assert not ours, ours


def test_placed_state_is_updated_in_place():
    """The update donates the state: every buffer that ``Sharder.state`` places is
    reused for the new state, also at the first update.  A state placed from host
    memory is copied by the first update instead (the CPU runtime cannot reuse its
    buffers), which costs a whole state beside the update's working memory."""
    import jax

    from sgvs_jax.data import load_dataset

    cfg = tiny_config()
    videos, splits, _ = load_dataset(cfg.data)
    trainer = train.Trainer(cfg, videos)
    train_videos = [videos[k] for k in splits[0]["train_keys"]]
    fresh = trainer.init_state(jax.random.PRNGKey(0), train_videos[0])
    from_host = jax.tree_util.tree_map(lambda x: trainer.sharder._put(np.asarray(x), trainer.sharder.replicated),
                                       fresh)
    batch = next(trainer.train_batches(train_videos, np.random.default_rng(0)))

    def reused(state):
        before = [x.unsafe_buffer_pointer() for x in jax.tree_util.tree_leaves(state)]
        new, _ = trainer.step(state, batch, jax.random.PRNGKey(0), True)
        after = [x.unsafe_buffer_pointer() for x in jax.tree_util.tree_leaves(new)]
        return np.mean([a == b for a, b in zip(before, after)])

    assert reused(trainer.sharder.state(fresh)) == 1.0
    assert reused(from_host) < 0.5  # what the check above tells apart


def test_largest_bucket_is_cut_to_the_longest_video():
    """With ``data.buckets=()`` the Trainer's buckets are powers of two from
    ``min_bucket`` with the last cut to the longest video (a multiple of
    ``data.bucket_multiple``); 0 keeps the whole power of two."""
    from sgvs_jax.data import load_dataset

    cfg = tiny_config()
    cfg.data.buckets, cfg.data.min_bucket, cfg.data.bucket_multiple = (), 16, 16
    videos, _, _ = load_dataset(cfg.data)
    assert max(v.length for v in videos.values()) == 97
    assert train.Trainer(cfg, videos).buckets == (16, 32, 64, 112)
    cfg.data.bucket_multiple = 0
    assert train.Trainer(cfg, videos).buckets == (16, 32, 64, 128)
    cfg.data.bucket_multiple = 64  # the default: 97 -> 128, the power of two itself
    assert train.Trainer(cfg, videos).buckets == (16, 32, 64, 128)
