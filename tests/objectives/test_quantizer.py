"""Gumbel product quantizer: straight-through gradients, temperature schedule, diversity bounds."""
import math

import pytest
import torch

from speechssl2.quantizers.gumbel import (
    GumbelQuantizer,
    diversity_loss,
    perplexity,
    sample_gumbels,
    straight_through_gumbel,
)
from speechssl2.registry import QUANTIZERS


def test_straight_through_hard_forward_soft_backward():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, 5, generator=gen, requires_grad=True)
    gumbels = sample_gumbels(logits.shape, logits.device, gen)
    weights = torch.randn(6, 2, 5, generator=gen)
    out = straight_through_gumbel(logits, 0.7, gumbels)
    # forward: exactly one-hot at argmax(logits + noise)
    assert torch.equal(out.detach().sum(-1), torch.ones(6, 2))
    assert torch.equal(out.detach().argmax(-1), (logits + gumbels).argmax(-1))
    assert set(out.detach().unique().tolist()) == {0.0, 1.0}
    (out * weights).sum().backward()
    # backward: the gradient of the soft Gumbel-softmax
    ref_logits = logits.detach().clone().requires_grad_(True)
    (torch.softmax((ref_logits + gumbels) / 0.7, -1) * weights).sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad)
    assert logits.grad.abs().sum() > 0


def test_temperature_schedule():
    quant = GumbelQuantizer(8, codebook_dim=4, num_groups=2, num_vars=3)
    assert quant.temperature == 2.0
    quant.set_num_updates(1000)
    assert quant.temperature == pytest.approx(2.0 * 0.999995**1000, rel=1e-9)
    floor_at = math.log(0.5 / 2.0) / math.log(0.999995)  # ~277k updates for BASE
    quant.set_num_updates(int(floor_at) - 1000)
    assert quant.temperature > 0.5
    quant.set_num_updates(int(floor_at) + 1)
    assert quant.temperature == 0.5
    quant.set_num_updates(10**7)
    assert quant.temperature == 0.5


def test_quantizer_outputs_codebook_entries_and_gradients_flow():
    torch.manual_seed(0)
    quant = QUANTIZERS.build({"name": "gumbel", "codebook_dim": 6, "num_groups": 2, "num_vars": 4}, input_dim=5)
    x = torch.randn(10, 5)
    quant.train()
    out = quant(x)
    assert out.q.shape == (10, 6) and out.codes.shape == (10, 2)
    for g in range(2):  # every output slice is exactly the chosen codebook entry
        torch.testing.assert_close(out.q[:, 3 * g : 3 * g + 3], quant.codebooks[g, out.codes[:, g]])
    out.q.pow(2).sum().backward()
    assert quant.weight_proj.weight.grad.abs().sum() > 0  # straight-through reaches the logits
    assert quant.codebooks.grad.abs().sum() > 0
    quant.eval()
    a, b = quant(x), quant(x)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.codes, quant.weight_proj(x).view(10, 2, 4).argmax(-1))


def test_diversity_loss_bounds():
    groups, vars_ = 2, 8
    uniform = torch.full((50, groups, vars_), 1.0 / vars_)
    assert diversity_loss(perplexity(uniform), groups * vars_).item() == pytest.approx(0.0, abs=1e-5)
    collapsed = torch.zeros(50, groups, vars_)
    collapsed[:, :, 3] = 1.0
    expected_max = (groups * vars_ - groups) / (groups * vars_)
    assert diversity_loss(perplexity(collapsed), groups * vars_).item() == pytest.approx(expected_max, abs=1e-5)
    random = torch.softmax(torch.randn(50, groups, vars_) * 3, -1)
    value = diversity_loss(perplexity(random), groups * vars_).item()
    assert 0.0 < value < expected_max


def _diversity_of_softmax(logits, tau=1.0):
    """(GV - sum_g exp(H(mean_n softmax(logits_ng / tau)))) / GV, written out. logits: (N, G, V)."""
    avg = torch.softmax(logits / tau, dim=-1).mean(dim=0)  # (G, V)
    perplexities = torch.exp(-(avg * avg.log()).sum(dim=-1))  # (G,)
    num_vars = logits.shape[1] * logits.shape[2]
    return ((num_vars - perplexities.sum()) / num_vars).item()


def test_quantizer_diversity_from_plain_softmax():
    """prob_perplexity ignores Gumbel noise and temperature: the same diversity at tau 2 and 0.5."""
    torch.manual_seed(0)
    quant = GumbelQuantizer(4, codebook_dim=4, num_groups=2, num_vars=5).train()
    x = torch.randn(7, 4)
    values = []
    for updates, tau in ((0, 2.0), (10**6, 0.5)):
        quant.set_num_updates(updates)
        assert quant.temperature == tau
        out = quant(x)
        values.append(diversity_loss(out.prob_perplexity, out.num_vars).item())
    logits = quant.weight_proj(x).detach().view(7, 2, 5)  # (N, G, V), far from uniform
    assert values[0] == values[1]
    assert values[0] == pytest.approx(_diversity_of_softmax(logits), abs=1e-5)
    assert values[0] > 0.01  # not uniform usage (0.025), so a tempered softmax gives other values
    assert all(abs(_diversity_of_softmax(logits, tau) - values[0]) > 0.01 for tau in (2.0, 0.5))


def test_bad_quantizer_config_raises():
    with pytest.raises(ValueError, match="not divisible"):
        GumbelQuantizer(4, codebook_dim=5, num_groups=2)
    with pytest.raises(ValueError, match="temp_end"):
        GumbelQuantizer(4, temp_start=0.5, temp_end=2.0)
