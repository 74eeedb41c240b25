"""Pure, jittable update steps for incremental (stage-wise) SGVS training.

A training stage is one :class:`Stage` record, declared once in :func:`make_stages`:
its name, the parameter subtrees it trains, its optimizer, its loss and the epoch
from which it runs (SUM-GAN-AAE incremental training):

  stage1  projection + selector + encoder   reconstruction + sparsity (+ video-title contrast, teacher)
  stage2  decoder              reconstruction + least-squares GAN generator term
  stage3  discriminator        least-squares GAN discriminator term (after warm-up)

Each stage takes the gradient of its loss with respect to its own subtrees only;
the others enter the loss as constants and pass through bit-identical.  In the
incremental schedule each stage re-runs the forward pass with the parameters the
previous stage produced; the joint ablation takes every stage's gradient at the
same parameters.  The whole update is one jitted program.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from sgvs_jax import losses
from sgvs_jax.models import SGVS, bottleneck
from sgvs_jax.models.layers import masked_mean

SCHEDULES = ("incremental", "joint")
SHARED_KEYS = ("title_bank",)  # batch entries without a batch axis
CLIP_NORM = 5.0  # each stage's gradient is clipped to this global norm before AdamW
SEMANTIC_TEMPERATURE = 0.2  # of the video-title InfoNCE (losses.pooled_contrast)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage.

    name        metrics are reported as ``name/...``
    parts       the parameter subtrees it trains; the rest are frozen while it runs
    tx          its optimizer, over ``{part: params[part] for part in parts}``
    loss        ``loss(outputs, batch, sigma, cfg) -> (scalar, metrics)`` with
                ``outputs`` of :func:`forward`, ``cfg`` = ``config.train``
    uniform_fake  whether its loss uses the uniform-score fake (``train.uniform_fake``)
    from_epoch  the first (0-based) epoch in which it runs
    """

    name: str
    parts: tuple[str, ...]
    tx: optax.GradientTransformation
    loss: Callable
    uniform_fake: bool = True
    from_epoch: int = 0

    def runs(self, epoch: int) -> bool:
        return epoch >= self.from_epoch

    def trainable(self, params: dict) -> dict:
        return {p: params[p] for p in self.parts}


def make_stages(config) -> tuple[Stage, ...]:
    """The stages of a run, from ``config.train`` and ``config.optim`` (``optim.lr.<stage>``)."""
    t, o = config.train, config.optim

    def tx(name):
        return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adamw(o.lr[name], weight_decay=o.weight_decay))

    stages = [Stage("stage1", ("compress", "selector", "encoder"), tx("stage1"), selector_loss, uniform_fake=False),
              Stage("stage2", ("decoder",), tx("stage2"), decoder_loss)]
    if t.adversarial:
        stages.append(Stage("stage3", ("discriminator",), tx("stage3"), discriminator_loss,
                            from_epoch=t.warmup_epochs))
    return tuple(stages)


def active_stages(stages, epoch: int) -> tuple[str, ...]:
    """Names of the stages that run in (0-based) ``epoch``: the train step's static argument."""
    return tuple(s.name for s in stages if s.runs(epoch))


# --- the forward pass and the stages' losses -------------------------------------------------

RNG_STREAMS = ("select", "gate", "generate", "real", "fake", "uniform", "uniform_gate", "uniform_generate")


def forward(model: SGVS, params, batch, rng, cfg, uniform: bool = True) -> dict:
    """Shared projection -> selector -> selection gate -> reconstruction (-> discriminator).

    Stage 1 trains the shared projection through the selector's path only: the
    generator and discriminator read the projected video as a constant ``target``, so
    the projection cannot lower the reconstruction error by shrinking or blurring what
    is to be rebuilt; ``cfg`` is ``config.train``: ``selection`` picks the
    bottleneck (:mod:`sgvs_jax.models.bottleneck`); with ``adversarial`` the
    discriminator judges the original and the reconstruction; ``uniform_fake`` adds a
    reconstruction from uniform random scores as a second fake (SUM-GAN), when the
    caller's loss uses it (``uniform``).
    """
    keys = dict(zip(RNG_STREAMS, jax.random.split(rng, len(RNG_STREAMS))))
    mask = batch["mask"]
    c = model.compress(params, batch["features"])  # once: every network reads it
    target = jax.lax.stop_gradient(c["raw"])  # the generator's input and target, the discriminator's real video
    sel = model.select(params, batch, keys["select"], compressed=c)

    def generate(scores, gate_key, generate_key):
        g, bias = bottleneck.gate(scores, mask, gate_key, cfg.selection)
        return model.reconstruct(params, target * g[..., None], mask, generate_key, bias), g

    x_hat, g = generate(sel["scores"], keys["gate"], keys["generate"])
    out = {"scores": sel["scores"], "gate": g, "target": target, "x_hat": x_hat,
           "alpha": sel.get("alpha", jnp.zeros(())), "frame_view": sel.get("frame_view")}
    if cfg.adversarial:
        out["real"] = model.discriminate(params, target, mask, keys["real"])
        out["fake"] = model.discriminate(params, x_hat, mask, keys["fake"])
        if cfg.uniform_fake and uniform:
            u = jax.random.uniform(keys["uniform"], sel["scores"].shape) * mask
            u_hat, _ = generate(u, keys["uniform_gate"], keys["uniform_generate"])
            out["uniform"] = model.discriminate(params, u_hat, mask, keys["fake"])
    return out


def reconstruction_loss(o, batch, cfg):
    """The generator's reconstruction term (``cfg.recon`` on the discriminator's states,
    plus ``cfg.feature_recon_weight`` x the per-step feature MSE); without the
    adversarial part, the feature MSE alone."""
    mask, valid = batch["mask"], batch["valid"]
    feature = losses.feature_reconstruction(o["target"], o["x_hat"], mask, valid)
    if not cfg.adversarial:
        return feature
    if cfg.recon == "pooled":
        recon = losses.reconstruction(o["real"]["hidden"], o["fake"]["hidden"], valid)
    elif cfg.recon == "stepwise":
        recon = losses.stepwise_reconstruction(o["real"]["states"], o["fake"]["states"], mask, valid)
    else:
        raise ValueError(f"unknown train.recon {cfg.recon!r} (use 'pooled' or 'stepwise')")
    return recon + cfg.feature_recon_weight * feature


def contrast_titles(batch):
    """(N, Ds) the titles the video-title term contrasts with: the batch's ``title_bank``
    (the training titles) where it has one, else the batch's own titles."""
    return batch.get("title_bank", batch["title"])


def selector_loss(o, batch, sigma, cfg):
    """Stage 1: reconstruction + sparsity |mean(s) - sigma| (+ the video-title contrast,
    :func:`sgvs_jax.losses.pooled_contrast`) (+ agreement with the ranks of a training-free
    ``train.teacher``, :func:`sgvs_jax.losses.rank_agreement`)."""
    mask, valid = batch["mask"], batch["valid"]
    recon = reconstruction_loss(o, batch, cfg)
    sparsity = losses.sparsity(o["scores"], mask, valid, sigma)
    loss = recon + cfg.sparsity_weight * sparsity
    m = {"recon": recon, "sparsity": sparsity, "alpha": o["alpha"],
         "mean_score": losses.batch_mean(masked_mean(o["scores"], mask, axis=1), valid),
         "score_spread": losses.batch_mean(losses.masked_std(o["scores"], mask), valid)}
    if cfg.semantic_weight and o["frame_view"] is not None:
        m["semantic"] = losses.pooled_contrast(o["frame_view"], o["scores"], mask, batch["title"],
                                               contrast_titles(batch), valid, SEMANTIC_TEMPERATURE)
        loss = loss + cfg.semantic_weight * m["semantic"]
    if cfg.teacher:
        if "teacher" not in batch:
            raise KeyError(f"train.teacher={cfg.teacher!r} needs each batch's 'teacher' ranks "
                           "(sgvs_jax.data.pipeline adds them; train.teacher='' turns the term off)")
        m["teacher"] = losses.rank_agreement(o["scores"], batch["teacher"], mask, valid)
        loss = loss + cfg.teacher_weight * m["teacher"]
    return loss, m


def decoder_loss(o, batch, sigma, cfg):
    """Stage 2: reconstruction + the least-squares GAN generator term on each fake."""
    valid = batch["valid"]
    recon = reconstruction_loss(o, batch, cfg)
    if not cfg.adversarial:
        return recon, {"recon": recon}
    gen = losses.lsgan_generator(o["fake"]["prob"], valid)
    if "uniform" in o:
        gen = gen + losses.lsgan_generator(o["uniform"]["prob"], valid)
    return recon + gen, {"recon": recon, "gen": gen}


def discriminator_loss(o, batch, sigma, cfg):
    """Stage 3: (D(x) - 1)^2 + sum over fakes of D(fake)^2."""
    fakes = [o["fake"]["prob"]] + ([o["uniform"]["prob"]] if "uniform" in o else [])
    return losses.lsgan_discriminator(o["real"]["prob"], fakes, batch["valid"]), {}


# --- gradients and updates ---------------------------------------------------------------------

def stage_grad(stage: Stage, model: SGVS, cfg):
    """``grad_fn(params, batch, rng, sigma) -> ((loss, metrics), grads)``, ``grads`` over
    ``stage.parts`` only."""

    def loss_fn(trainable, params, batch, rng, sigma):
        o = forward(model, {**params, **trainable}, batch, rng, cfg, uniform=stage.uniform_fake)
        loss, m = stage.loss(o, batch, sigma, cfg)
        return loss, {f"{stage.name}/{k}": v for k, v in {**m, "loss": loss}.items()}

    value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)

    def grad_fn(params, batch, rng, sigma):
        return value_and_grad(stage.trainable(params), params, batch, rng, sigma)

    return grad_fn


def init_state(model: SGVS, stages, rng, batch, sigma) -> dict:
    """Train state pytree: params, one optimizer state per stage (over its own parts),
    the update count, and the sparsity target sigma (a leaf, so that members of a
    vmapped study can differ in it)."""
    params = model.init(rng, batch)
    return {"params": params, "opt": {s.name: s.tx.init(s.trainable(params)) for s in stages},
            "step": jnp.zeros((), jnp.int32), "sigma": jnp.asarray(sigma, jnp.float32)}


def apply_stage(stage: Stage, params, opt_state, grads):
    """One optimizer step on the stage's subtrees; the others pass through untouched."""
    trainable = stage.trainable(params)
    updates, opt_state = stage.tx.update(grads, opt_state, trainable)
    return {**params, **optax.apply_updates(trainable, updates)}, opt_state


def make_train_step(model: SGVS, stages, cfg):
    """``train_step(state, batch, rng, active) -> (state, metrics)``.

    ``active`` (static): the names of the stages that run (:func:`active_stages`).
    ``cfg`` is ``config.train``; ``cfg.schedule`` 'incremental' (each stage sees the
    parameters the stage before it produced) or 'joint' (every stage's gradient at the
    update's incoming parameters).  Stage i draws from ``fold_in(rng, i)``.  A batch may
    carry ``title_bank`` (N, Ds), the titles the semantic term contrasts with.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown train.schedule {cfg.schedule!r} (use one of {SCHEDULES})")
    grad_fns = {s.name: stage_grad(s, model, cfg) for s in stages}

    def train_step(state, batch, rng, active: tuple):
        params, opt, metrics = state["params"], dict(state["opt"]), {}
        for i, stage in enumerate(stages):
            if stage.name not in active:
                continue
            at = params if cfg.schedule == "incremental" else state["params"]
            (_, m), grads = grad_fns[stage.name](at, batch, jax.random.fold_in(rng, i), state["sigma"])
            params, opt[stage.name] = apply_stage(stage, params, opt[stage.name], grads)
            metrics.update(m)
        return {**state, "params": params, "opt": opt, "step": state["step"] + 1}, metrics

    return train_step


def make_predict(model: SGVS, outputs: tuple = ()):
    """``predict(params, batch) -> (B, T)`` importance scores (no dropout); with
    ``outputs``, a dict of those selector outputs (e.g. 'scores', 'h', 'cos', 'alpha')."""

    def predict(params, batch):
        out = model.select(params, batch)
        return {k: v for k, v in out.items() if k in outputs} if outputs else out["scores"]

    return predict


__all__ = ["Stage", "make_stages", "active_stages", "forward", "stage_grad", "init_state", "apply_stage",
           "make_train_step", "make_predict"]
