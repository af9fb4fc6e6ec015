"""Conformer encoder (w2v-BERT; HF's Wav2Vec2Conformer layout for checkpoint parity).

Block: half-step FFN, relative-position (Transformer-XL style) or rotary self-attention,
conv module (pointwise conv + GLU, depthwise conv, BatchNorm, Swish, pointwise conv),
half-step FFN, LayerNorm; a final LayerNorm after the stack. Padded frames are zeroed
before the depthwise conv so they cannot leak into real frames.
"""
from __future__ import annotations

from typing import List, Literal, Optional

import torch
from torch import Tensor, nn

from speechssl2.interfaces import EncoderOutput
from speechssl2.models.attention import SelfAttention, attention_mask
from speechssl2.models.functional import padding_mask, relative_shift, relative_sinusoids
from speechssl2.models.transformer import ACTIVATIONS, FeedForward
from speechssl2.registry import ENCODERS

Position = Literal["relative", "rotary"]


def rotate(x: Tensor, num_heads: int, base: float) -> Tensor:
    """Rotary position embedding applied per head to (B, T, D), halves rotated (GPT-NeoX layout)."""
    b, t, d = x.shape
    hd = d // num_heads
    inv_freq = 1.0 / (base ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
    angles = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * inv_freq  # (T, hd/2)
    angles = torch.cat([angles, angles], dim=-1)[:, None, :]  # (T, 1, hd)
    heads = x.view(b, t, num_heads, hd)
    first, second = heads[..., : hd // 2], heads[..., hd // 2:]
    turned = torch.cat([-second, first], dim=-1)
    out = heads * angles.cos().to(x.dtype) + turned * angles.sin().to(x.dtype)
    return out.reshape(b, t, d)


class ConformerAttention(SelfAttention):
    """Self-attention with Transformer-XL relative positions (u, v biases) or rotary inputs."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float, position: Position,
                 rotary_base: float) -> None:
        super().__init__(embed_dim, num_heads, dropout)
        self.position, self.rotary_base = position, rotary_base
        if position == "relative":
            self.pos_proj = nn.Linear(embed_dim, embed_dim, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(num_heads, self.head_dim))
            self.pos_bias_v = nn.Parameter(torch.zeros(num_heads, self.head_dim))

    def forward(self, x: Tensor, pad: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        """x (B, T, D), pad (B, T) -> (B, T, D); positions are handled here, so ``bias`` must be None."""
        if bias is not None:
            raise ValueError("ConformerAttention computes its own position terms; got an external bias")
        v = self.split_heads(self.v_proj(x))
        if self.position == "rotary":  # rotated inputs (not projections) feed q and k, as released
            turned = rotate(x, self.num_heads, self.rotary_base)
            q, k = self.split_heads(self.q_proj(turned)), self.split_heads(self.k_proj(turned))
            return self.attend(q, k, v, attention_mask(pad, None))
        q, k = self.split_heads(self.q_proj(x)), self.split_heads(self.k_proj(x))
        t = x.shape[1]
        pos = self.pos_proj(relative_sinusoids(t, x.shape[-1], x.dtype, x.device))  # (2T-1, D)
        pos = pos.view(2 * t - 1, self.num_heads, self.head_dim).permute(1, 2, 0)  # (H, d, 2T-1)
        scores = relative_shift((q + self.pos_bias_v[:, None]) @ pos) * self.head_dim ** -0.5  # (B, H, T, T)
        return self.attend(q + self.pos_bias_u[:, None], k, v, attention_mask(pad, scores))


class ConvModule(nn.Module):
    """LayerNorm -> pointwise conv + GLU -> depthwise conv -> BatchNorm -> Swish -> pointwise conv."""

    def __init__(self, embed_dim: int, kernel: int, dropout: float, activation: str) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conformer depthwise kernel must be odd for 'same' padding, got {kernel}")
        self.norm = nn.LayerNorm(embed_dim)
        self.pointwise1 = nn.Conv1d(embed_dim, 2 * embed_dim, 1, bias=False)
        self.depthwise = nn.Conv1d(embed_dim, embed_dim, kernel, padding=kernel // 2, groups=embed_dim, bias=False)
        self.batch_norm = nn.BatchNorm1d(embed_dim)
        self.act = ACTIVATIONS[activation]
        self.pointwise2 = nn.Conv1d(embed_dim, embed_dim, 1, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D)."""
        y = nn.functional.glu(self.pointwise1(self.norm(x).transpose(1, 2)), dim=1)  # (B, D, T)
        y = y.masked_fill(pad[:, None, :], 0.0)
        y = self.act(self.batch_norm(self.depthwise(y)))
        return self.drop(self.pointwise2(y)).transpose(1, 2)


class ConformerLayer(nn.Module):
    """Macaron block: x + FFN/2, + MHSA, + conv, + FFN/2, LayerNorm."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, kernel: int, dropout: float,
                 attention_dropout: float, activation_dropout: float, activation: str, position: Position,
                 rotary_base: float) -> None:
        super().__init__()
        self.ffn1_norm, self.ffn2_norm = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.ffn1 = FeedForward(embed_dim, ffn_dim, activation_dropout, dropout, activation)
        self.ffn2 = FeedForward(embed_dim, ffn_dim, activation_dropout, dropout, activation)
        self.attn_norm = nn.LayerNorm(embed_dim)
        self.attention = ConformerAttention(embed_dim, num_heads, attention_dropout, position, rotary_base)
        self.attn_drop = nn.Dropout(dropout)
        self.conv = ConvModule(embed_dim, kernel, dropout, activation)
        self.final_norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_norm(x))
        x = x + self.attn_drop(self.attention(self.attn_norm(x), pad))
        x = x + self.conv(x, pad)
        x = x + 0.5 * self.ffn2(self.ffn2_norm(x))
        return self.final_norm(x)


@ENCODERS.register("conformer")
class ConformerEncoder(nn.Module):
    """(B, T, D) projected features -> EncoderOutput; hidden_states[0] is the (dropped-out) input."""

    def __init__(
        self,
        embed_dim: int = 1024,
        num_layers: int = 24,
        num_heads: int = 16,
        ffn_dim: int = 4096,
        depthwise_kernel: int = 31,
        position: Position = "relative",
        rotary_base: float = 10000.0,
        activation: Literal["swish", "gelu"] = "swish",
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layerdrop: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed_dim, self.layerdrop = embed_dim, layerdrop
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(embed_dim, num_heads, ffn_dim, depthwise_kernel, dropout, attention_dropout,
                           activation_dropout, activation, position, rotary_base)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor, lengths: Tensor) -> EncoderOutput:
        pad = padding_mask(lengths, x.shape[1])  # (B, T)
        x = self.drop(x.masked_fill(pad[..., None], 0.0))
        hidden: List[Tensor] = [x]
        for layer in self.layers:
            if not (self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop):
                x = layer(x, pad)
            hidden.append(x)
        x = self.norm(x)
        hidden[-1] = x
        return EncoderOutput(x=x, lengths=lengths, hidden_states=hidden)
