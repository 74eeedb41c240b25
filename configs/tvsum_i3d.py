"""Real TVSum built from shared/data: I3D rgb+flow features, CLIP title tokens, our KTS.

    python -m sgvs_jax.main --config configs/tvsum_i3d.py --workdir runs/tvsum_i3d
"""

from configs import default


def get_config():
    c = default.get_config()
    c.data.source = "tvsum_i3d"
    c.data.split_path = "../shared/data/splits/e-apostolidis/tvsum_splits.json"
    c.data.semantic_sources = ("text_tokens", "text_pooled")
    c.data.normalization = "l2"
    c.data.eval_mode = "avg"
    c.data.min_bucket = 64
    c.train.num_epochs = 40
    return c
