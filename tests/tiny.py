"""A small config so end-to-end runs take seconds on a 2-core CPU."""

from configs import default


def tiny_config(**train):
    c = default.get_config()
    c.data.synthetic.n_videos = 10
    c.data.synthetic.min_steps = 40
    c.data.synthetic.max_steps = 100
    c.data.synthetic.feature_dim = 32
    c.data.buckets = ()
    c.data.min_bucket = 128
    c.model.d_model = 32
    c.model.mlp_dim = 64
    c.model.num_heads = 2
    c.model.num_layers = 1
    c.train.batch_size = 4
    c.train.num_epochs = 3
    c.eval.random_draws = 3
    c.splits = (0,)
    for k, v in train.items():
        c.train[k] = v
    return c


def tiny_clip_config(h5_path, split_path, epochs=2):
    """configs/clip_h5.py at tiny size, for runs on extracted CLIP features."""
    from configs import clip_h5
    c = clip_h5.get_config()
    base = tiny_config()
    c.model = base.model
    c.data.h5_path, c.data.split_path = h5_path, split_path
    c.data.min_bucket = 64
    c.train.num_epochs = epochs
    c.train.batch_size = 2
    c.eval.random_draws = 2
    c.splits = (0,)
    return c
