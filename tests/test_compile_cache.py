"""The persistent compilation cache (on by default in sgvs_jax.main): a second
run of the same job compiles nothing and gives bit-identical numbers."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from sgvs_jax import compile_cache, train
from tests.tiny import tiny_config
compile_cache.enable(sys.argv[1])
r = train.train_and_evaluate(tiny_config(num_epochs=2), sys.argv[2])
print(json.dumps({{"counts": compile_cache.counts(), "summary": r["summary"],
                  "precompile": r["splits"]["0"]["precompile"]}}))
"""


def run(tmp_path, name):
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT), str(tmp_path / "cache"),
                        str(tmp_path / name)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout, json.loads(p.stdout.strip().splitlines()[-1])


def test_second_run_compiles_nothing_and_matches(tmp_path):
    _, cold = run(tmp_path, "a")
    out, warm = run(tmp_path, "b")
    assert cold["counts"]["misses"] > 0 and cold["precompile"]["cache_hits"] == 0
    assert warm["counts"]["misses"] == 0 and warm["counts"]["hits"] >= cold["counts"]["misses"]
    assert warm["precompile"]["cache_hits"] == warm["precompile"]["programs"]
    assert "from the persistent cache" in out
    assert warm["summary"] == cold["summary"]
    assert os.listdir(tmp_path / "cache")


def test_default_folder_and_off(monkeypatch, tmp_path):
    from sgvs_jax import compile_cache
    monkeypatch.setenv("SGVS_JAX_CACHE", str(tmp_path / "c"))
    assert compile_cache.default_dir() == str(tmp_path / "c")
    monkeypatch.delenv("SGVS_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_dir() == str(tmp_path / "xdg" / "sgvs_jax" / "xla")
    assert compile_cache.enable("none") is None
