"""How sgvs_jax compiles (sgvs_jax/compilation.py): on the CPU the update needs less
temp memory and gives bit-identical parameters; the GPU gets no autotuning, the TPU
nothing, and an option the user names in XLA_FLAGS is never overridden; a second run
with the persistent cache compiles nothing and gives the same numbers; the memory
estimate bounds what XLA allocates, and a run it does not fit is refused before
compiling, naming the video and a setting that fits."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from sgvs_jax import compilation
from sgvs_jax.data import load_dataset
from sgvs_jax.provenance import digest
from sgvs_jax.train import Trainer
from sgvs_jax.data.video import Video
from sgvs_jax.train import train_and_evaluate
from tests.tiny import tiny_config

slow = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves these out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = compilation.OPTIONS["cpu"]


def test_options_per_backend_and_never_over_the_users_flags():
    assert compilation.compiler_options("cpu", environ={}) == CPU
    assert compilation.compiler_options("cpu", environ={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}) \
        == CPU
    for flag in ("--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT",
                 "--xla_cpu_enable_concurrency_optimized_scheduler=true"):
        assert compilation.compiler_options("cpu", environ={"XLA_FLAGS": flag}) == {}
    # GPU: no GEMM autotuning (reproducible kernels), unless the user names an autotune level.
    assert compilation.compiler_options("gpu", environ={}) == {"xla_gpu_autotune_level": 0}
    assert compilation.compiler_options("gpu", environ={"XLA_FLAGS": "--xla_gpu_autotune_level=4"}) == {}
    assert compilation.compiler_options("tpu", environ={}) == {}


def test_an_option_xla_does_not_take_is_left_out():
    assert not compilation.supported((("xla_cpu_scheduler_type", "CPU_SCHEDULER_TYPE_NO_SUCH_ORDER"),))
    assert not compilation.supported((("xla_cpu_no_such_option", "1"),))


@slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the scheduler option is the CPU's")
def test_less_temp_memory_same_parameters():
    cfg = tiny_config()
    cfg.model.d_model, cfg.model.mlp_dim = 64, 128
    videos, splits, _ = load_dataset(cfg.data)
    trainer = Trainer(cfg, videos)
    train = [videos[k] for k in splits[0]["train_keys"]]
    batch = trainer.place_batch([next(trainer.data.training(train, (None, None), trainer.data.banks(train)))])
    active = ("stage1", "stage2", "stage3")
    xla_default = jax.jit(trainer.members_step, static_argnames="active", donate_argnums=0)
    temps, digests = [], []
    for fn in (trainer.step, xla_default):  # the trainer's update, compiled with sgvs_jax's options
        state = trainer.place_states(trainer.init_states([jax.random.PRNGKey(0)], train[0]))
        compiled = fn.lower(state, batch, jax.random.PRNGKey(0)[None], active=active).compile()
        temps.append(compiled.memory_analysis().temp_size_in_bytes)
        for i in range(2):
            state, _ = compiled(state, batch, jax.random.PRNGKey(i)[None])
        digests.append(digest(state["params"]))
    assert temps[0] < 0.8 * temps[1], temps
    assert digests[0] == digests[1]


SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from sgvs_jax import compilation, train
from tests.tiny import tiny_config
compilation.enable(sys.argv[1])
r = train.train_and_evaluate(tiny_config(num_epochs=1), sys.argv[2])
print(json.dumps({{"counts": compilation.counts(), "summary": r["summary"]}}))
"""


@slow
def test_second_run_compiles_nothing_and_matches(tmp_path):
    def run(name):
        p = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT), str(tmp_path / "cache"),
                            str(tmp_path / name)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                           env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert p.returncode == 0, p.stderr[-3000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    cold, warm = run("a"), run("b")
    assert cold["counts"]["cache_misses"] > 0 and cold["counts"]["compiled"] >= cold["counts"]["cache_misses"]
    assert warm["counts"]["cache_misses"] == 0 and warm["counts"]["cache_hits"] >= cold["counts"]["cache_misses"]
    assert warm["summary"] == cold["summary"]
    assert os.listdir(tmp_path / "cache")


def long_videos(length, dim=32, n=4):
    rng = np.random.default_rng(0)
    frames = length * 15
    cuts = np.array([[i, min(i + 149, frames - 1)] for i in range(0, frames, 150)])
    return {f"v{i}": Video(key=f"v{i}", features=rng.normal(size=(length, dim)).astype(np.float32),
                           picks=np.arange(length) * 15, n_frames=frames, change_points=cuts,
                           n_frame_per_seg=cuts[:, 1] - cuts[:, 0] + 1, user_summary=np.zeros((1, frames)),
                           gtscore=np.zeros(length)) for i in range(n)}


@slow
@pytest.mark.parametrize("length, block, heads", [(512, 0, 2), (1024, 128, 2)])
def test_the_memory_estimate_bounds_what_xla_allocates(length, block, heads):
    """The estimate is an upper bound of the compiled update's temporary memory, and a
    tight one (within 3x) where attention dominates: full attention at 512 steps, blocked
    attention at 1024."""
    cfg = tiny_config()
    cfg.model.attention_block, cfg.model.num_heads, cfg.data.buckets = block, heads, (length,)
    cfg.data.semantic_sources, cfg.train.semantic_weight = ("video_tokens",), 0.0  # these videos have no title
    videos = long_videos(length)
    trainer = Trainer(cfg, videos)
    train = list(videos.values())
    batch = trainer.place_batch([next(trainer.data.training(train, (np.random.default_rng(0), None), {}))])
    state = trainer.place_states(trainer.init_states([jax.random.PRNGKey(0)], train[0]))
    compiled = trainer.step.lower(state, batch, jax.random.PRNGKey(0)[None],
                                  active=("stage1", "stage2", "stage3")).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    estimate = compilation.update_bytes(cfg.train.batch_size, cfg.model.num_heads, length, block)
    assert temp <= estimate < 3 * temp, (temp, estimate)


def test_an_update_that_cannot_fit_is_refused_naming_the_video_and_a_block_that_fits():
    gib = 2 ** 30
    with pytest.raises(MemoryError) as e:
        compilation.check_update_memory(("video_7", 20000), 20000, rows=4, heads=4, block=0, available=22 * gib)
    message = str(e.value)
    assert "video 'video_7' (20000 steps" in message and "\n" not in message
    block = int(message.split("--config.model.attention_block=")[1].split()[0])
    assert compilation.update_bytes(4, 4, 20000, block) <= 11 * gib
    assert compilation.update_bytes(4, 4, 20000, 2 * block) > 11 * gib  # the largest that fits
    # What fits is accepted; nothing fits: say which settings lower it.
    compilation.check_update_memory(("v", 20000), 20000, rows=4, heads=4, block=block, available=22 * gib)
    with pytest.raises(MemoryError, match="lower train.batch_size"):
        compilation.check_update_memory(("v", 20000), 20000, rows=4, heads=4, block=0, available=gib // 100)


def test_a_run_that_cannot_fit_stops_before_compiling_or_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(compilation, "available_bytes", lambda device=None: 2 ** 20)
    built = lambda: compilation.counts()["compiled"] + compilation.counts()["cache_hits"]  # noqa: E731
    before = built()
    with pytest.raises(MemoryError, match=r"video '.+' \(\d+ steps, bucket 128\)"):
        train_and_evaluate(tiny_config(), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert built() - before < 3  # the parameter init at most, never the update


def test_available_memory_is_known_on_this_machine():
    available = compilation.available_bytes()
    assert available is None or available > 0
    if jax.default_backend() == "cpu" and os.path.exists("/proc/meminfo"):
        assert available is not None
