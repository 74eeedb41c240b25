"""``python -m sgvs_jax.main``: an expected error is one ``error:`` line and exit
status 1 (the traceback behind --debug), and nothing is written."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(tmp_path, *flags):
    env = {**os.environ, "PYTHONPATH": ROOT, "SGVS_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "sgvs_jax.main", "--workdir", str(tmp_path / "run"), *flags],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("flags,message", [
    (["--config", "configs/default.py", "--config.train.batch_size=0"], "config.train.batch_size=0"),
    (["--config", "configs/tvsum_h5.py", "--config.data.h5_path=/no/such.h5"], "/no/such.h5: file not found"),
    (["--config", "configs/default.py", "--config.data.buckets=()", "--config.data.min_bucket=20000"],
     "smallest bucket is 20000 steps"),
])
def test_expected_errors_are_one_line(tmp_path, flags, message):
    p = main(tmp_path, *flags)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1, p.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], p.stderr[-2000:]
    assert not (tmp_path / "run").exists()
    p = main(tmp_path, *flags, "--debug")
    assert p.returncode != 0 and "Traceback" in p.stderr and message in p.stderr


@pytest.mark.parametrize("flag,message", [
    ("--config.train.num_epoch=3", "--config.train.num_epoch: unknown config key; did you mean --config.train.num_epochs?"),
    ("--config.train.nonexistent=3", "--config.train.nonexistent: unknown config key"),
    ("--config.train.num_epochs=abc", "--config.train.num_epochs=abc"),
    ("--config.train.foo.bar=1", "--config.train.foo.bar: unknown config key"),  # a block that is not there
])
@pytest.mark.parametrize("config", [["--config", "configs/default.py"], []])  # [] : the default config
def test_a_bad_config_flag_is_one_line(tmp_path, flag, message, config):
    """An unknown or mistyped key, or a value of the wrong type, on the command line."""
    p = main(tmp_path, *config, flag)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], p.stderr
    assert not (tmp_path / "run").exists()
    p = main(tmp_path, *config, flag, "--debug")
    assert p.returncode != 0 and "Traceback" in p.stderr


@pytest.mark.parametrize("flags", [["--config", "configs/nope.py"], ["--config=configs/nope.py"]])
def test_a_missing_config_file_is_one_line(tmp_path, flags):
    p = main(tmp_path, *flags)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and lines == ["error: --config configs/nope.py: file not found (give a "
                                           "configs/<name>.py file)"], p.stderr
    assert not (tmp_path / "run").exists()


def test_a_config_is_named_from_any_folder(tmp_path):
    """``--config /path/to/configs/x.py`` from another folder: the config's own imports resolve."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # sgvs_jax as installed, no checkout on the path
    env.update(SGVS_JAX_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.main", "--config", os.path.join(ROOT, "configs", "tvsum_h5.py"),
                        "--config.data.h5_path=/no/such.h5", "--workdir", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert p.returncode == 1 and p.stderr.strip() == "error: /no/such.h5: file not found", p.stderr
