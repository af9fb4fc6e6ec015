"""The SSL pre-training model: upstream + span masking + any number of weighted objectives.

A config lists objectives by registry key with their weight::

    model:
      name: ssl
      upstream: {name: hubert_tiny}
      masking: {prob: 0.08, span: 10}
      objectives:
        - {name: hubert, weight: 1.0, num_classes: 100}
        - {name: wav2vec2, weight: 0.5, feature_pen_weight: 0}   # combined without new code; one feature penalty

``masking`` picks a span-mask sampler (``speechssl2.masking``): ``{prob: 0.08, span: 10}`` is
the stationary process (``prob`` = start probability per frame); ``{sampler: fairseq,
prob: 0.8, span: 10, min_masks: 2}`` is fairseq's ``compute_mask_indices`` (``prob`` =
fairseq's ``mask_prob``), the LibriSpeech paper configs' choice.

The span mask is drawn once per batch and shared by every objective. Each objective
gets the upstream's sizes it asks for (``embed_dim``, ``feature_dim``, ``frontend_field_frames``)
by parameter name.

Combining objectives: the feature penalty regularizes the one shared upstream, so only
one objective may add it (the others set ``feature_pen_weight: 0``); two raise rather
than silently doubling it. The step's ``sample_size`` (the batch's weight when the
trainer averages micro-batches and ranks) is the mean of the objectives' sample sizes:
objectives under one mask count nearly the same masked frames, and the mean does not
depend on the order they are listed in. wav2vec 2.0 + masked prediction of its own
quantizer's codes is the ``w2v_bert`` objective on a transformer upstream (two listed
objectives never share a quantizer).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Union

import torch
import torch.nn as nn

from speechssl2.interfaces import ObjectiveOutput, StepOutput
from speechssl2.masking import build_masker
from speechssl2.models.functional import padding_mask
from speechssl2.models.upstream import build_upstream
from speechssl2.registry import MODELS, OBJECTIVES

UPSTREAM_SIZES: Dict[str, Callable[[nn.Module], Optional[int]]] = {
    "embed_dim": lambda upstream: upstream.embed_dim,
    "feature_dim": lambda upstream: upstream.feature_dim,
    "frontend_field_frames": lambda upstream: getattr(upstream.frontend, "field_frames", None),  # wav2vec offset
}


@MODELS.register("ssl")
class SSLModel(nn.Module):
    """``forward(batch) -> StepOutput``; loss = sum_obj weight_obj * sum_term weight_term * term."""

    def __init__(
        self,
        upstream: Union[Dict[str, Any], nn.Module],
        objectives: List[Dict[str, Any]],
        masking: Dict[str, Any],
    ) -> None:
        super().__init__()
        self.upstream = build_upstream(upstream) if isinstance(upstream, dict) else upstream
        self.masker = build_masker(masking)
        if not objectives:
            raise ValueError("ssl model: 'objectives' is empty; list at least one, e.g. [{name: hubert, weight: 1.0}]")
        self.objectives = nn.ModuleDict()
        self.objective_weights: Dict[str, float] = {}
        for spec in objectives:
            name = spec.get("name")
            if name in self.objectives:
                raise ValueError(f"ssl model: objective {name!r} is listed twice")
            kwargs = {k: v for k, v in spec.items() if k != "weight"}
            self.objectives[name] = OBJECTIVES.build(kwargs, **self._sizes_for(OBJECTIVES.get(name), kwargs))
            self.objective_weights[name] = float(spec.get("weight", 1.0))

    def _sizes_for(self, factory: Any, kwargs: Dict[str, Any]) -> Dict[str, Optional[int]]:
        """The upstream sizes this objective's constructor takes (and the config does not set)."""
        params = inspect.signature(factory).parameters
        return {k: size(self.upstream) for k, size in UPSTREAM_SIZES.items() if k in params and k not in kwargs}

    def set_num_updates(self, num_updates: int) -> None:
        """Called by the trainer every update (the Gumbel temperature anneals from it)."""
        for objective in self.objectives.values():
            if hasattr(objective, "set_num_updates"):
                objective.set_num_updates(num_updates)

    def forward(self, batch: Dict[str, Any], generator: Optional[torch.Generator] = None) -> StepOutput:
        """batch: ``audio`` (B, S), ``audio_lens`` (B,), plus whatever the objectives read."""
        audio, audio_lens = batch["audio"], batch["audio_lens"]
        frames = self.upstream.frame_lengths(audio_lens)  # (B,)
        num_frames = int(self.upstream.frame_lengths(torch.tensor([audio.shape[1]]))[0])
        time_mask = self.masker(padding_mask(frames, num_frames), generator)  # (B, T)
        out = self.upstream(audio, audio_lens, time_mask=time_mask)
        results = {name: objective(out, time_mask, batch) for name, objective in self.objectives.items()}
        step = self._combine(results)
        step.metrics["mask_ratio"] = time_mask.sum().item() / max(int(frames.sum()), 1)
        return step

    def _combine(self, results: Dict[str, ObjectiveOutput]) -> StepOutput:
        penalized = [name for name, result in results.items() if "feature_pen" in result.terms]
        if len(penalized) > 1:
            raise ValueError(
                f"ssl model: objectives {penalized} each add the feature penalty of the one shared upstream; "
                "keep it in one and set feature_pen_weight: 0 in the others"
            )
        terms: Dict[str, torch.Tensor] = {}
        metrics: Dict[str, float] = {}
        losses = []
        for name, result in results.items():
            losses.append(self.objective_weights[name] * result.weighted_loss())
            terms.update({f"{name}/{key}": value.detach() for key, value in result.terms.items()})
            metrics.update({f"{name}/{key}": value for key, value in result.metrics.items()})
        sample_size = round(sum(result.sample_size for result in results.values()) / len(results))
        return StepOutput(loss=sum(losses), terms=terms, metrics=metrics, sample_size=max(sample_size, 1))
