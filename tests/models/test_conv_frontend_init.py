"""The conv frontend's init keeps its output at a usable scale (fairseq wav2vec 2.0's kaiming_normal_).

Regression: with PyTorch's default Conv1d init the ``group_norm`` frontend (no norm after
the first block) shrank the features ~1000x (std ~3e-4), below the feature LayerNorm's
eps, and wav2vec 2.0's contrastive loss stayed at ln(K + 1) on real audio.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from speechssl2.models.conv_frontend import ConvFrontend


@pytest.mark.parametrize("norm_mode", ["group_norm", "layer_norm"])
def test_conv_weights_are_kaiming_normal(norm_mode):
    torch.manual_seed(0)
    frontend = ConvFrontend(channels=[128] * 7, norm_mode=norm_mode)
    for block in frontend.blocks:
        weight = block.conv.weight
        fan_in = weight.shape[1] * weight.shape[2]
        expected = math.sqrt(2.0 / fan_in)  # kaiming_normal_ defaults: fan_in, gain sqrt(2)
        assert weight.std().item() == pytest.approx(expected, rel=0.15)
        assert abs(weight.mean().item()) < 0.1 * expected


@pytest.mark.parametrize("norm_mode", ["group_norm", "layer_norm", "utterance_norm"])
@pytest.mark.parametrize("channels", [64, 512])
def test_frontend_output_scale_survives_the_stack(norm_mode, channels):
    """Output std stays O(1) through all 7 blocks, so the feature LayerNorm (eps 1e-5) sees content."""
    torch.manual_seed(0)
    frontend = ConvFrontend(channels=[channels] * 7, norm_mode=norm_mode)
    wav = 0.1 * torch.randn(2, 8000)
    with torch.no_grad():
        raw, _ = frontend(wav, torch.tensor([8000, 8000]))  # (B, T, C)
        normed = F.layer_norm(raw, (channels,))
    assert 0.1 < raw.std().item() < 10.0  # the default init gave ~3e-4 for group_norm
    assert raw.var(dim=-1).min().item() > 100 * 1e-5  # per-frame variance far above LayerNorm's eps
    assert normed.std().item() == pytest.approx(1.0, rel=0.05)


def test_utterance_norm_keeps_the_default_init():
    """wav2vec (2019) mode: fairseq's wav2vec ConvFeatureExtractionModel uses PyTorch's default Conv1d init."""
    torch.manual_seed(0)
    frontend = ConvFrontend(channels=[128] * 7, norm_mode="utterance_norm")
    torch.manual_seed(0)
    for block in frontend.blocks:
        reference = torch.nn.Conv1d(block.conv.in_channels, 128, block.conv.kernel_size[0],
                                    stride=block.conv.stride[0], bias=False)
        assert torch.equal(block.conv.weight, reference.weight)
