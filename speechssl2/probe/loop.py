"""Training and evaluating one probe: featurizer + downstream on cached hidden states.

One short loop read top to bottom: seeded shuffled batches of utterances, Adam,
gradient clipping, mean loss per epoch. The upstream is not in it at all; its hidden
states come from a feature store (``speechssl2.probe.features``).
"""
from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor, nn

from speechssl2.data.collate import pad
from speechssl2.logging_utils import TensorBoard, progress
from speechssl2.probe.downstreams import Downstream
from speechssl2.probe.featurizer import Featurizer
from speechssl2.probe.labels import LabelledSet

CLIP_NORM = 5.0  # guards the BiLSTM against the occasional exploding CTC gradient


class Features(Protocol):
    def load(self, ids: Sequence[str]) -> List[Tensor]: ...


class ProbeModel(nn.Module):
    """``hidden (B, L, T, D) -> featurizer -> (B, T, D) -> downstream``."""

    def __init__(self, featurizer: Featurizer, downstream: Downstream) -> None:
        super().__init__()
        self.featurizer, self.downstream = featurizer, downstream

    def loss(self, hidden: Tensor, lengths: Tensor, labels: Sequence[str], ids: Sequence[str]) -> Tensor:
        return self.downstream.loss(self.featurizer(hidden), lengths, labels, ids)

    @torch.no_grad()
    def predict(self, hidden: Tensor, lengths: Tensor) -> List[str]:
        return self.downstream.predict(self.featurizer(hidden), lengths)


def collate_features(features: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    """[(L, T_i, D), ...] -> zero-padded (B, L, T, D) and (B,) frame counts."""
    padded, lengths, _ = pad([f.transpose(0, 1) for f in features], 0.0)  # (B, T, L, D)
    return padded.transpose(1, 2), lengths


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> List[List[int]]:
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i: i + batch_size] for i in range(0, n, batch_size)]


def train_probe(model: ProbeModel, features: Features, data: LabelledSet, *, epochs: int, batch_size: int,
                lr: float, weights_lr: float, device: torch.device, seed: int,
                tensorboard: Optional[TensorBoard] = None, prefix: str = "") -> List[float]:
    """Adam over featurizer weights (at ``weights_lr``) and downstream (at ``lr``); returns epoch losses."""
    model.to(device).train()
    optimizer = torch.optim.Adam([
        {"params": model.featurizer.parameters(), "lr": weights_lr},
        {"params": model.downstream.parameters(), "lr": lr},
    ])
    generator = torch.Generator().manual_seed(seed)
    ids, step, epoch_losses = data.ids, 0, []
    for epoch in range(epochs):
        total = 0.0
        batches = shuffled_batches(len(ids), batch_size, generator)
        for batch in progress(batches, desc=f"{prefix}epoch {epoch + 1}/{epochs}"):
            hidden, lengths = collate_features(features.load([ids[i] for i in batch]))
            loss = model.loss(hidden.to(device), lengths.to(device), [data.labels[i] for i in batch],
                              [ids[i] for i in batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            step += 1
            if tensorboard is not None:
                tensorboard.scalars({"loss": float(loss.detach())}, step, prefix=f"{prefix}train/")
        epoch_losses.append(total / len(ids))
        if tensorboard is not None:
            weights = model.featurizer.layer_weights()
            tensorboard.scalars({f"layer_{i}": w for i, w in enumerate(weights)}, epoch + 1, prefix=f"{prefix}weights/")
    return epoch_losses


def predict_set(model: ProbeModel, features: Features, data: LabelledSet, batch_size: int,
                device: torch.device) -> List[str]:
    """Predictions for every utterance of ``data``, in its order."""
    model.to(device).eval()
    ids, hyps = data.ids, []
    for start in range(0, len(ids), batch_size):
        hidden, lengths = collate_features(features.load(ids[start: start + batch_size]))
        hyps += model.predict(hidden.to(device), lengths.to(device))
    return hyps
