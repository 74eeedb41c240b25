"""Embedded default: synthetic videos with planted segments (no files needed).

    python -m sgvs_jax.main --config configs/default.py --workdir runs/default
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.splits = ()  # split indices to run; empty = all
    c.distributed = False  # call jax.distributed.initialize() (multi-host TPU VMs)
    c.compilation_cache_dir = ""  # persistent XLA cache shared by runs (e.g. seeds of a sweep)

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic"  # 'synthetic' | 'h5' | 'tvsum_i3d'
    c.data.h5_path = ""
    c.data.split_path = ""
    c.data.shared_dir = "../shared/data"
    c.data.kts_mean_shot_steps = 2.0
    # Semantic tokens for FSSA: any of 'text_tokens', 'text_pooled' (attended) and
    # 'clip_frames' (CLIP image features of the steps: the frame side of the cosine).
    c.data.semantic_sources = ("text_tokens", "text_pooled", "clip_frames")
    c.data.max_tokens = 32
    c.data.normalization = "none"  # 'none' | 'l2' (per step)
    c.data.buckets = ()  # bucket lengths; empty = powers of two from min_bucket
    c.data.min_bucket = 64
    c.data.eval_mode = "avg"  # F1 over users: 'avg' (TVSum) | 'max' (SumMe)
    c.data.synthetic = ml_collections.ConfigDict(dict(
        n_videos=20, min_steps=60, max_steps=200, feature_dim=256, sem_dim=64, n_users=5, n_tokens=6,
        frames_per_step=15, planted_fraction=0.2, seed=0))

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 128
    c.model.num_heads = 4
    c.model.mlp_dim = 256
    c.model.dropout = 0.1
    c.model.attention_block = 0  # > 0: blocked local attention (block +- 1 neighbour), linear in T
    c.model.selector_layers = 2
    c.model.encoder_layers = 2
    c.model.decoder_layers = 2
    c.model.discriminator_layers = 2
    c.model.use_fssa = True  # False: visual-only ablation

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 15
    c.train.batch_size = 4
    c.train.schedule = "incremental"  # 'incremental' | 'joint' (ablation)
    c.train.adversarial = True  # False: no discriminator, feature reconstruction (ablation)
    c.train.warmup_epochs = 0  # epochs before the discriminator starts training
    c.train.sigma = 0.3
    c.train.sparsity_weight = 1.0
    c.train.gan_weight = 1.0
    c.train.uniform_fake = True  # random-score reconstructions as extra fakes (SUM-GAN)
    c.train.fuse_stages = True  # one jitted function for the three stages (else one per stage)
    c.train.precompile = True  # compile every bucket's programs in parallel threads before training

    c.optim = ml_collections.ConfigDict()
    c.optim.lr_stage1 = 1e-4
    c.optim.lr_stage2 = 1e-4
    c.optim.lr_stage3 = 1e-5
    c.optim.clip_norm = 5.0
    c.optim.weight_decay = 1e-4

    c.eval = ml_collections.ConfigDict()
    c.eval.budget = 0.15
    c.eval.random_draws = 20

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 2
    return c
