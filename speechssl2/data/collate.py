"""Turning a list of cuts into tensors: mono waveforms at one rate, fbank, labels, padding.

Pure functions, one job each, so the dataset (``dataset.py``) only composes them.
Padding masks are bool with True = padding, like every mask in speechssl2.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Sequence, Tuple

import torch
from lhotse import Fbank, FbankConfig
from lhotse.cut import Cut
from torch import Tensor

IGNORE_INDEX = -100  # target padding: what torch's cross-entropy skips by default
FBANK_BINS = 80


def load_wave(cut: Cut, sample_rate: int) -> Tensor:
    """The cut's mono waveform at ``sample_rate`` (resampled on the fly), shape (S,)."""
    if cut.sampling_rate != sample_rate:
        cut = cut.resample(sample_rate)
    audio = torch.from_numpy(cut.load_audio())  # (C, S)
    if audio.shape[0] != 1:
        raise ValueError(f"cut {cut.id}: expected mono audio, got {audio.shape[0]} channels")
    return audio[0].float()


def log_mel(wave: Tensor, sample_rate: int) -> Tensor:
    """80-bin log-mel filterbank, 25 ms windows every 10 ms: (S,) -> (T, 80)."""
    return torch.from_numpy(_fbank(sample_rate).extract(wave.numpy(), sample_rate)).float()


@lru_cache(maxsize=4)
def _fbank(sample_rate: int) -> Fbank:
    return Fbank(FbankConfig(sampling_rate=sample_rate, num_filters=FBANK_BINS,
                             frame_length=0.025, frame_shift=0.01))


def load_labels(cut: Cut, field: str) -> Tensor:
    """Frame labels stored on the cut as the temporal array ``field``, shape (T,) int64."""
    if not cut.has_custom(field):
        raise KeyError(f"cut {cut.id}: no label field {field!r} (custom fields: {sorted(cut.custom or {})})")
    return torch.as_tensor(cut.load_custom(field)).long().reshape(-1)


def pad(seqs: Sequence[Tensor], value: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Right-pad along dim 0: list of (L_i, *F) -> padded (B, L, *F), lengths (B,), mask (B, L)."""
    if not seqs:
        raise ValueError("cannot collate an empty batch")
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, seq in enumerate(seqs):
        out[i, : seq.shape[0]] = seq
    mask = torch.arange(out.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, L) True = padding
    return out, lengths, mask


def collate_targets(labels: List[Tensor]) -> Tuple[Tensor, Tensor]:
    """Pad frame labels with ``IGNORE_INDEX``: (B, T) targets and (B,) lengths."""
    targets, lengths, _ = pad(labels, IGNORE_INDEX)
    return targets, lengths
