"""The XLA compiler options and JAX settings sgvs_jax's programs compile with
(sgvs_jax/xla_options.py): on the CPU the update needs less temp memory with them
and gives bit-identical parameters; the GPU gets no autotuning, the TPU nothing,
and an option the user names in XLA_FLAGS is never overridden; JAX's threefry GPU kernel is turned on only on a GPU, only where it
gives JAX's own bits, and never against the user's setting."""

import jax
import numpy as np
import pytest

from sgvs_jax import xla_options
from sgvs_jax.provenance import digest
from sgvs_jax.data import iterate_batches, load_dataset
from sgvs_jax.train import Trainer
from sgvs_jax.train_steps import make_train_step
from tests.tiny import tiny_config


def test_options_per_backend_and_never_over_the_users_flags():
    assert xla_options.compiler_options("cpu", environ={}) == xla_options.CPU_OPTIONS
    assert xla_options.compiler_options("cpu", environ={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}) \
        == xla_options.CPU_OPTIONS
    for flag in ("--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT",
                 "--xla_cpu_enable_concurrency_optimized_scheduler=true"):
        assert xla_options.compiler_options("cpu", environ={"XLA_FLAGS": flag}) == {}
    # GPU: no GEMM autotuning (reproducible kernels), unless the user names an autotune level.
    assert xla_options.compiler_options("gpu", environ={}) == {"xla_gpu_autotune_level": 0}
    assert xla_options.compiler_options("gpu", environ={"XLA_FLAGS": "--xla_gpu_autotune_level=4"}) == {}
    assert xla_options.compiler_options("gpu", environ={"XLA_FLAGS": "--xla_cpu_scheduler_type=X"}) \
        == xla_options.GPU_OPTIONS
    assert xla_options.compiler_options("tpu", environ={}) == {}


def test_an_option_xla_does_not_take_is_left_out():
    assert not xla_options.supported((("xla_cpu_scheduler_type", "CPU_SCHEDULER_TYPE_NO_SUCH_ORDER"),))
    assert not xla_options.supported((("xla_cpu_no_such_option", "1"),))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the scheduler option is the CPU's")
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
        digests.append(digest(state["params"]))
    assert temps[0] < 0.8 * temps[1], temps
    assert digests[0] == digests[1]


@pytest.fixture
def prng_setting():
    """Restores JAX's threefry setting and the once-per-process answer after a test."""
    before = getattr(jax.config, xla_options.PRNG_KERNEL)
    jax.config.update(xla_options.PRNG_KERNEL, False)  # as a fresh process has it (JAX's default)
    xla_options.gpu_prng_kernel.cache_clear()
    yield
    jax.config.update(xla_options.PRNG_KERNEL, before)
    xla_options.gpu_prng_kernel.cache_clear()


def test_prng_kernel_only_on_gpu_and_not_against_the_user(prng_setting, monkeypatch):
    assert not xla_options.gpu_prng_kernel("cpu")
    assert not xla_options.gpu_prng_kernel("tpu")
    monkeypatch.setenv("JAX_THREEFRY_GPU_KERNEL_LOWERING", "0")
    assert not xla_options.gpu_prng_kernel("gpu")
    assert not getattr(jax.config, xla_options.PRNG_KERNEL)
    assert xla_options.settings()[xla_options.PRNG_KERNEL] is False


def test_prng_kernel_probe(prng_setting, monkeypatch):
    """The probe's logic, run on this machine's backend as if it were a GPU (the
    CPU lowering ignores the setting, so the bits agree); the kernel itself is
    checked on a GPU by launch/gpu_check.sh (benchmarks/compile_variants.py)."""
    monkeypatch.delenv("JAX_THREEFRY_GPU_KERNEL_LOWERING", raising=False)
    assert xla_options.gpu_prng_kernel("gpu")
    assert getattr(jax.config, xla_options.PRNG_KERNEL)
    # Bits that differ, or a kernel that fails to compile: the setting goes back off.
    for broken in ({"array_equal": lambda a, b: False},
                   {"asarray": lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no cu_threefry2x32_ffi"))}):
        jax.config.update(xla_options.PRNG_KERNEL, False)
        xla_options.gpu_prng_kernel.cache_clear()
        with monkeypatch.context() as m:
            for name, fn in broken.items():
                m.setattr(xla_options.np, name, fn)
            assert not xla_options.gpu_prng_kernel("gpu")
        assert not getattr(jax.config, xla_options.PRNG_KERNEL)
