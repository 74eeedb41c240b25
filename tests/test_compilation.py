"""How sgvs_jax compiles (sgvs_jax/compilation.py): on the CPU the update needs less
temp memory and gives bit-identical parameters; the GPU gets no autotuning, the TPU
nothing, and an option the user names in XLA_FLAGS is never overridden; a second run
with the persistent cache compiles nothing and gives the same numbers."""

import json
import os
import subprocess
import sys

import jax
import pytest

from sgvs_jax import compilation
from sgvs_jax.data import iterate_batches, load_dataset
from sgvs_jax.provenance import digest
from sgvs_jax.train import Trainer
from sgvs_jax.train_steps import make_train_step
from tests.tiny import tiny_config

pytestmark = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves it out

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


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the scheduler option is the CPU's")
def test_less_temp_memory_same_parameters():
    cfg = tiny_config()
    cfg.model.d_model, cfg.model.mlp_dim = 64, 128
    videos, splits, _ = load_dataset(cfg.data)
    trainer = Trainer(cfg, videos)
    train = [videos[k] for k in splits[0]["train_keys"]]
    _, batch = next(iterate_batches(train, 4, trainer.buckets, None, **trainer.batch_options))
    batch = trainer.sharder.batch({**batch, **trainer.banks(train)})
    active = ("stage1", "stage2", "stage3")
    xla_default = jax.jit(make_train_step(trainer.model, trainer.stages, cfg.train), static_argnames="active",
                          donate_argnums=0)
    temps, digests = [], []
    for fn in (trainer.step, xla_default):  # the trainer's update, compiled with sgvs_jax's options
        state = trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(0), train[0]))
        compiled = fn.lower(state, batch, jax.random.PRNGKey(0), active=active).compile()
        temps.append(compiled.memory_analysis().temp_size_in_bytes)
        for i in range(2):
            state, _ = compiled(state, batch, jax.random.PRNGKey(i))
        digests.append(digest(state["params"]))
    assert temps[0] < 0.8 * temps[1], temps
    assert digests[0] == digests[1]


SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from sgvs_jax import compilation, train
from tests.tiny import tiny_config
compilation.enable(sys.argv[1])
r = train.train_and_evaluate(tiny_config(num_epochs=2), sys.argv[2])
print(json.dumps({{"counts": compilation.counts(), "summary": r["summary"]}}))
"""


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
