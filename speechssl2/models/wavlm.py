"""WavLM's gated relative position bias, as in the released checkpoints.

A bucketed relative position embedding (one scalar per head) is computed once per
forward and shared by every layer; each layer rescales it per query position with a
gate computed from the layer's attention input split into heads:
``gate_a, gate_b = sigmoid(sum over 4 of Linear(head_dim -> 8)(x_h) viewed (2, 4))``,
``bias = (gate_a * (gate_b * a_h - 1) + 2) * d``.

On CUDA the gated bias is handed to the attention factored (``GatedPositionBias``) and
applied inside FlexAttention, so no (B, H, T, T) tensor is made; elsewhere, and in
training with attention dropout, it is made dense as SDPA's mask.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import torch
from torch import Tensor, nn

from speechssl2.models.functional import relative_position_buckets


class RelativePositionBias(nn.Module):
    """Bucketed relative position embedding: length T -> (H, T, T) additive bias."""

    def __init__(self, num_heads: int, num_buckets: int = 320, max_distance: int = 800) -> None:
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, length: int) -> Tensor:
        buckets = relative_position_buckets(length, length, self.num_buckets, self.max_distance,
                                            device=self.embedding.weight.device)  # (T, T)
        return self.embedding(buckets).permute(2, 0, 1).contiguous()  # (H, T, T), read by every layer


class PositionGate(nn.Module):
    """Per-query, per-head gate on the shared relative bias (``grep_linear``/``grep_a`` in UniSpeech)."""

    def __init__(self, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.linear = nn.Linear(head_dim, 8)
        self.scale = nn.Parameter(torch.ones(1, num_heads, 1, 1))  # a_h

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, D) attention input -> gate factor (B, H, T, 1), one per query and head."""
        b, t, _ = x.shape
        heads = x.view(b, t, self.num_heads, -1).transpose(1, 2)  # (B, H, T, D/H)
        logits = self.linear(heads).view(b, self.num_heads, t, 2, 4).sum(-1)  # (B, H, T, 2)
        gate_a, gate_b = torch.sigmoid(logits).unbind(-1)  # (B, H, T) each
        gate = gate_a * (gate_b * self.scale[:, :, :, 0] - 1.0) + 2.0  # (B, H, T)
        return gate[..., None]


class GatedPositionBias(NamedTuple):
    """A WavLM layer's position bias kept factored: gate (B, H, T, 1), shared bias (H, T, T), pad (B, T) or None.

    A ``speechssl2.models.attention.ScoreBias``: ``dense()`` for SDPA, ``score_mod()`` for FlexAttention.
    """

    gate: Tensor
    bias: Tensor
    pad: Optional[Tensor]

    def dense(self) -> Tensor:
        """The SDPA ``attn_mask``, made in one fused pass: gate * bias, -inf at padded keys.

        -> (B, H, T, T) in the gate's dtype. ``addcmul`` of the (B, 1, 1, T) key-padding row
        with the broadcast product is the only (B, H, T, T) tensor made; the plain
        ``gate * bias`` then ``masked_fill_`` took two passes. Bit-identical to that in float32.
        Without padding (None) it is the product alone.
        """
        gate, pad = self.gate, self.pad
        if pad is None:
            return gate * self.bias.to(gate.dtype)
        keys = torch.zeros(pad.shape, dtype=gate.dtype, device=gate.device).masked_fill_(pad, float("-inf"))
        return torch.addcmul(keys[:, None, None, :], gate, self.bias.to(gate.dtype))

    def score_mod(self) -> Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]:
        """FlexAttention ``score_mod``: score + gate[b, h, q] * bias[h, q, kv], the same sum SDPA makes."""
        gate, bias = self.gate[..., 0], self.bias.to(self.gate.dtype)  # (B, H, T), (H, T, T)

        def add_gated_bias(score: Tensor, b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
            return score + gate[b, h, q] * bias[h, q, kv]

        return add_gated_bias


def gated_position_mask(gate: Tensor, bias: Tensor, pad: Optional[Tensor],
                        flex: Optional[bool] = None) -> Union[Tensor, GatedPositionBias]:
    """What a WavLM layer hands its attention as ``mask``: gate (B, H, T, 1), bias (H, T, T), pad (B, T) or None.

    flex: True -> the factored ``GatedPositionBias`` (FlexAttention, or SDPA with its dense
    mask when attention dropout is active); False -> the dense (B, H, T, T) SDPA mask;
    None (default) -> factored on CUDA (compiled FlexAttention), dense elsewhere (on CPU
    FlexAttention only has an unfused eager reference, without backward).
    """
    factored = GatedPositionBias(gate, bias, pad)
    return factored if (gate.is_cuda if flex is None else flex) else factored.dense()
