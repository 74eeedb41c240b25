"""Real TVSum built from shared/data: I3D rgb+flow features, CLIP title tokens, our KTS.

    python -m sgvs_jax.main --config configs/tvsum_i3d.py --workdir runs/tvsum_i3d

The objective and its settings are the default's (configs/default.py); only the
data, the bucket lengths, the model width and depth and the epochs are set here.
"""

from configs import default


def get_config():
    c = default.get_config()
    c.data.source = "tvsum_i3d"
    c.data.split_path = "../shared/data/splits/e-apostolidis/tvsum_splits.json"
    c.data.semantic_sources = ("text_tokens", "text_pooled")  # the title (no CLIP frame features exist)
    c.data.eval_mode = "avg"
    c.data.buckets = (96, 192, 336)  # TVSum I3D videos have 49..323 clips; full attention is O(T^2)
    c.model.d_model = 64
    c.model.mlp_dim = 128
    c.model.num_layers = 2
    # Chosen with the teacher's weight by tau on each split's training videos (1 to 6 epochs;
    # benchmarks/results/tvsum_i3d_selection.json): one epoch, 10 updates of batch 4.
    c.train.num_epochs = 1
    return c
