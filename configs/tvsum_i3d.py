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
    c.data.buckets = (96, 192, 336)  # TVSum I3D videos have 49..323 clips; full attention is O(T^2)
    # Sized so that 4 variants x 3 seeds x 5 splits run in about an hour on a 2-core CPU.
    c.model.d_model = 64
    c.model.mlp_dim = 128
    c.train.num_epochs = 10
    return c
