"""A run continues its checkpoint only when it is the same experiment (config and inputs)."""
from __future__ import annotations

import pytest
import torch
import yaml

from speechssl2.config import ConfigError
from speechssl2.train import checkpoint as ckpt
from speechssl2.train.resume import resume_conflicts
from speechssl2.train.trainer import train
from train_toys import ToyLoader, ToyRegressor, ToySampler, make_data, toy_config

DATA = make_data()


def run(exp_dir, max_updates=4, inputs=None, lr=None, **trainer):
    torch.manual_seed(0)
    cfg = toy_config(exp_dir, **trainer)
    cfg.trainer.max_updates = max_updates
    if lr is not None:
        cfg.optim.lr = lr
    model = ToyRegressor()
    result = train(cfg, model, ToyLoader(DATA, ToySampler(12, [3, 5, 4])), inputs=inputs)
    return model, result


def test_changed_optim_lr_is_refused_naming_the_field(tmp_path):
    run(tmp_path, lr=1e-3)
    with pytest.raises(ConfigError, match=r"optim\.lr: 0\.001 -> 0\.002(.|\n)*trainer\.resume=never"):
        run(tmp_path, lr=2e-3)
    stored = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert stored["optim"]["lr"] == 1e-3  # config.yaml still describes the weights beside it


def test_larger_max_updates_continues(tmp_path):
    run(tmp_path, max_updates=4)
    _, result = run(tmp_path, max_updates=6)
    assert result.num_updates == 6
    assert ckpt.load_checkpoint(tmp_path / ckpt.LAST)["num_updates"] == 6


def test_changed_input_contents_are_refused(tmp_path):
    run(tmp_path, inputs={"/data/cuts.jsonl.gz": "aaa"})
    with pytest.raises(ConfigError, match=r"input /data/cuts\.jsonl\.gz has other contents"):
        run(tmp_path, max_updates=6, inputs={"/data/cuts.jsonl.gz": "bbb"})


def test_resume_never_starts_fresh_and_replaces_the_checkpoints(tmp_path):
    fresh, _ = run(tmp_path / "fresh", lr=2e-3)
    run(tmp_path / "x", lr=1e-3, save_every=2)
    assert (tmp_path / "x" / "checkpoint_2.pt").exists()
    again, result = run(tmp_path / "x", lr=2e-3, resume="never", save_every=100)
    assert result.num_updates == 4
    assert not (tmp_path / "x" / "checkpoint_2.pt").exists()  # no checkpoint of the old run is left
    assert torch.equal(fresh.linear.weight, again.linear.weight)  # the same as a run in an empty exp_dir
    assert yaml.safe_load((tmp_path / "x" / "config.yaml").read_text())["optim"]["lr"] == 2e-3


def test_counters_that_do_not_change_the_weights_may_change():
    old = {"trainer": {"max_updates": 4, "log_every": 1, "seed": 1}, "exp_dir": "a"}
    new = {"trainer": {"max_updates": 8, "log_every": 5, "seed": 2}, "exp_dir": "b"}
    assert resume_conflicts(old, new, None, None) == ["trainer.seed: 1 -> 2"]
