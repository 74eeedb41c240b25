"""The front door (sgvs_jax/cli.py): every command refuses, before any work, an output that
is one of its inputs or a file it did not write; reads its seed lists, name lists, grids and
JSON arguments strictly; and says what is wrong in one ``error:`` line, changing nothing."""

import hashlib
import json
import os
import re
import runpy
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sgvs_jax import cli
from sgvs_jax.files import OutputError
from tests.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SELECT = runpy.run_path(os.path.join(ROOT, "benchmarks", "select_settings.py"))


def digest(folder) -> dict:
    """SHA-256 of every file below ``folder``: what a refused command must leave as it was."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                out[os.path.relpath(os.path.join(root, n), folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def command(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    return p, [line for line in p.stderr.splitlines() if line.strip()]


# --- arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,3,7", [0, 3, 7]), ("0-1,5", [0, 1, 5]),
                                         (" 2 ", [2]), ("3-3", [3])])
def test_seed_lists(text, seeds):
    assert cli.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["0-", "5,3-1", "3-1", "-1", "", ",", "0,", "a-b", "0,0", "0-2,1", "1.5", "0--2"])
def test_a_seed_list_is_read_exactly_or_refused(text):
    with pytest.raises(cli.ArgumentError, match="--seeds"):
        cli.parse_seeds(text)


@pytest.mark.parametrize("text, message", [("", "at least one variant"), (",", "at least one variant"),
                                           ("sgvs,,no_fssa", "empty variant"), ("sgvs,sgvs", "repeated"),
                                           ("sgvs,nope", "unknown variant 'nope'")])
def test_a_name_list_is_read_exactly_or_refused(text, message):
    with pytest.raises(cli.ArgumentError, match=f"--variants.*{message}"):
        cli.parse_names(text, "--variants", ["sgvs", "no_fssa"], "variant")
    assert cli.parse_names(" sgvs , no_fssa", "--variants", ["sgvs", "no_fssa"]) == ["sgvs", "no_fssa"]


@pytest.mark.parametrize("text", ["train.teacher_weight", "train.teacher_weight=", "=1,2", "train.sigma=1,)",
                                  "train.sigma=1,,2", "train.sigma=1,1", "train sigma=1", "train.sigma=a b"])
def test_a_bad_grid_is_named(text):
    with pytest.raises(cli.ArgumentError, match="--grid"):
        cli.parse_grid(text)


def test_grid_values_are_literals_or_bare_words():
    assert cli.parse_grid("train.teacher=feature_norm,''") == ("train.teacher", ["feature_norm", ""])
    assert cli.parse_grid("train.sigma=0.3, 0.5") == ("train.sigma", [0.3, 0.5])


@pytest.mark.parametrize("grid, message", [
    ("train.teacher_weight=1,abc", r"train.teacher_weight='abc'.*float"),  # a value of another type
    ("train.sigma=0.3,-1", r"train.sigma=-1.*sigma"),  # out of range: check_config's message
    ("train=1", "train is a block of keys"),  # a block, not a value
    ("train.foo.bar=1", "train.foo is not a config key"),
    ("train.teacher_wieght=1,0.1", "train.teacher_wieght is not a config key"),
])
def test_every_grid_config_is_checked_before_any_work(grid, message):
    key, values = cli.parse_grid(grid)
    with pytest.raises(cli.ArgumentError, match=f"--grid.*{message}"):
        SELECT["grid_configs"](tiny_config(), key, values, ["sgvs", "no_fssa"], 1)


@pytest.mark.parametrize("content, message", [(None, "file not found"), ("{not json", "not valid JSON"),
                                              ("[1, 2]", "expected a JSON object, got list")])
def test_a_json_argument_is_read_or_refused_naming_the_flag(tmp_path, content, message):
    path = tmp_path / "names.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(cli.ArgumentError, match=f"--names {path}: {message}"):
        cli.read_json_arg(str(path), "--names")
    path.write_text('{"video_1": "a.mp4"}')
    assert cli.read_json_arg(str(path), "--names") == {"video_1": "a.mp4"}


def test_a_baseline_is_a_commit_or_refused_naming_the_flag(tmp_path):
    """benchmarks' --baseline: a commit's full hash; a typo, a tree or no repository is one error."""
    repo = str(tmp_path / "repo")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", repo]
    subprocess.run(["git", "init", "-q", repo], check=True)
    (tmp_path / "repo" / "f").write_text("x")
    subprocess.run(git + ["add", "f"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    tree = subprocess.run(git + ["rev-parse", "HEAD^{tree}"], capture_output=True, text=True).stdout.strip()
    assert cli.parse_commit("HEAD", "--baseline", repo) == head
    assert cli.parse_commit(head[:7], "--baseline", repo) == head
    for rev, where in (("nosuchrev", repo), (tree, repo), ("HEAD", str(tmp_path))):
        with pytest.raises(cli.ArgumentError, match=f"--baseline {rev}: not a commit of"):
            cli.parse_commit(rev, "--baseline", where)


def test_add_clip_reads_names_and_titles_through_the_front_door(tmp_path):
    from sgvs_jax.app.add_clip import read_titles
    with pytest.raises(cli.ArgumentError, match="--titles .*missing.json: file not found"):
        read_titles(str(tmp_path / "missing.json"))


# --- outputs -----------------------------------------------------------------------------------

def test_every_file_a_config_reads_is_an_input(tmp_path):
    h5, splits = tmp_path / "data.h5", tmp_path / "splits.json"
    h5.write_bytes(b"x")
    splits.write_text("[]")
    c = tiny_config()
    c.data.h5_path, c.data.split_path = str(h5), str(splits)
    inputs = [os.path.abspath(p) for p in cli.config_inputs(c, "configs/tvsum_i3d.py")]
    for p in (h5, splits, os.path.join(ROOT, "configs", "tvsum_i3d.py"), os.path.join(ROOT, "configs", "default.py")):
        assert os.path.abspath(str(p)) in inputs


def test_overwrite_replaces_only_a_file_of_the_outputs_kind(tmp_path):
    """--overwrite lets a JSON output replace a JSON file, never an h5, a video or a config."""
    other = tmp_path / "other.json"
    other.write_text('{"mine": 1}')
    cli.guard({"--out": str(other)}, [], overwrite=True)
    data = tmp_path / "data.json"  # an h5 named .json
    with h5py.File(data, "w") as f:
        f["x"] = np.zeros(2)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 32)
    config = tmp_path / "config.py"
    config.write_text("def get_config(): pass\n")
    for path, out_name, kind in ((data, "data.json", "hdf5"), (video, "clip.mp4", None), (config, "config.py", None)):
        with pytest.raises(OutputError, match="exists and was not written by this command"):
            cli.guard({"--out": str(path)}, [])
    with pytest.raises(OutputError, match="holds a hdf5 file, not json"):
        cli.guard({"--out": str(data)}, [], overwrite=True)
    h5_out = tmp_path / "clip.h5"
    os.rename(video, h5_out)
    with pytest.raises(OutputError, match="holds a mp4 file, not hdf5"):
        cli.guard({"--out": str(h5_out)}, [], overwrite=True)


def test_a_rerun_replaces_only_what_its_own_command_wrote(tmp_path, monkeypatch):
    out = str(tmp_path / "result.json")
    monkeypatch.setattr(sys, "argv", ["study.py", "--seeds", "0"])
    cli.write_result(out, {"tau": 0.2}, "sgvs_jax.study")
    assert json.load(open(out))["command"] == "python -m sgvs_jax.study --seeds 0"
    cli.guard_result(out, "sgvs_jax.study")  # its own: no --overwrite needed
    with pytest.raises(OutputError, match="was not written by this command"):
        cli.guard_result(out, "benchmarks/select_settings.py")


def test_a_study_writes_its_tables_only_over_its_own(tmp_path):
    from sgvs_jax.study import STUDY_MARK, study_outputs
    w = tmp_path / "w"
    w.mkdir()
    (w / "study.md").write_text("# my notes\n")
    outputs, ours = study_outputs(str(w))
    with pytest.raises(OutputError, match="W/study.md .*study.md exists and was not written"):
        cli.guard(outputs, [], False, ours)
    (w / "study.md").write_text(f"{STUDY_MARK}\n| row | ...\n")
    cli.guard(outputs, [], False, ours)


# --- the commands, as a user runs them: refused in <= 3 lines, before any training ---------------

def test_study_refuses_an_output_that_is_an_input_or_a_strangers_file(tmp_path):
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps([{"train_keys": ["a"], "test_keys": ["b"]}]))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["mine"] = np.zeros(3)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "study.md").write_text("my own table\n")
    before = digest(tmp_path)
    for out, extra, message in ((splits, [f"--config.data.split_path={splits}"], "--out .* is an input of this"),
                                (other, [], "--out .* exists and was not written by this command"),
                                (other, ["--overwrite"], "--out .* holds a hdf5 file, not json"),
                                (tmp_path / "new.json", [], "W/study.md .* exists and was not written")):
        workdir = tmp_path / ("w" if "study.md" in message else "w2")
        p, lines = command("-m", "sgvs_jax.study", "--config", "configs/default.py", "--workdir", str(workdir),
                           "--out", str(out), *extra)
        assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
        assert re.search(message, lines[0]), lines[0]
    assert digest(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["other.h5", "splits.json", "w"]


@pytest.mark.parametrize("flags, message", [(["--seeds", "0-"], "--seeds '0-'"),
                                            (["--seeds", "5,3-1"], "--seeds '5,3-1'"),
                                            (["--variants="], "--variants '': give at least one variant"),
                                            (["--variants", ","], "--variants ','")])
def test_study_arguments_are_read_exactly(tmp_path, flags, message):
    p, lines = command("-m", "sgvs_jax.study", "--workdir", str(tmp_path / "w"), *flags)
    assert p.returncode == 1 and len(lines) == 1 and message in lines[0], p.stderr[-2000:]
    assert not (tmp_path / "w").exists()


def test_select_settings_refuses_its_own_config_as_out_before_any_work(tmp_path):
    config = tmp_path / "my_config.py"
    config.write_text(open(os.path.join(ROOT, "configs", "default.py")).read().replace(
        "import ml_collections", "import ml_collections  # mine"))
    before = digest(tmp_path)
    for out, extra, message in ((config, [], "is an input of this command"),
                                (tmp_path / "o.json", ["--variants", "sgvs,nope"], "unknown variant 'nope'"),
                                (tmp_path / "o.json", ["--grid", "train.sigma=0.3,-1"], "train.sigma=-1")):
        grid = [] if "--grid" in extra else ["--grid", "train.sigma=0.3,0.5"]
        p, lines = command("benchmarks/select_settings.py", "--config", str(config), *grid, "--workdir",
                           str(tmp_path / "w"), "--out", str(out), *extra)
        assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
        assert message in lines[0], lines[0]
    assert digest(tmp_path) == before and not (tmp_path / "w").exists()


@pytest.mark.parametrize("args, message", [(["--grid", "train.sigma"], "--grid 'train.sigma': use KEY=V1"),
                                           (["--grid", "train.sigma=1", "--seeds", "0-"], "--seeds '0-'"),
                                           (["--grid", "train.sigma=1", "--config", "nope.py"],
                                            "--config nope.py: file not found"),
                                           (["--grid", "train.sigma=1", "--epochs", "x"], "--epochs: invalid int")])
def test_select_settings_usage_errors_are_one_line(tmp_path, args, message):
    base = {"--config": "configs/default.py", "--out": str(tmp_path / "o.json"), "--workdir": str(tmp_path / "w")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    p, lines = command("benchmarks/select_settings.py", *[x for kv in base.items() for x in kv])
    assert p.returncode == 1 and len(lines) == 1 and message in lines[0], p.stderr[-2000:]
    assert not os.listdir(tmp_path)
