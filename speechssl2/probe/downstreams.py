"""Small downstream models (registered in DOWNSTREAMS) that read the featurizer's output.

Every downstream is built from ``input_dim`` (the upstream's D) and the training labels
(strings), from which it derives its own output vocabulary; it then offers
``loss(x, lengths, labels, ids)``, ``predict(x, lengths)`` and a corpus-level
``score(refs, hyps)`` in its ``metric`` (accuracy % or WER %). Which supervision field a
label comes from is the task's business (``speechssl2.probe.labels``), so one classifier
serves keyword spotting, speaker ID and emotion recognition alike.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechssl2.decoding.ctc import ctc_greedy
from speechssl2.finetune.heads import CTCLoss, LinearHead
from speechssl2.finetune.tokenizer import encode_batch
from speechssl2.registry import DOWNSTREAMS
from speechssl2.scoring.wer import word_stats
from speechssl2.tokenizers import CharTokenizer


class Downstream(nn.Module, ABC):
    """What the probe loop needs from a downstream model."""

    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]

    @abstractmethod
    def loss(self, x: Tensor, lengths: Tensor, labels: Sequence[str], ids: Sequence[str]) -> Tensor:
        """Mean loss of a batch: ``x`` (B, T, D), ``lengths`` (B,) valid frames, one label per utterance."""

    @abstractmethod
    def predict(self, x: Tensor, lengths: Tensor) -> List[str]:
        """One predicted label (class name or transcript) per utterance."""

    @staticmethod
    @abstractmethod
    def score(refs: Sequence[str], hyps: Sequence[str]) -> float:
        """The corpus-level metric in percent."""


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, D), (B,) -> (B, D): the mean over each utterance's valid frames only."""
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
    return (x * valid[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)


@DOWNSTREAMS.register("utterance_classifier")
class UtteranceClassifier(Downstream):
    """Linear + ReLU per frame, mean over valid frames, Linear to the classes (KS, SID, ER)."""

    metric = "accuracy"
    higher_is_better = True

    def __init__(self, input_dim: int, labels: List[str], hidden_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes in its training labels, got {self.classes}")
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.frame_proj = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(hidden_dim, len(self.classes))

    def logits(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.out(masked_mean(self.frame_proj(x), lengths))  # (B, C)

    def loss(self, x: Tensor, lengths: Tensor, labels: Sequence[str], ids: Sequence[str]) -> Tensor:
        unknown = [f"{i} ({label!r})" for i, label in zip(ids, labels) if label not in self.index]
        if unknown:
            raise ValueError(f"label(s) not among the training classes {self.classes}: {', '.join(unknown)}")
        targets = torch.tensor([self.index[label] for label in labels], device=x.device)  # (B,)
        return F.cross_entropy(self.logits(x, lengths), targets)

    @torch.no_grad()
    def predict(self, x: Tensor, lengths: Tensor) -> List[str]:
        return [self.classes[i] for i in self.logits(x, lengths).argmax(-1).tolist()]

    @staticmethod
    def score(refs: Sequence[str], hyps: Sequence[str]) -> float:
        return 100.0 * sum(r == h for r, h in zip(refs, hyps)) / max(len(refs), 1)


@DOWNSTREAMS.register("ctc_asr")
class CTCRecognizer(Downstream):
    """BiLSTM + Linear to characters, CTC loss (blank 0), greedy decoding; scored by WER."""

    metric = "wer"
    higher_is_better = False

    def __init__(self, input_dim: int, labels: List[str], hidden_dim: int = 128, num_layers: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.tokenizer = CharTokenizer.train(labels)
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.out = LinearHead(2 * hidden_dim, self.tokenizer.vocab_size, dropout=dropout)
        self.criterion = CTCLoss()

    def log_probs(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, V); packed so that padding never reaches the backward direction."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.out(h).float().log_softmax(-1)

    def loss(self, x: Tensor, lengths: Tensor, labels: Sequence[str], ids: Sequence[str]) -> Tensor:
        targets, target_lens = encode_batch(self.tokenizer, labels, ids)  # (B, U), (B,)
        return self.criterion(self.log_probs(x, lengths), lengths, targets.to(x.device), target_lens.to(x.device))

    @torch.no_grad()
    def predict(self, x: Tensor, lengths: Tensor) -> List[str]:
        return [h.text for h in ctc_greedy(self.log_probs(x, lengths), lengths, self.tokenizer.decode)]

    @staticmethod
    def score(refs: Sequence[str], hyps: Sequence[str]) -> float:
        stats = [word_stats(r, h) for r, h in zip(refs, hyps)]
        return 100.0 * sum(s.errors for s in stats) / max(sum(s.ref_len for s in stats), 1)
