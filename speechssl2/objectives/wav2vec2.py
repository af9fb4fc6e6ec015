"""wav2vec 2.0 objective: contrastive task over masked steps against quantized targets.

Terms (unweighted; ``ObjectiveOutput.weights`` carries alpha = 0.1 and 10):
``contrastive`` (mean over masked steps), ``diversity`` ((GV - prob perplexity) / GV),
``feature_pen`` (mean squared raw conv features).
Metrics: ``acc_masked`` (positive beats every distractor), ``code_ppl``, ``prob_ppl``,
``temperature``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from speechssl2.interfaces import ObjectiveOutput, UpstreamOutput
from speechssl2.objectives.common import check_time_mask, feature_penalty
from speechssl2.objectives.contrastive import contrastive_accuracy, contrastive_logits, sample_negatives
from speechssl2.quantizers.gumbel import diversity_loss
from speechssl2.registry import OBJECTIVES, QUANTIZERS


@OBJECTIVES.register("wav2vec2")
class Wav2Vec2Objective(nn.Module):
    """Owns the quantizer, ``project_q`` (codebook -> final_dim) and ``final_proj`` (D -> final_dim).

    quantizer: QUANTIZERS spec without ``input_dim`` (default: gumbel, G=2, V=320,
    codebook_dim=final_dim, temperature 2 -> 0.5 by x0.999995 per update).
    """

    def __init__(
        self,
        embed_dim: int,
        feature_dim: int,
        final_dim: int = 256,
        quantizer: Optional[Dict[str, Any]] = None,
        num_negatives: int = 100,
        logit_temp: float = 0.1,
        diversity_weight: float = 0.1,
        feature_pen_weight: float = 10.0,
    ) -> None:
        super().__init__()
        if num_negatives < 1:
            raise ValueError(f"wav2vec2 objective: num_negatives must be >= 1, got {num_negatives}")
        spec = {"name": "gumbel", "codebook_dim": final_dim, **(quantizer or {})}
        self.quantizer = QUANTIZERS.build(spec, input_dim=feature_dim)
        self.project_q = nn.Linear(self.quantizer.codebook_dim, final_dim)
        self.final_proj = nn.Linear(embed_dim, final_dim)
        self.num_negatives = num_negatives
        self.logit_temp = logit_temp
        self.weights = {"contrastive": 1.0, "diversity": diversity_weight, "feature_pen": feature_pen_weight}

    def set_num_updates(self, num_updates: int) -> None:
        self.quantizer.set_num_updates(num_updates)

    def forward(self, out: UpstreamOutput, time_mask: Tensor, batch: Dict[str, Any],
                negatives: Optional[Tuple[Tensor, Tensor]] = None) -> ObjectiveOutput:
        """out.features: (B, T, C) unmasked features; out.hidden_states[-1]: (B, T, D) context.

        negatives: ``(index, valid)``, each (N, K), as ``sample_negatives(time_mask, K)`` returns
        them (indices into the masked steps in ``time_mask.nonzero()`` order); drawn here when None.
        """
        check_time_mask(time_mask, out, "wav2vec2")
        if out.features is None:
            raise ValueError("wav2vec2: the upstream returned no features (B, T, C) to quantize")
        quantized = self.quantizer(out.features[time_mask])  # q: (N, codebook_dim)
        positives = self.project_q(quantized.q)  # (N, F)
        context = self.final_proj(out.hidden_states[-1][time_mask])  # (N, F)
        if negatives is None:
            negatives = sample_negatives(time_mask, self.num_negatives)
        index, valid = negatives  # (N, K) each
        if index.shape != (context.shape[0], self.num_negatives) or valid.shape != index.shape:
            raise ValueError(f"wav2vec2: negatives must be (index, valid) of shape ({context.shape[0]}, "
                             f"{self.num_negatives}), got {tuple(index.shape)} and {tuple(valid.shape)}")
        logits = contrastive_logits(context, positives, index, valid, self.logit_temp)
        num_masked = logits.shape[0]
        if num_masked:
            contrastive = F.cross_entropy(logits, torch.zeros(num_masked, dtype=torch.long, device=logits.device))
        else:  # nothing masked in this batch: a zero that still reaches every parameter's graph
            contrastive = context.sum() * 0.0
        terms = {
            "contrastive": contrastive,
            "diversity": diversity_loss(quantized.prob_perplexity, quantized.num_vars),
        }
        if self.weights["feature_pen"]:
            terms["feature_pen"] = feature_penalty(out, "wav2vec2")
        metrics = {
            "acc_masked": contrastive_accuracy(logits.detach()),
            "code_ppl": quantized.code_perplexity,
            "prob_ppl": float(quantized.prob_perplexity.detach()),
            "temperature": self.quantizer.temperature,
        }
        return ObjectiveOutput(terms, metrics, sample_size=max(num_masked, 1), weights=dict(self.weights))
