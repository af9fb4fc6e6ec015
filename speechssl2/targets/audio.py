"""Mono waveforms of lhotse cuts at the model's sample rate."""
from __future__ import annotations

from lhotse.cut import Cut
import torch
from torch import Tensor


def at_rate(cut: Cut, sample_rate: int) -> Cut:
    """The cut resampled to ``sample_rate`` (FSDD and telephone prompts are 8 kHz)."""
    return cut if cut.sampling_rate == sample_rate else cut.resample(sample_rate)


def load_mono(cut: Cut, sample_rate: int) -> Tensor:
    """(L,) float32 waveform of a single-channel cut at ``sample_rate``."""
    cut = at_rate(cut, sample_rate)
    audio = cut.load_audio()  # (C, L)
    if audio.shape[0] != 1:
        raise ValueError(f"cut {cut.id!r}: expected mono audio, got {audio.shape[0]} channels")
    return torch.from_numpy(audio[0]).float()
