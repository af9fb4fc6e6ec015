"""Real-audio fixtures for the objective tests: a fixed FSDD subset at 16 kHz, MFCC k-means labels."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF


def load_fsdd(fsdd_dir: Path, speakers: List[str], digits: range, index: int = 5) -> List[torch.Tensor]:
    """Waveforms ``{digit}_{speaker}_{index}.wav`` (train split) resampled 8 -> 16 kHz."""
    waves = []
    for speaker in speakers:
        for digit in digits:
            data, rate = sf.read(str(fsdd_dir / f"{digit}_{speaker}_{index}.wav"), dtype="float32")
            waves.append(AF.resample(torch.from_numpy(data), rate, 16000))
    return waves


def pad_batch(waves: List[torch.Tensor]) -> Dict[str, object]:
    lengths = torch.tensor([w.numel() for w in waves])
    audio = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        audio[i, : w.numel()] = w
    return {"audio": audio, "audio_lens": lengths, "sample_rate": 16000,
            "padding_mask": torch.arange(audio.shape[1])[None, :] >= lengths[:, None]}


def mfcc_frames(wave: torch.Tensor) -> torch.Tensor:
    """(S,) -> (T, 39) MFCC + deltas on the conv frame grid (25 ms window, 20 ms hop, no edge padding)."""
    mfcc = kaldi.mfcc(wave[None] * 32768, sample_frequency=16000, frame_length=25.0, frame_shift=20.0,
                      snip_edges=True, dither=0.0)  # (T, 13)
    d1 = AF.compute_deltas(mfcc.T).T
    d2 = AF.compute_deltas(d1.T).T
    return torch.cat([mfcc, d1, d2], dim=1)


def kmeans_labels(feats: List[torch.Tensor], k: int, iters: int = 20) -> List[torch.Tensor]:
    """Plain Lloyd k-means on standardized frames; returns one (T_i,) label tensor per utterance."""
    data = torch.cat(feats)
    mean, std = data.mean(0), data.std(0) + 1e-5
    data = (data - mean) / std
    gen = torch.Generator().manual_seed(0)
    centers = data[torch.randperm(len(data), generator=gen)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(data, centers).argmin(1)
        for c in range(k):
            if (assign == c).any():
                centers[c] = data[assign == c].mean(0)
    labels = torch.cdist(data, centers).argmin(1)
    return list(labels.split([len(f) for f in feats]))


def pad_targets(labels: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
    lens = torch.tensor([len(x) for x in labels])
    targets = torch.full((len(labels), int(lens.max())), -100, dtype=torch.long)
    for i, x in enumerate(labels):
        targets[i, : len(x)] = x
    return {"targets": targets, "target_lens": lens}
