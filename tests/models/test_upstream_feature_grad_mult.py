"""``feature_grad_mult`` scales the frontend's gradient exactly and changes nothing else (fairseq GradMultiply)."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models.upstream import build_upstream


def _grads(mult):
    torch.manual_seed(0)
    upstream = build_upstream({"name": "wav2vec2_tiny", "feature_grad_mult": mult}).eval()  # eval: no dropout
    gen = torch.Generator().manual_seed(1)
    wav = torch.randn(2, 4000, generator=gen)
    lengths = torch.tensor([4000, 3000])
    time_mask = torch.zeros(2, 12, dtype=torch.bool)
    time_mask[:, 3:7] = True
    out = upstream(wav, lengths, time_mask=time_mask)
    loss = out.hidden_states[-1].pow(2).mean() + out.features.sum() * 0.01 + 10 * out.features_pen
    loss.backward()
    grads = {name: (p.grad.clone() if p.grad is not None else None) for name, p in upstream.named_parameters()}
    return out, grads


@pytest.mark.parametrize("mult", [0.1, 0.5])
def test_frontend_gradient_is_scaled_exactly(mult):
    """0.5 (a power of two) commutes with every float op: bitwise equal; 0.1 up to float rounding."""
    out1, ref = _grads(1.0)
    out, grads = _grads(mult)
    torch.testing.assert_close(out.hidden_states[-1], out1.hidden_states[-1], rtol=0, atol=0)  # forward unchanged
    torch.testing.assert_close(out.features_pen, out1.features_pen, rtol=0, atol=0)
    frontend = [name for name in ref if name.startswith("frontend.")]
    assert frontend and len(frontend) < len(ref)
    for name, grad in grads.items():
        expected = ref[name] * mult if name.startswith("frontend.") else ref[name]
        if mult == 0.5:
            assert torch.equal(grad, expected), name
        else:
            torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6 * expected.abs().max().item())


def test_zero_freezes_the_frontend():
    _, ref = _grads(1.0)
    _, grads = _grads(0.0)
    for name, grad in grads.items():
        if name.startswith("frontend."):
            assert grad is None
        else:
            torch.testing.assert_close(grad, ref[name], rtol=1e-5, atol=1e-9)


def test_default_is_one_and_negative_is_rejected():
    assert build_upstream({"name": "wav2vec2_tiny"}).feature_grad_mult == 1.0
    with pytest.raises(ValueError, match="feature_grad_mult must be >= 0"):
        build_upstream({"name": "wav2vec2_tiny", "feature_grad_mult": -0.1})
