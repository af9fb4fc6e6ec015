"""What a run sets up before its loop: seeds, the optimizer, micro-batches per update."""
from __future__ import annotations

import math
import random
from typing import Iterable, Optional

import numpy as np
import torch
from torch import nn

from speechssl2.train.config import OptimConfig


def grad_accum_steps(target_batch_seconds: Optional[float], max_duration: float, world_size: int) -> int:
    """Micro-batches per update so that one update sees about ``target_batch_seconds`` of audio."""
    if target_batch_seconds is None:
        return 1
    return max(1, math.ceil(target_batch_seconds / (max_duration * world_size)))


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name]
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
