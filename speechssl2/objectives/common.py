"""Small pieces every SSL objective shares."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from speechssl2.interfaces import UpstreamOutput


def feature_penalty(out: UpstreamOutput, objective: str) -> Tensor:
    """The upstream's mean squared raw frontend feature (weighted 10 in wav2vec 2.0 / HuBERT)."""
    if out.features_pen is None:
        raise ValueError(
            f"{objective}: the upstream returned no features_pen; set feature_pen_weight: 0 "
            "or use an upstream with a conv frontend"
        )
    return out.features_pen


def check_time_mask(time_mask: Tensor, out: UpstreamOutput, objective: str) -> None:
    """The mask must cover the upstream's frames and never touch padding."""
    if time_mask.shape != out.padding_mask.shape:
        raise ValueError(
            f"{objective}: time_mask has shape {tuple(time_mask.shape)} but the upstream produced "
            f"{tuple(out.padding_mask.shape)} frames"
        )
    if (time_mask & out.padding_mask).any():
        raise ValueError(f"{objective}: time_mask marks padding frames as masked")


def unit(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x over its L2 norm along the last axis, the norm clamped at ``eps``: ``F.cosine_similarity``'s
    convention, so that a matrix product of unit vectors gives its values without its broadcast."""
    return F.normalize(x, dim=-1, eps=eps)
