"""Log-mel filterbank + 2-D conv subsampling: the w2v-BERT frontend.

80 log-mel bins every 10 ms (25 ms windows, no centring so frame counts follow the
conv length formula), then two Conv2d(3x3, stride 2) + ReLU: 40 ms frames. The
upstream's feature projection is the "Linear to D" that follows.

``normalize: true`` standardizes every log-mel bin over the utterance's valid frames
(per-utterance CMVN, padding-aware); the w2v-BERT presets turn it on. Raw log-mels share a
large offset (mean about -6), so without it the subsampled frames are nearly parallel (a
fresh w2v_bert_tiny on FSDD: 88 % of their energy in the batch mean) and a fresh Gumbel
quantizer maps almost all of them to two or three codes, from which w2v-BERT training
collapses to one. It plays the role of the group norm in the wav2vec 2.0 conv frontend.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torchaudio
from torch import Tensor, nn

from speechssl2.models.functional import conv_output_lengths, padding_mask, receptive_field
from speechssl2.registry import FRONTENDS


@FRONTENDS.register("fbank")
class FbankFrontend(nn.Module):
    """(B, S) samples -> (B, T, channels * F') subsampled log-mel frames."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80, channels: int = 128,
                 win_ms: float = 25.0, hop_ms: float = 10.0, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize
        self.win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.win, win_length=self.win, hop_length=self.hop,
            n_mels=n_mels, center=False, power=2.0,
        )
        self.subsample = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2), nn.ReLU(), nn.Conv2d(channels, channels, 3, stride=2), nn.ReLU()
        )
        freq = conv_output_lengths(torch.tensor(n_mels), [3, 3], [2, 2]).item()
        self.output_dim = channels * freq
        self.kernels, self.strides = [self.win, 3, 3], [self.hop, 2, 2]
        self.min_samples = receptive_field(self.kernels, self.strides)

    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        """(B,) samples -> (B,) 40 ms frames."""
        return conv_output_lengths(sample_lengths, self.kernels, self.strides)

    def forward(self, wav: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """wav (B, S), lengths (B,) -> features (B, T, C*F'), frame lengths (B,)."""
        with torch.autocast(wav.device.type, enabled=False):
            mel = self.mel(wav.float())  # (B, F, T_mel)
        logmel = torch.log(mel + 1e-6).transpose(1, 2)  # (B, T_mel, F)
        if self.normalize:
            logmel = utterance_cmvn(logmel, conv_output_lengths(lengths, [self.win], [self.hop]))
        x = self.subsample(logmel[:, None])  # (B, C, T, F')
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f), self.frame_lengths(lengths)


def utterance_cmvn(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per utterance and channel over the valid frames; padding set to 0.

    x: (B, T, F); lengths: (B,) valid frames.
    """
    valid = (~padding_mask(lengths, x.shape[1]))[..., None].to(x.dtype)  # (B, T, 1)
    count = lengths.clamp(min=1)[:, None, None].to(x.dtype)
    mean = (x * valid).sum(dim=1, keepdim=True) / count  # (B, 1, F)
    var = (((x - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + eps) * valid
