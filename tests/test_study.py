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
compilation.enable(w + "/cache")  # the resumed study and the second seed's run compile nothing new
study.run_study(two_buckets(1), [0, 1], ["sgvs"], w + "/study")
result = study.run_study(two_buckets(2), [0, 1], ["sgvs"], w + "/study")  # resumes after epoch 1
members = json.load(open(w + "/study/sgvs/results.json"))["splits"]["0"]["members"]
alone = []
for seed in (1,):  # the second member: its own keys and data order, not the first's
    c = two_buckets(2)
    c.seed = seed
    alone.append(train.train_and_evaluate(c, w + f"/main_{{seed}}")["splits"]["0"])
print(json.dumps({{"devices": jax.device_count(), "members": members, "alone": alone, "study": result}}))
"""


@pytest.mark.slow
def test_each_member_is_main_with_its_seed_sharded_and_after_a_resume(tmp_path):
    """On 2 (forced) devices the members axis is sharded; the study stops after epoch 1 and
    resumes; the second member then matches `main` with its seed, epoch by epoch."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT), str(tmp_path)], capture_output=True,
                       text=True, timeout=900, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    for seed, member, alone in zip((1,), out["members"][1:], out["alone"]):
        assert member["seed"] == seed and len(member["history"]) == len(alone["history"]) == 3
        for ours, theirs in zip(member["history"], alone["history"]):
            close(ours["train"], theirs["train"])
            close({m: ours["test"][m] for m in ("f1", "tau", "rho", "spread")},
                  {m: theirs["test"][m] for m in ("f1", "tau", "rho", "spread")})
        close(member["random"], alone["random"])
        assert set(member["last_epoch_videos"]["per_video"]) == set(alone["test_keys"])
        assert set(member["last_epoch_videos"]["training_videos"]) == {"f1", "tau", "rho"}
    taus = [m["selection"]["last_epoch"]["tau"] for m in out["members"]]
    assert out["study"]["sgvs"]["last_epoch"]["tau"] == pytest.approx(np.mean(taus), abs=1e-4)
    assert os.path.exists(tmp_path / "study" / "study.md")


def fake_run(taus, free_tau, seeds=(0, 1, 2)):
    """A run_variant-shaped record: taus[split][seed] at the last epoch, 0 untrained."""
    def sel(t):
        return {rule: {"epoch": 1, "f1": 50.0, "tau": t if rule != "untrained" else 0.0, "rho": t,
                       "spread": 0.1} for rule in study_report.ROWS}

    splits = {}
    for i, row in enumerate(taus):
        free = {"feature_norm": {"f1": 50.0, "tau": free_tau[i], "rho": free_tau[i], "spread": 0.1},
                "uniqueness": {"f1": 50.0, "tau": -1.0, "rho": -1.0, "spread": 0.1}}
        splits[str(i)] = {"training_free": free, "members": [
            {"seed": s, "selection": sel(t), "random": {"f1": 40.0, "tau": 0.0, "rho": 0.0},
             "last_epoch_videos": {"training_videos": {"f1": 60.0, "tau": t / 2, "rho": t / 2}}}
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


@pytest.mark.slow
def test_value_only_variants_are_members_of_one_program(tmp_path):
    """sgvs and sigma_0.5 differ only in sigma (a leaf of the state): one group, one workdir,
    and the sigma_0.5 members train as that variant alone does."""
    cfg = tiny_config(num_epochs=1)
    configs = {v: study.variant_config(cfg, v) for v in ("sgvs", "no_fssa", "sigma_0.5")}
    assert study.program_groups(configs) == [["sgvs", "sigma_0.5"], ["no_fssa"]]
    both = study.run_study(cfg, [0], ["sgvs", "sigma_0.5"], str(tmp_path / "both"))
    alone = study.run_study(cfg, [0], ["sigma_0.5"], str(tmp_path / "alone"))
    assert sorted(os.listdir(tmp_path / "both")) == ["sgvs+sigma_0.5", "study.json", "study.md"]
    for m in ("f1", "tau", "rho", "spread"):
        assert both["sigma_0.5"]["last_epoch"][m] == pytest.approx(alone["sigma_0.5"]["last_epoch"][m], abs=1e-4)
    assert both["sgvs"]["last_epoch"]["tau"] != both["sigma_0.5"]["last_epoch"]["tau"]
    group = json.load(open(tmp_path / "both" / "sgvs+sigma_0.5" / "results.json"))
    assert [m["variant"] for m in group["splits"]["0"]["members"]] == ["sgvs", "sigma_0.5"]
