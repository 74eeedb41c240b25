"""Embedded default: synthetic videos whose topic segments only training can find (no files needed).

These settings are the method's: the other configs change the data, sizes and
epochs, not the objective (benchmarks/RESULTS.md says how they were chosen).
The default itself is sized to run in about a minute on two CPU cores: short
videos, one bucket, one layer per network (the real-data configs use two).

    python -m sgvs_jax.main --config configs/default.py --workdir runs/default
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.splits = ()  # split indices to run; empty = all
    c.distributed = False  # call jax.distributed.initialize() (multi-host TPU VMs)
    c.compilation_cache_dir = ""  # persistent XLA cache: "" = per-user folder (sgvs_jax/compilation.py), "none" = off

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic"  # 'synthetic' | 'h5' | 'tvsum_i3d'
    c.data.h5_path = ""
    c.data.split_path = ""
    c.data.shared_dir = "../shared/data"  # configs/tvsum_i3d.py: TVSum built from here (KTS shots of ~2 steps)
    # Semantic tokens for FSSA: any of 'text_tokens', 'text_pooled' (attended) and
    # 'clip_frames' (CLIP image features of the steps: the frame side of the cosine); or, with no
    # text, 'video_tokens' (the means of 8 equal parts of the video's own features).
    # The synthetic data has CLIP frame features too, but they would hand FSSA the answer
    # without training (see sgvs_jax/data/synthetic.py): the default learns X_t from the visuals.
    c.data.semantic_sources = ("text_tokens", "text_pooled")  # at most 32 tokens (batching.MAX_TOKENS)
    c.data.normalization = "video"  # 'video' (by the video's mean step norm) | 'l2' (per step) | 'none'
    # Bucket lengths; empty = powers of two from min_bucket, the last cut to the longest video
    # rounded up to a multiple of min_bucket. The synthetic videos have 40..120 steps: one
    # bucket, one update program to compile.
    c.data.buckets = (120,)
    c.data.min_bucket = 64
    c.data.eval_mode = "avg"  # F1 over users: 'avg' (TVSum) | 'max' (SumMe)
    # The synthetic videos (sgvs_jax.data.synthetic.make_dataset; its other settings at their defaults).
    c.data.synthetic = ml_collections.ConfigDict(dict(n_videos=30, min_steps=40, max_steps=120, feature_dim=256,
                                                      seed=0))

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 64
    c.model.num_heads = 4
    c.model.mlp_dim = 128
    c.model.dropout = 0.1
    c.model.attention_block = 0  # > 0: blocked local attention (block +- 1 neighbour), linear in T
    # Layers of each network (selector, encoder, decoder, discriminator): one here, so that the
    # job runs in about a minute on two cores; the real-data configs use two.
    c.model.num_layers = 1
    c.model.use_fssa = True  # False: visual-only ablation
    # Decoder queries: 'positions' (step t must be rebuilt from the selected steps it attends to)
    # or 'memory' (query from step t's own memory: x_t passes through whatever its score).
    c.model.decoder_queries = "positions"
    # FSSA score S_t = alpha * c(cos) + (1 - alpha) * h_t with c = max(cos, 0) ('relu') or
    # (1 + cos) / 2 ('affine', the earlier form; its floor of 0.5 saturates h_t under sigma = 0.3).
    c.model.cosine_term = "relu"
    # The selector's input: 'layer' (LayerNorm over each step's features: its scale is removed)
    # or 'none' (the step's scale, relative to its video's mean step norm, reaches the selector).
    c.model.visual_norm = "layer"

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 10
    c.train.batch_size = 4
    c.train.schedule = "incremental"  # 'incremental' | 'joint' (ablation)
    c.train.adversarial = True  # False: no discriminator, feature reconstruction (ablation)
    c.train.warmup_epochs = 0  # epochs before the discriminator starts training
    c.train.sigma = 0.3
    c.train.sparsity_weight = 1.0  # x |mean(s) - sigma| (the paper's sparsity term)
    # Selection bottleneck (sgvs_jax/models/bottleneck.py): 'concrete' = a relaxed Bernoulli
    # draw of about sigma*T steps per update (temperature 0.5), the only steps the generator sees;
    # 'soft' = x*s (SUM-GAN-AAE weighting, no bottleneck).
    c.train.selection = "concrete"
    c.train.recon = "stepwise"  # 'stepwise' (discriminator states per step) | 'pooled' (their mean)
    c.train.feature_recon_weight = 1.0  # + this x the per-step MSE of the projected video in the reconstruction term
    # Stage-1 video-title contrast (losses.pooled_contrast): the score-weighted cos(X_t, title)
    # must single out the video's own title among the training titles (InfoNCE at temperature 0.2).
    # 0 = off (ablation).
    c.train.semantic_weight = 0.5
    # Stage-1 teacher (needs no title): the scores' per-video correlation with the ranks of a
    # training-free criterion of the features (sgvs_jax/evaluation/baselines.py; 'feature_norm' is
    # the one that serves both TVSum and representativeness-rewarding data) is pulled towards 1
    # (losses.rank_agreement); a criterion constant up to rounding (this synthetic data's norms)
    # teaches nothing. '' = off (the paper's objective; study variant no_teacher).
    c.train.teacher = "feature_norm"
    # A light anchor: the reconstruction objective shares the scores with it. Chosen by tau on
    # TVSum's training videos (benchmarks/results/tvsum_i3d_selection.json; 1 / 0.3 / 0.1 / 0.03).
    c.train.teacher_weight = 0.3
    c.train.uniform_fake = True  # random-score reconstructions as extra fakes (SUM-GAN); GAN terms weigh 1

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = ml_collections.ConfigDict(dict(stage1=1e-3, stage2=1e-4, stage3=1e-5))  # per stage; AdamW after clipping the global norm at 5
    c.optim.weight_decay = 1e-4

    c.eval = ml_collections.ConfigDict()
    c.eval.budget = 0.15
    c.eval.random_draws = 20

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 2
    c.checkpoint.every = 5  # epochs between checkpoints; the last epoch is always saved
    return c
