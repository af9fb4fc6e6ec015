"""Multi-head self-attention through ``F.scaled_dot_product_attention``.

Without a position bias the padding goes in as a boolean mask, which keeps SDPA's
fused kernels available; with one (WavLM, relative conformer) the padding is folded
into the additive float bias, so no second (B, H, T, T) tensor is made.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attention_mask(pad: Tensor, bias: Optional[Tensor]) -> Tensor:
    """SDPA ``attn_mask`` from a (B, T) padding mask (True = pad) and an optional additive bias.

    bias: (B, H, T, T) float, owned by the caller (filled in place) -> float mask;
    no bias -> (B, 1, 1, T) bool, True = may attend.
    """
    if bias is None:
        return ~pad[:, None, None, :]
    return bias.masked_fill_(pad[:, None, None, :], float("-inf"))


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

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Heads (B, H, T, d) -> (B, T, D) after the output projection."""
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, d)
        b, h, t, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * d))

    def forward(self, x: Tensor, pad: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """x (B, T, D), pad (B, T) True = padding -> (B, T, D).

        mask: None, or a (B, H, T, T) additive float mask that already holds -inf at the
        padded keys (``speechssl2.models.wavlm.gated_position_mask``), used as it is.
        """
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        return self.attend(q, k, v, attention_mask(pad, None) if mask is None else mask)
