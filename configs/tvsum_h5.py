"""Community TVSum h5 (eccv16_dataset_tvsum_google_pool5.h5): the full method where it has CLIP keys.

    python -m sgvs_jax.app.add_clip --h5 PATH/eccv16_dataset_tvsum_google_pool5.h5 --videos TVSUM/video \
        --names names.json --titles TVSUM/data/ydata-tvsum50-info.tsv --clip_model CLIP_DIR --out tvsum_clip.h5
    python -m sgvs_jax.main --config configs/tvsum_h5.py --config.data.h5_path=tvsum_clip.h5 --workdir runs/tvsum_h5

``data.semantic_sources='auto'`` uses the semantic keys the file has
(``clip_frames``, ``text_tokens``, ``text_pooled``: what ``sgvs_jax.app.add_clip`` adds):
FSSA and the video-title term with them; the published file as it is has none, and
the run says so and trains visual only (FSSA and the title term off), its scores
taught by the default's feature-norm teacher (``train.teacher``).

The TVSum build of configs/tvsum_i3d.py, written in this format, checks the path end to end
(benchmarks/results/tvsum_as_h5.json):

    python -m sgvs_jax.data.tvsum --out runs/tvsum_i3d.h5
    python -m sgvs_jax.study --config configs/tvsum_h5.py --config.data.h5_path=runs/tvsum_i3d.h5 \
        --config.data.buckets='(96, 192, 336)' --seeds 0-2 --variants sgvs,sgvs_no_title --workdir runs/study_tvsum_h5
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
    # The settings the selection rule chose on TVSum (tau on each split's training videos,
    # benchmarks/results/tvsum_i3d_selection.json), as configs/tvsum_i3d.py: no community
    # file is here to choose on; benchmarks/select_settings.py does it on yours.
    c.model.d_model = 64
    c.model.mlp_dim = 128
    c.model.num_layers = 2
    c.train.num_epochs = 1
    return c
