"""Batches as fairseq pre-training forms them: random crops instead of padding, short utterances left out.

fairseq's pre-training datasets with padding off (wav2vec 2.0 ``RawAudioDataset.collater``,
fairseq/data/audio/raw_audio_dataset.py:L118-L146; HuBERT ``HubertDataset``,
fairseq/data/audio/hubert_dataset.py, ``pad_audio: false``; @3d262bb) crop every utterance of a
batch to a random window of ``min(shortest, max_sample_size)`` samples, so a batch holds no
padding; utterances shorter than ``min_sample_size`` are skipped when the manifest is read
(raw_audio_dataset.py:L264-L281). With ``to_shortest: false`` (fairseq's ``pad``) only
utterances longer than ``max_sample_size`` are cropped and the rest padded.

HuBERT's frame targets are cropped with their audio as ``collater_frm_label`` does: the
window starts at frame ``round(start * label_rate / sample_rate)`` and keeps
``round(size * label_rate / sample_rate)`` frames, fewer where an utterance's labels end
first (then the same number for the whole batch when cropping to the shortest).

``BatchCrop`` is a batch transform (``speechssl2.data.dataset``); ``keep_long_enough``
filters a cut set lazily and counts what it leaves out. The window starts come from torch's
global generator, which PyTorch seeds per data-loader worker and epoch (and the trainer
seeds and checkpoints in the main process).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Set, Tuple

import torch
from lhotse import CutSet
from lhotse.cut import Cut
from torch import Tensor

from speechssl2.data.collate import IGNORE_INDEX, pad
from speechssl2.registry import check_arguments

Batch = Dict[str, Any]
logger = logging.getLogger(__name__)


def window_starts(lengths: Tensor, sizes: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """(B,) lengths, (B,) window sizes <= lengths -> (B,) starts uniform in [0, length - size]."""
    room = lengths - sizes + 1  # (B,) number of possible starts
    draws = torch.rand(lengths.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((draws * room).long(), room - 1)


class ShortCutFilter:
    """Cut predicate: keep cuts of at least ``min_samples`` samples at ``sample_rate``; remembers what it dropped."""

    def __init__(self, min_samples: int, sample_rate: int) -> None:
        self.min_samples, self.sample_rate = min_samples, sample_rate
        self.dropped: Set[str] = set()  # ids, so a second pass (next epoch) counts nothing twice

    def __call__(self, cut: Cut) -> bool:
        samples = round(cut.duration * self.sample_rate)
        if samples >= self.min_samples:
            return True
        if cut.id not in self.dropped:
            self.dropped.add(cut.id)
            count = len(self.dropped)
            log = logger.info if count & (count - 1) == 0 else logger.debug  # 1, 2, 4, 8, ... at INFO
            log("crop: left out %d utterance(s) shorter than min_sample_size %d, the latest %s (%d samples)",
                count, self.min_samples, cut.id, samples)
        return False


class BatchCrop:
    """``BatchCrop(max_sample_size=250000, min_sample_size=32000)(batch) -> batch`` cropped as fairseq."""

    def __init__(self, max_sample_size: Optional[int] = None, min_sample_size: int = 0, to_shortest: bool = True,
                 label_rate: float = 50.0, sample_rate: int = 16000) -> None:
        if max_sample_size is not None and max_sample_size < 1:
            raise ValueError(f"crop: max_sample_size must be >= 1 or null, got {max_sample_size}")
        if min_sample_size < 0 or not label_rate > 0 or sample_rate < 1:
            raise ValueError(f"crop: need min_sample_size >= 0, label_rate > 0, sample_rate >= 1, got "
                             f"{min_sample_size}, {label_rate}, {sample_rate}")
        if not to_shortest and max_sample_size is None:
            raise ValueError("crop: to_shortest: false crops only to max_sample_size, which is not set")
        self.max_sample_size, self.min_sample_size = max_sample_size, min_sample_size
        self.to_shortest, self.label_rate, self.sample_rate = to_shortest, label_rate, sample_rate
        self.short = ShortCutFilter(min_sample_size, sample_rate)

    @classmethod
    def from_config(cls, config: Dict[str, Any], sample_rate: int) -> "BatchCrop":
        """From ``data.crop``, e.g. ``{"max_sample_size": 250000, "min_sample_size": 32000}``, validated."""
        if "sample_rate" in config:
            raise ValueError("data.crop: the crop works at data.sample_rate; drop crop.sample_rate")
        check_arguments(cls, {**config, "sample_rate": sample_rate}, where="data.crop")
        return cls(**config, sample_rate=sample_rate)

    def keep_long_enough(self, cuts: CutSet) -> CutSet:
        """The cuts of at least ``min_sample_size`` samples, filtered lazily; ``self.short.dropped`` counts the rest."""
        return cuts.filter(self.short) if self.min_sample_size > 0 else cuts

    def __call__(self, batch: Batch, generator: Optional[torch.Generator] = None) -> Batch:
        audio, lengths = batch["audio"], batch["audio_lens"]
        if audio.dim() != 2:
            raise ValueError(f"crop needs waveforms (B, S), got audio of shape {tuple(audio.shape)} "
                             "(data.crop works on features: wave only)")
        cap = int(lengths.min()) if self.to_shortest else int(lengths.max())
        if self.max_sample_size is not None:
            cap = min(cap, self.max_sample_size)
        sizes = lengths.clamp(max=cap)  # (B,)
        starts = window_starts(lengths, sizes, generator)
        rows = [audio[i, s: s + n] for i, (s, n) in enumerate(zip(starts.tolist(), sizes.tolist()))]
        out = dict(batch)
        out["audio"], out["audio_lens"], out["padding_mask"] = pad(rows, 0.0)
        if "targets" in batch:
            out["targets"], out["target_lens"] = self.crop_labels(batch["targets"], batch["target_lens"], starts, sizes)
        return out

    def crop_labels(self, targets: Tensor, target_lens: Tensor, starts: Tensor,
                    sizes: Tensor) -> Tuple[Tensor, Tensor]:
        """Frame targets (B, L) of the windows (``collater_frm_label``): -> (B, L') padded with -100, (B,)."""
        rate = self.label_rate / self.sample_rate  # frames per sample
        first = torch.round(starts.double() * rate).long()  # (B,)
        count = torch.minimum(torch.round(sizes.double() * rate).long(), (target_lens - first).clamp(min=0))
        if self.to_shortest:
            count = count.clamp(max=int(count.min()))
        rows = [targets[i, f: f + n] for i, (f, n) in enumerate(zip(first.tolist(), count.tolist()))]
        cropped, lens, _ = pad(rows, IGNORE_INDEX)
        return cropped, lens
