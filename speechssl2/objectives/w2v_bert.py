"""w2v-BERT objective (Chung et al. 2021): contrastive module + masked-prediction module.

The upstream's conformer stack is split in two by ``contrastive_layers`` (N): hidden
state N (the output of the first N blocks) is the contrastive module's context; the
top hidden state (after the remaining M blocks, fed by hidden state N) is the
masked-prediction module's output. Masked input frames should be random vectors
(the ``w2v_bert`` presets set the upstream's ``mask_mode: random``).

* Quantizer (wav2vec 2.0 Gumbel; paper: one codebook, V=1024) on the *unmasked*
  subsampled features at masked frames.
* Contrastive task at masked frames, as in wav2vec 2.0: cosine(context, quantized) / 0.1
  against distractors from the other masked frames of the utterance; L_c = L_w + 0.1 L_d.
* Masked prediction: Linear(D -> G*V) + softmax over the quantizer's token IDs at masked
  frames (one softmax per codebook). By default the targets are integer IDs and carry no
  gradient; ``target_grad: true`` uses the quantizer's straight-through one-hot instead
  (same loss value), so L_m also trains the quantizer (and can pull it into collapse).
* L = beta * L_c + gamma * L_m (``contrastive_weight``, ``mlm_weight``). ``contrastive:
  false`` drops L_c altogether (the paper's collapse ablation): the quantizer then gets no
  gradient and only the shared frontend can move its targets. On tiny FSDD runs that
  collapses the codes within ~25 updates; L_c with the paper's diversity weight 0.1 kept
  them diverse for only 4 of 6 seeds (a collapsed quantizer makes L_w ~0, as every
  distractor equals its positive), 1.0 for all six (tests/objectives/test_w2v_bert_objective.py).
* wav2vec 2.0 + masked prediction is this objective on a transformer upstream (e.g.
  ``wav2vec2_tiny``, learned mask embedding, ``feature_pen_weight: 10``; recipe config
  ``pretrain_wav2vec2_mlm.yaml``). Listing ``wav2vec2`` and ``w2v_bert`` as two objectives
  does not give it: each objective owns its quantizer, so the MLM targets would not be
  the codes the contrastive task trains.

Terms: ``contrastive``, ``diversity`` (only with ``contrastive``), ``mlm``, ``feature_pen``
(if ``feature_pen_weight`` > 0). Weights: beta, beta * diversity_weight, gamma,
feature_pen_weight. Metrics: ``acc_masked`` (contrastive), ``mlm_acc``, ``code_ppl``,
``prob_ppl``, ``temperature``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from speechssl2.interfaces import ObjectiveOutput, UpstreamOutput
from speechssl2.objectives.common import check_time_mask, feature_penalty
from speechssl2.objectives.contrastive import contrastive_accuracy, contrastive_logits, sample_negatives
from speechssl2.quantizers.gumbel import diversity_loss
from speechssl2.registry import OBJECTIVES, QUANTIZERS


def contrastive_loss(logits: Tensor, fallback: Tensor) -> Tensor:
    """Cross-entropy with the positive in column 0; ``fallback * 0`` (graph kept) when no step is masked."""
    if logits.shape[0] == 0:
        return fallback.sum() * 0.0
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def masked_prediction_loss(logits: Tensor, targets: Tensor) -> tuple[Tensor, float]:
    """Mean cross-entropy over frames and codebooks, and accuracy.

    logits: (N, G, V); targets: (N, G) long token IDs, or (N, G, V) one-hot rows (soft-target
    cross-entropy: the same value, with gradients into the one-hot if it carries any).
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0, 0.0
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (N, G, V)
    onehot = targets.float() if targets.dim() == 3 else F.one_hot(targets, logits.shape[-1]).float()
    ce = -(onehot * log_probs).sum(dim=-1).mean()
    accuracy = (logits.argmax(dim=-1) == onehot.argmax(dim=-1)).float().mean().item()
    return ce, accuracy


@OBJECTIVES.register("w2v_bert")
class W2vBertObjective(nn.Module):
    """Owns the quantizer, ``project_q``, ``final_proj`` (contrastive) and ``mlm_head`` (D -> G*V)."""

    def __init__(
        self,
        embed_dim: int,
        feature_dim: int,
        contrastive_layers: int,
        final_dim: int = 256,
        quantizer: Optional[Dict[str, Any]] = None,
        num_negatives: int = 100,
        logit_temp: float = 0.1,
        diversity_weight: float = 0.1,
        contrastive: bool = True,
        contrastive_weight: float = 1.0,
        mlm_weight: float = 1.0,
        target_grad: bool = False,
        feature_pen_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if contrastive_layers < 1:
            raise ValueError(f"w2v_bert objective: contrastive_layers must be >= 1, got {contrastive_layers}")
        if num_negatives < 1:
            raise ValueError(f"w2v_bert objective: num_negatives must be >= 1, got {num_negatives}")
        spec = {"name": "gumbel", "codebook_dim": final_dim, "num_groups": 1, "num_vars": 1024, **(quantizer or {})}
        self.quantizer = QUANTIZERS.build(spec, input_dim=feature_dim)
        self.contrastive_layers = contrastive_layers
        self.contrastive, self.target_grad = contrastive, target_grad
        self.num_negatives, self.logit_temp = num_negatives, logit_temp
        if contrastive:
            self.project_q = nn.Linear(self.quantizer.codebook_dim, final_dim)
            self.final_proj = nn.Linear(embed_dim, final_dim)
        self.mlm_head = nn.Linear(embed_dim, self.quantizer.num_groups * self.quantizer.num_vars)
        self.weights = {"contrastive": contrastive_weight, "diversity": contrastive_weight * diversity_weight,
                        "mlm": mlm_weight, "feature_pen": feature_pen_weight}

    def set_num_updates(self, num_updates: int) -> None:
        self.quantizer.set_num_updates(num_updates)

    def forward(self, out: UpstreamOutput, time_mask: Tensor, batch: Dict[str, Any]) -> ObjectiveOutput:
        """out.features (B, T, C) unmasked; hidden_states[N] contrastive context; hidden_states[-1] MLM output."""
        check_time_mask(time_mask, out, "w2v_bert")
        if out.features is None:
            raise ValueError("w2v_bert: the upstream returned no features (B, T, C) to quantize")
        top = len(out.hidden_states) - 1
        if not self.contrastive_layers < top:
            raise ValueError(
                f"w2v_bert: contrastive_layers={self.contrastive_layers} leaves no block for masked prediction; "
                f"the upstream has {top} blocks (hidden states 0..{top})"
            )
        quantized = self.quantizer(out.features[time_mask])  # q (N, codebook_dim), codes (N, G)
        terms: Dict[str, Tensor] = {}
        metrics: Dict[str, float] = {}
        if self.contrastive:
            terms["contrastive"], metrics["acc_masked"] = self._contrastive(out, time_mask, quantized.q)
            terms["diversity"] = diversity_loss(quantized.prob_perplexity, quantized.num_vars)
        mlm_logits = self.mlm_head(out.hidden_states[-1][time_mask])  # (N, G*V)
        mlm_logits = mlm_logits.view(-1, self.quantizer.num_groups, self.quantizer.num_vars)  # (N, G, V)
        targets = quantized.onehot if self.target_grad else quantized.codes.detach()  # (N, G, V) | (N, G)
        terms["mlm"], metrics["mlm_acc"] = masked_prediction_loss(mlm_logits, targets)
        if self.weights["feature_pen"]:
            terms["feature_pen"] = feature_penalty(out, "w2v_bert")
        metrics.update(code_ppl=quantized.code_perplexity, prob_ppl=float(quantized.prob_perplexity.detach()),
                       temperature=self.quantizer.temperature)
        weights = {k: v for k, v in self.weights.items() if k in terms}
        return ObjectiveOutput(terms, metrics, sample_size=max(int(time_mask.sum()), 1), weights=weights)

    def _contrastive(self, out: UpstreamOutput, time_mask: Tensor, q: Tensor) -> tuple[Tensor, float]:
        """wav2vec 2.0 contrastive loss with the contrastive module's output as context."""
        positives = self.project_q(q)  # (N, F)
        context = self.final_proj(out.hidden_states[self.contrastive_layers][time_mask])  # (N, F)
        index, valid = sample_negatives(time_mask, self.num_negatives)  # (N, K)
        logits = contrastive_logits(context, positives, index, valid, self.logit_temp)
        return contrastive_loss(logits, context), contrastive_accuracy(logits.detach())
