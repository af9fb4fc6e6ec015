"""Span masking along time (pre-training, fine-tuning) and along channels (fine-tuning).

The process follows SPEC §2 literally: every position is a span start with probability
``p`` and each start masks ``M`` consecutive positions (spans may overlap). Starts are
also drawn for the ``M - 1`` virtual positions before the utterance, whose spans are
clipped at its first frame. That makes the process stationary: *every* valid frame is
masked with probability exactly ``1 - (1 - p) ** M`` (wav2vec 2.0: p=0.065, M=10 gives
0.4897), whatever the utterance length and wherever the frame sits, so the expected
ratio is exact, an utterance shorter than ``M`` is handled like any other, and padding
is never masked.

Decision, versus the released fairseq code: fairseq draws a fixed count
``int(p * L / M + u)`` of starts per utterance and, with ``require_same_masks``, cuts
every utterance down to the smallest count in the batch, so the ratio depends on the
batch's shortest utterance. We do not: the number of masked frames varies per utterance
and the contrastive loss (``speechssl2.objectives.contrastive``) handles ragged counts.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def expected_mask_ratio(prob: float, span: int) -> float:
    """Probability that any one valid frame is masked (the expected masked fraction)."""
    return 1.0 - (1.0 - prob) ** span


def span_process(
    shape: Tuple[int, int],
    prob: float,
    span: int,
    device: torch.device | str = "cpu",
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Stationary span process: (B, N) bool, True where a span started in the last ``span`` positions.

    Vectorized over the batch: one Bernoulli draw per (virtual) start position, then a
    sliding max of width ``span``.
    """
    _check(prob, span)
    batch, length = shape
    starts = torch.rand(batch, length + span - 1, device=device, generator=generator) < prob  # (B, N+M-1)
    if span == 1:
        return starts
    covered = F.max_pool1d(starts.float().unsqueeze(1), kernel_size=span, stride=1)  # (B, 1, N)
    return covered.squeeze(1).bool()


def span_mask(
    padding_mask: Tensor, prob: float, span: int, generator: Optional[torch.Generator] = None
) -> Tensor:
    """Time mask for a padded batch.

    padding_mask: (B, T) bool, True = padding. Returns (B, T) bool, True = masked; padding
    frames are never masked.
    """
    mask = span_process(tuple(padding_mask.shape), prob, span, padding_mask.device, generator)
    return mask & ~padding_mask


def channel_mask(
    batch: int,
    channels: int,
    prob: float,
    span: int,
    device: torch.device | str = "cpu",
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Channel mask: (B, D) bool, True = channel zeroed for every frame of that utterance."""
    return span_process((batch, channels), prob, span, device, generator)


class SpanMasker:
    """A configured time masker: ``SpanMasker(prob=0.065, span=10)(padding_mask)``."""

    def __init__(self, prob: float, span: int) -> None:
        _check(prob, span)
        self.prob = prob
        self.span = span

    def __call__(self, padding_mask: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return span_mask(padding_mask, self.prob, self.span, generator)

    @property
    def expected_ratio(self) -> float:
        return expected_mask_ratio(self.prob, self.span)

    def __repr__(self) -> str:
        return f"SpanMasker(prob={self.prob}, span={self.span}, expected_ratio={self.expected_ratio:.4f})"


def _check(prob: float, span: int) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"span masking: prob must be in [0, 1] (per-frame start probability), got {prob}")
    if span < 1:
        raise ValueError(f"span masking: span length must be >= 1 frame, got {span}")
