"""Gumbel-softmax product quantizer (wav2vec 2.0, w2v-BERT).

G codebooks of V entries each; every frame picks one entry per codebook, the G entries
(d/G dims each) are concatenated. The choice is a hard one-hot in the forward pass with
the gradient of the soft Gumbel-softmax (straight-through), at a temperature annealed
per update. The diversity loss reads ``prob_perplexity``, computed from the plain
softmax without Gumbel noise or temperature, as in the released code.

``input_dropout`` drops input features before the logits: fairseq wav2vec 2.0's
``dropout_features``, applied to ``unmasked_features``, whose only use in the loss is the
quantizer input (fairseq/models/wav2vec/wav2vec2.py:L655 and L705-L750 @3d262bb); 0.1 in the
released BASE config (examples/wav2vec/config/pretraining/wav2vec2_base_librispeech.yaml:L55).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from speechssl2.registry import QUANTIZERS


@dataclass
class QuantizerOutput:
    q: Tensor  # (N, codebook_dim) quantized vectors
    codes: Tensor  # (N, G) long: chosen entry per codebook
    prob_perplexity: Tensor  # scalar, differentiable: sum_g exp(H(mean softmax_g))
    code_perplexity: float  # sum_g exp(H(mean hard one-hot_g)): how many entries are in use
    num_vars: int  # G * V, the maximum of both perplexities
    onehot: Optional[Tensor] = None  # (N, G, V) the hard choices, straight-through gradients when training


def straight_through_gumbel(logits: Tensor, tau: float, gumbels: Tensor) -> Tensor:
    """Hard one-hot of ``argmax(logits + gumbels)`` carrying softmax((logits + gumbels) / tau) gradients.

    logits, gumbels: (..., V). Pure (the noise is an argument) so it can be tested exactly.
    """
    soft = torch.softmax((logits + gumbels) / tau, dim=-1)  # (..., V)
    index = soft.argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return hard - soft.detach() + soft


def sample_gumbels(shape: torch.Size, device: torch.device, generator: Optional[torch.Generator] = None) -> Tensor:
    """Standard Gumbel(0, 1) noise ``-log(-log U)``, U clamped away from 0 and 1."""
    u = torch.rand(shape, device=device, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def perplexity(probs: Tensor) -> Tensor:
    """sum over groups of exp(entropy of the frame-averaged distribution). probs: (N, G, V)."""
    avg = probs.mean(dim=0)  # (G, V)
    entropy = -(avg * torch.log(avg + 1e-7)).sum(dim=-1)  # (G,)
    return torch.exp(entropy).sum()


@QUANTIZERS.register("gumbel")
class GumbelQuantizer(nn.Module):
    """Product quantizer: Linear(input_dim -> G*V) logits, codebooks (G, V, codebook_dim / G)."""

    def __init__(
        self,
        input_dim: int,
        codebook_dim: int = 256,
        num_groups: int = 2,
        num_vars: int = 320,
        temp_start: float = 2.0,
        temp_end: float = 0.5,
        temp_decay: float = 0.999995,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if codebook_dim % num_groups:
            raise ValueError(f"gumbel quantizer: codebook_dim {codebook_dim} not divisible by num_groups {num_groups}")
        if not 0.0 < temp_end <= temp_start or not 0.0 < temp_decay <= 1.0:
            raise ValueError(
                f"gumbel quantizer: need 0 < temp_end <= temp_start and 0 < temp_decay <= 1, "
                f"got start={temp_start}, end={temp_end}, decay={temp_decay}"
            )
        self.num_groups, self.num_vars = num_groups, num_vars
        self.codebook_dim = codebook_dim
        self.temp_start, self.temp_end, self.temp_decay = temp_start, temp_end, temp_decay
        self.temperature = temp_start
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"gumbel quantizer: input_dropout must be in [0, 1), got {input_dropout}")
        self.input_drop = nn.Dropout(input_dropout)
        self.weight_proj = nn.Linear(input_dim, num_groups * num_vars)
        self.codebooks = nn.Parameter(torch.empty(num_groups, num_vars, codebook_dim // num_groups))
        # Released init: unit-variance logit weights (sharp choices from the start), uniform entries.
        nn.init.normal_(self.weight_proj.weight, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        nn.init.uniform_(self.codebooks)

    def set_num_updates(self, num_updates: int) -> None:
        """Anneal: tau = max(start * decay ** n, end), a pure function of the update count."""
        decayed = self.temp_start * math.exp(num_updates * math.log(self.temp_decay))
        self.temperature = max(decayed, self.temp_end)

    def forward(self, x: Tensor) -> QuantizerOutput:
        """x: (N, input_dim) -> QuantizerOutput with q (N, codebook_dim)."""
        n = x.shape[0]
        logits = self.weight_proj(self.input_drop(x)).view(n, self.num_groups, self.num_vars)  # (N, G, V)
        hard_index = logits.argmax(dim=-1)  # (N, G)
        hard = torch.zeros_like(logits).scatter_(-1, hard_index.unsqueeze(-1), 1.0)
        with torch.no_grad():
            code_ppl = perplexity(hard).item() if n else 0.0
        # No frames: report full usage, so the diversity term is 0 rather than a spurious 1.
        prob_ppl = perplexity(torch.softmax(logits.float(), dim=-1)) if n else logits.sum() * 0.0 + logits.shape[1] * logits.shape[2]
        if self.training:
            onehot = straight_through_gumbel(logits.float(), self.temperature, sample_gumbels(logits.shape, x.device))
            onehot = onehot.type_as(logits)
            codes = onehot.argmax(dim=-1)
        else:
            onehot, codes = hard, hard_index
        q = torch.einsum("ngv,gvd->ngd", onehot, self.codebooks).reshape(n, self.codebook_dim)
        return QuantizerOutput(q, codes, prob_ppl, code_ppl, self.num_groups * self.num_vars, onehot)


def diversity_loss(prob_perplexity: Tensor, num_vars: int) -> Tensor:
    """L_d = (GV - sum_g exp(H(p_bar_g))) / GV: 0 at uniform usage, (GV - G) / GV at collapse."""
    return (num_vars - prob_perplexity) / num_vars
