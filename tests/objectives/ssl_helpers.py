"""Real-audio fixtures for the objective tests: a fixed FSDD subset at 16 kHz, padded batches and targets."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import soundfile as sf
import torch
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


def pad_targets(labels: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
    lens = torch.tensor([len(x) for x in labels])
    targets = torch.full((len(labels), int(lens.max())), -100, dtype=torch.long)
    for i, x in enumerate(labels):
        targets[i, : len(x)] = x
    return {"targets": targets, "target_lens": lens}
