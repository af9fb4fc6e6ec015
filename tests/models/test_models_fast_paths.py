"""The fast paths give the same values and gradients as the plain formulas they replace."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models.functional import _masked_group_norm_sums, masked_group_norm, padding_mask
from speechssl2.models.wavlm import PositionGate, gated_position_mask


def reference_group_norm(x, valid, groups, weight, bias, eps):
    """The masked-sum formula (before the fast path)."""
    b, c, t = x.shape
    xg = x.view(b, groups, c // groups, t)
    m = valid[:, None, None, :].to(x.dtype)
    count = m.sum(dim=(2, 3), keepdim=True) * (c // groups)
    mean = (xg * m).sum(dim=(2, 3), keepdim=True) / count
    var = (((xg - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / count
    y = ((xg - mean) / torch.sqrt(var + eps)).view(b, c, t)
    return y * weight[None, :, None] + bias[None, :, None]


@pytest.mark.parametrize("groups", [1, 2, 8])
@pytest.mark.parametrize("lengths", [[30, 30, 30], [30, 17, 5]])
def test_masked_group_norm_matches_reference_with_gradients(groups, lengths):
    torch.manual_seed(0)
    x = torch.randn(3, 8, 30, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    valid = ~padding_mask(torch.tensor(lengths), 30)
    grad = torch.randn(3, 8, 30, dtype=torch.float64)  # padded outputs get gradient too: still exact
    fast = torch.autograd.grad(masked_group_norm(x, valid, groups, w, b, 1e-5), (x, w, b), grad)
    ref = torch.autograd.grad(reference_group_norm(x, valid, groups, w, b, 1e-5), (x, w, b), grad)
    torch.testing.assert_close(masked_group_norm(x, valid, groups, w, b, 1e-5),
                               reference_group_norm(x, valid, groups, w, b, 1e-5))
    for f, r in zip(fast, ref):
        torch.testing.assert_close(f, r)
    traced = _masked_group_norm_sums(x, valid, groups, w, b, 1e-5, torch.float64)  # the torch.compile path
    torch.testing.assert_close(traced, masked_group_norm(x, valid, groups, w, b, 1e-5))
    assert torch.autograd.gradcheck(lambda xx, ww, bb: masked_group_norm(xx, valid, groups, ww, bb, 1e-5), (x, w, b))


def test_masked_group_norm_rejects_non_prefix_masks():
    valid = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="prefix"):
        masked_group_norm(torch.randn(1, 2, 3), valid, 2, torch.ones(2), torch.zeros(2), 1e-5)


def test_gated_position_mask_is_exactly_gate_times_bias_with_padding():
    torch.manual_seed(0)
    gate_net = PositionGate(num_heads=4, head_dim=8)
    x = torch.randn(2, 6, 32, requires_grad=True)
    bias = torch.randn(4, 6, 6, requires_grad=True)
    pad = padding_mask(torch.tensor([6, 4]), 6)
    fast = gated_position_mask(gate_net(x), bias, pad)
    ref = (gate_net(x) * bias[None]).masked_fill(pad[:, None, None, :], float("-inf"))
    assert torch.equal(fast, ref)
    grad = torch.randn_like(ref).masked_fill(pad[:, None, None, :], 0.0)
    for f, r in zip(torch.autograd.grad(fast, (x, bias), grad), torch.autograd.grad(ref, (x, bias), grad)):
        torch.testing.assert_close(f, r)
