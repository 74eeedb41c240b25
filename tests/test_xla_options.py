"""The XLA compiler options sgvs_jax's programs compile with (sgvs_jax/xla_options.py):
on the CPU the update needs less temp memory with them and gives bit-identical
parameters; other backends and a scheduler the user names get none."""

import hashlib

import jax
import numpy as np

from sgvs_jax import xla_options
from sgvs_jax.data import iterate_batches, load_dataset
from sgvs_jax.train import Trainer
from sgvs_jax.train_steps import make_train_step
from tests.tiny import tiny_config


def test_options_on_the_cpu_only_and_never_over_the_users_scheduler():
    assert xla_options.compiler_options("cpu", environ={}) == xla_options.CPU_OPTIONS
    assert xla_options.compiler_options("cpu", environ={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}) \
        == xla_options.CPU_OPTIONS
    for flag in ("--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT",
                 "--xla_cpu_enable_concurrency_optimized_scheduler=true"):
        assert xla_options.compiler_options("cpu", environ={"XLA_FLAGS": flag}) == {}
    assert xla_options.compiler_options("gpu", environ={}) == {}
    assert xla_options.compiler_options("tpu", environ={}) == {}


def test_an_option_xla_does_not_take_is_left_out():
    assert not xla_options.supported((("xla_cpu_scheduler_type", "CPU_SCHEDULER_TYPE_NO_SUCH_ORDER"),))
    assert not xla_options.supported((("xla_cpu_no_such_option", "1"),))


def _digest(state):
    return hashlib.sha256(b"".join(np.asarray(x).tobytes()
                                   for x in jax.tree_util.tree_leaves(state["params"]))).hexdigest()


def test_less_temp_memory_same_parameters():
    cfg = tiny_config()
    cfg.model.d_model, cfg.model.mlp_dim = 64, 128
    videos, splits, _ = load_dataset(cfg.data)
    trainer = Trainer(cfg, videos)
    train = [videos[k] for k in splits[0]["train_keys"]]
    _, batch = next(iterate_batches(train, 4, trainer.buckets, None, **trainer.batch_kwargs))
    batch = trainer.sharder.batch({**batch, "title_bank": trainer.title_bank(train)})

    def fresh_state():
        return trainer.sharder.state(trainer.init_state(jax.random.PRNGKey(0), train[0]))

    ours = trainer.jitted[0]  # the fused update, compiled with sgvs_jax's options
    xla_default = jax.jit(make_train_step(trainer.model, trainer.txs, cfg.train),
                          static_argnames="train_discriminator")
    temps, digests = [], []
    for fn in (ours, xla_default):
        state = fresh_state()
        compiled = fn.lower(state, batch, jax.random.PRNGKey(0), train_discriminator=True).compile()
        temps.append(compiled.memory_analysis().temp_size_in_bytes)
        for i in range(2):
            state, _ = compiled(state, batch, jax.random.PRNGKey(i))
        digests.append(_digest(state))
    assert temps[0] < 0.8 * temps[1], temps
    assert digests[0] == digests[1]
