"""A causal Transformer language model over the ASR tokenizer's units.

It shares the acoustic model's tokenizer so that its scores apply to the same token
sequences (n-best rescoring, transducer shallow fusion). Id 0, the blank, never occurs
in text, so it doubles as the sentence boundary: a sentence ``w`` is scored as
``P(w_1 | <s>) ... P(</s> | w)`` with ``<s> = </s> = 0``.

Registered in MODELS as ``transformer_lm``; ``forward(batch)`` reads ``batch["text"]``
like the acoustic models, so ``speechssl2.bin.train_lm`` drives it with the ordinary
trainer. Positions are sinusoidal (no maximum length to outgrow).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.finetune.tokenizer import BLANK, TokenizerSpec, build_tokenizer, encode_texts
from speechssl2.interfaces import StepOutput
from speechssl2.registry import MODELS

BOUNDARY = BLANK


def sinusoids(length: int, dim: int, device: torch.device) -> Tensor:
    """(T, D) fixed sinusoidal position encodings (sin on even, cos on odd channels)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


@MODELS.register("transformer_lm")
class TransformerLM(nn.Module):
    """Token embedding + sinusoids -> pre-LN causal Transformer -> tied output projection."""

    def __init__(
        self,
        tokenizer: TokenizerSpec,
        embed_dim: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.tokenizer = build_tokenizer(tokenizer)
        self.vocab_size: int = self.tokenizer.vocab_size
        self.embed_dim = embed_dim
        self.embed = nn.Embedding(self.vocab_size, embed_dim)
        nn.init.normal_(self.embed.weight, std=embed_dim**-0.5)  # tied output: start near-uniform
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, ffn_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)

    def logits(self, inputs: Tensor, padding_mask: Tensor) -> Tensor:
        """(B, U) token ids, (B, U) True = padding -> (B, U, V) next-token logits."""
        length = inputs.shape[1]
        x = self.embed(inputs) * math.sqrt(self.embed_dim) + sinusoids(length, self.embed_dim, inputs.device)
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).triu(1)  # (U, U) True = hidden
        x = self.layers(self.drop(x), mask=causal, src_key_padding_mask=padding_mask, is_causal=True)
        return F.linear(self.norm(x), self.embed.weight)  # (B, U, V), output tied to the embedding

    def _batch(self, sequences: Sequence[Sequence[int]]) -> Tuple[Tensor, Tensor, Tensor]:
        """Inputs ``<s> w``, targets ``w </s>`` (-100 on padding) and the padding mask, all (B, U + 1)."""
        device = self.embed.weight.device
        width = max(len(s) for s in sequences) + 1
        inputs = torch.full((len(sequences), width), BOUNDARY, dtype=torch.long)
        targets = torch.full((len(sequences), width), -100, dtype=torch.long)
        for i, seq in enumerate(sequences):
            ids = torch.tensor(list(seq), dtype=torch.long)
            inputs[i, 1 : len(seq) + 1] = ids
            targets[i, : len(seq)] = ids
            targets[i, len(seq)] = BOUNDARY
        pad = targets == -100
        return inputs.to(device), targets.to(device), pad.to(device)

    def token_log_probs(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        """(N,) natural-log probability of each whole sequence, sentence end included."""
        inputs, targets, pad = self._batch(sequences)
        logp = self.logits(inputs, pad).log_softmax(-1)  # (N, U + 1, V)
        picked = logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)  # (N, U + 1)
        return picked.masked_fill(pad, 0.0).sum(-1)

    @torch.no_grad()
    def score(self, texts: Sequence[str]) -> Tensor:
        """(N,) log P(text) under the LM (natural log), for n-best rescoring."""
        return self.token_log_probs(encode_texts(self.tokenizer, texts, texts))

    @torch.no_grad()
    def next_log_probs(self, prefixes: Sequence[Sequence[int]]) -> Tensor:
        """(N, V) log P(next token | <s> prefix) for shallow fusion; index 0 is the sentence end."""
        inputs, _, pad = self._batch(prefixes)
        last = torch.tensor([len(p) for p in prefixes], device=inputs.device)  # position of the last input
        logits = self.logits(inputs, pad)  # (N, U + 1, V)
        return logits[torch.arange(len(prefixes), device=inputs.device), last].log_softmax(-1)

    def forward(self, batch: dict) -> StepOutput:
        sequences = encode_texts(self.tokenizer, batch["text"], batch.get("ids", batch["text"]))
        inputs, targets, pad = self._batch(sequences)
        logits = self.logits(inputs, pad)  # (B, U + 1, V)
        tokens = int((~pad).sum())
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum") / tokens
        return StepOutput(loss=nll, terms={"nll": nll.detach()}, metrics={"ppl": math.exp(min(float(nll.detach()), 50.0))},
                          sample_size=tokens)
