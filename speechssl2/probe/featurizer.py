"""The frozen upstream and the learned layer mixture that turn audio into probe features.

``FrozenUpstream`` runs an upstream in eval mode under ``torch.no_grad`` with
``requires_grad=False`` on every parameter, so nothing a probe does can update it and
its hidden states can be computed once and cached. ``Featurizer`` is the only learned
part between upstream and downstream: softmax weights over all hidden states (the
SUPERB recipe), which afterwards say which layers a task found useful.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.finetune.encoder import WeightedLayerSum


class FrozenUpstream(nn.Module):
    """``(wav (B, S), lengths (B,)) -> (hidden (B, L, T, D), frames (B,))`` without gradients."""

    def __init__(self, upstream: nn.Module) -> None:
        super().__init__()
        self.upstream = upstream.requires_grad_(False).eval()
        self.embed_dim: int = upstream.embed_dim
        self.num_layers: int = len(upstream.encoder.layers) + 1  # projected input + every layer

    def train(self, mode: bool = True) -> "FrozenUpstream":
        """Stay in eval mode: dropout/LayerDrop would make cached features differ from fresh ones."""
        super().train(mode)
        self.upstream.eval()
        return self

    @torch.no_grad()
    def forward(self, wav: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.upstream(wav, lengths)
        if len(out.hidden_states) != self.num_layers:
            raise RuntimeError(f"upstream returned {len(out.hidden_states)} hidden states, "
                               f"expected {self.num_layers} (encoder layers + 1)")
        return torch.stack(out.hidden_states, dim=1), out.lengths  # (B, L, T, D), (B,)


class Featurizer(nn.Module):
    """``hidden (B, L, T, D) -> (B, T, D)``: softmax(w) . [LN(h_0), ..., LN(h_{L-1})].

    With ``layer_norm`` each hidden state is normalized (no learned affine) before mixing,
    so a layer with a large activation scale cannot win merely by its magnitude and the
    weights stay comparable across layers and upstreams.
    """

    def __init__(self, num_layers: int, layer_norm: bool = True) -> None:
        super().__init__()
        self.layer_sum = WeightedLayerSum(num_layers)
        self.layer_norm = layer_norm

    def forward(self, hidden: Tensor) -> Tensor:
        if hidden.dim() != 4:
            raise ValueError(f"featurizer expects hidden states (B, L, T, D), got shape {tuple(hidden.shape)}")
        if self.layer_norm:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        return self.layer_sum(list(hidden.unbind(dim=1)))  # (B, T, D)

    def layer_weights(self) -> List[float]:
        """The current softmax weight of every layer (sums to 1), for reports and plots."""
        return self.layer_sum.weights.detach().softmax(0).tolist()
