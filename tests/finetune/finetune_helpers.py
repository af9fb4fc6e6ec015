"""Test helpers: loader-style FSDD batches and tiny fine-tuning model specs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

import soundfile as sf
import torch
import torchaudio.functional as AF

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_LETTERS = "".join(sorted(set("".join(DIGITS))))
CHARS = {"name": "char", "letters": DIGIT_LETTERS}
NO_MASKS = {"time_mask": [0.0, 10], "channel_mask": [0.0, 64]}


def fsdd_batch(fsdd_dir: Path, names: Sequence[str]) -> Dict[str, Any]:
    """A batch shaped like the data loader's (resampled 8 -> 16 kHz); text = the digit word."""
    waves = []
    for name in names:
        wav, sr = sf.read(fsdd_dir / f"{name}.wav", dtype="float32")
        waves.append(AF.resample(torch.from_numpy(wav), sr, 16000))
    lens = torch.tensor([len(w) for w in waves])
    audio = torch.zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        audio[i, : len(w)] = w
    return {
        "audio": audio, "audio_lens": lens, "padding_mask": torch.arange(audio.shape[1])[None] >= lens[:, None],
        "ids": list(names), "text": [DIGITS[int(n.split("_")[0])] for n in names], "sample_rate": 16000,
    }


def overfit(model: torch.nn.Module, batch: Dict[str, Any], steps: int, lr: float = 3e-3) -> list:
    """Adam on one batch; returns the loss per step."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    model.eval()
    return losses
