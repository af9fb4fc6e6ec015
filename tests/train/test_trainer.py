import logging

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from speechssl2.config import ConfigError
from speechssl2.train import checkpoint as ckpt
from speechssl2.train.build import grad_accum_steps
from speechssl2.train.trainer import TrainingDiverged, train
from train_toys import Killed, KilledAt, ToyLoader, ToyRegressor, ToySampler, collate, make_data, toy_config

DATA = make_data()
BATCH_SIZES = [3, 5, 4]  # uneven, so sample-size weighting matters; 3 batches per epoch


def loader(seed=0):
    return ToyLoader(DATA, ToySampler(12, BATCH_SIZES, seed=seed))


def valid_loader():
    return [collate(DATA, list(range(i, i + 10))) for i in (0, 10)]


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def run(exp_dir, max_updates, make_loader=loader, kill_at=None, **trainer):
    torch.manual_seed(0)
    model = KilledAt(ToyRegressor(), kill_at)
    cfg = toy_config(exp_dir, **trainer)
    cfg.trainer.max_updates = max_updates
    result = train(cfg, model, make_loader(), valid_loader())
    return model, result


@pytest.mark.parametrize("make_loader", [loader, lambda: list(loader())], ids=["sampler_state", "replay"])
def test_resume_is_bit_exact(tmp_path, make_loader):
    """12 updates in one go == killed after update 6, rerun (resumes from update 5) to 12."""
    full, _ = run(tmp_path / "full", 12, make_loader, target_batch_seconds=4.0, save_every=5)
    with pytest.raises(Killed, match="killed at forward call 13$"):  # 2 micro-batches per update: call 13 is in update 7
        run(tmp_path / "split", 12, make_loader, kill_at=13, target_batch_seconds=4.0, save_every=5)
    # Epochs of 3 batches: update 5 ended after batch 1 of epoch 3.
    state = ckpt.load_checkpoint(tmp_path / "split" / ckpt.LAST)
    assert (state["num_updates"], state["epoch"], state["batches_in_epoch"]) == (5, 3, 1)
    assert isinstance(state["rng"], list) and len(state["rng"]) == 1  # one process: one rank's generators
    resumed, result = run(tmp_path / "split", 12, make_loader, target_batch_seconds=4.0, save_every=5)
    assert result.num_updates == 12
    assert torch.equal(params(full), params(resumed))
    fresh, _ = run(tmp_path / "other", 12, make_loader, target_batch_seconds=4.0, save_every=5, seed=4)
    assert not torch.equal(params(full), params(fresh))  # the check can fail: dropout RNG matters


def test_nan_guard_skips_then_stops(tmp_path, caplog):
    torch.manual_seed(0)
    model = ToyRegressor(bad_calls={2, 5, 6})
    cfg = toy_config(tmp_path, max_updates=8, max_bad_steps=3, valid_every=100)
    with caplog.at_level(logging.WARNING, logger="speechssl2.train.trainer"):
        result = train(cfg, model, loader())
    assert result.num_updates == 8  # three bad calls, fewer than 3 in a row: skipped, not counted
    skipped = [r.getMessage() for r in caplog.records if "non-finite step skipped" in r.getMessage()]
    assert len(skipped) == 3 and "at update 2" in skipped[0] and "[2 in a row" in skipped[2]
    assert model.calls == 11
    assert torch.isfinite(params(model)).all()

    torch.manual_seed(0)
    model = ToyRegressor(bad_calls={1, 2, 3, 4})
    with pytest.raises(TrainingDiverged, match="3 consecutive non-finite steps at update 1"):
        train(toy_config(tmp_path / "b", max_updates=8, max_bad_steps=3), model, loader())
    assert model.calls == 4


def test_accumulation_equals_one_big_batch(tmp_path):
    """2 micro-batches of 3 and 5 accumulated == one batch of those 8 (weighted by sample size)."""
    small = ToyLoader(DATA, ToySampler(24, [3, 5], seed=1))
    big = [collate(DATA, a + b) for a, b in zip(*[iter(small.sampler.batches())] * 2)]
    models = []
    for name, data, target in (("acc", small, 4.0), ("big", big, None)):
        torch.manual_seed(0)
        model = ToyRegressor(dropout=0.0)
        cfg = toy_config(tmp_path / name, max_updates=3, target_batch_seconds=target, clip_norm=0.5)
        train(cfg, model, data)
        models.append(params(model))
    torch.testing.assert_close(models[0], models[1], rtol=1e-6, atol=1e-7)
    torch.manual_seed(0)
    assert not torch.allclose(models[0], params(ToyRegressor()))  # training moved the weights


def test_grad_accum_steps():
    assert grad_accum_steps(None, 100.0, 4) == 1
    assert grad_accum_steps(1600.0, 100.0, 4) == 4
    assert grad_accum_steps(1650.0, 100.0, 4) == 5
    assert grad_accum_steps(50.0, 100.0, 1) == 1


def logged(caplog, name):
    """``name``'s values from the trainer's ``update N ...`` log lines."""
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("update ")]
    return [float(line.split(f" {name} ")[1].split()[0]) for line in lines]


def test_checkpoints_best_keep_last_and_config(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="speechssl2.train.trainer"):
        model, result = run(tmp_path, 12, save_every=2, keep_last=2, valid_every=3)
    names = sorted(p.name for p in tmp_path.glob("checkpoint_*.pt"))
    assert names == ["checkpoint_10.pt", "checkpoint_12.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    assert not list(tmp_path.glob(".*tmp"))
    last = ckpt.load_checkpoint(tmp_path / ckpt.LAST)
    assert last["num_updates"] == 12 and last["config"]["trainer"]["keep_last"] == 2
    assert torch.equal(last["model"]["model.linear.weight"], model.model.linear.weight)
    best = ckpt.load_checkpoint(tmp_path / ckpt.BEST)
    assert best["best"] == result.best and best["num_updates"] in (3, 6, 9, 12)
    assert set(result.last_valid) == {"loss", "mse", "pred_mean"}
    assert (tmp_path / "config.yaml").read_text().count("keep_last: 2") == 1
    assert model.model.seen_updates[:3] == [0, 1, 2] and model.model.seen_updates[-1] == 12
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    train_loss = events.Scalars("train/loss")
    assert [e.step for e in train_loss] == [2, 4, 6, 8, 10, 12]  # log_every=2
    assert [e.value for e in train_loss] == pytest.approx(logged(caplog, "loss"), rel=1e-3)
    valid_loss = events.Scalars("valid/loss")
    assert [e.step for e in valid_loss] == [3, 6, 9, 12]
    assert min(e.value for e in valid_loss) == pytest.approx(result.best, rel=1e-6)
    # batches of 3, 5, 4 utterances of 0.5 s each, two updates per log line
    audio = [e.value for e in events.Scalars("train/audio_sec_per_update")]
    assert audio == [2.0, 1.75, 2.25, 2.0, 1.75, 2.25] == logged(caplog, "audio_sec_per_update")


def test_lr_follows_schedule(tmp_path):
    run(tmp_path, 10, save_every=5)
    state = ckpt.load_checkpoint(tmp_path / "checkpoint_5.pt")
    # tri_stage over 10 updates: warm-up 1, hold to 5, so update 5 ran at the peak
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05)
    last = ckpt.load_checkpoint(tmp_path / ckpt.LAST)
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05 * 0.05)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("max_updates", 0, "trainer.max_updates must be > 0, got 0"),
        ("clip_norm", -1.0, "trainer.clip_norm must be >= 0"),
        ("keep_last", 0, "trainer.keep_last must be > 0"),
        ("target_batch_seconds", -5.0, "trainer.target_batch_seconds must be > 0"),
        ("fp16_init_scale", 0.0, "trainer.fp16_init_scale must be > 0"),
    ],
)
def test_config_validation(tmp_path, field, value, message):
    cfg = toy_config(tmp_path)
    setattr(cfg.trainer, field, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        train(cfg, ToyRegressor(), loader())


def test_unknown_best_metric(tmp_path):
    cfg = toy_config(tmp_path, best_metric="wer")
    with pytest.raises(ConfigError, match="best_metric 'wer' is not among the validation values: loss, mse"):
        train(cfg, ToyRegressor(), loader(), valid_loader())


def test_empty_loader(tmp_path):
    with pytest.raises(RuntimeError, match="yielded no batches in epoch 0"):
        train(toy_config(tmp_path), ToyRegressor(), [])


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_loss_falls_in_every_precision(tmp_path, precision, caplog):
    """On CPU: bf16 autocast, fp16 autocast with a grad scaler (loss_scale logged), fp32."""
    with caplog.at_level(logging.INFO, logger="speechssl2.train.trainer"):
        run(tmp_path, 30, precision=precision, log_every=10, valid_every=100)
    losses = logged(caplog, "loss")
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    # fp16 starts at fp16_init_scale (128), where this toy never overflows
    assert logged(caplog, "loss_scale") == [128.0 if precision == "fp16" else 1.0] * 3
    assert logged(caplog, "loss_scale_overflows") == [0, 0, 0]


def test_fp16_overflows_are_skipped_and_logged_not_counted_as_bad_steps(tmp_path, caplog):
    """Forward calls 1-3 and 5 overflow in fp16: the scaler skips them and halves 128 -> 8."""
    torch.manual_seed(0)
    model = ToyRegressor(overflow_calls={1, 2, 3, 5})
    cfg = toy_config(tmp_path, max_updates=8, precision="fp16", max_bad_steps=2, log_every=4, valid_every=100)
    with caplog.at_level(logging.INFO, logger="speechssl2.train.trainer"):
        result = train(cfg, model, loader())
    assert result.num_updates == 8 and model.calls == 12
    assert logged(caplog, "loss_scale_overflows") == [4, 0]  # updates 1-4 took calls 0-7
    assert logged(caplog, "loss_scale") == [8.0, 8.0]
    assert not any("non-finite step skipped" in r.getMessage() for r in caplog.records)
    assert sum("fp16 gradient overflow" in r.getMessage() for r in caplog.records) == 4
    assert torch.isfinite(params(model)).all()
    assert not (tmp_path / "checkpoint_0.pt").exists()  # skipped steps never trigger a save


@pytest.mark.parametrize(
    "model, init_scale",
    [(ToyRegressor(bad_calls={1, 2}), 128.0), (ToyRegressor(overflow_calls={1, 2}), 1.5e-4)],
    ids=["infinite_loss", "scale_below_minimum"],
)
def test_fp16_divergence_still_stops(tmp_path, model, init_scale):
    """A non-finite loss is no overflow; nor is one the scale cannot absorb above MIN_LOSS_SCALE."""
    cfg = toy_config(tmp_path, max_updates=8, precision="fp16", max_bad_steps=2, fp16_init_scale=init_scale)
    with pytest.raises(TrainingDiverged, match="2 consecutive non-finite steps at update 1"):
        train(cfg, model, loader())
