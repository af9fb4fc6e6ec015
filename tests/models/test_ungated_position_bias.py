"""Ungated relative position bias (ILS-SSL BASE): the bucketed bias added to every layer's scores as it is."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models.io.hf import CheckpointError, family
from speechssl2.models.transformer import TransformerEncoder

SIZES = dict(embed_dim=32, num_layers=2, num_heads=4, ffn_dim=64, pos_conv_kernel=8, pos_conv_groups=4,
             dropout=0.0, attention_dropout=0.0, num_buckets=16, max_distance=40)


def _encoders():
    torch.manual_seed(0)
    ungated = TransformerEncoder(**SIZES, gated_position=False).eval()
    gated = TransformerEncoder(**SIZES).eval()
    missing, unexpected = gated.load_state_dict(ungated.state_dict(), strict=False)
    assert not unexpected and missing and all(".gate." in key for key in missing)
    return ungated, gated


def test_ungated_encoder_has_the_bias_but_no_gate():
    ungated, _ = _encoders()
    assert ungated.rel_bias is not None and all(layer.gate is None for layer in ungated.layers)


def test_ungated_equals_the_gated_layer_with_a_unit_gate():
    """WavLM's gate a * (b * s - 1) + 2 is exactly 1 for a = b = sigmoid(0) = 0.5 and s = -2."""
    ungated, gated = _encoders()
    for layer in gated.layers:
        torch.nn.init.zeros_(layer.gate.linear.weight)
        torch.nn.init.zeros_(layer.gate.linear.bias)
        layer.gate.scale.data.fill_(-2.0)
    x, lengths = torch.randn(3, 50, 32), torch.tensor([50, 37, 12])
    with torch.no_grad():
        torch.testing.assert_close(ungated(x, lengths).x, gated(x, lengths).x)
        ungated.rel_bias.embedding.weight.mul_(3.0)  # the bias is used: changing it changes the output
        assert not torch.allclose(ungated(x, lengths).x, gated(x, lengths).x)


def test_ungated_is_padding_invariant():
    ungated, _ = _encoders()
    x, lengths = torch.randn(2, 40, 32), torch.tensor([40, 23])
    with torch.no_grad():
        batch = ungated(x, lengths).x[1, :23]
        alone = ungated(x[1:, :23], lengths[1:]).x[0]
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-5)


def test_hf_export_refuses_an_ungated_bias():
    spec = {"name": "hubert_base", "frontend": {"name": "conv"},
            "encoder": {"name": "transformer", "num_buckets": 320, "gated_position": False}}
    with pytest.raises(CheckpointError, match="ungated"):
        family(spec)
