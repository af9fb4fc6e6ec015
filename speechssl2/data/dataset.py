"""Map-style dataset whose ``__getitem__`` gets a whole batch of cuts from the sampler.

Batch dict (B utterances, S samples, T fbank frames, L label frames)::

    audio        (B, S) float waveform at sample_rate, or (B, T, 80) log-mel when features="fbank"
    audio_lens   (B,) long, samples (wave) or frames (fbank)
    padding_mask (B, S) or (B, T) bool, True = padding
    ids          list[str]; text list[str] (normalized, "" when unlabeled)
    speakers     list[str | None]; sample_rate int
    targets      (B, L) long padded with -100, target_lens (B,)   [only with label_field]

``batch_transforms`` run in order on the collated dict (e.g. WavLM utterance mixing).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Literal, Sequence

import torch
from lhotse import CutSet

from speechssl2.data.collate import collate_targets, load_labels, load_wave, log_mel, pad
from speechssl2.text import normalize_text

Batch = Dict[str, Any]
FEATURES = ("wave", "fbank")


class CutBatchDataset(torch.utils.data.Dataset):
    """Loads, resamples and pads the audio of a batch of cuts (and their labels)."""

    def __init__(
        self, sample_rate: int = 16000, features: Literal["wave", "fbank"] = "wave",
        label_field: str | None = None, batch_transforms: Sequence[Callable[[Batch], Batch]] = (),
    ) -> None:
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.sample_rate = sample_rate
        self.features = features
        self.label_field = label_field
        self.batch_transforms = list(batch_transforms)

    def __getitem__(self, cuts: CutSet) -> Batch:
        cuts = list(cuts)
        inputs = [load_wave(cut, self.sample_rate) for cut in cuts]  # (S_i,) each
        if self.features == "fbank":
            inputs = [log_mel(w, self.sample_rate) for w in inputs]  # (T_i, 80) each
        audio, lengths, mask = pad(inputs, 0.0)
        batch: Batch = {
            "audio": audio, "audio_lens": lengths, "padding_mask": mask,
            "ids": [cut.id for cut in cuts],
            "text": [_text(cut) for cut in cuts],
            "speakers": [cut.supervisions[0].speaker if cut.supervisions else None for cut in cuts],
            "sample_rate": self.sample_rate,
        }
        if self.label_field is not None:
            batch["targets"], batch["target_lens"] = collate_targets(
                [load_labels(cut, self.label_field) for cut in cuts]
            )
        for transform in self.batch_transforms:
            batch = transform(batch)
        return batch


def _text(cut: Any) -> str:
    return " ".join(normalize_text(s.text) for s in cut.supervisions if s.text)
