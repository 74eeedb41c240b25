"""Pure, jittable update steps for incremental (stage-wise) SGVS training.

Stages (SUM-GAN-AAE incremental training), each with its own optax optimizer
over a labelled partition of the full parameter tree (``optax.multi_transform``
with ``set_to_zero`` on the frozen label):

  stage1  selector + encoder   loss = reconstruction + sparsity (+ semantic alignment)
  stage2  decoder              loss = reconstruction + least-squares GAN generator term
  stage3  discriminator        loss = least-squares GAN discriminator term

In the incremental schedule each stage re-runs the forward pass with the
parameters the previous stage produced; the frozen subtrees are passed through
untouched (bit-identical).  The joint ablation computes all three gradients at
the same parameters and applies them together.

``train.microbatch`` = m > 0 computes each stage's gradient m videos at a time
(a ``lax.scan`` accumulating the gradient), so only m videos' activations are
alive at once: the same objective and optimizer step (the per-video terms are
averaged over the batch's real videos either way) and the same random draws
(each slice draws its rows of the whole batch's dropout masks, gate noise and
uniform fakes, :mod:`sgvs_jax.models.row_random`), so it trains the model the
whole batch trains, up to float rounding: a memory setting, not a change of method.

``train.batched_passes`` makes one ``jax.vmap`` call over the generator's score
sets and one over the discriminator's inputs, each pass with its own keys: the
same passes and draws in a smaller program (:func:`batched_passes`, :func:`passes`).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import optax

from sgvs_jax import losses
from sgvs_jax.models import PARTS, SGVS, bottleneck, row_random
from sgvs_jax.models.layers import masked_mean

STAGE_PARTS = {"stage1": ("selector", "encoder"), "stage2": ("decoder",), "stage3": ("discriminator",)}


def stage_labels(stage: str):
    """Label function for ``optax.multi_transform``: 'train' on the stage's subtrees."""

    def labels(params):
        return {p: jax.tree_util.tree_map(lambda _: "train" if p in STAGE_PARTS[stage] else "frozen",
                                          params[p]) for p in params}

    return labels


def make_optimizers(cfg) -> dict:
    """One optimizer per stage from ``config.optim``."""
    txs = {}
    for stage in STAGE_PARTS:
        inner = optax.chain(
            optax.clip_by_global_norm(cfg.clip_norm),
            optax.adamw(cfg[f"lr_{stage}"], weight_decay=cfg.weight_decay),
        )
        txs[stage] = optax.multi_transform({"train": inner, "frozen": optax.set_to_zero()},
                                           stage_labels(stage))
    return txs


def init_state(model: SGVS, txs: dict, rng, batch, sigma) -> dict:
    """Train state pytree: params, one optimizer state per stage, step, and the
    sparsity target sigma (a leaf, so that vmapped members can differ in it)."""
    params = model.init(rng, batch)
    return {"params": params, "opt": {s: tx.init(params) for s, tx in txs.items()},
            "step": jnp.zeros((), jnp.int32), "sigma": jnp.asarray(sigma, jnp.float32)}


RNG_STREAMS = ("select", "gate", "generate", "real", "fake", "uniform", "uniform_gate", "uniform_generate")


def forward(model: SGVS, params, batch, rng, cfg, adversarial: bool, row_offset=None, uniform: bool = True) -> dict:
    """Selector -> selection gate -> reconstruction (-> discriminator).

    ``cfg`` is ``config.train``: ``selection`` and ``selection_temperature`` pick
    the bottleneck (:mod:`sgvs_jax.models.bottleneck`); ``uniform_fake`` adds a
    reconstruction from uniform random scores as a second fake (SUM-GAN), unless
    ``uniform`` is False (stage 1, whose loss has no use for it).
    ``row_offset``: the batch is rows ``[row_offset, row_offset + B)`` of a taller
    batch and draws exactly what those rows draw there (``train.microbatch``).
    ``cfg.batched_passes``: one generator call for the two score sets and one
    discriminator call for [original, reconstruction(s)], each a ``jax.vmap`` over
    the passes and their own keys, so every pass draws what it draws alone (the
    same dropout masks and noise): a smaller program, the same model up to float
    rounding (:func:`passes`).
    """
    keys = dict(zip(RNG_STREAMS, jax.random.split(rng, len(RNG_STREAMS))))
    x, mask = batch["features"], batch["mask"]
    sel = model.select(params, batch, keys["select"], row_offset=row_offset)
    s = sel["scores"]
    with_uniform = adversarial and cfg.uniform_fake and uniform
    many = passes(batched_passes(cfg.get("batched_passes")))

    def generate(scores, gate_key, generate_key):
        g, bias = bottleneck.gate(scores, mask, gate_key, cfg.selection, cfg.selection_temperature,
                                  row_offset=row_offset)
        return model.reconstruct(params, x * g[..., None], mask, generate_key, bias, row_offset=row_offset), g

    def discriminate(inputs, key):
        return model.discriminate(params, inputs, mask, key, row_offset=row_offset)

    score_sets = [(s, keys["gate"], keys["generate"])]
    if with_uniform:
        u = row_random.uniform(keys["uniform"], s.shape, row_offset=row_offset) * mask
        score_sets.append((u, keys["uniform_gate"], keys["uniform_generate"]))
    generated = many(generate, score_sets)
    (x_hat, g) = generated[0]
    out = {"scores": s, "gate": g, "x_hat": x_hat, "alpha": sel.get("alpha", jnp.zeros(())),
           "frame_view": sel.get("frame_view")}
    if adversarial:
        # The uniform fake's discriminator pass shares the reconstruction's key (as it always has).
        judged = many(discriminate, [(x, keys["real"]), (x_hat, keys["fake"])]
                      + ([(generated[1][0], keys["fake"])] if with_uniform else []))
        out.update(zip(("real", "fake", "uniform"), judged))
    return out


def batched_passes(value, platform: str | None = None) -> bool:
    """Whether :func:`forward` makes one vmapped call over a network's passes.

    ``train.batched_passes`` True or False is taken as it is; None (auto) batches
    on accelerators and keeps a call per pass on the CPU.  Both make the same
    passes with the same keys, so they train the same model up to float rounding
    (other last bits).  Batched, the default's update has 29 % fewer HLO
    instructions (55,556 -> 39,674; its programs of one stage each 20,497 ->
    16,693 at most) and XLA's HLO passes take about a third less time; on the CPU
    the LLVM back end, most of its compile, takes as long or longer, so the total
    is not shorter there, while a GPU's compile was three quarters HLO passes
    (benchmarks/RESULTS.md).  A batched call holds its passes' activations at once
    (the SumMe-shaped whole batch on the CPU: peak RSS 4.03 -> 4.74 GiB; on an
    accelerator, device memory).  On the CPU the published numbers keep their bits."""
    if value is not None:
        return bool(value)
    return (platform or jax.default_backend()) != "cpu"


def passes(batched: bool):
    """``many(fn, calls) -> [fn(*args) for args in calls]``: one call each, or
    (``batched``) one ``jax.vmap`` of ``fn`` over the calls' stacked arguments,
    its outputs cut back into one per call.  Random keys are arguments like the
    rest, so a vmapped call draws, row of the stack by row, exactly what its own
    call draws (JAX's PRNG is a function of the key alone)."""

    def separate(fn, calls):
        return [fn(*args) for args in calls]

    def stacked(fn, calls):
        if len(calls) == 1:
            return separate(fn, calls)
        args = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *calls)
        out = jax.vmap(fn)(*args)
        return [jax.tree_util.tree_map(lambda a, i=i: a[i], out) for i in range(len(calls))]

    return stacked if batched else separate


def reconstruction_loss(o, batch, cfg, adversarial: bool):
    """The generator's reconstruction term (``cfg.recon``), plus the optional
    step-wise feature term (``cfg.feature_recon_weight``)."""
    mask, valid = batch["mask"], batch["valid"]
    feature = losses.feature_reconstruction(batch["features"], o["x_hat"], mask, valid)
    if not adversarial:
        return feature
    if cfg.recon == "pooled":
        recon = losses.reconstruction(o["real"]["hidden"], o["fake"]["hidden"], valid)
    elif cfg.recon == "stepwise":
        recon = losses.stepwise_reconstruction(o["real"]["states"], o["fake"]["states"], mask, valid)
    else:
        raise ValueError(f"unknown train.recon {cfg.recon!r} (use 'pooled' or 'stepwise')")
    return recon + cfg.feature_recon_weight * feature


SHARED_KEYS = ("title_bank",)  # batch entries without a batch axis (the same for every video)


def contrast_titles(batch):
    """(N, Ds) the titles the semantic term contrasts with: the batch's ``title_bank``
    (the training titles) where it has one, else the batch's own titles."""
    return batch.get("title_bank", batch["title"])


def stage_loss(stage: str, model: SGVS, cfg, adversarial: bool):
    """Returns loss_fn(params, batch, rng, sigma, row_offset=None) -> (loss, metrics) for one stage."""

    def loss_fn(params, batch, rng, sigma, row_offset=None):
        o = forward(model, params, batch, rng, cfg, adversarial, row_offset=row_offset, uniform=stage != "stage1")
        mask, valid = batch["mask"], batch["valid"]
        recon = reconstruction_loss(o, batch, cfg, adversarial)
        m = {"recon": recon}
        if stage == "stage1":
            sp = losses.sparsity(o["scores"], mask, valid, sigma)
            loss = recon + cfg.sparsity_weight * sp
            if cfg.semantic_weight and o["frame_view"] is not None:
                bank = contrast_titles(batch)
                sem = losses.semantic_alignment(o["frame_view"], o["scores"], mask, batch["title"], bank, valid,
                                                cfg.semantic_temperature, cfg.semantic_pooling)
                loss = loss + cfg.semantic_weight * sem
                m["semantic"] = sem
            m.update(sparsity=sp, alpha=o["alpha"],
                     mean_score=losses.batch_mean(masked_mean(o["scores"], mask, axis=1), valid),
                     score_spread=losses.batch_mean(losses.masked_std(o["scores"], mask), valid))
        elif stage == "stage2":
            loss = recon
            if adversarial:
                g = losses.lsgan_generator(o["fake"]["prob"], valid)
                if cfg.uniform_fake:
                    g = g + losses.lsgan_generator(o["uniform"]["prob"], valid)
                loss = loss + cfg.gan_weight * g
                m["gen"] = g
        else:
            fakes = [o["fake"]["prob"]] + ([o["uniform"]["prob"]] if cfg.uniform_fake else [])
            loss = losses.lsgan_discriminator(o["real"]["prob"], fakes, valid)
        m["loss"] = loss
        return loss, {f"{stage}/{k}": v for k, v in m.items()}

    return loss_fn


AUTO = -1  # train.microbatch: slices of one video where the whole batch is large, on the CPU only
AUTO_SLICE_ELEMENTS = 2 ** 19  # B * T * d_model above which AUTO slices (the (B, T, d_model) activations)


def slice_height(microbatch: int, batch_size: int, length: int, d_model: int, platform: str | None = None) -> int:
    """Videos per gradient pass that ``train.microbatch`` asks for at one bucket: 0 = the whole batch.

    ``microbatch`` >= 0 is taken as it is; ``AUTO`` (-1) is 1 on the CPU where a (B, T, d_model)
    activation of the whole batch would exceed ``AUTO_SLICE_ELEMENTS`` values, else 0: on a CPU
    host the activations are host memory, while an accelerator wants the batch.  Slicing draws
    what the whole batch draws, so the choice changes memory and speed, not the trained model
    (beyond float rounding)."""
    if microbatch != AUTO:
        return microbatch
    platform = platform or jax.default_backend()
    return 1 if platform == "cpu" and batch_size * length * d_model > AUTO_SLICE_ELEMENTS else 0


def fused_stages(fuse_stages, schedule: str = "incremental", platform: str | None = None) -> bool:
    """Whether an update is one program for its stages (else one program per stage).

    ``train.fuse_stages`` True or False is taken as it is; None (auto) fuses on the
    CPU and keeps one program per stage on accelerators.  Both run the same stages
    with the same random keys in the same order: on the CPU they train to the same
    bits (the default and TVSum I3D: the same parameters' SHA-256, benchmarks/RESULTS.md).
    Three programs of about a third of the fused one's size compile side by side
    where the host has cores to spare (:func:`sgvs_jax.train.compile_in_parallel`:
    an accelerator's host), while on a two-core CPU they would compile one after
    the other, longer in sum than the one fused program.  The joint schedule is
    always one program (its stages share one forward pass's parameters)."""
    if schedule == "joint":
        return True
    if fuse_stages is not None:
        return bool(fuse_stages)
    return (platform or jax.default_backend()) == "cpu"


def stage_grad(stage: str, model: SGVS, cfg, adversarial: bool):
    """``grad_fn(params, batch, rng, sigma) -> ((loss, metrics), grads)`` of one stage.

    With ``cfg.microbatch`` = m > 0 (or ``AUTO``, see :func:`slice_height`, resolved
    per batch shape when the step is traced) the batch is cut into slices of m videos and
    the slices' losses, metrics and gradients are summed, each weighted by its
    share of the batch's real videos, in a ``lax.scan`` (memory: one slice's
    activations).  Slice i draws rows ``[i m, (i + 1) m)`` of the whole batch's
    randomness from the same ``rng``, so the slices draw what the whole batch draws;
    where the PRNG cannot draw rows alone (not JAX's default partitionable
    threefry, :func:`sgvs_jax.models.row_random.supported`) slice i draws its own
    from ``fold_in(rng, i)`` instead, with a warning.
    """
    value_and_grad = jax.value_and_grad(stage_loss(stage, model, cfg, adversarial), has_aux=True)
    asked = int(cfg.get("microbatch", 0) or 0)
    if not asked:
        return value_and_grad

    def grad_fn(params, batch, rng, sigma):
        B, T = batch["mask"].shape
        m = slice_height(asked, B, T, model.selector.d_model)
        if not m:
            return value_and_grad(params, batch, rng, sigma)
        batch = {**batch, "title_bank": contrast_titles(batch)}  # the whole batch's, not a slice's
        if B % m:
            raise ValueError(f"train.microbatch={m} must divide the batch size {B}")
        shared = {k: batch.pop(k) for k in SHARED_KEYS if k in batch}
        slices = {k: v.reshape((B // m, m) + v.shape[1:]) for k, v in batch.items()}
        n_real = jnp.maximum(batch["valid"].sum(), 1).astype(jnp.float32)

        if row_random.supported(rng):
            def one(i, part):
                return value_and_grad(params, {**part, **shared}, rng, sigma, row_offset=i * m)
        else:
            warnings.warn("train.microbatch: this PRNG cannot draw a slice's rows of the whole batch's "
                          "randomness, so each slice draws its own (other numbers than the whole batch's)")

            def one(i, part):
                return value_and_grad(params, {**part, **shared}, jax.random.fold_in(rng, i), sigma)

        first = jax.tree_util.tree_map(lambda v: v[0], slices)
        zeros = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype),
                                       jax.eval_shape(one, jnp.zeros((), jnp.int32), first))

        def body(total, xs):
            i, part = xs
            out = one(i, part)
            w = part["valid"].sum().astype(jnp.float32) / n_real
            return jax.tree_util.tree_map(lambda t, o: t + w * o, total, out), None

        total, _ = jax.lax.scan(body, zeros, (jnp.arange(B // m), slices))
        return total

    return grad_fn


def apply_stage(stage, tx, params, opt_state, grads):
    """Optimizer step; only the stage's subtrees are replaced, the rest pass through."""
    updates, opt_state = tx.update(grads, opt_state, params)
    new = dict(params)
    for p in STAGE_PARTS[stage]:
        new[p] = optax.apply_updates(params[p], updates[p])
    return new, opt_state


def make_train_step(model: SGVS, txs: dict, cfg):
    """Builds ``train_step(state, batch, rng, train_discriminator) -> (state, metrics)``.

    ``cfg`` is ``config.train``: ``schedule`` ('incremental' or 'joint'),
    ``adversarial`` (False: feature-level reconstruction, no discriminator),
    ``selection``, ``selection_temperature``, ``recon``, ``feature_recon_weight``,
    ``sparsity_weight``, ``semantic_weight``, ``semantic_temperature``,
    ``gan_weight``, ``uniform_fake``, ``microbatch``.  A batch may carry ``title_bank`` (N, Ds), the
    titles the semantic term contrasts with (replicated, not split over devices).
    ``train_discriminator`` is static: False during warm-up epochs.
    """
    adversarial = bool(cfg.adversarial)

    def train_step(state, batch, rng, train_discriminator: bool):
        params, opt = state["params"], dict(state["opt"])
        stages = ["stage1", "stage2"] + (["stage3"] if adversarial and train_discriminator else [])
        metrics = {}
        if cfg.schedule == "incremental":
            for i, stage in enumerate(stages):
                fn = stage_grad(stage, model, cfg, adversarial)
                (_, m), grads = fn(params, batch, jax.random.fold_in(rng, i), state["sigma"])
                params, opt[stage] = apply_stage(stage, txs[stage], params, opt[stage], grads)
                metrics.update(m)
        elif cfg.schedule == "joint":
            all_grads = {}
            for i, stage in enumerate(stages):
                fn = stage_grad(stage, model, cfg, adversarial)
                (_, m), all_grads[stage] = fn(params, batch, jax.random.fold_in(rng, i), state["sigma"])
                metrics.update(m)
            new = params
            for stage in stages:
                stepped, opt[stage] = apply_stage(stage, txs[stage], params, opt[stage], all_grads[stage])
                new = {**new, **{p: stepped[p] for p in STAGE_PARTS[stage]}}
            params = new
        else:
            raise ValueError(f"unknown train.schedule {cfg.schedule!r} (use 'incremental' or 'joint')")
        return {**state, "params": params, "opt": opt, "step": state["step"] + 1}, metrics

    return train_step


def make_multi_train_step(model: SGVS, txs: dict, cfg):
    """Trains M members (seeds and/or sigma values) on the same batch in one computation.

    ``multi_step(states, batch, rngs, train_discriminator)``: every leaf of
    ``states`` and ``rngs`` has a leading member axis M (``jax.vmap`` over the
    parameter trees); returns member-stacked states and metrics.
    """
    step = make_train_step(model, txs, cfg)

    def multi_step(states, batch, rngs, train_discriminator: bool):
        return jax.vmap(lambda s, r: step(s, batch, r, train_discriminator))(states, rngs)

    return multi_step


def init_member_states(model: SGVS, txs: dict, rngs, batch, sigmas) -> dict:
    """Member-stacked train states (leading axis M) for :func:`make_multi_train_step`."""
    return jax.vmap(lambda r, s: init_state(model, txs, r, batch, s))(rngs, jnp.asarray(sigmas, jnp.float32))


def make_stage_step(model: SGVS, txs: dict, cfg, stage: str):
    """A single stage's update ``(state, batch, rng) -> (state, metrics)``, for per-stage jitting.

    Stage 1 runs in every update, so it counts the update (``state["step"]``): the
    stages run one after another leave the state the fused update leaves."""
    adversarial = bool(cfg.adversarial)

    def step(state, batch, rng):
        fn = stage_grad(stage, model, cfg, adversarial)
        (_, m), grads = fn(state["params"], batch, rng, state["sigma"])
        params, opt_state = apply_stage(stage, txs[stage], state["params"], state["opt"][stage], grads)
        counted = state["step"] + 1 if stage == "stage1" else state["step"]
        return {**state, "params": params, "opt": {**state["opt"], stage: opt_state}, "step": counted}, m

    return step


def make_predict(model: SGVS, outputs: tuple = ()):
    """``predict(params, batch) -> (B, T)`` importance scores (no dropout); with
    ``outputs``, a dict of those selector outputs (e.g. 'scores', 'h', 'cos', 'alpha')."""

    def predict(params, batch):
        out = model.select(params, batch)
        return {k: v for k, v in out.items() if k in outputs} if outputs else out["scores"]

    return predict


__all__ = ["PARTS", "STAGE_PARTS", "AUTO", "slice_height", "fused_stages", "batched_passes", "make_optimizers",
           "init_state", "make_train_step", "make_stage_step", "make_multi_train_step", "init_member_states",
           "make_predict", "forward", "passes", "stage_loss", "stage_grad"]
