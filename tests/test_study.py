"""sgvs_jax.study: each member of the vmapped program trains as `main` with its seed would
(also across a resume and with the members sharded over devices); the report's intervals
and paired comparisons; bad seeds and variants are one clear error."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sgvs_jax import study, study_report
from tests.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def two_buckets(epochs):
    c = tiny_config(num_epochs=epochs)
    c.data.min_bucket = 64  # buckets 64 and 128: the members must step through one shape
    return c


def close(a: dict, b: dict, rtol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=rtol, abs=1e-6), k


SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import jax
from sgvs_jax import compilation, study, train
from tests.test_study import two_buckets
w = sys.argv[1]
compilation.enable(w + "/cache")  # the resumed study and the separate runs compile nothing new
study.run_study(two_buckets(1), [0, 1], ["sgvs", "sigma_0.5"], w + "/study")
result = study.run_study(two_buckets(2), [0, 1], ["sgvs", "sigma_0.5"], w + "/study")  # resumes after epoch 1
members = json.load(open(w + "/study/sgvs+sigma_0.5/results.json"))["splits"]["0"]["members"]
c = two_buckets(2)
c.seed, c.train.sigma = 1, 0.5  # the last member: its own seed (keys, data order) and sigma
alone = train.train_and_evaluate(c, w + "/main")["splits"]["0"]
print(json.dumps({{"devices": jax.device_count(), "members": members, "alone": alone, "study": result}}))
"""


@pytest.mark.slow
def test_each_member_is_main_with_its_seed_and_sigma_sharded_and_after_a_resume(tmp_path):
    """The one loop (sgvs_jax.train.run) with 4 members on 2 (forced) devices: two seeds of
    sgvs and of sigma_0.5 (value-only variants: one run, one workdir).  The study stops after
    epoch 1 and resumes; the last member then matches `main` with its seed and sigma, epoch
    by epoch (float rounding: its update is vmapped beside three others)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT), str(tmp_path)], capture_output=True,
                       text=True, timeout=900, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    assert [(m["variant"], m["seed"]) for m in out["members"]] == [("sgvs", 0), ("sgvs", 1), ("sigma_0.5", 0),
                                                                   ("sigma_0.5", 1)]
    assert sorted(os.listdir(tmp_path / "study")) == ["sgvs+sigma_0.5", "study.json", "study.md"]
    member, alone = out["members"][-1], out["alone"]
    assert len(member["history"]) == len(alone["history"]) == 3
    for ours, theirs in zip(member["history"], alone["history"]):
        close(ours["train"], theirs["train"])
        for part in ("test", "training_videos"):
            close({m: ours[part][m] for m in ("f1", "tau", "rho")}, {m: theirs[part][m] for m in ("f1", "tau", "rho")})
    close(member["random"], alone["random"])
    assert member["last_epoch_videos"]["scores"].keys() == alone["last_epoch_videos"]["scores"].keys()
    assert set(member["last_epoch_videos"]["per_video"]) == set(alone["test_keys"])
    taus = {v: [m["selection"]["last_epoch"]["tau"] for m in out["members"] if m["variant"] == v]
            for v in ("sgvs", "sigma_0.5")}
    for v, t in taus.items():
        assert out["study"][v]["last_epoch"]["tau"] == pytest.approx(np.mean(t), abs=1e-4)
    assert taus["sgvs"] != taus["sigma_0.5"]


def fake_run(taus, free_tau, seeds=(0, 1, 2)):
    """A run_variant-shaped record: taus[split][seed] at the last epoch, 0 untrained."""
    def sel(t):
        return {rule: {"epoch": 1, "f1": 50.0, "tau": t if rule != "untrained" else 0.0, "rho": t,
                       "ap": 60.0, "spread": 0.1} for rule in study_report.ROWS}

    splits = {}
    for i, row in enumerate(taus):
        free = {"feature_norm": {"f1": 50.0, "tau": free_tau[i], "rho": free_tau[i], "ap": 55.0, "spread": 0.1},
                "uniqueness": {"f1": 50.0, "tau": -1.0, "rho": -1.0, "ap": 45.0, "spread": 0.1}}
        splits[str(i)] = {"training_free": free, "members": [
            {"seed": s, "selection": sel(t), "random": {"f1": 40.0, "tau": 0.0, "rho": 0.0, "ap": 50.0},
             "last_epoch_videos": {"training_videos": {"f1": 60.0, "tau": t / 2, "rho": t / 2, "ap": 60.0}}}
            for s, t in zip(seeds, row)]}
    return {"seeds": list(seeds), "splits": splits}


def test_intervals_and_paired_comparisons():
    taus = [[0.2, 0.3, 0.25], [0.1, 0.1, 0.1], [0.3, 0.2, 0.4]]
    s = study_report.summarize({"sgvs": fake_run(taus, [0.15, 0.2, 0.1]),
                                "ablation": fake_run(np.array(taus) - 0.05, [0.15, 0.2, 0.1])})
    v = s["sgvs"]
    assert v["last_epoch"]["tau"] == pytest.approx(np.mean(taus), abs=1e-4)
    assert v["per_split"]["tau"] == pytest.approx([0.25, 0.1, 0.3], abs=1e-4)
    assert v["std_over_seeds"]["last_epoch"]["tau"] == pytest.approx(np.std(np.mean(taus, 0)), abs=1e-4)
    lo, hi = v["ci95"]["last_epoch"]["tau"]
    assert lo < v["last_epoch"]["tau"] < hi and hi - lo < 0.2
    assert study_report.bootstrap_ci([1.0, 2.0, 3.0]) == study_report.bootstrap_ci([1.0, 2.0, 3.0])
    cmp = s["comparisons"]
    assert cmp["best_training_free"] == "feature_norm"
    assert cmp["sgvs"]["vs_best_training_free"]["tau"]["wins_per_split"] == 2  # 0.25 > .15, 0.1 < .2, 0.3 > .1
    d = cmp["ablation"]["vs_sgvs"]["tau"]
    assert d["difference"] == pytest.approx(-0.05, abs=1e-4) and d["ci95"][1] < 0 and d["wins_per_split"] == 0
    assert "vs_sgvs" not in cmp["sgvs"]
    assert "| ablation | sgvs | -0.050" in study_report.table(s)
    # the figure settings are chosen by: each split's training videos, never its test videos
    assert v["training_videos"]["tau"] == pytest.approx(np.mean(taus) / 2, abs=1e-4)
    assert "| sgvs | training videos (selects settings) | 60.00 |" in study_report.table(s)


def test_an_unknown_variant_is_named_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown variant 'no_such'"):
        study.run_study(tiny_config(), [0], ["sgvs", "no_such"], str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_value_only_variants_are_grouped_into_one_run():
    configs = {v: study.variant_config(tiny_config(), v) for v in ("sgvs", "no_fssa", "sigma_0.5")}
    assert study.program_groups(configs) == [["sgvs", "sigma_0.5"], ["no_fssa"]]


def test_variants_change_only_their_keys():
    base = tiny_config()
    for name, overrides in study.VARIANTS.items():
        c = study.variant_config(base, name)
        for dotted, value in overrides.items():
            node = c
            for part in dotted.split("."):
                node = node[part]
            assert node == value
    assert study.variant_config(base, "sgvs").to_dict() == base.to_dict()


@pytest.mark.parametrize("flags, message", [(["--seeds", "x"], "--seeds 'x'"),
                                            (["--variants", "sgvs,nope"], "unknown variant 'nope'"),
                                            (["--config.train.num_epoch=3"], "did you mean --config.train.num_epochs?")])
def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, flags, message):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-m", "sgvs_jax.study", "--workdir", str(tmp_path / "w"), *flags],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and len(lines) == 1 and message in lines[0], p.stderr[-2000:]
    assert not (tmp_path / "w").exists()
