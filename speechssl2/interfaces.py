"""The contracts between families: what encoders, upstreams and trainables return.

Mask convention everywhere: bool tensors, True = padding (or True = masked for
time/channel masks). Shapes in comments: B batch, T frames, D model dim.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from torch import Tensor


@dataclass
class EncoderOutput:
    """What every registered encoder returns."""

    x: Tensor  # (B, T, D) output of the last layer (final LayerNorm applied for pre-LN)
    lengths: Tensor  # (B,) valid frames
    hidden_states: List[Tensor]  # [encoder input after positional conv, layer 1, ..., layer N]


@dataclass
class UpstreamOutput:
    """What every upstream (frontend + projection + encoder) returns from ``forward(wav, lengths)``."""

    # (B, T, D) each: the encoder input, then every layer's output (HF convention). The input is
    # taken after the convolutional positional embedding (and its LayerNorm in post-LN models).
    hidden_states: List[Tensor]
    lengths: Tensor  # (B,) valid frames
    padding_mask: Tensor  # (B, T) bool, True = padding
    features: Optional[Tensor] = None  # (B, T, C) normalized frontend features before projection
    features_pen: Optional[Tensor] = None  # scalar: mean of squared raw frontend features

    @property
    def last_hidden_state(self) -> Tensor:
        return self.hidden_states[-1]


@dataclass
class ObjectiveOutput:
    """What an SSL objective returns: named, unweighted loss terms and health metrics."""

    terms: Dict[str, Tensor]  # e.g. {"contrastive": ..., "diversity": ..., "feature_pen": ...}
    metrics: Dict[str, float] = field(default_factory=dict)  # e.g. {"acc_masked": 0.3, "code_ppl": 41.0}
    sample_size: int = 1  # frames (or utterances) the terms are averaged over
    weights: Dict[str, float] = field(default_factory=dict)  # the objective's own weight per term; missing = 1.0

    def weighted_loss(self) -> Tensor:
        """sum_k weights[k] * terms[k]: the objective's loss before its weight in the config."""
        return sum(self.weights.get(k, 1.0) * v for k, v in self.terms.items())  # type: ignore[return-value]


@dataclass
class StepOutput:
    """What a trainable model returns from ``forward(batch)``: the trainer needs nothing else."""

    loss: Tensor  # scalar, weighted sum of terms, the thing to back-propagate
    terms: Dict[str, Tensor] = field(default_factory=dict)  # named components, for logging
    metrics: Dict[str, float] = field(default_factory=dict)
    sample_size: int = 1
