import pytest
import torch
import yaml
from lhotse import CutSet, Recording, RecordingSet

from speechssl2.bin import average_checkpoints, train as train_bin
from speechssl2.data.loader import make_dataloader
from speechssl2.train import checkpoint as ckpt
from speechssl2.train.trainer import train
from train_toys import AudioToy, Killed, KilledAt, ToyLoader, ToyRegressor, ToySampler, make_data, toy_config


def test_average_last_n(tmp_path, caplog, capsys):
    torch.manual_seed(0)
    train(toy_config(tmp_path, max_updates=6, save_every=2), ToyRegressor(), ToyLoader(make_data(), ToySampler(12, [4])))
    out = tmp_path / "avg.pt"
    average_checkpoints.main(["--exp-dir", str(tmp_path), "--last", "2", "--out", str(out)])
    avg = ckpt.load_checkpoint(out)
    four, six = (ckpt.load_checkpoint(tmp_path / f"checkpoint_{n}.pt")["model"] for n in (4, 6))
    torch.testing.assert_close(avg["model"]["linear.weight"], (four["linear.weight"] + six["linear.weight"]) / 2)
    assert avg["num_updates"] == 6 and avg["config"]["optim"]["lr"] == 0.05
    with pytest.raises(ValueError, match="asked for the last 9 numbered checkpoints, found 3"):
        average_checkpoints.main(["--exp-dir", str(tmp_path), "--last", "9", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        average_checkpoints.main(["--out", str(out)])
    assert exit_info.value.code == 2  # argparse's usage error
    assert "error: give either --inputs FILES or --exp-dir DIR --last N" in capsys.readouterr().err


@pytest.fixture
def fsdd_cuts(fsdd_dir, tmp_path):
    files = sorted(fsdd_dir.glob("*_jackson_1[0-1].wav"))[:16]
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(Recording.from_file(f) for f in files))
    path = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(path)
    return path


@pytest.mark.slow
def test_cli_trains_ssl_model_and_resumes(fsdd_cuts, tmp_path):
    """wav2vec 2.0 tiny on 16 FSDD files: 6 updates, then a rerun continues to 8."""
    exp = tmp_path / "exp"
    config = {
        "model": {
            "name": "ssl", "upstream": {"name": "wav2vec2_tiny"}, "masking": {"prob": 0.065, "span": 3},
            "objectives": [{"name": "wav2vec2", "final_dim": 32, "num_negatives": 10}],
        },
        "data": {"train": str(fsdd_cuts), "valid": str(fsdd_cuts), "max_duration": 4.0, "num_workers": 0},
        "optim": {"lr": 5e-4},
        "scheduler": {"name": "linear", "warmup_updates": 2},
        "trainer": {"max_updates": 6, "log_every": 2, "valid_every": 3, "save_every": 3,
                    "target_batch_seconds": 8.0},
        "exp_dir": str(exp),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    train_bin.main(["--config", str(tmp_path / "c.yaml")])
    log = (exp / "train.log").read_text()
    assert "2 micro-batch(es) per update" in log
    for name in ("wav2vec2/code_ppl", "wav2vec2/temperature", " grad_norm", " lr", " audio_sec_per_sec"):
        assert f"{name} " in log, name
    assert (exp / "checkpoint_6.pt").is_file() and (exp / "checkpoint_best.pt").is_file()
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["trainer"]["max_updates"] == 6

    train_bin.main(["--config", str(tmp_path / "c.yaml"), "--set", "trainer.max_updates=8"])
    log = (exp / "train.log").read_text()
    assert "resumed from" in log and "at update 6" in log
    last = ckpt.load_checkpoint(exp / ckpt.LAST)
    assert last["num_updates"] == 8 and last["sampler"]["epoch"] >= 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_resume_is_exact_with_the_lhotse_loader(fsdd_cuts, tmp_path):
    """Real make_dataloader (DynamicBucketingSampler, num_workers=0): killed mid-epoch + rerun == one run."""

    def run(exp_dir, kill_at=None):
        loader = make_dataloader(str(fsdd_cuts), max_duration=2.5, shuffle=True, sample_rate=8000, seed=1)
        torch.manual_seed(0)
        model = KilledAt(AudioToy(), kill_at)
        cfg = toy_config(exp_dir, max_updates=10, save_every=3, valid_every=100)
        cfg.data.max_duration = 2.5
        train(cfg, model, loader)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    full = run(tmp_path / "full")
    with pytest.raises(Killed, match="killed at forward call 5$"):
        run(tmp_path / "split", kill_at=5)
    state = ckpt.load_checkpoint(tmp_path / "split" / ckpt.LAST)
    assert state["num_updates"] == 3 and state["sampler"]["diagnostics"]["current_epoch"] == state["epoch"]
    assert torch.equal(full, run(tmp_path / "split"))
