"""Pure, seeded numerics shared by the model code: lengths, masks, buckets, shifts.

Kept free of modules so each formula can be tested on its own and reused by the
frontends, encoders and checkpoint converters without importing them.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def conv_output_lengths(lengths: Tensor, kernels: Sequence[int], strides: Sequence[int]) -> Tensor:
    """Valid output frames of a stack of unpadded convs: floor((L - k) / s) + 1 per layer.

    Lengths shorter than a kernel give 0 (never negative), so callers can raise on them.
    """
    out = lengths.to(torch.long)
    for k, s in zip(kernels, strides):
        out = torch.div(out - k, s, rounding_mode="floor") + 1
        out = out.clamp(min=0)
    return out


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Input samples seen by one output frame of an unpadded conv stack (= minimum input length)."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True = padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


def masked_group_norm(x: Tensor, valid: Optional[Tensor], groups: int, weight: Tensor, bias: Tensor,
                      eps: float) -> Tensor:
    """GroupNorm over (channels in group, valid time steps) only.

    Padding must not change the statistics, otherwise an utterance would be encoded
    differently alone and inside a padded batch. Equals ``F.group_norm`` without padding.
    x: (B, C, T); valid: (B, T) bool, True = real sample (a prefix of each row), or None: no padding.

    Fast paths: a batch without padding is ``F.group_norm`` itself (one fused kernel);
    otherwise :class:`_MaskedGroupNorm` takes the statistics with one ``var_mean`` per
    utterance and normalizes with one ``addcmul``, and its hand-written backward makes four
    passes over x (autograd through the masked sums made about fifteen, plus a full-size
    zero tensor per utterance). Under ``torch.compile`` the plain masked sums are traced.
    """
    b, c, t = x.shape
    acc = torch.promote_types(x.dtype, torch.float32)  # statistics in float32 at least
    if valid is not None and torch.compiler.is_compiling():  # no data-dependent branch: fused masked sums
        return _masked_group_norm_sums(x, valid, groups, weight, bias, eps, acc)
    if valid is None or bool(valid.all()):
        return F.group_norm(x.to(acc), groups, weight.to(acc), bias.to(acc), eps).to(x.dtype)
    counts = valid.sum(dim=1)
    if not torch.equal(valid, ~padding_mask(counts, t)):
        raise ValueError("masked_group_norm: valid must mark a prefix of each row (a lengths mask)")
    if x.dtype != acc:  # half precision: autograd through the float32 formula
        return _masked_group_norm_sums(x, valid, groups, weight, bias, eps, acc)
    return _MaskedGroupNorm.apply(x, weight, bias, counts.tolist(), groups, eps)


class _MaskedGroupNorm(torch.autograd.Function):
    """Masked GroupNorm with statistics per utterance prefix; float32/float64 x (B, C, T).

    y = (x - mean) * rstd * w + b everywhere (padding too), mean and rstd = (var + eps)^-1/2
    over the valid prefix of each (utterance, group), N = n_b * C/G values. Backward, with
    S = sum_t dy and P = sum_t dy * x per (b, c), both over all frames:
    dx = dy * w * rstd + [valid] (a * x + c0), where per (b, group) dmean = -sum(w S) rstd,
    dvar = -rstd^3 / 2 * sum(w (P - mean S)), a = 2 dvar / N, c0 = dmean / N - a * mean;
    dw = sum_b (P - mean S) rstd, db = sum_b S.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, lengths: List[int], groups: int,
                eps: float) -> Tensor:  # type: ignore[override]
        b, c, t = x.shape
        stats = [torch.var_mean(x[i, :, :n].reshape(groups, -1), dim=1, correction=0)
                 for i, n in enumerate(lengths)]
        var = torch.stack([v for v, _ in stats])  # (B, G)
        mean = torch.stack([m for _, m in stats])  # (B, G)
        rstd = torch.rsqrt(var + eps)  # (B, G)
        mean_c, rstd_c = (s.repeat_interleave(c // groups, dim=1) for s in (mean, rstd))  # (B, C)
        scale = rstd_c * weight.to(x.dtype)[None]
        shift = bias.to(x.dtype)[None] - mean_c * scale
        ctx.save_for_backward(x, weight, mean_c, rstd_c)
        ctx.lengths, ctx.groups = lengths, groups
        return torch.addcmul(shift[..., None], x, scale[..., None])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: Tensor) -> Tuple[Optional[Tensor], ...]:  # type: ignore[override]
        x, weight, mean_c, rstd_c = ctx.saved_tensors
        b, c, t = x.shape
        g, w = ctx.groups, weight.to(x.dtype)
        sum_dy = dy.sum(-1)  # (B, C)
        sum_dyx = torch.einsum("bct,bct->bc", dy, x)  # (B, C), no (B, C, T) temporary
        centred = sum_dyx - mean_c * sum_dy  # sum_t dy * (x - mean)
        dx = dy * (w[None] * rstd_c)[..., None]
        n = torch.tensor(ctx.lengths, dtype=x.dtype, device=x.device)[:, None] * (c // g)  # (B, 1)
        dmean = -(w * sum_dy).view(b, g, -1).sum(-1) * rstd_c[:, :: c // g]  # (B, G)
        dvar = -0.5 * rstd_c[:, :: c // g] ** 3 * (w * centred).view(b, g, -1).sum(-1)  # (B, G)
        a = 2.0 * dvar / n
        c0 = dmean / n - a * mean_c[:, :: c // g]
        a_c, c0_c = (s.repeat_interleave(c // g, dim=1) for s in (a, c0))  # (B, C)
        for i, length in enumerate(ctx.lengths):  # the statistics only saw the valid prefix
            dx[i, :, :length].addcmul_(x[i, :, :length], a_c[i, :, None]).add_(c0_c[i, :, None])
        dw = (centred * rstd_c).sum(0).to(weight.dtype)
        return dx, dw, sum_dy.sum(0).to(weight.dtype), None, None, None


def _masked_group_norm_sums(x: Tensor, valid: Tensor, groups: int, weight: Tensor, bias: Tensor, eps: float,
                            acc: torch.dtype) -> Tensor:
    """``masked_group_norm`` as masked sums over the padded batch: traceable, for ``torch.compile``."""
    b, c, t = x.shape
    xg = x.to(acc).view(b, groups, c // groups, t)  # (B, G, C/G, T)
    m = valid[:, None, None, :].to(acc)  # (B, 1, 1, T)
    count = m.sum(dim=(2, 3), keepdim=True) * (c // groups)
    mean = (xg * m).sum(dim=(2, 3), keepdim=True) / count
    var = (((xg - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / count
    y = ((xg - mean) / torch.sqrt(var + eps)).view(b, c, t).to(x.dtype)
    return y * weight[None, :, None] + bias[None, :, None]


def normalize_waveform(wav: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per utterance over its valid samples; padding stays 0.

    (B, S) -> (B, S). Matches ``F.layer_norm(wav, wav.shape)`` on an unpadded utterance,
    which is how the released LARGE models were trained.
    """
    valid = ~padding_mask(lengths, wav.shape[1])
    n = lengths.clamp(min=1).to(wav.dtype)[:, None]
    mean = (wav * valid).sum(dim=1, keepdim=True) / n
    var = (((wav - mean) * valid) ** 2).sum(dim=1, keepdim=True) / n
    return (wav - mean) / torch.sqrt(var + eps) * valid


def relative_position_buckets(query_len: int, key_len: int, num_buckets: int, max_distance: int,
                              device: torch.device | None = None) -> Tensor:
    """Bidirectional T5-style buckets of (key - query) offsets: (Tq, Tk) long in [0, num_buckets).

    Half of the buckets per direction (positive offsets in the upper half); offsets below
    a quarter of ``num_buckets`` keep their own bucket, larger ones map logarithmically up
    to ``max_distance`` and beyond it share the last bucket of their direction.
    """
    half = num_buckets // 2
    exact = half // 2
    offset = torch.arange(key_len, device=device)[None, :] - torch.arange(query_len, device=device)[:, None]
    base = (offset > 0).long() * half
    dist = offset.abs()
    log_ratio = torch.log(dist.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = (exact + log_ratio * (half - exact)).long().clamp(max=half - 1)
    return base + torch.where(dist < exact, dist, far)


def relative_sinusoids(length: int, dim: int, dtype: torch.dtype = torch.float32,
                       device: torch.device | None = None) -> Tensor:
    """Sinusoids for offsets T-1, ..., 0, ..., -(T-1) (Transformer-XL order): (2T - 1, D)."""
    offsets = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(2 * length - 1, dim, device=device)
    table[:, 0::2] = torch.sin(offsets * freq)
    table[:, 1::2] = torch.cos(offsets * freq)
    return table.to(dtype)


def relative_shift(scores: Tensor) -> Tensor:
    """Turn scores against offsets (T-1 .. -(T-1)) into scores against key positions.

    scores: (B, H, T, 2T - 1) where column j is offset T-1-j, offsets being query minus
    key (Transformer-XL); returns (B, H, T, T) with entry [i, k] = scores[i, T-1-(i-k)].
    """
    b, h, t, n = scores.shape
    padded = torch.nn.functional.pad(scores, (1, 0)).view(b, h, n + 1, t)
    return padded[:, :, 1:].reshape(b, h, t, n)[..., :t]
