"""HuBERT masked prediction of offline cluster IDs (also WavLM, and ILS-SSL via ``predict_layers``).

Logits are cosine similarities between a projected hidden state and one learned
embedding per cluster, divided by ``logit_temp`` (0.1). Cross-entropy on masked frames
(``unmasked_weight`` 0 as released). ILS-SSL is this objective with
``predict_layers: [4, 12]``: one projection per predicted layer and one term per layer;
cluster embeddings are shared unless ``separate_label_embeds`` gives each predicted
layer its own (UniSpeech ``--separate-label-embeds``, the released ILS BASE).

Terms: ``masked_ce_l{layer}`` (and ``unmasked_ce_l{layer}`` if ``unmasked_weight`` > 0),
``feature_pen``. Metrics: ``acc_masked_l{layer}``, ``acc_unmasked_l{layer}``.
Layer numbering follows ``UpstreamOutput.hidden_states``: 0 = encoder input, N = top.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from speechssl2.interfaces import ObjectiveOutput, UpstreamOutput
from speechssl2.objectives.common import check_time_mask, feature_penalty, unit
from speechssl2.registry import OBJECTIVES

IGNORE = -100


@OBJECTIVES.register("hubert")
class HubertObjective(nn.Module):
    """Owns ``final_proj`` (one per predicted layer) and ``label_embs`` (num_classes, final_dim)."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        final_dim: int = 256,
        logit_temp: float = 0.1,
        predict_layers: Optional[List[int]] = None,
        layer_weights: Optional[List[float]] = None,
        unmasked_weight: float = 0.0,
        feature_pen_weight: float = 10.0,
        max_length_diff: int = 1,
        separate_label_embeds: bool = False,
    ) -> None:
        super().__init__()
        layers = predict_layers if predict_layers is not None else [-1]
        weights = layer_weights if layer_weights is not None else [1.0] * len(layers)
        if not layers or len(weights) != len(layers):
            raise ValueError(
                f"hubert objective: predict_layers {layers} and layer_weights {weights} must be non-empty "
                "and of equal length"
            )
        self.predict_layers = layers  # -1 = top layer, resolved against the upstream's depth at forward
        self.layer_weights = weights
        self.num_classes = num_classes
        self.logit_temp = logit_temp
        self.unmasked_weight = unmasked_weight
        self.feature_pen_weight = feature_pen_weight
        self.max_length_diff = max_length_diff
        self.final_proj = nn.ModuleList(nn.Linear(embed_dim, final_dim) for _ in layers)
        self.label_embs = nn.Parameter(torch.empty(num_classes, final_dim))  # layer 0's (or every layer's)
        nn.init.uniform_(self.label_embs)
        self.extra_label_embs = nn.ParameterList(  # layers 1.. when separate_label_embeds
            nn.Parameter(nn.init.uniform_(torch.empty(num_classes, final_dim)))
            for _ in layers[1:] if separate_label_embeds
        )

    def forward(self, out: UpstreamOutput, time_mask: Tensor, batch: Dict[str, Any]) -> ObjectiveOutput:
        """batch["targets"]: (B, T') cluster IDs padded with -100; batch["target_lens"]: (B,)."""
        check_time_mask(time_mask, out, "hubert")
        targets = self.align_targets(batch, out)  # (B, T), -100 where no target
        masked = time_mask & (targets != IGNORE)  # (B, T)
        unmasked = ~time_mask & (targets != IGNORE)
        terms: Dict[str, Tensor] = {}
        weights: Dict[str, float] = {}
        metrics: Dict[str, float] = {}
        layers = self._resolve_layers(len(out.hidden_states))
        embs = [self.label_embs, *self.extra_label_embs] if len(self.extra_label_embs) else [self.label_embs] * len(layers)
        for proj, emb, layer, weight in zip(self.final_proj, embs, layers, self.layer_weights):
            hidden = out.hidden_states[layer]  # (B, T, D)
            ce, metrics[f"acc_masked_l{layer}"] = self._predict(proj, emb, hidden, targets, masked)
            terms[f"masked_ce_l{layer}"], weights[f"masked_ce_l{layer}"] = ce, weight
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.unmasked_weight > 0):
                ce, metrics[f"acc_unmasked_l{layer}"] = self._predict(proj, emb, hidden, targets, unmasked)
            if self.unmasked_weight > 0:
                terms[f"unmasked_ce_l{layer}"] = ce
                weights[f"unmasked_ce_l{layer}"] = weight * self.unmasked_weight
        if self.feature_pen_weight:
            terms["feature_pen"] = feature_penalty(out, "hubert")
            weights["feature_pen"] = self.feature_pen_weight
        return ObjectiveOutput(terms, metrics, sample_size=max(int(masked.sum()), 1), weights=weights)

    def _predict(self, proj: nn.Module, embs: Tensor, hidden: Tensor, targets: Tensor,
                 select: Tensor) -> tuple[Tensor, float]:
        """Mean cross-entropy and accuracy over the selected frames; (zero, 0.0) when none."""
        if not select.any():
            return hidden.sum() * 0.0 + embs.sum() * 0.0, 0.0
        logits = self.logits(proj(hidden[select]), embs)  # (N, C)
        labels = targets[select]  # (N,)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean().item()
        return F.cross_entropy(logits, labels), accuracy

    def logits(self, projected: Tensor, embs: Optional[Tensor] = None) -> Tensor:
        """(N, F) -> (N, C): cosine similarity to every cluster embedding (``label_embs`` unless given) / logit_temp.

        Unit vectors times a matrix: ``F.cosine_similarity``'s formula (each side over its norm
        clamped at 1e-8) without its (N, C, F) broadcast, which took most of a small model's step.
        """
        embs = self.label_embs if embs is None else embs
        sim = unit(projected.float()) @ unit(embs.float()).T  # (N, C)
        return sim / self.logit_temp

    def align_targets(self, batch: Dict[str, Any], out: UpstreamOutput) -> Tensor:
        """Targets cut or padded to the upstream's T frames; a label rate that disagrees raises.

        Label extraction and the conv frontend may round an utterance's length differently
        by a frame or so (``max_length_diff``); anything more means the labels were made at
        another rate than the model's frames, which silently misaligns every target.
        """
        if "targets" not in batch or "target_lens" not in batch:
            raise ValueError("hubert: the batch has no 'targets'/'target_lens' (cluster IDs per frame)")
        targets, target_lens = batch["targets"], batch["target_lens"].to(out.lengths.device)
        diff = (target_lens - out.lengths).abs()
        if (diff > self.max_length_diff).any():
            raise ValueError(self._rate_error(batch, out, int(diff.argmax())))
        num_frames = out.padding_mask.shape[1]
        aligned = torch.full_like(out.padding_mask, IGNORE, dtype=torch.long)  # (B, T)
        keep = min(num_frames, targets.shape[1])
        aligned[:, :keep] = targets[:, :keep]
        usable = torch.minimum(target_lens, out.lengths)  # (B,)
        aligned[torch.arange(num_frames, device=aligned.device)[None, :] >= usable[:, None]] = IGNORE
        bad = (aligned != IGNORE) & ((aligned < 0) | (aligned >= self.num_classes))
        if bad.any():
            utt = int(bad.any(dim=1).nonzero()[0])
            raise ValueError(
                f"hubert: utterance {_utt_name(batch, utt)} has target {int(aligned[bad][0])} outside "
                f"[0, {self.num_classes}) (num_classes)"
            )
        return aligned

    def _rate_error(self, batch: Dict[str, Any], out: UpstreamOutput, utt: int) -> str:
        labels, frames = int(batch["target_lens"][utt]), int(out.lengths[utt])
        msg = (
            f"hubert: utterance {_utt_name(batch, utt)} has {labels} targets but the upstream made {frames} "
            f"frames (ratio {labels / max(frames, 1):.2f})"
        )
        if "sample_rate" in batch and "audio_lens" in batch:
            seconds = float(batch["audio_lens"][utt]) / float(batch["sample_rate"])
            msg += f": label rate {labels / seconds:.1f} Hz vs frame rate {frames / seconds:.1f} Hz"
        return msg + "; the targets must be extracted at the model's frame rate"

    def _resolve_layers(self, num_states: int) -> List[int]:
        """``predict_layers`` as hidden-state indices, each at most once.

        Terms are named by resolved layer, so two entries naming one layer (``[2, -1]`` on
        a 2-block upstream) would silently keep only the second term and its weight.
        """
        resolved = [self._resolve(layer, num_states) for layer in self.predict_layers]
        repeated = sorted({layer for layer in resolved if resolved.count(layer) > 1})
        if repeated:
            entries = [entry for entry, layer in zip(self.predict_layers, resolved) if layer in repeated]
            raise ValueError(
                f"hubert: predict_layers {self.predict_layers} name layer(s) {repeated} more than once "
                f"(entries {entries}; the upstream has hidden states 0..{num_states - 1}, -1 = {num_states - 1})"
            )
        return resolved

    @staticmethod
    def _resolve(layer: int, num_states: int) -> int:
        resolved = layer if layer >= 0 else num_states + layer
        if not 0 <= resolved < num_states:
            raise ValueError(
                f"hubert: predict layer {layer} does not exist; the upstream has hidden states 0..{num_states - 1}"
            )
        return resolved


def _utt_name(batch: Dict[str, Any], index: int) -> str:
    """The utterance's id if the batch carries ids, else its batch index."""
    for key in ("ids", "cut_ids", "utt_ids"):
        if key in batch:
            return repr(batch[key][index])
    return f"#{index} of the batch"
