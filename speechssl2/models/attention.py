"""Multi-head self-attention through ``F.scaled_dot_product_attention`` or FlexAttention.

Without a position bias the padding goes in as a boolean mask, which keeps SDPA's
fused kernels available; with a dense one (relative conformer) the padding is folded
into the additive float bias, so no second (B, H, T, T) tensor is made. A bias that
is kept factored (``ScoreBias``: WavLM's gate x shared bias) goes through FlexAttention
as a ``score_mod`` with the padding as a ``BlockMask``, so no (B, H, T, T) tensor is made
at all; FlexAttention has no attention dropout and its CUDA kernel needs head_dim >= 16,
so in training with ``dropout > 0``, or with smaller heads, the factored bias is made
dense and goes through SDPA.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional, Protocol, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention.flex_attention import BlockMask, flex_attention

FLEX_BLOCK = 128  # FlexAttention's default sparse block size
FLEX_MIN_HEAD_DIM = 16  # the compiled CUDA kernel's minimum (tl.dot), NotImplementedError below it


class ScoreBias(Protocol):
    """An additive attention bias that can be applied without being materialised."""

    def dense(self) -> Tensor:
        """(B, H, T, T) float SDPA mask, -inf at padded keys."""

    def score_mod(self) -> Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]:
        """FlexAttention ``score_mod(score, b, h, q, kv)`` adding the bias (padding not included)."""


Mask = Union[None, Tensor, ScoreBias]


def attention_mask(pad: Optional[Tensor], bias: Optional[Tensor]) -> Optional[Tensor]:
    """SDPA ``attn_mask`` from a (B, T) padding mask (True = pad; None: no padding) and an optional additive bias.

    bias: (B, H, T, T) float, owned by the caller (filled in place) -> float mask;
    no bias -> (B, 1, 1, T) bool, True = may attend; no padding -> the bias as it is (or None).
    """
    if pad is None:
        return bias
    if bias is None:
        return ~pad[:, None, None, :]
    return bias.masked_fill_(pad[:, None, None, :], float("-inf"))


def padding_block_mask(pad: Optional[Tensor], block: int = FLEX_BLOCK) -> Optional[BlockMask]:
    """FlexAttention key-padding ``BlockMask`` from a (B, T) prefix padding mask (True = pad).

    Made from the lengths in O(B (T / block)^2), never from a (T, T) grid: per utterance the
    key blocks below ``length // block`` are full, the one the length falls inside (if any)
    is partial (``mask_mod``: key < length), the rest are skipped; the same for every query
    block and head (shape (B, 1, T, T)). No padding (None) -> None, no mask.
    """
    if pad is None:
        return None
    b, t = pad.shape
    lengths = (~pad).sum(-1, dtype=torch.int32)  # (B,)
    n = -(-t // block)
    idx = torch.arange(n, dtype=torch.int32, device=pad.device)
    full = lengths // block  # (B,) key blocks with no padding
    partial = (lengths % block != 0).to(torch.int32)  # (B,) 1 if a block holds the last frames and padding
    rows = (b, 1, n)

    def key_is_valid(batch: Tensor, head: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return kv < lengths[batch]

    return BlockMask.from_kv_blocks(
        kv_num_blocks=partial[:, None, None].expand(rows).contiguous(),
        kv_indices=((idx + full[:, None]) % n)[:, None, None, :].expand(*rows, n).contiguous(),  # partial first
        full_kv_num_blocks=full[:, None, None].expand(rows).contiguous(),
        full_kv_indices=idx.expand(*rows, n).contiguous(),
        BLOCK_SIZE=block, mask_mod=key_is_valid, seq_lengths=(t, t),
    )


@functools.lru_cache(maxsize=None)
def compiled_flex_attention() -> Callable[..., Tensor]:
    """``torch.compile(flex_attention)``: the fused kernel (uncompiled, FlexAttention materialises the scores)."""
    return torch.compile(flex_attention)


class SelfAttention(nn.Module):
    """Scaled dot-product self-attention with separate q/k/v/out projections."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim, self.dropout = num_heads, embed_dim // num_heads, dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, H, T, D/H)."""
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, out: Tensor) -> Tensor:
        """Heads (B, H, T, d) -> (B, T, D) after the output projection."""
        b, h, t, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * d))

    def sdpa(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        """Heads (B, H, T, d) through SDPA with ``attn_mask=mask`` -> heads (B, H, T, d)."""
        p = self.dropout if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        """Heads (B, H, T, d) through SDPA with ``attn_mask=mask`` -> (B, T, D) after the output projection."""
        return self.merge_heads(self.sdpa(q, k, v, mask))

    def flex(self, q: Tensor, k: Tensor, v: Tensor, bias: ScoreBias, pad: Optional[Tensor]) -> Tensor:
        """Heads (B, H, T, d) through FlexAttention with ``bias`` and key padding -> heads (B, H, T, d).

        Compiled on CUDA; elsewhere FlexAttention's eager reference (it materialises the
        scores, and torch 2.11 has no CPU backward): what the tests compare against SDPA.
        """
        flex = compiled_flex_attention() if q.is_cuda else flex_attention
        return flex(q, k, v, score_mod=bias.score_mod(), block_mask=padding_block_mask(pad))

    def heads(self, q: Tensor, k: Tensor, v: Tensor, pad: Optional[Tensor], mask: Mask) -> Tensor:
        """Heads (B, H, T, d) -> attended heads (B, H, T, d), through SDPA or FlexAttention (``forward``)."""
        if mask is None:
            return self.sdpa(q, k, v, attention_mask(pad, None))
        if isinstance(mask, Tensor):
            return self.sdpa(q, k, v, mask)
        if (self.training and self.dropout > 0) or self.head_dim < FLEX_MIN_HEAD_DIM:
            return self.sdpa(q, k, v, mask.dense())
        return self.flex(q, k, v, mask, pad)

    def forward(self, x: Tensor, pad: Optional[Tensor], mask: Union[Mask, Sequence[Mask]] = None,
                segments: Optional[Sequence[int]] = None) -> Tensor:
        """x (B, T, D), pad (B, T) True = padding (None: no padding) -> (B, T, D).

        mask: None; a (B, H, T, T) additive float mask that already holds -inf at the padded
        keys (if any), used as it is; or a factored ``ScoreBias`` (``speechssl2.models.wavlm.gated_position_mask``
        on CUDA), applied by FlexAttention unless attention dropout is active or head_dim < 16.
        segments: utterances packed end to end in one row, x (1, N, D), N = sum(segments):
        each attends to itself only, with its own entry of ``mask`` (a sequence, or None).
        """
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        if segments is None:
            return self.merge_heads(self.heads(q, k, v, pad, mask))
        masks = [None] * len(segments) if mask is None else mask
        parts = zip(*(t.split(list(segments), dim=2) for t in (q, k, v)), masks)
        return self.merge_heads(torch.cat([self.heads(*qkv, None, m) for *qkv, m in parts], dim=2))
