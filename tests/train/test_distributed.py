import socket

import pytest
import torch
import torch.multiprocessing as mp

from speechssl2.train import checkpoint as ckpt
from speechssl2.train.distributed import DistInfo, env_info
from speechssl2.train.trainer import train
from train_toys import ToyLoader, ToyRegressor, ToySampler, ddp_worker, make_data, toy_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # ~17 s: two spawned interpreters importing torch
def test_two_rank_ddp_equals_one_process_with_the_same_global_batch(tmp_path):
    """2 gloo ranks x 1 micro-batch == 1 process x 2 accumulated micro-batches (same batches)."""
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(a, b)  # DDP keeps the replicas identical
    rng = ckpt.load_checkpoint(tmp_path / "ddp" / "checkpoint_last.pt")["rng"]  # saved at the last update
    for rank in range(2):  # each rank's own generators, in rank order, so that each resumes its own
        assert torch.equal(rng[rank]["torch"], ranks[rank]["torch_rng"])
    assert not torch.equal(rng[0]["torch"], rng[1]["torch"])

    torch.manual_seed(0)
    single = ToyRegressor(dropout=0.0)
    cfg = toy_config(tmp_path / "single", max_updates=6, target_batch_seconds=4.0, clip_norm=0.5)
    train(cfg, single, ToyLoader(make_data(), ToySampler(24, [3, 5], seed=1)))
    for a, b in zip(ranks[0]["params"], single.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)
    assert (tmp_path / "ddp" / "checkpoint_last.pt").is_file()
    assert not (tmp_path / "ddp" / "checkpoint_2.pt").exists()  # save_every=4


def test_env_info():
    assert env_info({}) == DistInfo(0, 1, 0)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node1"}
    assert env_info(env) == DistInfo(3, 4, 1) and not env_info(env).is_main
    with pytest.raises(ValueError, match="RANK=4 is outside WORLD_SIZE=4"):
        env_info({**env, "RANK": "4"})
    with pytest.raises(ValueError, match="MASTER_ADDR is unset"):
        env_info({"RANK": "0", "WORLD_SIZE": "2"})
