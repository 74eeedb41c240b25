"""What the commands write: never over an input, over someone else's file only
with overwrite, atomically, with the user's umask, as strict JSON."""

import json
import os

import pytest

from sgvs_jax.files import OutputError, atomic_path, check_outputs, write_json


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "video.mp4").write_bytes(b"precious")
    (tmp_path / "notes.json").write_text("{}")
    return tmp_path


def test_an_input_is_never_an_output_even_with_overwrite(tree):
    video = str(tree / "video.mp4")
    os.symlink(video, tree / "link.mp4")
    os.link(video, tree / "hard.mp4")
    for alias in (video, str(tree / "link.mp4"), str(tree / "hard.mp4"), str(tree / "sub" / ".." / "video.mp4")):
        for overwrite in (False, True):
            with pytest.raises(OutputError, match="is an input"):
                check_outputs({"--out": alias}, [video], overwrite=overwrite)
    assert (tree / "video.mp4").read_bytes() == b"precious"


def test_existing_files_need_overwrite_unless_ours(tree):
    notes = str(tree / "notes.json")
    with pytest.raises(OutputError, match="--json .*notes.json exists.*--overwrite"):
        check_outputs({"--json": notes}, [])
    check_outputs({"--json": notes}, [], overwrite=True)
    check_outputs({"--json": notes}, [], ours={"--json": lambda p: True})
    check_outputs({"--json": str(tree / "new.json")}, [])  # a new file is always fine


def test_outputs_must_differ_and_be_files(tree):
    with pytest.raises(OutputError, match="same file"):
        check_outputs({"--out": str(tree / "a.mp4"), "--json": str(tree / "a.mp4")}, [])
    with pytest.raises(OutputError, match="is a folder"):
        check_outputs({"--out": str(tree)}, [], overwrite=True)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_umask_mode(tree, umask, mode):
    old = os.umask(umask)
    try:
        write_json(str(tree / "r.json"), {"a": 1})
        with atomic_path(str(tree / "x.bin")) as tmp, open(tmp, "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert os.stat(tree / "r.json").st_mode & 0o777 == mode
    assert os.stat(tree / "x.bin").st_mode & 0o777 == mode


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tree):
    with pytest.raises(RuntimeError):
        with atomic_path(str(tree / "notes.json")) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash")
    assert (tree / "notes.json").read_text() == "{}"
    assert sorted(os.listdir(tree)) == ["notes.json", "video.mp4"]


def test_json_is_strict(tree):
    write_json(str(tree / "r.json"), {"tau": float("nan"), "f1": [1.0, float("inf")], "n": 2})
    text = (tree / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"tau": None, "f1": [1.0, None], "n": 2}


def test_an_unwritable_folder_names_the_output_not_the_temporary_file(tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(*_, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(kw["dir"], ".out.json.x.partial"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = str(tmp_path / "out.json")
    with pytest.raises(OutputError, match=r"out\.json: cannot write in .*Permission denied") as e:
        write_json(out, {"a": 1})
    assert ".partial" not in str(e.value)
