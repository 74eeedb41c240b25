"""Embedded default: synthetic videos whose topic segments only training can find (no files needed).

These settings are the method's: the other configs change the data, sizes and
epochs, not the objective (see benchmarks/RESULTS.md for how they were chosen).
The default itself is sized to run in about a minute on two CPU cores: short
videos, one bucket, one layer per network (the real-data configs use two).

    python -m sgvs_jax.main --config configs/default.py --workdir runs/default
"""

import ml_collections


def set_layers(c, n: int) -> None:
    """The same depth for the selector, encoder, decoder and discriminator."""
    for part in ("selector", "encoder", "decoder", "discriminator"):
        c.model[f"{part}_layers"] = n


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.splits = ()  # split indices to run; empty = all
    c.distributed = False  # call jax.distributed.initialize() (multi-host TPU VMs)
    c.compilation_cache_dir = ""  # persistent XLA cache: "" = per-user folder (sgvs_jax/compile_cache.py), "none" = off

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic"  # 'synthetic' | 'h5' | 'tvsum_i3d'
    c.data.h5_path = ""
    c.data.split_path = ""
    c.data.shared_dir = "../shared/data"
    c.data.kts_mean_shot_steps = 2.0
    # Semantic tokens for FSSA: any of 'text_tokens', 'text_pooled' (attended) and
    # 'clip_frames' (CLIP image features of the steps: the frame side of the cosine).
    # The synthetic data has CLIP frame features too, but they would hand FSSA the answer
    # without training (see sgvs_jax/data/synthetic.py): the default learns X_t from the visuals.
    c.data.semantic_sources = ("text_tokens", "text_pooled")
    c.data.max_tokens = 32
    c.data.normalization = "video"  # 'video' (by the video's mean step norm) | 'l2' (per step) | 'none'
    # Bucket lengths; empty = powers of two from min_bucket, the last cut to the longest video
    # rounded up to a multiple of bucket_multiple (0: the whole power of two). The synthetic
    # videos have 40..120 steps: one bucket of 120 compiles one update program (a second
    # bucket costs a second compile, longer than the padding it saves at this size).
    c.data.buckets = (120,)
    c.data.min_bucket = 64
    c.data.bucket_multiple = 64
    c.data.eval_mode = "avg"  # F1 over users: 'avg' (TVSum) | 'max' (SumMe)
    c.data.synthetic = ml_collections.ConfigDict(dict(
        n_videos=30, min_steps=40, max_steps=120, feature_dim=256, sem_dim=16, n_users=5, n_tokens=6,
        frames_per_step=15, planted_fraction=0.2, seed=0))

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 64
    c.model.num_heads = 4
    c.model.mlp_dim = 128
    c.model.dropout = 0.1
    c.model.attention_block = 0  # > 0: blocked local attention (block +- 1 neighbour), linear in T
    # One layer per network here; the real-data configs use two (set_layers).  The update
    # program (compile time and cost per step) grows with the layers: README job 57 s with
    # one, 100 s with two on a 2-core CPU (benchmarks/RESULTS.md).
    set_layers(c, 1)
    c.model.use_fssa = True  # False: visual-only ablation
    # Decoder queries: 'positions' (step t must be rebuilt from the selected steps it attends to)
    # or 'memory' (query from step t's own memory: x_t passes through whatever its score).
    c.model.decoder_queries = "positions"
    # FSSA score S_t = alpha * c(cos) + (1 - alpha) * h_t with c = max(cos, 0) ('relu') or
    # (1 + cos) / 2 ('affine', the earlier form; its floor of 0.5 saturates h_t under sigma = 0.3).
    c.model.cosine_term = "relu"

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 10
    c.train.batch_size = 4
    c.train.schedule = "incremental"  # 'incremental' | 'joint' (ablation)
    c.train.adversarial = True  # False: no discriminator, feature reconstruction (ablation)
    c.train.warmup_epochs = 0  # epochs before the discriminator starts training
    c.train.sigma = 0.3
    c.train.sparsity_weight = 1.0
    # Selection bottleneck (sgvs_jax/models/bottleneck.py): 'concrete' = a relaxed Bernoulli
    # draw of about sigma*T steps per update, the only steps the generator sees; 'soft' = x*s
    # (SUM-GAN-AAE weighting, no bottleneck).
    c.train.selection = "concrete"
    c.train.selection_temperature = 0.5
    c.train.recon = "stepwise"  # 'stepwise' (discriminator states per step) | 'pooled' (their mean)
    c.train.feature_recon_weight = 1.0  # + this x per-step feature MSE in the reconstruction term
    # Stage-1 video-title contrast (losses.semantic_alignment): the score-weighted cos(X_t, title)
    # must single out the video's own title among the training titles. 0 = off (ablation).
    c.train.semantic_weight = 0.5
    c.train.semantic_temperature = 0.2
    c.train.semantic_pooling = "scores"  # 'scores': weighted by the selector's scores | 'mean'
    c.train.gan_weight = 1.0
    c.train.uniform_fake = True  # random-score reconstructions as extra fakes (SUM-GAN)
    # Videos per gradient pass: 0 = the whole batch; m > 0 = slices of m videos, gradients
    # accumulated (memory of m videos' activations). The slices draw the whole batch's dropout
    # and noise, so they train the same model up to float rounding. -1 = auto: slices of one
    # video on the CPU where a (B, T, d_model) activation exceeds 2**19 values (the community h5
    # configs' long buckets), else the whole batch (this config, TVSum I3D, every accelerator).
    c.train.microbatch = -1
    # The update as one program for the three stages (True) or one program per stage (False); the
    # same stages, keys and order, the same bits on the CPU. None = auto: fused on the CPU (two cores
    # compile one program at a time), per stage on accelerators (their hosts compile the three
    # smaller programs side by side: sgvs_jax.train_steps.fused_stages).
    c.train.fuse_stages = ml_collections.config_dict.placeholder(bool)
    # One vmapped generator call for the two score sets and one vmapped discriminator call for
    # [original, reconstructions] (True), each pass with its own keys (the same draws), or a call
    # per pass (False): the same model up to float rounding (other last bits). None = auto:
    # batched on accelerators (29 % fewer HLO instructions for their compile), a call per pass
    # on the CPU (sgvs_jax.train_steps.batched_passes).
    c.train.batched_passes = ml_collections.config_dict.placeholder(bool)
    c.train.precompile = True  # compile every bucket's programs in parallel threads before training

    c.optim = ml_collections.ConfigDict()
    c.optim.lr_stage1 = 1e-3
    c.optim.lr_stage2 = 1e-4
    c.optim.lr_stage3 = 1e-5
    c.optim.clip_norm = 5.0
    c.optim.weight_decay = 1e-4

    c.eval = ml_collections.ConfigDict()
    c.eval.budget = 0.15
    c.eval.random_draws = 20

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 2
    c.checkpoint.every = 5  # epochs between checkpoints; the last epoch is always saved
    return c
