"""Frame-level features to cluster: 39-dim MFCC (HuBERT iteration 1) or a layer of a model.

Both extractors map a 16 kHz waveform (L,) to (T, D) with ``T = conv_frame_count(L)``,
so clusters of either become labels on the model's own frame grid.

MFCC alignment (documented here because everything downstream relies on it): Kaldi MFCC
with a 25 ms (400-sample) window is computed at a 10 ms (160-sample) hop without edge
padding (``snip_edges``), deltas and delta-deltas are taken at 10 ms (±2 frames, the
usual regression window), then every other frame is kept. Kept frame ``i`` then covers
samples ``[320 i, 320 i + 400)``: exactly the receptive field of conv frame ``i``, and
``ceil((floor((L - 400) / 160) + 1) / 2) = floor((L - 400) / 320) + 1`` frames: exactly
the conv count. Computing at 20 ms directly would give the same frames but stretch the
delta window to ±40 ms.
"""
from __future__ import annotations

from typing import Any, Dict, Protocol

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
from lhotse.cut import Cut
from torch import Tensor, nn

from speechssl2.targets.audio import load_mono
from speechssl2.targets.frames import SAMPLE_RATE, conv_frame_count, receptive_field


class FrameFeatures(Protocol):
    """What the feature dumper needs from an extractor (this module's, or ``ark.ScpFeatures``)."""

    dim: int

    def num_frames(self, num_samples: int) -> int: ...

    def of_cut(self, cut: Cut, sample_rate: int) -> Tensor: ...  # (T, D), T = num_frames

    def describe(self) -> Dict[str, Any]: ...  # settings recorded beside the dump


class WaveformFeatures:
    """Extractors computed from the waveform: ``of_cut`` loads the cut and calls ``self(wav)``."""

    def __call__(self, wav: Tensor) -> Tensor:  # (L,) -> (T, D)
        raise NotImplementedError

    def of_cut(self, cut: Cut, sample_rate: int) -> Tensor:
        return self(load_mono(cut, sample_rate))


class MfccFeatures(WaveformFeatures):
    """13 MFCC + Δ + ΔΔ (39 dims) at the 20 ms model frame rate (see module docstring)."""

    def __init__(self, num_ceps: int = 13, sample_rate: int = SAMPLE_RATE) -> None:
        self.num_ceps = num_ceps
        self.dim = 3 * num_ceps
        self.sample_rate = sample_rate
        self.window, self.hop = receptive_field()
        if self.hop % 2:
            raise ValueError(f"model hop {self.hop} samples is odd: cannot compute MFCC at half the hop")

    def num_frames(self, num_samples: int) -> int:
        return conv_frame_count(num_samples)

    @torch.no_grad()
    def __call__(self, wav: Tensor) -> Tensor:
        """(L,) float waveform at ``sample_rate`` -> (T, 39) float32."""
        if wav.shape[0] < self.window:  # shorter than one model frame
            return wav.new_zeros(0, self.dim, dtype=torch.float32)
        ms_per_sample = 1000.0 / self.sample_rate
        mfcc = kaldi.mfcc(
            wav.float()[None],  # (1, L)
            sample_frequency=self.sample_rate,
            frame_length=self.window * ms_per_sample,
            frame_shift=self.hop / 2 * ms_per_sample,
            num_ceps=self.num_ceps,
            snip_edges=True,
            dither=0.0,
            use_energy=False,
        )  # (T10, 13)
        coeffs = mfcc.T  # (13, T10): compute_deltas works along the last axis
        delta = AF.compute_deltas(coeffs, win_length=5)
        delta2 = AF.compute_deltas(delta, win_length=5)
        feats = torch.cat([coeffs, delta, delta2], dim=0).T  # (T10, 39)
        return feats[::2].contiguous()  # (T, 39), T = conv_frame_count(L)

    def describe(self) -> Dict[str, Any]:
        return {"kind": "mfcc", "num_ceps": self.num_ceps, "sample_rate": self.sample_rate}


class LayerFeatures(WaveformFeatures):
    """``hidden_states[layer]`` of an upstream (``speechssl2.models.Upstream`` or a stand-in).

    The upstream needs ``forward(wav (B, S), lengths (B,)) -> UpstreamOutput`` and
    ``frame_lengths(samples (B,)) -> frames (B,)``.

    Index 0 is the projected conv features, index ``n`` the output of Transformer layer
    ``n`` (HF convention), so HuBERT iteration 2 uses ``layer=6`` of the iteration-1 model.
    """

    def __init__(self, upstream: nn.Module, layer: int, source: str = "", device: str = "cpu") -> None:
        """``source`` names the model (e.g. its checkpoint path) in the dump's settings."""
        self.upstream = upstream.to(device).eval()
        self.layer = layer
        self.source = source
        self.device = device
        probe = torch.randn(SAMPLE_RATE, generator=torch.Generator().manual_seed(0))  # 1 s of noise
        self.dim = int(self(probe).shape[-1])

    def num_frames(self, num_samples: int) -> int:
        return int(self.upstream.frame_lengths(torch.tensor([num_samples]))[0])

    @torch.no_grad()
    def __call__(self, wav: Tensor) -> Tensor:
        """(L,) float waveform -> (T, D) float32 on the CPU."""
        lengths = torch.tensor([wav.shape[0]], device=self.device)
        out = self.upstream(wav.float()[None].to(self.device), lengths)
        num_layers = len(out.hidden_states)
        if not 0 <= self.layer < num_layers:
            raise ValueError(
                f"layer {self.layer} does not exist: the upstream returns {num_layers} hidden states "
                f"(0 = projected features, 1..{num_layers - 1} = Transformer layers)"
            )
        return out.hidden_states[self.layer][0, : int(out.lengths[0])].float().cpu()  # (T, D)

    def describe(self) -> Dict[str, Any]:
        return {"kind": "layer", "layer": self.layer, "dim": self.dim, "source": self.source}
