"""Community TVSum h5 (eccv16_dataset_tvsum_google_pool5.h5), visual features only.

    python -m sgvs_jax.main --config configs/tvsum_h5.py \
        --config.data.h5_path=PATH/eccv16_dataset_tvsum_google_pool5.h5 --workdir runs/tvsum_h5

The community file has no semantic features: FSSA needs CLIP features stored
under the extra keys (``text_tokens`` / ``text_pooled`` / ``clip_frames``, see
sgvs_jax.data.h5io); set data.semantic_sources and model.use_fssa=True then.
"""

from configs import default


def get_config():
    c = default.get_config()
    c.data.source = "h5"
    c.data.buckets = ()  # powers of two from data.min_bucket, the last cut to the longest video
    c.data.h5_path = "data/eccv16_dataset_tvsum_google_pool5.h5"
    c.data.split_path = "../shared/data/splits/e-apostolidis/tvsum_splits.json"
    c.data.semantic_sources = ()
    c.data.eval_mode = "avg"
    c.model.use_fssa = False
    c.model.d_model = 512
    c.model.mlp_dim = 1024
    c.model.num_layers = 2
    c.train.num_epochs = 100
    return c
