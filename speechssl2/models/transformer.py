"""Transformer encoder of wav2vec 2.0 / HuBERT / WavLM: conv positional embedding + layers.

``layer_norm_first=False`` is the post-LN BASE layout (LayerNorm right after the
positional conv, and after each residual); ``True`` is the pre-LN LARGE layout (a
final LayerNorm after the stack). ``num_buckets > 0`` adds WavLM's gated relative
position bias, so WavLM is a parameter of this encoder rather than a subclass;
``gated_position=False`` adds the bucketed bias without the gate (UniSpeech's
``--relative-position-embedding`` without ``gru_rel_pos``, as the released ILS-SSL BASE).
``init="bert"`` initialises as fairseq and unilm do (``self.apply(init_bert_params)`` at the
end of their ``TransformerEncoder.__init__``, fairseq/models/wav2vec/wav2vec2.py:L1072 @3d262bb,
UniSpeech WavLM/WavLM.py:L562): every Linear and Embedding of the encoder N(0, 0.02) with zero
biases, which overrides unilm's xavier init of the relative position embedding and covers
WavLM's gate (``grep_linear``; its ``grep_a`` stays 1); the positional conv (a Conv1d, its own
init) and the LayerNorms are left alone. ``init="torch"`` keeps PyTorch's defaults (the
Embedding of the bias then starts N(0, 1)); the paper configs choose ``bert``.
On CPU a padded batch runs packed when the padding it saves outweighs the extra calls:
its utterances end to end in one row, each attending to itself, no padding mask
(``speechssl2.models.unpadded``).
"""
from __future__ import annotations

from typing import List, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from speechssl2.interfaces import EncoderOutput
from speechssl2.models.attention import SelfAttention
from speechssl2.models.functional import padding_mask
from speechssl2.models.unpadded import pack, split_by_utterance, unpack
from speechssl2.models.wavlm import PositionGate, RelativePositionBias, gated_position_mask
from speechssl2.registry import ENCODERS


BERT_STD = 0.02  # fairseq init_bert_params: fairseq/modules/transformer_sentence_encoder.py:L35-47 @3d262bb
Init = Literal["torch", "bert"]


def bert_init(module: nn.Module) -> None:
    """fairseq's ``init_bert_params`` over a module tree: Linear / Embedding weights N(0, 0.02), Linear biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=BERT_STD)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


class ConvPositionalEmbedding(nn.Module):
    """Grouped, weight-normed Conv1d over time whose GELU output is added to the input."""

    def __init__(self, embed_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        conv = nn.Conv1d(embed_dim, embed_dim, kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(conv.weight, std=(4.0 / (kernel * embed_dim)) ** 0.5)
        nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2)

    def forward(self, x: Tensor, segments: Optional[Sequence[int]] = None) -> Tensor:
        """(B, T, D) -> (B, T, D) positional term (an even kernel yields T + 1 frames: drop the last).

        segments: x is (1, N, D), utterances packed end to end; each is convolved alone.
        """
        if segments is not None:
            return torch.cat([self(part) for part in x.split(list(segments), dim=1)], dim=1)
        y = self.conv(x.transpose(1, 2))[..., : x.shape[1]]
        return F.gelu(y).transpose(1, 2)


ACTIVATIONS = {"gelu": F.gelu, "swish": F.silu}


class FeedForward(nn.Module):
    """Linear -> activation (GELU; Swish in conformers) -> dropout -> Linear -> dropout."""

    def __init__(self, embed_dim: int, ffn_dim: int, activation_dropout: float, dropout: float,
                 activation: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.act = ACTIVATIONS[activation]
        self.act_drop, self.drop = nn.Dropout(activation_dropout), nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.act_drop(self.act(self.fc1(x)))))


class TransformerLayer(nn.Module):
    """Self-attention + feed-forward with residuals, post-LN or pre-LN, optional WavLM gate."""

    def __init__(self, attention: SelfAttention, ffn: FeedForward, embed_dim: int, layer_norm_first: bool,
                 dropout: float, gate: Optional[PositionGate] = None) -> None:
        super().__init__()
        self.attention, self.ffn, self.gate = attention, ffn, gate
        self.attn_norm, self.ffn_norm = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.layer_norm_first = layer_norm_first
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad: Optional[Tensor], rel_bias: Optional[Tensor] = None,
                segments: Optional[Sequence[int]] = None) -> Tensor:
        """x (B, T, D), pad (B, T) or None (no padding), rel_bias (H, T, T) shared WavLM bias or None -> (B, T, D).

        segments: x is (1, N, D), utterances packed end to end (``TransformerEncoder.encode``).
        """
        h = self.attn_norm(x) if self.layer_norm_first else x
        mask = None
        if rel_bias is not None:  # WavLM gate, or a unit gate (B, H, T, 1) when ungated: the bias as it is
            gate = self.gate(h) if self.gate is not None else h.new_ones(h.shape[0], rel_bias.shape[0], h.shape[1], 1)
            if segments is None:
                mask = gated_position_mask(gate, rel_bias, pad)  # (B, H, T, T), padding folded in
            else:  # one (1, H, n, n) mask per utterance
                mask = [gated_position_mask(g, rel_bias[:, :n, :n], None)
                        for g, n in zip(gate.split(list(segments), dim=2), segments)]
        x = x + self.drop(self.attention(h, pad, mask, segments))
        if self.layer_norm_first:
            return x + self.ffn(self.ffn_norm(x))
        x = self.attn_norm(x)
        return self.ffn_norm(x + self.ffn(x))


@ENCODERS.register("transformer")
class TransformerEncoder(nn.Module):
    """(B, T, D) projected features -> EncoderOutput; hidden_states[0] is the input after the positional conv."""

    def __init__(
        self,
        embed_dim: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        ffn_dim: int = 3072,
        layer_norm_first: bool = False,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layerdrop: float = 0.0,
        pos_conv_kernel: int = 128,
        pos_conv_groups: int = 16,
        num_buckets: int = 0,
        max_distance: int = 800,
        gated_position: bool = True,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        if init not in ("torch", "bert"):
            raise ValueError(f"transformer encoder: init must be 'torch' or 'bert', got {init!r}")
        self.embed_dim, self.layer_norm_first, self.layerdrop = embed_dim, layer_norm_first, layerdrop
        self.pos_conv = ConvPositionalEmbedding(embed_dim, pos_conv_kernel, pos_conv_groups)
        self.norm = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)
        self.rel_bias = RelativePositionBias(num_heads, num_buckets, max_distance) if num_buckets else None
        self.layers = nn.ModuleList(
            TransformerLayer(
                SelfAttention(embed_dim, num_heads, attention_dropout),
                FeedForward(embed_dim, ffn_dim, activation_dropout, dropout),
                embed_dim, layer_norm_first, dropout,
                PositionGate(num_heads, embed_dim // num_heads) if num_buckets and gated_position else None,
            )
            for _ in range(num_layers)
        )
        if init == "bert":
            bert_init(self)

    def forward(self, x: Tensor, lengths: Tensor) -> EncoderOutput:
        """x (B, T, D), lengths (B,) -> EncoderOutput; padded frames of the hidden states are 0 on CPU."""
        keep = [not (self.training and self.layerdrop > 0 and bool(torch.rand(()) < self.layerdrop))
                for _ in self.layers]  # one LayerDrop draw per layer and batch
        if split_by_utterance(x, lengths, x.shape[1], self.embed_dim):
            sizes = lengths.tolist()
            with parametrize.cached():  # the positional conv's weight norm once, not once per utterance
                hidden = self.encode(pack(x, sizes), None, keep, sizes)
            hidden = [unpack(h, sizes, x.shape[1]) for h in hidden]
        else:
            hidden = self.encode(x, padding_mask(lengths, x.shape[1]), keep)
        return EncoderOutput(x=hidden[-1], lengths=lengths, hidden_states=hidden)

    def encode(self, x: Tensor, pad: Optional[Tensor], keep: Sequence[bool],
               segments: Optional[Sequence[int]] = None) -> List[Tensor]:
        """x (B, T, D), pad (B, T) or None -> hidden states, L + 1 x (B, T, D).

        segments: x is (1, N, D), utterances packed end to end with these lengths (no padding).
        """
        if pad is not None:
            x = x.masked_fill(pad[..., None], 0.0)
        x = x + self.pos_conv(x, segments)
        if not self.layer_norm_first:
            x = self.norm(x)
        x = self.drop(x)
        longest = max(segments) if segments is not None else x.shape[1]
        rel_bias = self.rel_bias(longest) if self.rel_bias is not None else None  # (H, T, T)
        hidden: List[Tensor] = [x]
        for layer, kept in zip(self.layers, keep):
            if kept:
                x = layer(x, pad, rel_bias, segments)
            hidden.append(x)  # a dropped layer repeats its input, so indices keep their meaning
        if self.layer_norm_first:
            hidden[-1] = self.norm(x)
        return hidden
