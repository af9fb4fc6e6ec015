"""WavLM's FlexAttention path (factored gated bias + padding BlockMask) equals the SDPA path.

On CPU FlexAttention runs its eager reference (it materialises the scores; torch 2.11
raises NotImplementedError for a CPU backward when q, k or v require grad), which uses
the ``mask_mod`` but not the block sparsity: the BlockMask is checked against
``create_block_mask``. The compiled CPU kernel is not tested: inductor's CPU code for it
crashed the test process (segmentation fault) in a full run, and speechssl2 only takes the
flex path on CUDA. Gradients with respect to the layer input need CUDA.
"""
from __future__ import annotations

import copy
import functools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

from speechssl2.models import attention, transformer
from speechssl2.models.attention import SelfAttention, padding_block_mask
from speechssl2.models.functional import padding_mask
from speechssl2.models.transformer import TransformerEncoder
from speechssl2.models.unpadded import padding_mode
from speechssl2.models.wavlm import GatedPositionBias, PositionGate, gated_position_mask

TOL = dict(rtol=1e-5, atol=1e-5)
LENGTHS = [300, 256, 130, 57]  # T = 300, blocks of 128: every full / partial / empty key-block case


@pytest.fixture(autouse=True)
def _no_flex_eager_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        yield


@pytest.fixture
def count_flex(monkeypatch):
    """Counts the FlexAttention calls of ``SelfAttention`` on CPU (so a silent SDPA fallback fails)."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return flex_attention(*args, **kwargs)

    monkeypatch.setattr(attention, "flex_attention", counted)
    return calls


def gated_inputs(lengths, heads=4, head_dim=16, seed=0, dtype=torch.float32):
    """q, k, v (B, H, T, d), a factored gated bias (bias std 2: it matters) and the padding."""
    torch.manual_seed(seed)
    b, t = len(lengths), max(lengths)
    q, k, v = (torch.randn(b, heads, t, head_dim).to(dtype) for _ in range(3))
    x = torch.randn(b, t, heads * head_dim)
    gate = PositionGate(heads, head_dim)(x).detach().to(dtype)  # (B, H, T, 1)
    bias = (torch.randn(heads, t, t) * 2.0).to(dtype)
    return q, k, v, GatedPositionBias(gate, bias, padding_mask(torch.tensor(lengths), t))


def block_maps(mask: BlockMask):
    """Dense (B, 1, Q blocks, KV blocks) 0/1 maps of the partial and the full blocks."""
    full = BlockMask.from_kv_blocks(mask.full_kv_num_blocks, mask.full_kv_indices, BLOCK_SIZE=mask.BLOCK_SIZE)
    partial = BlockMask.from_kv_blocks(mask.kv_num_blocks, mask.kv_indices, BLOCK_SIZE=mask.BLOCK_SIZE)
    return partial.to_dense(), full.to_dense()


@pytest.mark.parametrize("lengths", [[256, 200, 128, 57], LENGTHS, [5, 3]])
def test_padding_block_mask_matches_create_block_mask(lengths):
    t = max(lengths)
    pad = padding_mask(torch.tensor(lengths), t)
    ours = padding_block_mask(pad)
    ref = create_block_mask(lambda b, h, q, kv: ~pad[b, kv], len(lengths), None, t, t, device="cpu")
    assert ours.shape == ref.shape and ours.seq_lengths == (t, t)
    torch.testing.assert_close(ours.to_dense(), ref.to_dense())  # the same blocks visited
    if t % 128 == 0:  # else create_block_mask calls the last query row's blocks partial (rows past T)
        for mine, theirs in zip(block_maps(ours), block_maps(ref)):
            torch.testing.assert_close(mine, theirs)
    batch, zero, keys = torch.arange(len(lengths))[:, None], torch.zeros(()), torch.arange(t)[None]
    assert torch.equal(ours.mask_mod(batch, zero, zero, keys), ~pad)  # partial blocks: key < length


def test_gated_position_mask_selects_factored_or_dense():
    _, _, _, factored = gated_inputs([6, 4])
    args = (factored.gate, factored.bias, factored.pad)
    assert isinstance(gated_position_mask(*args, flex=True), GatedPositionBias)
    assert torch.equal(gated_position_mask(*args), factored.dense())  # CPU default: dense
    assert torch.equal(gated_position_mask(*args, flex=False), factored.dense())


def test_flex_equals_sdpa_with_padding():
    q, k, v, bias = gated_inputs(LENGTHS)
    flex = flex_attention(q, k, v, score_mod=bias.score_mod(), block_mask=padding_block_mask(bias.pad))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.dense())
    torch.testing.assert_close(flex, ref, **TOL)


def test_flex_gradients_wrt_gate_and_bias_equal_sdpa():
    """The captured gate and bias get SDPA's gradients (q, k, v may not require grad on CPU).

    In float64: in float32 both paths' gate gradients (sums over 300 keys) are ~2e-5 off
    their float64 values, so a float32 comparison at 1e-5 would measure rounding.
    """
    q, k, v, bias = gated_inputs(LENGTHS, dtype=torch.float64)
    gate, rel = bias.gate.requires_grad_(), bias.bias.requires_grad_()
    grad = torch.randn_like(q)
    flex = flex_attention(q, k, v, score_mod=bias.score_mod(), block_mask=padding_block_mask(bias.pad))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.dense())
    for f, r in zip(torch.autograd.grad(flex, (gate, rel), grad), torch.autograd.grad(ref, (gate, rel), grad)):
        assert r.abs().max() > 0
        torch.testing.assert_close(f, r, rtol=1e-10, atol=1e-10)


def tiny_wavlm(attention_dropout: float = 0.0, seed: int = 0) -> TransformerEncoder:
    torch.manual_seed(seed)
    return TransformerEncoder(embed_dim=64, num_layers=2, num_heads=4, ffn_dim=128, dropout=0.0,
                              attention_dropout=attention_dropout, pos_conv_kernel=8, pos_conv_groups=4,
                              num_buckets=32, max_distance=100)


def test_wavlm_encoder_flex_equals_sdpa(monkeypatch, count_flex):
    """The padded batch (as on CUDA; on CPU it would otherwise run one utterance at a time)."""
    model = tiny_wavlm().eval()
    torch.manual_seed(1)
    x, lengths = torch.randn(len(LENGTHS), max(LENGTHS), 64), torch.tensor(LENGTHS)
    with torch.no_grad(), padding_mode("padded"):
        ref = model(x, lengths)
        assert not count_flex  # CPU default: SDPA
        monkeypatch.setattr(transformer, "gated_position_mask", functools.partial(gated_position_mask, flex=True))
        out = model(x, lengths)
    assert len(count_flex) == len(model.layers)
    for f, r in zip(out.hidden_states, ref.hidden_states):
        torch.testing.assert_close(f, r, **TOL)
    torch.testing.assert_close(out.x, ref.x, **TOL)


@pytest.mark.parametrize("train, attention_dropout, head_dim, uses_flex", [
    (True, 0.1, 16, False), (True, 0.0, 16, True), (False, 0.1, 16, True),
    (False, 0.0, 8, False),  # below the CUDA kernel's minimum head size
])
def test_flex_only_without_active_attention_dropout(count_flex, train, attention_dropout, head_dim, uses_flex):
    layer = SelfAttention(4 * head_dim, 4, dropout=attention_dropout).train(train)
    _, _, _, bias = gated_inputs([6, 4], head_dim=head_dim)
    with torch.no_grad():
        layer(torch.randn(2, 6, 4 * head_dim), bias.pad, bias)
    assert bool(count_flex) == uses_flex


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: FlexAttention has no CPU backward "
                    "(torch 2.11), and the compiled CUDA kernel is what the CUDA default uses")
def test_wavlm_encoder_flex_gradients_match_sdpa_cuda(monkeypatch):
    """Compiled FlexAttention vs SDPA on CUDA: outputs within 1e-5; gradients (input and every
    parameter) no further from a float64 SDPA run than twice the float32 SDPA run's own error."""
    model = tiny_wavlm().cuda().eval()
    torch.manual_seed(1)
    x = torch.randn(len(LENGTHS), max(LENGTHS), 64, device="cuda")
    lengths = torch.tensor(LENGTHS, device="cuda")
    grad = torch.randn_like(x)

    def run(net, dtype=torch.float32):
        xi = x.to(dtype).requires_grad_()
        out = net(xi, lengths).x
        return (out, *torch.autograd.grad(out, (xi, *net.parameters()), grad.to(dtype)))

    flex = run(model)  # CUDA default: factored bias, compiled FlexAttention
    monkeypatch.setattr(transformer, "gated_position_mask", functools.partial(gated_position_mask, flex=False))
    sdpa, exact = run(model), run(copy.deepcopy(model).double(), torch.float64)
    torch.testing.assert_close(flex[0], sdpa[0], **TOL)
    for f, s, e in zip(flex, sdpa, exact):
        assert (f.double() - e).abs().max() <= 2 * (s.double() - e).abs().max() + 1e-7
