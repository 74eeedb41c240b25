"""The XLA flag sgvs_jax sets on import (sgvs_jax/xla_flags.py): the CPU update
needs less temp memory with it, and gives bit-identical parameters."""

import json
import os
import subprocess
import sys

from sgvs_jax import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = """
import hashlib, json, sys
sys.path.insert(0, {root!r})
import jax, numpy as np
from sgvs_jax.data import iterate_batches, load_dataset
from sgvs_jax.train import Trainer
from tests.tiny import tiny_config
cfg = tiny_config()
cfg.model.d_model, cfg.model.mlp_dim = 64, 128
videos, splits, _ = load_dataset(cfg.data)
trainer = Trainer(cfg, videos)
train = [videos[k] for k in splits[0]["train_keys"]]
state = trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(0), train[0]))
_, batch = next(iterate_batches(train, 4, trainer.buckets, None, **trainer.batch_kwargs))
batch = trainer.sharder.batch({{**batch, "title_bank": trainer.title_bank(train)}})
(lowered,) = trainer._lower_step(state, batch, jax.random.PRNGKey(0), True).values()
temp = lowered.compile().memory_analysis().temp_size_in_bytes
for i in range(2):
    state, _ = trainer.step(state, batch, jax.random.PRNGKey(i), True)
digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in jax.tree_util.tree_leaves(state["params"])))
import os
print(json.dumps({{"temp": temp, "params": digest.hexdigest(), "xla_flags": os.environ["XLA_FLAGS"]}}))
"""


def run(xla_flags_env):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags_env}
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT)], capture_output=True, text=True,
                       timeout=600, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_apply_adds_the_flag_once_and_keeps_the_users_choice():
    env = {}
    assert xla_flags.apply(env, tpu_runtime=False) == ["--xla_cpu_enable_concurrency_optimized_scheduler=false"]
    assert xla_flags.apply(env, tpu_runtime=False) == [] and env["XLA_FLAGS"].count("concurrency") == 1
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    xla_flags.apply(env, tpu_runtime=False)
    assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=2 "
                                "--xla_cpu_enable_concurrency_optimized_scheduler=false")
    env = {"XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    assert xla_flags.apply(env, tpu_runtime=False) == [] and env["XLA_FLAGS"].endswith("=true")
    env = {}
    assert xla_flags.apply(env, tpu_runtime=True) == [] and env == {}


def test_less_temp_memory_same_parameters():
    ours = run("")  # the flag comes from importing sgvs_jax
    xla_default = run("--xla_cpu_enable_concurrency_optimized_scheduler=true")
    assert "scheduler=false" in ours["xla_flags"] and "scheduler=true" in xla_default["xla_flags"]
    assert ours["temp"] < 0.8 * xla_default["temp"], (ours["temp"], xla_default["temp"])
    assert ours["params"] == xla_default["params"]
