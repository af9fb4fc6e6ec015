"""Sample-size-weighted running sums of losses and health metrics, reduced over ranks.

Models report per-batch *means* (``StepOutput.loss`` and friends are averaged over
``sample_size``); weighting each by its sample size before summing makes the mean over a
window of batches, or over ranks, equal the mean over all their samples.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict

import torch

from speechssl2.interfaces import StepOutput
from speechssl2.train.distributed import all_reduce_sum


class WeightedMeans:
    """``add(step)`` per batch, ``reduce()`` for the means over everything added (all ranks)."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = defaultdict(float)
        self.weight = 0.0

    def add(self, step: StepOutput) -> None:
        n = float(step.sample_size)
        self.weight += n
        self.sums["loss"] += float(step.loss.detach()) * n
        for name, term in step.terms.items():
            self.sums[name] += float(term.detach()) * n
        for name, value in step.metrics.items():
            self.sums[name] += float(value) * n

    def reduce(self, device: torch.device) -> Dict[str, float]:
        """Means over all ranks; every rank must have added the same names (one model)."""
        names = sorted(self.sums)
        packed = torch.tensor([self.weight] + [self.sums[k] for k in names], dtype=torch.float64, device=device)
        all_reduce_sum(packed)
        weight = packed[0].item()
        if weight == 0:
            return {}
        return {name: packed[i + 1].item() / weight for i, name in enumerate(names)}

    def merge(self, other: "WeightedMeans") -> None:
        for name, value in other.sums.items():
            self.sums[name] += value
        self.weight += other.weight
