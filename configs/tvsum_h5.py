"""Community TVSum h5 (eccv16_dataset_tvsum_google_pool5.h5): the full method where it has CLIP keys.

    python -m sgvs_jax.app.add_clip --h5 PATH/eccv16_dataset_tvsum_google_pool5.h5 --videos TVSUM/video \
        --names names.json --titles TVSUM/data/ydata-tvsum50-info.tsv --clip_model CLIP_DIR --out tvsum_clip.h5
    python -m sgvs_jax.main --config configs/tvsum_h5.py --config.data.h5_path=tvsum_clip.h5 --workdir runs/tvsum_h5

``data.semantic_sources='auto'`` uses the semantic keys the file has
(``clip_frames``, ``text_tokens``, ``text_pooled``: what ``sgvs_jax.app.add_clip`` adds):
FSSA and the video-title term with them; the published file as it is has none, and
the run says so and trains visual only (FSSA and the title term off), its scores
taught by the default's feature-norm teacher (``train.teacher``).
"""

from configs import default


def get_config():
    c = default.get_config()
    c.data.source = "h5"
    c.data.buckets = ()  # powers of two from data.min_bucket, the last cut to the longest video
    c.data.h5_path = "data/eccv16_dataset_tvsum_google_pool5.h5"
    c.data.split_path = "../shared/data/splits/e-apostolidis/tvsum_splits.json"
    c.data.semantic_sources = ("auto",)
    c.data.eval_mode = "avg"
    c.model.d_model = 512
    c.model.mlp_dim = 1024
    c.model.num_layers = 2
    c.train.num_epochs = 100
    return c
