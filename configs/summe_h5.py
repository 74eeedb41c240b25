"""Community SumMe h5 (eccv16_dataset_summe_google_pool5.h5), F1 = max over users.

    python -m sgvs_jax.main --config configs/summe_h5.py \
        --config.data.h5_path=PATH/eccv16_dataset_summe_google_pool5.h5 --workdir runs/summe_h5
"""

from configs import tvsum_h5


def get_config():
    c = tvsum_h5.get_config()
    c.data.h5_path = "data/eccv16_dataset_summe_google_pool5.h5"
    c.data.split_path = "../shared/data/splits/e-apostolidis/summe_splits.json"
    c.data.eval_mode = "max"
    return c
