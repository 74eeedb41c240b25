"""Stage-wise updates: each stage moves exactly its own subtrees, the incremental
schedule re-runs the forward pass with the parameters the stage before produced,
and a stage is one record (a new one needs no other change)."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from sgvs_jax import losses
from sgvs_jax.data.synthetic import make_dataset
from sgvs_jax.train import Trainer
from sgvs_jax.train_steps import (Stage, active_stages, apply_stage, init_state, make_predict, make_stages,
                                  make_train_step, stage_grad)
from tests.tiny import tiny_config

pytestmark = pytest.mark.slow  # minutes on two cores: pytest -m 'not slow' leaves it out

ALL = ("stage1", "stage2", "stage3")


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    videos = make_dataset(**dict(cfg.data.synthetic))
    trainer = Trainer(cfg, videos)
    keys, batch = next(trainer.data.scoring(list(videos.values())[:4]))
    batch["teacher"] = trainer.data.teacher_targets([videos[k] for k in keys], batch["mask"].shape)  # the default's
    batch = jax.tree_util.tree_map(np.asarray, batch)
    return cfg, trainer, batch


def fresh_state(trainer, seed=0):
    video = make_dataset(n_videos=1, min_steps=40, max_steps=100, feature_dim=32)["video_1"]
    return jax.tree_util.tree_map(lambda x: x[0], trainer.init_states([jax.random.PRNGKey(seed)], video))


def equal_trees(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def run_step(cfg, trainer, state, batch, rng, active, stages=None, **train):
    c = cfg.copy_and_resolve_references()
    for k, v in train.items():
        c.train[k] = v
    step = jax.jit(make_train_step(trainer.model, stages or trainer.stages, c.train), static_argnames="active")
    return jax.device_get(step(state, batch, rng, active=active))


def assert_same_training(params_a, params_b, cfg):
    """Parameters trained by two float orderings of one computation: Adam moves every parameter
    by about lr, also where a gradient is ~0 and reordering flips its sign: bound those, and
    require them to be rare."""
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(p)]) for p in (params_a, params_b))
    np.testing.assert_allclose(a, b, atol=2 * cfg.optim.lr.stage1)
    assert np.mean(np.abs(a - b) > 1e-6) < 0.01


@pytest.mark.parametrize("stage", ALL)
def test_each_stage_moves_only_its_subtrees(setup, stage):
    cfg, trainer, batch = setup
    state = fresh_state(trainer)
    new, metrics = run_step(cfg, trainer, state, batch, jax.random.PRNGKey(1), (stage,))
    parts = {s.name: s.parts for s in trainer.stages}[stage]
    for part in state["params"]:
        same = equal_trees(state["params"][part], new["params"][part])
        assert same == (part not in parts), f"{stage} {'did not update' if same else 'changed frozen'} {part}"
    assert set(metrics) == {k for k in metrics if k.startswith(stage + "/")} and np.isfinite(metrics[f"{stage}/loss"])
    assert int(new["step"]) == 1


def test_incremental_step_reruns_forward_with_updated_params(setup):
    """The update == the stages' gradients and optimizer steps taken one after another,
    each at the parameters the one before produced; the joint schedule takes them all at
    the incoming parameters: the same stage 1, another decoder."""
    cfg, trainer, batch = setup
    state, rng = fresh_state(trainer), jax.random.PRNGKey(3)
    params = state["params"]
    for i, stage in enumerate(trainer.stages):
        (_, _), grads = jax.jit(stage_grad(stage, trainer.model, cfg.train))(
            params, batch, jax.random.fold_in(rng, i), state["sigma"])
        params, _ = apply_stage(stage, params, state["opt"][stage.name], grads)
    incremental, _ = run_step(cfg, trainer, state, batch, rng, ALL)
    assert_same_training(incremental["params"], jax.device_get(params), cfg)
    joint, _ = run_step(cfg, trainer, state, batch, rng, ALL, schedule="joint")
    assert equal_trees(incremental["params"]["selector"], joint["params"]["selector"])
    assert not equal_trees(incremental["params"]["decoder"], joint["params"]["decoder"])


def test_warmup_keeps_the_discriminator_out(setup):
    cfg, trainer, batch = setup
    c = tiny_config(warmup_epochs=2)
    stages = make_stages(c)
    assert [active_stages(stages, e) for e in (0, 1, 2)] == [ALL[:2], ALL[:2], ALL]
    assert active_stages(make_stages(tiny_config(adversarial=False)), 5) == ALL[:2]
    state = fresh_state(trainer)
    new, metrics = run_step(cfg, trainer, state, batch, jax.random.PRNGKey(0), active_stages(stages, 0))
    assert equal_trees(state["params"]["discriminator"], new["params"]["discriminator"])
    assert "stage3/loss" not in metrics


def test_a_new_stage_is_one_record(setup):
    """A fourth stage (the selector alone, on the sparsity term) is declared once and runs
    after the others, with its own optimizer state, moving only its part."""
    cfg, trainer, batch = setup

    def sparsity_only(o, b, sigma, _cfg):
        return losses.sparsity(o["scores"], b["mask"], b["valid"], sigma), {}

    extra = Stage("stage4", ("selector",), optax.sgd(0.1), sparsity_only, uniform_fake=False, from_epoch=1)
    stages = trainer.stages + (extra,)
    model = trainer.model
    state = jax.device_get(jax.jit(lambda r: init_state(model, stages, r, batch, 0.3))(jax.random.PRNGKey(0)))
    assert set(state["opt"]) == set(ALL) | {"stage4"}
    assert active_stages(stages, 0) == ALL and active_stages(stages, 1) == ALL + ("stage4",)
    new, metrics = run_step(cfg, trainer, state, batch, jax.random.PRNGKey(1), ("stage4",), stages=stages)
    assert not equal_trees(state["params"]["selector"], new["params"]["selector"])
    assert all(equal_trees(state["params"][p], new["params"][p])
               for p in ("compress", "encoder", "decoder", "discriminator"))
    assert set(metrics) == {"stage4/loss"}


def test_unknown_schedule_is_named(setup):
    _, trainer, _ = setup
    with pytest.raises(ValueError, match="train.schedule 'other'"):
        make_train_step(trainer.model, trainer.stages, tiny_config(schedule="other").train)


def test_a_teacher_hands_stage1_its_ranks_and_stage1_learns_their_order():
    """train.teacher: each training batch carries the criterion's ranks of the features as
    the model sees them (0 on padding), and stage-1 updates pull the scores into that order."""
    from sgvs_jax.data.batching import normalize
    from sgvs_jax.evaluation.baselines import criterion_ranks
    cfg = tiny_config(teacher="feature_norm")
    cfg.model.visual_norm = "none"  # the selector sees each step's scale, which is all the teacher ranks
    cfg.train.teacher_weight = 1.0  # the term alone decides here; the default's light weight shares it
    rng = np.random.default_rng(0)
    videos = {k: dataclasses.replace(v, features=v.features * rng.uniform(0.5, 2.0, (v.length, 1)).astype(np.float32))
              for k, v in make_dataset(**dict(cfg.data.synthetic)).items()}  # steps of different norms
    trainer = Trainer(cfg, videos)
    train = list(videos.values())[:4]
    batch = jax.tree_util.tree_map(np.asarray, next(trainer.data.training(train, (None, None), {})))
    for i, v in enumerate(train):
        want = criterion_ranks(normalize(v.features, cfg.data.normalization), "feature_norm")
        np.testing.assert_array_equal(batch["teacher"][i, :v.length], want)
        assert not batch["teacher"][i, v.length:].any()

    predict = jax.jit(make_predict(trainer.model))
    step = jax.jit(make_train_step(trainer.model, trainer.stages, cfg.train), static_argnames="active")

    def agreement(state):
        scores = np.asarray(predict(state["params"], batch))
        return np.mean([np.corrcoef(scores[i, :v.length], batch["teacher"][i, :v.length])[0, 1]
                        for i, v in enumerate(train)])

    state = fresh_state(trainer)
    before = agreement(state)
    for i in range(60):
        state, m = step(state, batch, jax.random.PRNGKey(i), active=("stage1",))
    assert "stage1/teacher" in m and agreement(jax.device_get(state)) > max(before, 0) + 0.4
