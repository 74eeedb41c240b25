"""A config value that cannot work stops the run before any data is read or any
file written, with the key named; every problem is listed at once."""

import os

import pytest

from configs import default, tvsum_h5
from sgvs_jax import train
from sgvs_jax.config_check import ConfigError, check_config
from tests.tiny import tiny_config

BAD = [
    ("train.batch_size", 0), ("train.batch_size", -4), ("train.batch_size", 2.5),
    ("data.min_bucket", 0), ("data.min_bucket", -64), ("data.min_bucket", 10 ** 7),
    ("data.buckets", (0, 128)), ("data.buckets", (128, 128)),
    ("train.sigma", 0.0), ("train.sigma", 1.0), ("train.sigma", -0.3), ("train.sigma", float("nan")),
    ("train.num_epochs", 0), ("train.warmup_epochs", -1),
    ("eval.budget", 0.0), ("eval.budget", 1.5), ("eval.random_draws", 0),
    ("model.dropout", 1.0), ("model.num_heads", 3), ("model.num_layers", 0),
    ("optim.lr.stage1", 0.0), ("optim.lr.stage2", float("inf")),
    ("train.feature_recon_weight", -1.0), ("train.semantic_weight", -1.0),
    ("train.selection", "hard"), ("data.normalization", "z"), ("data.eval_mode", "mean"),
    ("data.semantic_sources", ("text_tokens", "audio")), ("checkpoint.keep", 0), ("checkpoint.every", 0),
    ("splits", (-1,)), ("seed", "zero"), ("data.synthetic.n_videos", 1),
    ("train.teacher_weight", -0.5),
    ("data.semantic_sources", ("video_tokens", "text_pooled")),
    ("data.semantic_sources", ("video_tokens",)),  # with the video-title term still on: no title to contrast
]


def set_key(cfg, dotted, value):
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    with node.ignore_type():
        node[last] = value


@pytest.mark.parametrize("key,value", BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_bad_value_stops_before_anything_is_written(tmp_path, key, value):
    cfg = tiny_config()
    set_key(cfg, key, value)
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=f"config.{key}=") as e:
        train.train_and_evaluate(cfg, str(workdir))
    assert not workdir.exists(), os.listdir(workdir)
    assert str(e.value).count("config.") == 1  # only the broken key


def test_all_problems_are_listed_together():
    cfg = tiny_config()
    cfg.train.batch_size, cfg.train.sigma, cfg.eval.budget = 0, 2.0, 0.0
    with pytest.raises(ConfigError) as e:
        check_config(cfg)
    for key in ("train.batch_size", "train.sigma", "eval.budget"):
        assert f"config.{key}=" in str(e.value)


def test_h5_source_needs_its_files():
    cfg = tvsum_h5.get_config()
    cfg.data.h5_path = ""
    with pytest.raises(ConfigError, match="config.data.h5_path=''"):
        check_config(cfg)


def test_bucket_far_longer_than_every_video_is_refused_before_the_workdir(tmp_path):
    cfg = tiny_config()
    cfg.data.min_bucket = 4096  # videos of 40..100 steps
    with pytest.raises(ConfigError, match="smallest bucket is 4096 steps but the longest video has"):
        train.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_shipped_configs_pass():
    import configs
    names = [f[:-3] for f in os.listdir(os.path.dirname(configs.__file__)) if f.endswith(".py") and f[0] != "_"]
    assert "default" in names
    for name in names:
        check_config(__import__(f"configs.{name}", fromlist=["get_config"]).get_config())
    check_config(default.get_config())


def test_auto_semantic_sources_stand_alone():
    cfg = tvsum_h5.get_config()
    check_config(cfg)  # ('auto',)
    cfg.data.semantic_sources = ("auto", "clip_frames")
    with pytest.raises(ConfigError, match="'auto' .* stands alone"):
        check_config(cfg)
