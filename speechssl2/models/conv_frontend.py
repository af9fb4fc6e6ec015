"""Raw-waveform convolutional feature encoder (wav2vec 2.0 / HuBERT / WavLM, and wav2vec 2019).

Each block is conv -> norm -> activation. Norm modes, as in the released models:
``group_norm`` (per-channel GroupNorm on the first block only, BASE models),
``layer_norm`` (LayerNorm over channels in every block, LARGE models) and
``utterance_norm`` (GroupNorm with one group in every block, wav2vec 2019).
Group statistics are taken over valid samples only, so padding never changes a frame.
On CPU a padded batch is convolved one utterance at a time at its own length when the
padding it saves outweighs the extra calls (``speechssl2.models.unpadded``).

Conv weights: ``kaiming_normal_`` (He, fan_in) in the ``group_norm`` and ``layer_norm``
modes, as in fairseq's wav2vec 2.0 ``ConvFeatureExtractionModel`` (HuBERT and WavLM reuse
it); PyTorch's default init in the ``utterance_norm`` mode, as in fairseq's wav2vec
(2019) one, where every block is normalised anyway. ``log_compression`` maps the output
to log(|x| + 1), fairseq wav2vec's ``--log-compression`` (fairseq/models/wav2vec/wav2vec.py:L413-416
@3d262bb), on in the released wav2vec large command. The default init has a gain of about
1/sqrt(3) per layer: over the six un-normalised blocks of the ``group_norm`` mode the
features shrank ~1000x (std ~3e-4 on the 64-channel tiny frontend), below the feature
LayerNorm's eps (1e-5 on the variance), so the projected features carried almost no
content and wav2vec 2.0's contrastive loss sat at ln(K + 1) on real audio.
"""
from __future__ import annotations

import math
from typing import List, Literal, Optional, Tuple

import torch
from torch import Tensor, nn

from speechssl2.models.functional import conv_output_lengths, masked_group_norm, padding_mask, receptive_field
from speechssl2.models.unpadded import pad_stack, split_by_utterance
from speechssl2.registry import FRONTENDS

NormMode = Literal["group_norm", "layer_norm", "utterance_norm"]
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class ConvBlock(nn.Module):
    """Conv1d -> optional norm -> activation; the norm sees which frames are padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, norm: str, bias: bool,
                 activation: str, kaiming_init: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        if kaiming_init:  # fairseq wav2vec 2.0's init; keeps the feature scale ~1 (module doc)
            nn.init.kaiming_normal_(self.conv.weight)
        self.norm_kind = norm  # "group" (per channel), "single" (one group), "layer" or "none"
        self.norm = None if norm == "none" else (nn.LayerNorm(c_out) if norm == "layer" else nn.GroupNorm(
            c_out if norm == "group" else 1, c_out))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: Tensor, valid: Optional[Tensor]) -> Tensor:
        """x (B, C_in, S), valid (B, T_out) bool or None (no padding) -> (B, C_out, T_out)."""
        x = self.conv(x)  # (B, C, T)
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        elif isinstance(self.norm, nn.GroupNorm):
            x = masked_group_norm(x, valid, self.norm.num_groups, self.norm.weight, self.norm.bias, self.norm.eps)
        return self.act(x)


@FRONTENDS.register("conv")
class ConvFrontend(nn.Module):
    """Stack of strided convs on the raw waveform: (B, S) samples -> (B, T, C) frames."""

    def __init__(
        self,
        channels: List[int] = [512] * 7,
        kernels: List[int] = [10, 3, 3, 3, 3, 2, 2],
        strides: List[int] = [5, 2, 2, 2, 2, 2, 2],
        norm_mode: NormMode = "group_norm",
        conv_bias: bool = False,
        activation: Literal["gelu", "relu"] = "gelu",
        log_compression: bool = False,
    ) -> None:
        super().__init__()
        if not (len(channels) == len(kernels) == len(strides)) or not channels:
            raise ValueError(
                f"conv frontend: channels, kernels and strides must be non-empty and equally long, got "
                f"{len(channels)}, {len(kernels)}, {len(strides)}"
            )
        self.kernels, self.strides = list(kernels), list(strides)
        blocks = []
        for i, (c_out, k, s) in enumerate(zip(channels, kernels, strides)):
            norm = {"layer_norm": "layer", "utterance_norm": "single"}.get(norm_mode, "group" if i == 0 else "none")
            blocks.append(ConvBlock(channels[i - 1] if i else 1, c_out, k, s, norm, conv_bias, activation,
                                    kaiming_init=norm_mode != "utterance_norm"))
        self.blocks = nn.ModuleList(blocks)
        self.output_dim = channels[-1]
        self.min_samples = receptive_field(kernels, strides)
        self.log_compression = log_compression

    @property
    def field_frames(self) -> int:
        """ceil(receptive field / hop): how many frames one frame's input samples span (fairseq wav2vec's offset 'auto')."""
        return -(-self.min_samples // math.prod(self.strides))

    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        """(B,) samples -> (B,) frames; frames that would need samples past the end are dropped."""
        return conv_output_lengths(sample_lengths, self.kernels, self.strides)

    def forward(self, wav: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """wav (B, S), lengths (B,) -> features (B, T, C), frame lengths (B,); padded frames are 0 on CPU."""
        frames = self.frame_lengths(lengths)
        total = int(self.frame_lengths(torch.tensor([wav.shape[1]]))[0])
        if not split_by_utterance(wav, frames, total, self.output_dim):
            return self.convolve(wav, lengths)
        rows = [self.convolve(wav[i : i + 1, :n], None)[0] for i, n in enumerate(lengths.tolist())]
        return pad_stack(rows, total), frames

    def convolve(self, wav: Tensor, lengths: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """The padded batch as it is: wav (B, S), lengths (B,) or None (no padding) -> (B, T, C), (B,)."""
        x = wav[:, None, :]  # (B, 1, S)
        cur = lengths if lengths is not None else torch.full((wav.shape[0],), wav.shape[1], device=wav.device)
        for block, k, s in zip(self.blocks, self.kernels, self.strides):
            cur = conv_output_lengths(cur, [k], [s])
            t_out = (x.shape[-1] - k) // s + 1
            x = block(x, None if lengths is None else ~padding_mask(cur, t_out))
        if self.log_compression:
            x = torch.log1p(x.abs())  # 0 stays 0: padding is untouched
        return x.transpose(1, 2), cur
