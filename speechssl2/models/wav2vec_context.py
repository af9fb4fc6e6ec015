"""The wav2vec (2019) context network: a stack of causal convs over the encoder frames.

Each layer is left-zero-padded Conv1d (kernel k, stride 1) -> dropout -> GroupNorm with one
group (statistics over channels and *valid* frames, like the encoder's) -> ReLU, so frame
t sees frames t-k+1 .. t only. BASE (Schneider et al. 2019, Sec. 2): 9 layers, kernel 3,
512 channels, receptive field 19 frames (210 ms with the 30 ms / 10 ms encoder). LARGE:
12 layers with kernels 2, 3, ..., 13 (79 frames, 810 ms) and skip connections: every layer
adds its input and scales the sum by sqrt(residual_scale) (fairseq's ``--residual-scale
0.5``, which it applies as a square root so that the variance of the sum stays put).

Causal convs never look right, so padding at the end of an utterance cannot reach a
valid frame; the norm skips padding and padding frames are zeroed after every layer.
The convs are causal, the network is not quite: as in the paper's model (fairseq's
``Fp32GroupNorm(1, C)``), each GroupNorm takes its statistics over the whole utterance,
future frames included.

The wav2vec upstream presets live here, beside the network they configure. Like every
upstream, the encoder frames pass through the shared LayerNorm + Linear feature
projection before the context network (the paper feeds z straight in); ``features`` in
the upstream output, the objective's targets z, are the LayerNorm-ed encoder frames.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.interfaces import EncoderOutput
from speechssl2.models.functional import masked_group_norm, padding_mask
from speechssl2.registry import ENCODERS, PRESETS


class CausalConvLayer(nn.Module):
    """ZeroPad(k - 1, 0) -> Conv1d(k) -> dropout -> GroupNorm(1 group, valid frames) -> ReLU."""

    def __init__(self, channels: int, kernel: int, dropout: float, conv_bias: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(channels, channels, kernel, bias=conv_bias)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """x (B, C, T), valid (B, T) bool -> (B, C, T); output frame t depends on input frames <= t."""
        y = self.drop(self.conv(F.pad(x, (self.kernel - 1, 0))))  # (B, C, T)
        y = masked_group_norm(y, valid, 1, self.norm.weight, self.norm.bias, self.norm.eps)
        return F.relu(y)


@ENCODERS.register("wav2vec_context")
class Wav2VecContextNetwork(nn.Module):
    """(B, T, D) encoder frames -> EncoderOutput; hidden_states = [input, layer 1, ..., layer N].

    kernels: one causal layer per entry (BASE ``[3] * 9``, LARGE ``[2, ..., 13]``).
    skip_connections: x <- (layer(x) + x) * sqrt(residual_scale) after every layer (LARGE).
    """

    def __init__(
        self,
        embed_dim: int = 512,
        kernels: List[int] = [3] * 9,
        skip_connections: bool = False,
        residual_scale: float = 0.5,
        dropout: float = 0.0,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        if not kernels or min(kernels) < 1:
            raise ValueError(f"wav2vec_context: kernels must be a non-empty list of sizes >= 1, got {kernels}")
        if residual_scale <= 0:
            raise ValueError(f"wav2vec_context: residual_scale must be > 0, got {residual_scale}")
        self.embed_dim = embed_dim
        self.skip_connections = skip_connections
        self.residual_gain = math.sqrt(residual_scale)
        self.layers = nn.ModuleList(CausalConvLayer(embed_dim, k, dropout, conv_bias) for k in kernels)
        self.receptive_field = 1 + sum(k - 1 for k in kernels)  # frames seen by one output frame

    def forward(self, x: Tensor, lengths: Tensor) -> EncoderOutput:
        pad = padding_mask(lengths, x.shape[1])  # (B, T)
        valid = ~pad
        x = x.masked_fill(pad[..., None], 0.0)
        hidden: List[Tensor] = [x]
        h = x.transpose(1, 2)  # (B, D, T)
        for layer in self.layers:
            y = layer(h, valid)
            if self.skip_connections:
                y = (y + h) * self.residual_gain
            h = y.masked_fill(pad[:, None, :], 0.0)
            hidden.append(h.transpose(1, 2))
        return EncoderOutput(x=hidden[-1], lengths=lengths, hidden_states=hidden)


def _preset(frontend: Dict[str, Any], channels: int, kernels: List[int], skip: bool) -> Dict[str, Any]:
    context = {"name": "wav2vec_context", "embed_dim": channels, "kernels": kernels, "skip_connections": skip,
               "residual_scale": 0.5}
    return {"frontend": frontend, "encoder": context, "normalize_waveform": False, "feature_dropout": 0.0}


@PRESETS.register("wav2vec_base")
def wav2vec_base() -> Dict[str, Any]:
    """wav2vec (2019): 5-conv encoder (30 ms field, 10 ms hop), 9 causal context convs of kernel 3 (210 ms)."""
    return _preset({"name": "wav2vec"}, 512, [3] * 9, skip=False)


@PRESETS.register("wav2vec_large")
def wav2vec_large() -> Dict[str, Any]:
    """wav2vec large: two extra linear layers (1x1 convs) in the encoder, 12 context convs of kernels
    2..13 with skip connections (810 ms), as fairseq's wav2vec large recipe."""
    frontend = {"name": "conv", "channels": [512] * 7, "kernels": [10, 8, 4, 4, 4, 1, 1],
                "strides": [5, 4, 2, 2, 2, 1, 1], "norm_mode": "utterance_norm", "conv_bias": False,
                "activation": "relu"}
    return _preset(frontend, 512, list(range(2, 14)), skip=True)


@PRESETS.register("wav2vec_small")
def wav2vec_small() -> Dict[str, Any]:
    """CPU pre-training size: a 256-channel encoder, 9 causal context convs of 384 channels, kernel 3 (210 ms)."""
    return _preset({"name": "wav2vec", "channels": 256}, 384, [3] * 9, skip=False)


@PRESETS.register("wav2vec_tiny")
def wav2vec_tiny() -> Dict[str, Any]:
    """CPU-test size: 64 channels, 4 context layers of kernel 3 (9 frames, 110 ms)."""
    return _preset({"name": "wav2vec", "channels": 64}, 64, [3] * 4, skip=False)
