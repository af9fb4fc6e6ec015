"""Output heads and sequence losses for fine-tuning and probing, chosen by registry key.

Both losses sum over the frames of an utterance and average over utterances (``sample_size``
= B, as fairseq's CTC criterion with ``sentence_avg``). Blank is id 0 everywhere.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.functional import rnnt_loss

from speechssl2.finetune.tokenizer import BLANK
from speechssl2.registry import HEADS, LOSSES


@HEADS.register("linear")
class LinearHead(nn.Module):
    """Dropout + Linear(D -> V): the wav2vec 2.0 CTC projection. ``(B, T, D) -> (B, T, V)`` logits."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.drop(x))


@LOSSES.register("ctc")
class CTCLoss(nn.Module):
    """CTC on batch-first log-probabilities; an infeasible utterance gives 0, not inf."""

    def __init__(self, blank: int = BLANK, zero_infinity: bool = True) -> None:
        super().__init__()
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lens: Tensor) -> Tensor:
        """``(B, T, V)`` log-probs, ``(B,)`` frames, ``(B, U)`` padded targets, ``(B,)`` -> scalar."""
        total = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lens, blank=self.blank,
                           reduction="sum", zero_infinity=self.zero_infinity)
        return total / len(lengths)


@LOSSES.register("rnnt")
class RNNTLoss(nn.Module):
    """RNN-T loss from torchaudio (k2 does not install beside torch 2.x); takes raw logits."""

    def __init__(self, blank: int = BLANK, clamp: float = -1.0) -> None:
        super().__init__()
        self.blank = blank
        self.clamp = clamp

    def forward(self, logits: Tensor, lengths: Tensor, targets: Tensor, target_lens: Tensor) -> Tensor:
        """``(B, T, U + 1, V)`` float32 logits with ``T == max(lengths)`` -> scalar."""
        total = rnnt_loss(logits, targets.int(), lengths.int(), target_lens.int(), blank=self.blank,
                          clamp=self.clamp, reduction="sum")
        return total / len(lengths)
