"""Stage-wise updates freeze exactly the subtrees they should."""

import jax
import numpy as np
import pytest

from sgvs_jax.data import iterate_batches
from sgvs_jax.data.synthetic import make_dataset
from sgvs_jax.train import Trainer, build_model
from sgvs_jax.train_steps import STAGE_PARTS, fused_stages, make_stage_step, make_train_step
from tests.tiny import tiny_config


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    videos = make_dataset(**dict(cfg.data.synthetic))
    trainer = Trainer(cfg, videos)
    _, batch = next(iterate_batches(list(videos.values())[:4], 4, trainer.buckets, None,
                                    **trainer.batch_kwargs))
    batch = jax.tree_util.tree_map(np.asarray, batch)
    return cfg, trainer, batch


def fresh_state(trainer, seed=0):
    video = make_dataset(n_videos=1, min_steps=40, max_steps=100, feature_dim=32, sem_dim=16)["video_1"]
    return jax.device_get(trainer.init_state(jax.random.PRNGKey(seed), video))


def equal_trees(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("stage", list(STAGE_PARTS))
def test_each_stage_moves_only_its_subtrees(setup, stage):
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    step = jax.jit(make_stage_step(trainer.model, trainer.txs, cfg.train, stage))
    new, metrics = step(state, batch, jax.random.PRNGKey(1))
    new = jax.device_get(new)
    for part in state["params"]:
        same = equal_trees(state["params"][part], new["params"][part])
        if part in STAGE_PARTS[stage]:
            assert not same, f"{stage} did not update {part}"
        else:
            assert same, f"{stage} changed frozen {part}"
    assert np.isfinite(float(metrics[f"{stage}/loss"]))


def test_incremental_step_reruns_forward_with_updated_params(setup):
    """Fused incremental step == the three stage steps run one after another."""
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    rng = jax.random.PRNGKey(3)
    fused, m_fused = jax.jit(make_train_step(trainer.model, trainer.txs, cfg.train),
                             static_argnums=3)(state, batch, rng, True)
    s = state
    for i, stage in enumerate(STAGE_PARTS):
        s, m = jax.jit(make_stage_step(trainer.model, trainer.txs, cfg.train, stage))(
            s, batch, jax.random.fold_in(rng, i))
        np.testing.assert_allclose(m[f"{stage}/loss"], m_fused[f"{stage}/loss"], rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(fused["params"])),
                    jax.tree_util.tree_leaves(jax.device_get(s["params"]))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(s["step"]) == int(fused["step"]) == 1  # stage 1 counts the update


@pytest.mark.parametrize("platform, fuse_stages, schedule, fused", [
    ("cpu", None, "incremental", True), ("gpu", None, "incremental", False), ("tpu", None, "incremental", False),
    ("cpu", False, "incremental", False), ("gpu", True, "incremental", True), ("gpu", None, "joint", True),
    ("gpu", False, "joint", True)])
def test_fuse_stages_auto_is_fused_on_the_cpu_only(platform, fuse_stages, schedule, fused):
    assert fused_stages(fuse_stages, schedule, platform) is fused


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a claim about the CPU: elsewhere the two arrangements "
                    "may fuse and round differently (benchmarks/compile_cost.py --arrangements measures it)")
def test_per_stage_programs_train_the_fused_programs_bits_on_the_cpu(setup):
    """The trainer's programs as they run (sgvs_jax.xla_options settings, donation):
    three updates one program per stage land on the fused program's state bit for bit."""
    cfg, _, batch = setup
    states = {}
    for fuse in (True, False):
        c = tiny_config(fuse_stages=fuse)
        videos = make_dataset(**dict(c.data.synthetic))
        trainer = Trainer(c, videos)
        assert trainer.fused is fuse
        state = trainer.sharder.state(fresh_state(trainer))
        placed = trainer.sharder.batch({**batch, "title_bank": trainer.title_bank(list(videos.values()))})
        for i in range(3):
            state, _ = trainer.step(state, placed, jax.random.PRNGKey(i), train_discriminator=i > 0)
        states[fuse] = jax.device_get(state)
    assert equal_trees(states[True], states[False])
    assert int(states[False]["step"]) == 3


def test_joint_differs_from_incremental(setup):
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    rng = jax.random.PRNGKey(3)
    inc, _ = jax.jit(make_train_step(trainer.model, trainer.txs, cfg.train), static_argnums=3)(
        state, batch, rng, True)
    joint_cfg = tiny_config(schedule="joint").train
    joint, _ = jax.jit(make_train_step(trainer.model, trainer.txs, joint_cfg), static_argnums=3)(
        state, batch, rng, True)
    inc, joint = jax.device_get((inc, joint))
    # Stage 1 sees the same parameters in both schedules, so it agrees...
    assert equal_trees(inc["params"]["selector"], joint["params"]["selector"])
    # ...but the decoder update sees the stage-1 encoder only in the incremental schedule.
    assert not equal_trees(inc["params"]["decoder"], joint["params"]["decoder"])


def test_warmup_freezes_discriminator(setup):
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    new, metrics = jax.jit(make_train_step(trainer.model, trainer.txs, cfg.train), static_argnums=3)(
        state, batch, jax.random.PRNGKey(0), False)
    assert equal_trees(state["params"]["discriminator"], jax.device_get(new["params"]["discriminator"]))
    assert "stage3/loss" not in metrics


def assert_same_training(params_a, params_b, cfg):
    """Parameters trained by two float orderings of one computation: Adam moves every parameter
    by at most ~lr, also where a gradient is ~0 and reordering flips its sign: bound those, and
    require them to be rare."""
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(jax.device_get(p))])
            for p in (params_a, params_b))
    np.testing.assert_allclose(a, b, atol=2 * cfg.optim.lr_stage1)
    assert np.mean(np.abs(a - b) > 1e-6) < 0.01


def test_vmapped_members_match_individual_runs(setup):
    """M members (different seeds and sigmas) in one vmapped step == M separate steps."""
    from sgvs_jax.train_steps import init_member_states, make_multi_train_step
    cfg, trainer, batch = setup
    seeds, sigmas = [0, 1, 2], [0.15, 0.3, 0.5]
    rngs = jax.vmap(jax.random.PRNGKey)(np.array(seeds))
    states = init_member_states(trainer.model, trainer.txs, rngs, batch, sigmas)
    step_rngs = jax.vmap(lambda s: jax.random.PRNGKey(s + 10))(np.array(seeds))
    multi, m_multi = jax.jit(make_multi_train_step(trainer.model, trainer.txs, cfg.train), static_argnums=3)(
        states, batch, step_rngs, True)
    single = jax.jit(make_train_step(trainer.model, trainer.txs, cfg.train), static_argnums=3)
    from sgvs_jax.train_steps import init_state
    for i, (seed, sigma) in enumerate(zip(seeds, sigmas)):
        s = init_state(trainer.model, trainer.txs, jax.random.PRNGKey(seed), batch, sigma)
        s, m = single(s, batch, jax.random.PRNGKey(seed + 10), True)
        np.testing.assert_allclose(m["stage1/sparsity"], m_multi["stage1/sparsity"][i], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(m["stage3/loss"], m_multi["stage3/loss"][i], rtol=1e-4, atol=1e-6)
        assert_same_training(s["params"], jax.tree_util.tree_map(lambda x: x[i], multi["params"]), cfg)
    assert len({float(x) for x in m_multi["stage1/loss"]}) == 3  # members really differ


def _stage_grads(cfg, stage, batch, state, **train):
    from sgvs_jax.train_steps import stage_grad

    cfg = cfg.copy_and_resolve_references()
    for k, v in train.items():
        cfg.train[k] = v
    model = build_model(cfg, batch["features"].shape[-1])
    fn = jax.jit(stage_grad(stage, model, cfg.train, True))
    return fn(state["params"], batch, jax.random.PRNGKey(0), state["sigma"])


def _batch_with_empty_slot(batch):
    batch = {k: v.copy() for k, v in batch.items()}
    batch["valid"][-1] = False  # an empty slot at the end of the batch
    batch["mask"][-1] = False
    batch["features"][-1] = 0.0
    batch["title_bank"] = batch["title"][:3]
    return batch


@pytest.mark.parametrize("stage,microbatch", [("stage1", 1), ("stage1", 2), ("stage2", 2), ("stage3", 1)])
def test_microbatch_gradient_equals_whole_batch(setup, stage, microbatch):
    """With dropout, the concrete gate's noise and the uniform fake all on, slices of m
    videos draw the whole batch's randomness and accumulate its loss, metrics and
    gradient; the empty slot (valid False) weighs nothing."""
    cfg, trainer, batch = setup
    assert cfg.model.dropout > 0 and cfg.train.selection == "concrete" and cfg.train.uniform_fake
    batch = _batch_with_empty_slot(batch)
    state = fresh_state(trainer)
    assert_same_stage_gradient(stage, _stage_grads(cfg, stage, batch, state),
                               _stage_grads(cfg, stage, batch, state, microbatch=microbatch))


def assert_same_stage_gradient(stage, one, other):
    """Two ``((loss, metrics), grads)`` of a stage agree up to float rounding, and the
    gradient reaches the stage's subtrees."""
    (loss_a, m_a), g_a = one
    (loss_b, m_b), g_b = other
    np.testing.assert_allclose(float(loss_b), float(loss_a), rtol=1e-5)
    for k in m_a:
        np.testing.assert_allclose(float(m_b[k]), float(m_a[k]), rtol=1e-5, atol=1e-7, err_msg=k)
    moved = 0
    for part in STAGE_PARTS[stage]:
        for a, b in zip(jax.tree_util.tree_leaves(g_a[part]), jax.tree_util.tree_leaves(g_b[part])):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-4, atol=1e-7)
            moved += int(np.any(np.asarray(a) != 0))
    assert moved, f"{stage}: no gradient reached its subtrees"


def test_microbatch_slices_drawing_their_own_randomness_differ(setup, monkeypatch):
    """Where the PRNG cannot draw rows, each slice draws its own (with a warning): a
    different gradient, which the test above would catch."""
    from sgvs_jax.models import row_random

    cfg, trainer, batch = setup
    batch = _batch_with_empty_slot(batch)
    state = fresh_state(trainer)
    (_, _), g_a = _stage_grads(cfg, "stage1", batch, state)
    monkeypatch.setattr(row_random, "supported", lambda key=None: False)
    with pytest.warns(UserWarning, match="each slice draws its own"):
        (_, _), g_b = _stage_grads(cfg, "stage1", batch, state, microbatch=1)
    worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / (np.abs(np.asarray(a)) + 1e-6)))
                for a, b in zip(jax.tree_util.tree_leaves(g_a["selector"]), jax.tree_util.tree_leaves(g_b["selector"])))
    assert worst > 1e-2, worst


def test_microbatched_updates_train_the_whole_batch_model(setup):
    """Three fused updates with slices of one video land on the whole batch's parameters
    (up to float rounding, bounded as for vmapped members)."""
    cfg, trainer, batch = setup
    batch = {**batch, "title_bank": batch["title"]}
    params = {}
    for m in (0, 1):
        c = cfg.copy_and_resolve_references()
        c.train.microbatch = m
        step = jax.jit(make_train_step(trainer.model, trainer.txs, c.train), static_argnums=3)
        state = fresh_state(trainer)
        for i in range(3):
            state, _ = step(state, batch, jax.random.PRNGKey(10 + i), True)
        params[m] = state["params"]
    assert_same_training(params[1], params[0], cfg)


def test_auto_slices_only_large_batches_on_the_cpu():
    """train.microbatch=-1: one video per pass on the CPU where the whole batch's (B, T, d_model)
    activation is large (the community h5 configs' long buckets), the whole batch elsewhere;
    the embedded default and TVSum I3D, whose numbers are published, keep the whole batch."""
    from configs import default, tvsum_h5, tvsum_i3d
    from sgvs_jax.train_steps import AUTO, slice_height

    for get in (default.get_config, tvsum_i3d.get_config):
        c = get()
        assert c.train.microbatch == AUTO
        assert all(slice_height(AUTO, c.train.batch_size, b, c.model.d_model, "cpu") == 0 for b in c.data.buckets)
    c = tvsum_h5.get_config()  # SumMe's longest video pads to 704 steps, TVSum's to 1344
    assert [slice_height(AUTO, 4, b, c.model.d_model, "cpu") for b in (128, 256, 512, 704, 1344)] == [0, 0, 1, 1, 1]
    assert [slice_height(AUTO, 4, 1344, c.model.d_model, p) for p in ("gpu", "tpu")] == [0, 0]
    assert slice_height(2, 4, 1344, 512, "gpu") == 2 and slice_height(0, 4, 1344, 512, "cpu") == 0


def test_microbatch_holds_fewer_activations(setup):
    """The compiled update with slices of one video needs less temporary memory."""
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    temp = {}
    for m in (0, 1):
        c = cfg.copy_and_resolve_references()
        c.train.microbatch = m
        step = jax.jit(make_train_step(trainer.model, trainer.txs, c.train), static_argnums=3)
        compiled = step.lower(state, {**batch, "title_bank": batch["title"]}, jax.random.PRNGKey(0), True).compile()
        temp[m] = compiled.memory_analysis().temp_size_in_bytes
    assert temp[1] < 0.6 * temp[0], temp


@pytest.mark.parametrize("platform, value, batched", [
    ("cpu", None, False), ("gpu", None, True), ("tpu", None, True), ("cpu", True, True), ("gpu", False, False)])
def test_batched_passes_auto_on_accelerators_only(platform, value, batched):
    from sgvs_jax.train_steps import batched_passes
    assert batched_passes(value, platform) is batched


def _forward(cfg, trainer, batch, state, batched):
    from sgvs_jax.train_steps import forward
    c = cfg.copy_and_resolve_references()
    c.train.batched_passes = batched
    fn = jax.jit(lambda p, b, r: forward(trainer.model, p, b, r, c.train, True))
    return jax.device_get(fn(state["params"], batch, jax.random.PRNGKey(5)))


def test_batched_passes_draw_what_each_pass_draws(setup):
    """One vmapped call over the generator's score sets and the discriminator's inputs,
    each with its own keys, with dropout, gate noise and the uniform fake on: every
    pass's outputs are the separate call's, up to float rounding (a pass drawing
    another pass's masks would be off by far more)."""
    cfg, trainer, batch = setup
    assert cfg.model.dropout > 0 and cfg.train.selection == "concrete" and cfg.train.uniform_fake
    batch = _batch_with_empty_slot(batch)
    state = fresh_state(trainer)
    one, many = (_forward(cfg, trainer, batch, state, b) for b in (False, True))
    for k in ("scores", "gate", "x_hat"):
        np.testing.assert_allclose(many[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for k in ("real", "fake", "uniform"):
        for name in ("states", "hidden", "prob"):
            np.testing.assert_allclose(many[k][name], one[k][name], rtol=1e-5, atol=1e-6, err_msg=f"{k}/{name}")
    assert not np.allclose(one["fake"]["states"], one["uniform"]["states"], atol=1e-3)  # two different fakes


@pytest.fixture(scope="module")
def batched_vs_separate(setup):
    """Per stage: each setting's ((loss, metrics), grads) and its compiled program's HLO
    instruction count, at one state and batch."""
    from benchmarks.compile_cost import hlo_instructions
    from sgvs_jax.train_steps import stage_grad
    cfg, trainer, batch = setup
    batch = _batch_with_empty_slot(batch)
    state = fresh_state(trainer)
    out = {}
    for stage in STAGE_PARTS:
        for batched in (False, True):
            c = cfg.copy_and_resolve_references()
            c.train.batched_passes = batched
            fn = jax.jit(stage_grad(stage, trainer.model, c.train, True))
            args = (state["params"], batch, jax.random.PRNGKey(0), state["sigma"])
            out[stage, batched] = (jax.device_get(fn(*args)), hlo_instructions(fn.lower(*args).compile().as_text()))
    return out


@pytest.mark.parametrize("stage", list(STAGE_PARTS))
def test_batched_passes_gradient_equals_separate_calls(batched_vs_separate, stage):
    assert_same_stage_gradient(stage, batched_vs_separate[stage, False][0], batched_vs_separate[stage, True][0])


@pytest.mark.parametrize("stage", ["stage2", "stage3"])
def test_batched_passes_make_a_smaller_program(batched_vs_separate, stage):
    """What batching is for: stages 2 and 3 judge three inputs and generate from two score
    sets, so their programs shrink most (stage 1 judges two)."""
    _, separate = batched_vs_separate[stage, False]
    _, batched = batched_vs_separate[stage, True]
    assert batched < 0.8 * separate, (batched, separate)
