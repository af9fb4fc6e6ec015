"""The upstream as the fine-tuning models use it: frozen parts, masking, one output sequence.

Policies (SPEC §4), all in this one module so that CTC and transducer share them:

* the conv feature encoder (``upstream.frontend``) is frozen throughout: its parameters
  get ``requires_grad=False``, so autograd records nothing for it (the same memory as
  running it under ``no_grad``) and the trainer's optimizer never sees it;
* the rest of the upstream is frozen for the first ``freeze_updates`` updates: the
  whole upstream runs under ``torch.no_grad()``, so its gradients stay ``None`` and the
  optimizer skips them (under DDP set ``trainer.find_unused_parameters: true``);
* time masking: span masks (``speechssl2.masking``) passed to the upstream, which
  swaps the masked frames for its learned ``mask_emb``; ``time_mask`` / ``channel_mask``
  are ``[prob, span]`` (the stationary SPEC sampler) or a sampler spec such as
  ``{sampler: fairseq, prob: 0.65, span: 10, min_masks: 2}`` (``build_masker``);
* channel masking: spans along D zeroed in the representation the head reads. The
  released recipes zero channels of the transformer *input*; our upstream has no
  argument for that, so we mask its output instead, which regularizes the head the same
  way and needs no second path through the upstream.
* dropout rates for fine-tuning (``upstream_overrides``): a loaded upstream keeps the
  rates it was pre-trained with unless overridden here, as fairseq's fine-tuning configs
  do (``dropout``, ``attention_dropout``, ``activation_dropout``, ``layerdrop``,
  ``dropout_input``); see ``set_dropout_rates``.

The head reads the top layer or a learned softmax-weighted sum of all hidden states.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from speechssl2.masking import MaskSpec, build_masker
from speechssl2.models import build_upstream
from speechssl2.models.attention import SelfAttention
from speechssl2.models.transformer import FeedForward

UpstreamSpec = Union[Mapping[str, Any], str]


def load_upstream(spec: UpstreamSpec) -> nn.Module:
    """A preset spec builds a randomly initialised upstream (from-scratch runs); a path loads one."""
    if isinstance(spec, Mapping):
        return build_upstream(spec)
    from speechssl2 import load_pretrained

    upstream, _ = load_pretrained(spec)
    return upstream


DROPOUT_RATES = ("dropout", "attention_dropout", "activation_dropout", "layerdrop", "feature_dropout")


def set_dropout_rates(upstream: nn.Module, rates: Mapping[str, float]) -> None:
    """Set dropout rates of a built or loaded upstream in place; the names are the encoder's arguments.

    * ``dropout``: every ``nn.Dropout`` of ``upstream.encoder`` except the feed-forward
      activation dropout (encoder input, residual branches, feed-forward output, conformer conv);
    * ``attention_dropout``: the attention-probability dropout of every ``SelfAttention``;
    * ``activation_dropout``: the dropout after every feed-forward activation;
    * ``layerdrop``: ``upstream.encoder.layerdrop``;
    * ``feature_dropout``: the dropout on the projected features (fairseq ``dropout_input``).

    An unknown name, a rate outside [0, 1) or a rate the encoder has no place for raises.
    """
    unknown = sorted(set(rates) - set(DROPOUT_RATES))
    if unknown:
        raise ValueError(f"upstream_overrides: unknown name(s) {unknown}; valid names: {', '.join(DROPOUT_RATES)}")
    for name, rate in rates.items():
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"upstream_overrides: {name} must be in [0, 1), got {rate!r}")
    encoder = upstream.encoder
    ffns = [m for m in encoder.modules() if isinstance(m, FeedForward)]
    activation_drops = {id(f.act_drop) for f in ffns}
    targets: Dict[str, Tuple[List[nn.Module], str]] = {  # name -> (modules, attribute holding the rate)
        "dropout": ([m for m in encoder.modules() if isinstance(m, nn.Dropout) and id(m) not in activation_drops], "p"),
        "attention_dropout": ([m for m in encoder.modules() if isinstance(m, SelfAttention)], "dropout"),
        "activation_dropout": ([f.act_drop for f in ffns], "p"),
        "layerdrop": ([encoder] if hasattr(encoder, "layerdrop") else [], "layerdrop"),
        "feature_dropout": ([upstream.feature_drop], "p"),
    }
    for name, rate in rates.items():
        modules, attribute = targets[name]
        if not modules:
            raise ValueError(f"upstream_overrides: the {type(encoder).__name__} encoder has no {name} to set")
        for module in modules:
            setattr(module, attribute, float(rate))


class WeightedLayerSum(nn.Module):
    """softmax(w) . [h_0, ..., h_L]: a learned mixture of all hidden states (SUPERB-style)."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, hidden_states: List[Tensor]) -> Tensor:
        if len(hidden_states) != self.weights.numel():
            raise ValueError(f"weighted sum expects {self.weights.numel()} hidden states, got {len(hidden_states)}")
        stacked = torch.stack(hidden_states, dim=0)  # (L, B, T, D)
        return torch.einsum("l,lbtd->btd", self.weights.softmax(0).to(stacked.dtype), stacked)


class FineTuneEncoder(nn.Module):
    """``(audio (B, S), audio_lens (B,)) -> (x (B, T, D), lengths (B,), padding_mask (B, T))``."""

    def __init__(
        self,
        upstream: UpstreamSpec,
        weighted_sum: bool = False,
        freeze_updates: int = 0,
        freeze_frontend: bool = True,
        time_mask: MaskSpec = (0.05, 10),
        channel_mask: MaskSpec = (0.0, 64),
        upstream_overrides: Optional[Dict[str, float]] = None,
    ) -> None:
        super().__init__()
        self.upstream = load_upstream(upstream)
        self.upstream_overrides = dict(upstream_overrides or {})
        set_dropout_rates(self.upstream, self.upstream_overrides)
        self.embed_dim: int = self.upstream.embed_dim
        self.freeze_updates = freeze_updates
        self.time_mask, self.channel_mask = build_masker(time_mask), build_masker(channel_mask)
        if freeze_frontend:
            self.upstream.frontend.requires_grad_(False)
        self.layer_sum: Optional[WeightedLayerSum] = None
        if weighted_sum:
            self.layer_sum = WeightedLayerSum(len(self.upstream.encoder.layers) + 1)
        self.num_updates = 0

    def set_num_updates(self, num_updates: int) -> None:
        self.num_updates = num_updates

    @property
    def upstream_frozen(self) -> bool:
        return self.num_updates < self.freeze_updates

    def forward(self, audio: Tensor, audio_lens: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        frames = self.upstream.frame_lengths(audio_lens)  # (B,)
        max_frames = int(self.upstream.frame_lengths(torch.tensor([audio.shape[1]]))[0])
        pad = torch.arange(max_frames, device=audio.device)[None, :] >= frames[:, None]  # (B, T)
        time_mask = None
        if self.training and self.time_mask.prob > 0:
            time_mask = self.time_mask(pad)
        with torch.no_grad() if self.upstream_frozen else nullcontext():
            out = self.upstream(audio, audio_lens, time_mask=time_mask)
        x = self.layer_sum(out.hidden_states) if self.layer_sum is not None else out.last_hidden_state  # (B, T, D)
        if self.training and self.channel_mask.prob > 0:
            mask = self.channel_mask.channel(x.shape[0], x.shape[-1], device=x.device)  # (B, D)
            x = x.masked_fill(mask[:, None, :], 0.0)
        return x, out.lengths, out.padding_mask

    def extra_repr(self) -> str:
        return (f"freeze_updates={self.freeze_updates}, time_mask={self.time_mask}, "
                f"channel_mask={self.channel_mask}, upstream_overrides={self.upstream_overrides}")
