"""Span masking along time (pre-training, fine-tuning) and along channels (fine-tuning).

The default (stationary) sampler follows SPEC §2 literally: every position is a span start with probability
``p`` and each start masks ``M`` consecutive positions (spans may overlap). Starts are
also drawn for the ``M - 1`` virtual positions before the utterance, whose spans are
clipped at its first frame. That makes the process stationary: *every* valid frame is
masked with probability exactly ``1 - (1 - p) ** M`` (wav2vec 2.0: p=0.065, M=10 gives
0.4897), whatever the utterance length and wherever the frame sits, so the expected
ratio is exact, an utterance shorter than ``M`` is handled like any other, and padding
is never masked.

Two samplers, chosen by the config's ``sampler`` key (registry ``MASK_SAMPLERS``):

* ``stationary`` (the default; ``SpanMasker``): the process above. ``prob`` is the
  per-position start probability (wav2vec 2.0: 0.065). The number of masked frames varies
  per utterance and the contrastive loss handles ragged counts.
* ``fairseq`` (``FairseqMasker``; the LibriSpeech paper configs): fairseq's
  ``compute_mask_indices`` (static span lengths, overlaps allowed), the algorithm that
  produced the papers' numbers. ``prob`` is fairseq's ``mask_prob`` (wav2vec 2.0: 0.65,
  HuBERT: 0.8): each utterance of ``L`` valid frames gets ``max(min_masks, int(prob * L /
  M + u))`` distinct span starts, ``u ~ U[0, 1)`` (probabilistic rounding), drawn
  uniformly from ``[0, L - M)`` (from ``[0, count]`` when that range is too short; spans
  are clipped at the last frame). ``require_same_masks`` then unmasks random frames until
  every utterance has the batch's smallest masked count, and ``mask_dropout`` unmasks
  ``round(mask_dropout * count)`` random masked frames per utterance. The masked fraction
  therefore depends on the lengths in the batch (measured in docs/benchmarks.md, "Span
  masking: masked fraction"). Two choices where fairseq raises: an utterance covered
  entirely (only possible when ``L <= count + M``) stays fully masked, and an utterance of
  no valid frames gets no mask and does not set the batch's smallest count to zero.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from speechssl2.registry import MASK_SAMPLERS


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


@MASK_SAMPLERS.register("stationary")
class SpanMasker:
    """A configured stationary masker: ``SpanMasker(prob=0.065, span=10)(padding_mask)``."""

    def __init__(self, prob: float, span: int) -> None:
        _check(prob, span)
        self.prob = prob
        self.span = span

    def __call__(self, padding_mask: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return span_mask(padding_mask, self.prob, self.span, generator)

    @property
    def expected_ratio(self) -> float:
        return expected_mask_ratio(self.prob, self.span)

    def channel(self, batch: int, channels: int, device: torch.device | str = "cpu",
                generator: Optional[torch.Generator] = None) -> Tensor:
        """(B, D) bool, True = channel zeroed for every frame of that utterance."""
        return channel_mask(batch, channels, self.prob, self.span, device, generator)

    def __repr__(self) -> str:
        return f"SpanMasker(prob={self.prob}, span={self.span}, expected_ratio={self.expected_ratio:.4f})"


def fairseq_span_starts(
    lengths: Tensor, prob: float, span: int, min_masks: int = 0, generator: Optional[torch.Generator] = None
) -> Tensor:
    """fairseq's span starts: (B,) valid lengths -> (B, W) bool, W = max(T, largest start range).

    Row ``b`` holds ``max(min_masks, int(prob * L_b / span + u_b))`` distinct starts, drawn
    uniformly from ``[0, L_b - span)``, or from ``[0, count]`` when ``L_b - span <= count``.
    """
    _check(prob, span)
    if min_masks < 0:
        raise ValueError(f"span masking: min_masks must be >= 0, got {min_masks}")
    lengths = lengths.long()
    u = torch.rand(lengths.shape[0], device=lengths.device, generator=generator)  # (B,)
    count = torch.floor(prob * lengths / span + u).long().clamp(min=min_masks)  # (B,)
    high = torch.where(lengths - span > count, lengths - span, count + 1)  # (B,) start range
    width = max(int(lengths.max()) if lengths.numel() else 0, int(high.max()) if high.numel() else 0)
    allowed = torch.arange(width, device=lengths.device)[None, :] < high[:, None]  # (B, W)
    return _random_subset(allowed, count, generator)


def fairseq_span_mask(
    padding_mask: Tensor,
    prob: float,
    span: int,
    min_masks: int = 0,
    require_same_masks: bool = True,
    mask_dropout: float = 0.0,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """fairseq ``compute_mask_indices`` (static spans, overlaps allowed) for a padded batch.

    padding_mask: (B, T) bool, True = padding. Returns (B, T) bool, True = masked; padding
    frames are never masked. ``prob`` is fairseq's ``mask_prob`` (expected fraction before
    overlaps), not the stationary sampler's start probability.
    """
    if not 0.0 <= mask_dropout <= 1.0:
        raise ValueError(f"span masking: mask_dropout must be in [0, 1], got {mask_dropout}")
    batch, frames = padding_mask.shape
    lengths = (~padding_mask).sum(1)  # (B,)
    starts = fairseq_span_starts(lengths, prob, span, min_masks, generator)  # (B, W)
    starts = F.pad(starts.float(), (span - 1, max(frames - starts.shape[1], 0)))  # (B, M - 1 + max(W, T))
    covered = F.max_pool1d(starts.unsqueeze(1), span, stride=1).squeeze(1)  # (B, max(W, T))
    mask = covered[:, :frames].bool() & ~padding_mask  # (B, T) spans clipped at the last valid frame
    if require_same_masks and bool((lengths > 0).any()):
        target = mask.sum(1)[lengths > 0].min()  # rows without frames do not set the minimum
        mask = _random_subset(mask, torch.clamp(mask.sum(1), max=target), generator)
    if mask_dropout > 0:
        counts = mask.sum(1)
        mask = _random_subset(mask, counts - torch.round(counts * mask_dropout).long(), generator)
    return mask


@MASK_SAMPLERS.register("fairseq")
class FairseqMasker:
    """fairseq's sampler: ``FairseqMasker(prob=0.65, span=10, min_masks=2)(padding_mask)``.

    Defaults are ``compute_mask_indices``'s; wav2vec 2.0 and HuBERT pass ``min_masks=2``
    for time masks and the defaults for channel masks.
    """

    def __init__(self, prob: float, span: int, min_masks: int = 0, require_same_masks: bool = True,
                 mask_dropout: float = 0.0) -> None:
        _check(prob, span)
        if min_masks < 0:
            raise ValueError(f"span masking: min_masks must be >= 0, got {min_masks}")
        if not 0.0 <= mask_dropout <= 1.0:
            raise ValueError(f"span masking: mask_dropout must be in [0, 1], got {mask_dropout}")
        self.prob, self.span, self.min_masks = prob, span, min_masks
        self.require_same_masks, self.mask_dropout = require_same_masks, mask_dropout

    def __call__(self, padding_mask: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return fairseq_span_mask(padding_mask, self.prob, self.span, self.min_masks,
                                 self.require_same_masks, self.mask_dropout, generator)

    def channel(self, batch: int, channels: int, device: torch.device | str = "cpu",
                generator: Optional[torch.Generator] = None) -> Tensor:
        """(B, D) bool: fairseq masks channels with the same function, without padding."""
        return self(torch.zeros(batch, channels, dtype=torch.bool, device=device), generator)

    def __repr__(self) -> str:
        return (f"FairseqMasker(prob={self.prob}, span={self.span}, min_masks={self.min_masks}, "
                f"require_same_masks={self.require_same_masks}, mask_dropout={self.mask_dropout})")


Masker = Union[SpanMasker, FairseqMasker]
MaskSpec = Union[Tuple[float, int], Dict[str, Any]]  # [prob, span] or {sampler: ..., prob: ..., span: ..., ...}


def build_masker(spec: Union[MaskSpec, Mapping[str, Any], Sequence[float]]) -> Masker:
    """``{prob, span, sampler: stationary | fairseq, <sampler options>}``, or ``[prob, span]`` (stationary).

    An option the chosen sampler does not take raises, naming the valid ones.
    """
    if not isinstance(spec, Mapping):
        prob, span = spec
        return SpanMasker(float(prob), int(span))
    options = {k: v for k, v in spec.items() if k != "sampler"}
    return MASK_SAMPLERS.build({"name": spec.get("sampler", "stationary"), **options})


def _random_subset(selectable: Tensor, keep: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """(B, W) bool, (B,) counts -> (B, W) bool: ``keep[b]`` positions of row b drawn uniformly, no replacement."""
    keys = torch.rand(selectable.shape, device=selectable.device, generator=generator)
    keys = keys.masked_fill(~selectable, 2.0)  # never among the first keep[b] when keep[b] <= row count
    order = keys.argsort(dim=1)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    ranks = torch.empty_like(order).scatter_(1, order, positions)  # ranks[b, w]: rank of w's key in row b
    return (ranks < keep[:, None]) & selectable


def _check(prob: float, span: int) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"span masking: prob must be in [0, 1] (per-frame start probability), got {prob}")
    if span < 1:
        raise ValueError(f"span masking: span length must be >= 1 frame, got {span}")
