"""A toy trainable and in-memory loaders that drive the trainer without audio or lhotse.

``ToyLoader`` mimics what the trainer relies on in a lhotse DataLoader: a ``sampler``
with ``set_epoch`` and a ``state_dict`` that records its position, restored by
``load_state_dict`` so that the next iteration continues from there.
"""
from __future__ import annotations

import random
from typing import Any, Dict, Iterator, List, Optional, Set

import torch
from torch import nn

from speechssl2.interfaces import StepOutput
from speechssl2.train.config import DataConfig, OptimConfig, TrainConfig, TrainerConfig

DIM = 6


def make_data(n: int = 40, seed: int = 0) -> Dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=g)
    y = x @ torch.linspace(-1, 1, DIM) + 0.1 * torch.randn(n, generator=g)
    return {"x": x, "y": y}


class Killed(Exception):
    pass


class ToyRegressor(nn.Module):
    """Linear regression with dropout (so resuming must restore the torch RNG too).

    ``bad_calls``: training forward calls (0-based) whose loss is made infinite.
    ``overflow_calls``: training forward calls whose loss is scaled by 1e20: still finite,
    but under fp16 autocast its gradients overflow at any loss scale (what a grad scaler handles).
    """

    def __init__(
        self, dropout: float = 0.1, bad_calls: Optional[Set[int]] = None, overflow_calls: Optional[Set[int]] = None
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(DIM, 1)
        self.dropout = nn.Dropout(dropout)
        self.bad_calls = bad_calls or set()
        self.overflow_calls = overflow_calls or set()
        self.calls = 0
        self.seen_updates: List[int] = []

    def set_num_updates(self, n: int) -> None:
        self.seen_updates.append(n)

    def forward(self, batch: Dict[str, Any]) -> StepOutput:
        pred = self.linear(self.dropout(batch["x"])).squeeze(-1)  # (B,)
        mse = ((pred - batch["y"]) ** 2).mean()
        if self.training and self.calls in self.bad_calls:
            mse = mse * float("inf")
        if self.training and self.calls in self.overflow_calls:
            mse = mse * 1e20
        self.calls += self.training
        return StepOutput(
            loss=mse, terms={"mse": mse}, metrics={"pred_mean": float(pred.detach().mean())}, sample_size=len(pred)
        )


class KilledAt(nn.Module):
    """Wraps a trainable and raises ``Killed`` on training forward call ``kill_at`` (a crash)."""

    def __init__(self, model: nn.Module, kill_at: Optional[int]) -> None:
        super().__init__()
        self.model, self.kill_at, self.calls = model, kill_at, 0

    def set_num_updates(self, n: int) -> None:
        if hasattr(self.model, "set_num_updates"):
            self.model.set_num_updates(n)

    def forward(self, batch: Dict[str, Any]) -> StepOutput:
        if self.training and self.calls == self.kill_at:
            raise Killed(f"killed at forward call {self.calls}")
        self.calls += self.training
        return self.model(batch)


class AudioToy(nn.Module):
    """A strided conv over real waveforms predicting each utterance's duration (loss depends on the batches)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, kernel_size=64, stride=32)
        self.dropout = nn.Dropout(0.2)
        self.out = nn.Linear(4, 1)

    def forward(self, batch: Dict[str, Any]) -> StepOutput:
        h = torch.relu(self.conv(batch["audio"].unsqueeze(1))).mean(-1)  # (B, 4)
        pred = self.out(self.dropout(h)).squeeze(-1)  # (B,)
        target = batch["audio_lens"].float() / batch["sample_rate"]  # (B,) seconds
        loss = ((pred - target) ** 2).mean()
        return StepOutput(loss=loss, terms={"mse": loss}, sample_size=len(target))


class ToySampler:
    """Shuffled batches of indices with an explicit, restorable position (per epoch)."""

    def __init__(self, n: int, batch_sizes: List[int], seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.batch_sizes, self.seed = n, batch_sizes, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position, self._restored = 0, 0, False

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._restored = False
        self.epoch = epoch

    def state_dict(self) -> Dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.epoch, self.position, self._restored = state.pop("epoch"), state.pop("position"), True

    def batches(self) -> List[List[int]]:
        order = list(range(self.n))
        random.Random(self.seed + self.epoch).shuffle(order)
        out, start, i = [], 0, 0
        while start + self.batch_sizes[i % len(self.batch_sizes)] <= len(order):
            size = self.batch_sizes[i % len(self.batch_sizes)]
            out.append(order[start : start + size])
            start, i = start + size, i + 1
        return out[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[List[int]]:
        if not self._restored:
            self.position = 0
        self._restored = False
        for indices in self.batches()[self.position :]:
            self.position += 1
            yield indices


class ToyLoader:
    def __init__(self, data: Dict[str, torch.Tensor], sampler: ToySampler) -> None:
        self.data, self.sampler = data, sampler

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for indices in self.sampler:
            yield collate(self.data, indices)


def collate(data: Dict[str, torch.Tensor], indices: List[int]) -> Dict[str, Any]:
    idx = torch.tensor(indices)
    return {
        "x": data["x"][idx],
        "y": data["y"][idx],
        "audio_lens": torch.full((len(indices),), 8000),
        "sample_rate": 16000,
    }


def toy_config(exp_dir, **trainer: Any) -> TrainConfig:
    defaults = dict(max_updates=12, log_every=2, valid_every=4, save_every=4, seed=3)
    defaults.update(trainer)
    return TrainConfig(
        model={"name": "toy"},
        data=DataConfig(train="unused", max_duration=2.0),
        optim=OptimConfig(name="adamw", lr=0.05, weight_decay=0.01),
        scheduler={"name": "tri_stage"},
        trainer=TrainerConfig(**defaults),
        exp_dir=str(exp_dir),
    )


def ddp_worker(rank: int, world_size: int, port: int, exp_dir: str, out_dir: str) -> None:
    """One torchrun-like rank: join a gloo group from env vars, train, save its parameters."""
    import os

    from speechssl2.train.distributed import cleanup, init_distributed
    from speechssl2.train.trainer import train

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    info = init_distributed()
    try:
        torch.manual_seed(0)
        model = ToyRegressor(dropout=0.0)
        sampler = ToySampler(24, [3, 5], seed=1, rank=rank, world_size=world_size)
        cfg = toy_config(exp_dir, max_updates=6, target_batch_seconds=4.0, clip_norm=0.5)
        result = train(cfg, model, ToyLoader(make_data(), sampler), dist_info=info)
        torch.save({"params": [p.detach() for p in model.parameters()], "best": result.best,
                    "torch_rng": torch.get_rng_state()}, f"{out_dir}/rank{rank}.pt")
    finally:
        cleanup()
