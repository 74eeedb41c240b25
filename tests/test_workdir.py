"""A workdir is resumed only by the training config that made it, by one process
at a time; reruns and failed runs leave no duplicate or stray records."""

import json
import os
import shutil

import pytest

from sgvs_jax import train
from sgvs_jax.checkpointing import CheckpointError, Checkpointer
from sgvs_jax.workdir import RUN_CONFIG, Workdir, WorkdirError, training_config
from tests.tiny import tiny_config

pytestmark = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves it out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("wd") / "run")
    return workdir, train.train_and_evaluate(tiny_config(num_epochs=2), workdir)


def copy_of(finished, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(finished[0], dst)
    return dst


def metric_lines(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def events(workdir):
    return [f for f in os.listdir(workdir) if "tfevents" in f]


CHANGES = {"seed": ("seed", 1), "model": ("model.d_model", 16), "objective": ("train.sigma", 0.2),
           "data": ("data.synthetic.seed", 3), "evaluation": ("eval.budget", 0.2), "optimizer": ("optim.lr.stage1", 0.1),
           "attention": ("model.attention_block", 32)}


def test_training_config_leaves_out_what_cannot_change_the_numbers():
    """Which splits run, the compilation cache, multi-host start-up, the epochs (a larger
    number continues the run) and the checkpoint cadence are left out; for files, so are
    the synthetic generator's settings."""
    cfg = tiny_config()
    kept = training_config(cfg)
    assert "synthetic" in kept["data"] and "teacher" in kept["train"]
    assert not {"splits", "distributed", "compilation_cache_dir"} & set(kept) and kept["checkpoint"] == {}
    assert "num_epochs" not in kept["train"]
    cfg.data.source = "h5"
    assert "synthetic" not in training_config(cfg)["data"]


@pytest.mark.parametrize("what", list(CHANGES))
@pytest.mark.parametrize("record", ["run_config", "results_only"])
def test_another_training_config_is_refused(finished, tmp_path, what, record):
    workdir = copy_of(finished, tmp_path)
    if record == "results_only":  # a workdir written before run_config.json existed
        os.remove(os.path.join(workdir, RUN_CONFIG))
    before = open(os.path.join(workdir, "results.json")).read()
    key, value = CHANGES[what]
    cfg = tiny_config(num_epochs=2)
    node = cfg
    for part in key.split(".")[:-1]:
        node = node[part]
    node[key.split(".")[-1]] = value
    with pytest.raises(WorkdirError, match=f"another training config .*{key.split('.')[-1]}.*--restart"):
        train.train_and_evaluate(cfg, workdir)
    assert open(os.path.join(workdir, "results.json")).read() == before


def test_rerun_of_a_finished_run_duplicates_nothing(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    cfg = tiny_config(num_epochs=2)
    cfg.checkpoint.every = 3  # keys that change nothing trained may differ
    cfg.compilation_cache_dir = "none"
    again = train.train_and_evaluate(cfg, workdir)
    assert again["summary"] == finished[1]["summary"]
    lines = metric_lines(workdir)
    assert [line["step"] for line in lines] == [0, 1, 2]
    assert events(workdir) == ["events.out.tfevents.sgvs_jax"]


def test_fewer_epochs_than_the_checkpoint_is_refused(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    with pytest.raises(WorkdirError, match="holds epoch 2, past train.num_epochs=1"):
        train.train_and_evaluate(tiny_config(num_epochs=1), workdir)


def test_restart_discards_only_the_old_runs_files(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    open(os.path.join(workdir, "my_notes.txt"), "w").write("mine")
    cfg = tiny_config(num_epochs=1)
    cfg.seed = 1
    r = train.train_and_evaluate(cfg, workdir, restart=True)
    assert r["provenance"]["config"]["seed"] == 1
    assert [h["epoch"] for h in r["splits"]["0"]["history"]] == [0, 1]
    assert [line["step"] for line in metric_lines(workdir)] == [0, 1]
    assert open(os.path.join(workdir, "my_notes.txt")).read() == "mine"
    assert json.load(open(os.path.join(workdir, RUN_CONFIG)))["training_config"]["seed"] == 1


def test_a_checkpoint_of_another_config_is_refused(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    cfg = tiny_config(num_epochs=2)
    cfg.train.sigma = 0.25
    os.remove(os.path.join(workdir, "results.json"))
    data = json.load(open(os.path.join(workdir, RUN_CONFIG)))["training_config"]["data_fingerprint"]
    with open(os.path.join(workdir, RUN_CONFIG), "w") as f:  # a record that lies about the checkpoints
        json.dump({"training_config": {**training_config(cfg), "data_fingerprint": data}}, f)
    with pytest.raises(CheckpointError, match="saved under another training config .*sigma"):
        train.train_and_evaluate(cfg, workdir)


def drop_added(config: dict) -> None:
    """A recorded config as a run from before the ADDED_KEYS keys existed wrote it."""
    from sgvs_jax.workdir import ADDED_KEYS
    for dotted in ADDED_KEYS:
        block, key = dotted.split(".")
        config[block].pop(key, None)


def test_a_run_recorded_before_a_key_existed_resumes(finished, tmp_path):
    """A workdir (its record and its checkpoints) written before an ADDED_KEYS key
    existed resumes under that key's old-behaviour value, as if it had recorded it."""
    from sgvs_jax.workdir import ADDED_KEYS
    workdir = copy_of(finished, tmp_path)
    record = json.load(open(os.path.join(workdir, RUN_CONFIG)))
    drop_added(record["training_config"])
    json.dump(record, open(os.path.join(workdir, RUN_CONFIG), "w"))
    histories = [os.path.join(root, "metadata") for root, _, files in os.walk(workdir)
                 if os.path.basename(root) == "history" and "metadata" in files]
    assert histories
    for path in histories:
        history = json.load(open(path))
        drop_added(history["training_config"])
        history.pop("history_sha256")  # which runs from before the keys did not record either
        json.dump(history, open(path, "w"))
    from sgvs_jax.cli import set_config_key
    old_behaviour = tiny_config(num_epochs=2)  # what a run from before the keys asks for
    for dotted, value in ADDED_KEYS.items():
        set_config_key(old_behaviour, dotted, value, "ADDED_KEYS")
    again = train.train_and_evaluate(old_behaviour, workdir)
    assert again["splits"]["0"]["history"] == finished[1]["splits"]["0"]["history"]
    with pytest.raises(WorkdirError, match="train.teacher: '' -> 'feature_norm'"):  # today's default differs
        train.train_and_evaluate(tiny_config(num_epochs=2), workdir)


def test_one_process_at_a_time(tmp_path):
    cfg = tiny_config()
    with Workdir(str(tmp_path / "w"), cfg):
        with pytest.raises(WorkdirError, match=f"in use by pid {os.getpid()}"):
            train.train_and_evaluate(cfg, str(tmp_path / "w"))
    with Workdir(str(tmp_path / "w"), cfg):  # released when the first run ends
        pass


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_to_trip_on(tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")

    def crash(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(Checkpointer, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        train.train_and_evaluate(tiny_config(num_epochs=1), workdir)
    assert not os.path.exists(os.path.join(workdir, "split_0", "checkpoints"))
    monkeypatch.undo()
    cfg = tiny_config(num_epochs=1)
    cfg.seed = 2  # another config, no --restart needed: nothing was trained
    train.train_and_evaluate(cfg, workdir)
    assert [line["step"] for line in metric_lines(workdir)] == [0, 1]
    assert events(workdir) == ["events.out.tfevents.sgvs_jax"]


def test_a_split_is_reported_only_once_its_last_checkpoint_is_committed(tmp_path, monkeypatch):
    """results.json names a split only after its last save is on disk: every reported epoch is
    the latest complete checkpoint, and a save that fails leaves the split unreported."""
    cfg = tiny_config(num_epochs=1)
    cfg.splits = (0, 1)
    workdir = str(tmp_path / "run")
    results = train.train_and_evaluate(cfg, workdir)
    for i in (0, 1):
        reported = results["splits"][str(i)]["history"][-1]["epoch"]
        assert Checkpointer(os.path.join(workdir, f"split_{i}", "checkpoints")).latest_step() == reported == 1

    def fail(self):
        raise OSError("disk full")
    monkeypatch.setattr(Checkpointer, "close", fail)
    with pytest.raises(OSError, match="disk full"):
        train.train_and_evaluate(cfg, str(tmp_path / "run2"))
    assert not os.path.exists(tmp_path / "run2" / "results.json")


def test_a_checkpoint_whose_history_changed_is_refused(finished, tmp_path):
    """The recorded SHA-256 covers what a resume reads besides the state: one digit changed in
    a saved epoch's metrics is refused, not carried into results.json."""
    workdir = copy_of(finished, tmp_path)
    ckpt = Checkpointer(os.path.join(workdir, "split_0", "checkpoints"))
    step = ckpt.latest_step()
    ckpt.close()
    path = os.path.join(workdir, "split_0", "checkpoints", str(step), "history", "metadata")
    with open(path) as f:
        meta = json.load(f)
    train_metrics = meta["epochs"][0][-1]["train"]  # the first member's last epoch
    key = sorted(train_metrics)[0]
    train_metrics[key] = float(f"{train_metrics[key]:.6f}") + 1e-6  # a digit of a saved metric
    with open(path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(CheckpointError, match=f"checkpoints/{step}: its history or config changed after it was saved"):
        train.train_and_evaluate(tiny_config(num_epochs=3), workdir)


@pytest.mark.parametrize("restart", [False, True])
def test_files_named_like_a_runs_are_never_removed_without_its_record(tmp_path, restart):
    """A folder holding split_*/, metrics.jsonl ... that sgvs_jax did not write (no
    run_config.json) is refused, with or without --restart, and nothing in it is touched."""
    workdir = tmp_path / "w"
    (workdir / "split_data").mkdir(parents=True)
    (workdir / "split_data" / "keys.txt").write_text("x")
    (workdir / "metrics.jsonl").write_text("mine\n")
    with pytest.raises(WorkdirError, match="split_data.*did not write.*nothing was removed"):
        train.train_and_evaluate(tiny_config(num_epochs=1), str(workdir), restart=restart)
    assert (workdir / "split_data" / "keys.txt").read_text() == "x"
    assert (workdir / "metrics.jsonl").read_text() == "mine\n"


def test_a_checkpoint_whose_bytes_changed_is_refused(finished, tmp_path):
    """Each save records the state's SHA-256; a restore that reads other bytes says so."""
    workdir = copy_of(finished, tmp_path)
    ckpt = Checkpointer(os.path.join(workdir, "split_0", "checkpoints"))
    step = ckpt.latest_step()
    path = os.path.join(workdir, "split_0", "checkpoints", str(step))
    with open(os.path.join(path, "history", "metadata")) as f:
        meta = json.load(f)
    assert len(meta["state_sha256"]) == 64
    meta["state_sha256"] = "0" * 64  # as if the data files had changed under it
    with open(os.path.join(path, "history", "metadata"), "w") as f:
        json.dump(meta, f)
    ckpt.close()
    with pytest.raises(CheckpointError, match=f"checkpoints/{step}: its data changed after it was saved"):
        train.train_and_evaluate(tiny_config(num_epochs=3), workdir)


def test_other_data_behind_the_same_path_is_refused(tmp_path):
    """The run records a fingerprint of the arrays it read: a file replaced at the same
    path does not resume into the old run."""
    from sgvs_jax.data import write_h5
    from sgvs_jax.data.synthetic import make_dataset, make_splits

    h5, split_path = str(tmp_path / "data.h5"), tmp_path / "splits.json"
    videos = make_dataset(n_videos=6, min_steps=40, max_steps=90, feature_dim=32, seed=1)
    write_h5(h5, videos)
    split_path.write_text(json.dumps(make_splits(videos, seed=0)))
    cfg = tiny_config(num_epochs=1)
    cfg.data.source, cfg.data.h5_path, cfg.data.split_path = "h5", h5, str(split_path)
    train.train_and_evaluate(cfg, str(tmp_path / "run"))
    os.remove(h5)
    write_h5(h5, make_dataset(n_videos=6, min_steps=40, max_steps=90, feature_dim=32, seed=2))
    cfg.train.num_epochs = 2
    with pytest.raises(WorkdirError, match="data_fingerprint"):
        train.train_and_evaluate(cfg, str(tmp_path / "run"))


def test_a_key_added_later_matches_runs_recorded_before_it():
    """A run recorded before train.teacher existed resumes under the value that trains as
    it did ('': off), not under another."""
    from sgvs_jax.workdir import differences
    old = {"train": {"sigma": 0.3}}
    assert differences(old, {"train": {"sigma": 0.3, "teacher": ""}}) == []
    assert differences(old, {"train": {"sigma": 0.3, "teacher": "feature_norm"}}) == [
        "train.teacher: '' -> 'feature_norm'"]
    assert differences(old, {"train": {"sigma": 0.3, "other": 1}}) == ["train.other: '<absent>' -> 1"]


def test_an_older_runs_config_reads_with_the_values_it_trained_with(tmp_path):
    """summarize and the scorer read a run's recorded config: keys added since (ADDED_KEYS)
    hold the old-behaviour values there, and the recorded values are kept."""
    from sgvs_jax.app.inference import read_run_config
    from sgvs_jax.models import build_model
    from sgvs_jax.workdir import ADDED_KEYS
    recorded = tiny_config().to_dict()
    drop_added(recorded)
    recorded["model"]["d_model"] = 16
    (tmp_path / "results.json").write_text(json.dumps({"provenance": {"config": recorded}}))
    config, _ = read_run_config(str(tmp_path))
    for dotted, value in ADDED_KEYS.items():
        block, key = dotted.split(".")
        assert config[block][key] == value
    assert config.model.d_model == 16 and build_model(config).compress_net.visual_norm == "layer"
