"""One's own videos: an h5 written by ``python -m sgvs_jax.app.extract_features`` (CLIP
image features, CLIP title tokens, KTS shots).

    python -m sgvs_jax.app.extract_features --videos DIR --clip_model CLIP_DIR --out runs/my.h5
    python -m sgvs_jax.main --config configs/clip_h5.py --config.data.h5_path=runs/my.h5 \
        --config.data.split_path=runs/my_splits.json --workdir runs/my_videos
    python -m sgvs_jax.app.summarize --video new.mp4 --workdir runs/my_videos --out new_summary.mp4

Such videos have no annotations: F1 / tau / rho leave them out (NaN where no
video has a user summary); the scores are what the summaries use.
"""

from configs import default


def get_config():
    c = default.get_config()
    c.data.source = "h5"
    c.data.buckets = ()  # powers of two from data.min_bucket, the last cut to the longest video
    c.data.h5_path = "runs/my_videos.h5"
    c.data.split_path = "runs/my_videos_splits.json"
    c.data.semantic_sources = ("text_tokens", "text_pooled", "clip_frames")
    c.data.normalization = "l2"
    c.data.eval_mode = "avg"
    c.model.num_layers = 2
    c.train.num_epochs = 30
    c.eval.random_draws = 5
    return c
