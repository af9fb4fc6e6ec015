import logging
import random

import numpy as np
import pytest
import torch

from speechssl2.train import checkpoint as ckpt
from speechssl2.train.distributed import all_gather_object


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_last.pt"
    ckpt.save_checkpoint({"model": {"w": torch.ones(3)}}, [path])

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"model": {"w": torch.zeros(3)}}, [path, tmp_path / "checkpoint_7.pt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_last.pt"]  # no temp, no partial
    assert torch.equal(ckpt.load_checkpoint(path)["model"]["w"], torch.ones(3))


def test_corrupt_and_foreign_files_are_named(tmp_path):
    bad = tmp_path / "checkpoint_3.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RuntimeError, match="checkpoint .*checkpoint_3.pt cannot be read"):
        ckpt.load_checkpoint(bad)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="other.pt is not a speechssl2 checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_prune_keeps_newest_numbered(tmp_path):
    for n in (2, 10, 4, 8, 6):
        ckpt.save_checkpoint({"model": {}}, [tmp_path / ckpt.numbered_name(n)])
    ckpt.save_checkpoint({"model": {}}, [tmp_path / ckpt.LAST, tmp_path / ckpt.BEST])
    deleted = ckpt.prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in deleted] == ["checkpoint_2.pt", "checkpoint_4.pt", "checkpoint_6.pt"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint_10.pt", "checkpoint_8.pt", "checkpoint_best.pt", "checkpoint_last.pt"]


def test_average_models(tmp_path):
    paths = []
    for i, w in enumerate(([1.0, 2.0], [3.0, 6.0], [5.0, 1.0])):
        model = {"w": torch.tensor(w), "h": torch.tensor([w[0]], dtype=torch.float16), "count": torch.tensor(i)}
        paths.append(tmp_path / ckpt.numbered_name(i))
        ckpt.save_checkpoint({"model": model}, [paths[-1]])
    avg = ckpt.average_models(paths)
    assert torch.equal(avg["w"], torch.tensor([3.0, 3.0]))
    assert avg["h"].dtype == torch.float16 and avg["h"].item() == 3.0
    assert avg["count"].item() == 2  # integer buffers come from the last checkpoint


def test_average_models_mismatch_names_the_file(tmp_path):
    ckpt.save_checkpoint({"model": {"w": torch.ones(2)}}, [tmp_path / "a.pt"])
    ckpt.save_checkpoint({"model": {"w": torch.ones(3)}}, [tmp_path / "b.pt"])
    ckpt.save_checkpoint({"model": {"v": torch.ones(3)}}, [tmp_path / "c.pt"])
    with pytest.raises(ValueError, match=r"a.pt: w has shape \(2,\), .*b.pt has \(3,\)"):
        ckpt.average_models([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(ValueError, match="b.pt: parameter names differ from .*c.pt"):
        ckpt.average_models([tmp_path / "b.pt", tmp_path / "c.pt"])


def test_rng_round_trip_through_a_file(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ckpt.save_checkpoint({"model": {}, "rng": ckpt.rng_state()}, [tmp_path / "c.pt"])
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_each_rank_takes_its_own_rng_state(caplog):
    states = [{"torch": torch.tensor([r])} for r in range(3)]
    assert [ckpt.rank_rng_state(states, r, 3)["torch"].item() for r in range(3)] == [0, 1, 2]
    assert ckpt.rank_rng_state(states[1], 0, 1) is states[1]  # a checkpoint from before per-rank states
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="speechssl2.train.checkpoint"):
        assert ckpt.rank_rng_state(states, 1, 2) is states[0]
    assert "RNG states of 3 rank(s) but this run has 2" in caplog.text


def test_gathered_rng_state_restores_in_a_world_of_one():
    torch.manual_seed(5)
    gathered = all_gather_object(ckpt.rng_state())
    expected = torch.rand(3)
    assert len(gathered) == 1
    torch.manual_seed(6)
    ckpt.set_rng_state(ckpt.rank_rng_state(gathered, 0, 1))
    assert torch.equal(torch.rand(3), expected)
