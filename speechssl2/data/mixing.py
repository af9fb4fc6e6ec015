"""WavLM masked speech denoising: utterance mixing and noise, as a batch transform.

For each utterance, with probability ``prob``, an interfering segment is added at a
random position of the primary: a piece of another utterance of the batch or (with
probability ``noise_prob``, when a noise folder is given) a noise clip. The segment
covers at most ``max_overlap`` (50 %) of the primary and is scaled so that the
primary-to-interference energy ratio, mean power over the primary's valid samples
against mean power over the segment, is uniform in ``snr_db`` ([-5, 5] dB). Lengths,
padding and targets are untouched: the model predicts the primary's content.

Each batch draws from a numpy generator keyed on (``seed``, rank, one draw from torch's
global generator). That draw differs per data-loader worker and per epoch, because
PyTorch seeds each worker's torch generator with a fresh base seed (taken from the main
process's generator at every ``iter(loader)``) plus the worker id; in the main process
(``num_workers=0``) it comes from the generator the trainer seeds and checkpoints. So
workers, epochs and ranks mix differently, yet a run replays exactly from its seeds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf
import torch
import torch.distributed as dist
import torchaudio.functional as AF
from torch import Tensor

from speechssl2.registry import check_arguments

Batch = Dict[str, Any]


class UtteranceMixer:
    """``UtteranceMixer(prob=0.2, noise_dir="../shared/data/noise", noise_prob=0.5)(batch) -> batch``."""

    def __init__(
        self,
        prob: float = 0.2,
        noise_dir: Optional[str] = None,
        noise_prob: float = 0.5,
        snr_db: Tuple[float, float] = (-5.0, 5.0),
        max_overlap: float = 0.5,
        seed: int = 0,
        rank: Optional[int] = None,
    ) -> None:
        if not 0.0 <= prob <= 1.0 or not 0.0 <= noise_prob <= 1.0:
            raise ValueError(f"utterance mixing: prob {prob} and noise_prob {noise_prob} must be in [0, 1]")
        if not 0.0 < max_overlap <= 1.0 or snr_db[0] > snr_db[1]:
            raise ValueError(f"utterance mixing: need 0 < max_overlap <= 1 and snr_db low <= high, got "
                             f"{max_overlap}, {list(snr_db)}")
        self.prob, self.noise_prob, self.max_overlap = prob, noise_prob, max_overlap
        self.snr_db = (float(snr_db[0]), float(snr_db[1]))
        self.noise_files = _list_noise(noise_dir) if noise_dir is not None else []
        self._noise_cache: Dict[Tuple[int, int], Tensor] = {}
        self.seed = seed
        self.rank = rank if rank is not None else _process_rank()  # read before loader workers start

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "UtteranceMixer":
        """From a config dict such as ``{"prob": 0.2, "noise_dir": ..., "snr_db": [-5, 5]}``, validated."""
        check_arguments(cls, config, where="utterance mixing")
        return cls(**config)

    def __call__(self, batch: Batch) -> Batch:
        audio, lengths = batch["audio"], batch["audio_lens"]
        if audio.dim() != 2:
            raise ValueError(f"utterance mixing needs waveforms (B, S), got audio of shape {tuple(audio.shape)}")
        mixed = audio.clone()
        draw = int(torch.randint(2**62, (1,)))  # differs per worker and epoch: see the module docstring
        rng = np.random.default_rng([self.seed, self.rank, draw])
        for i in np.nonzero(rng.random(audio.shape[0]) < self.prob)[0]:
            self._mix_one(rng, mixed, i, audio, lengths, batch)
        return {**batch, "audio": mixed}

    def _mix_one(
        self, rng: np.random.Generator, mixed: Tensor, i: int, audio: Tensor, lengths: Tensor, batch: Batch
    ) -> None:
        """Add one scaled interfering segment to utterance ``i`` of ``mixed`` (B, S), in place."""
        length = int(lengths[i])
        seg_len = int(rng.integers(1, max(int(length * self.max_overlap), 1) + 1))
        use_noise = bool(self.noise_files) and (audio.shape[0] < 2 or rng.random() < self.noise_prob)
        if use_noise:
            segment = self._noise_segment(rng, seg_len, batch)
        elif audio.shape[0] > 1:
            segment = self._utterance_segment(rng, audio, lengths, i, seg_len)
        else:
            return  # a batch of one and no noise folder: nothing to mix in
        start = int(rng.integers(0, length - segment.shape[0] + 1))
        primary = audio[i, :length]
        snr = rng.uniform(*self.snr_db)
        scale = _scale_for_ratio(primary, segment, snr)
        mixed[i, start : start + segment.shape[0]] += scale * segment.to(mixed.dtype)

    def _utterance_segment(
        self, rng: np.random.Generator, audio: Tensor, lengths: Tensor, i: int, seg_len: int
    ) -> Tensor:
        other = int(rng.choice([j for j in range(audio.shape[0]) if j != i]))
        seg_len = min(seg_len, int(lengths[other]))
        offset = int(rng.integers(0, int(lengths[other]) - seg_len + 1))
        return audio[other, offset : offset + seg_len]

    def _noise_segment(self, rng: np.random.Generator, seg_len: int, batch: Batch) -> Tensor:
        if "sample_rate" not in batch:
            raise ValueError("utterance mixing with noise needs batch['sample_rate'] to resample the noise to")
        noise = self._noise(int(rng.integers(len(self.noise_files))), int(batch["sample_rate"]))
        if noise.shape[0] < seg_len:  # loop a short clip
            noise = noise.repeat(seg_len // noise.shape[0] + 1)
        offset = int(rng.integers(0, noise.shape[0] - seg_len + 1))
        return noise[offset : offset + seg_len]

    def _noise(self, index: int, sample_rate: int) -> Tensor:
        """Noise clip ``index`` as mono float at ``sample_rate`` (read once, cached)."""
        key = (index, sample_rate)
        if key not in self._noise_cache:
            path = self.noise_files[index]
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            wave = torch.from_numpy(data.mean(axis=1))
            if wave.numel() == 0 or not torch.isfinite(wave).all() or wave.abs().max() == 0:
                raise ValueError(f"noise file {path} is empty, silent or has non-finite samples")
            self._noise_cache[key] = AF.resample(wave, rate, sample_rate) if rate != sample_rate else wave
        return self._noise_cache[key]


def _scale_for_ratio(primary: Tensor, segment: Tensor, ratio_db: float) -> float:
    """Gain g so that power(primary) / power(g * segment) = 10 ** (ratio_db / 10)."""
    p_primary = primary.double().pow(2).mean()
    p_segment = segment.double().pow(2).mean()
    if p_segment == 0 or p_primary == 0:
        return 0.0  # silent primary or segment: no ratio can be met, so add nothing
    return float(torch.sqrt(p_primary / (p_segment * 10.0 ** (ratio_db / 10.0))))


def _process_rank() -> int:
    """This process's rank in the torch.distributed group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _list_noise(noise_dir: str) -> List[Path]:
    folder = Path(noise_dir)
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"utterance mixing: noise_dir {folder} has no .wav files")
    return files
