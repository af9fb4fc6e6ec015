"""One model interface for every upstream: frontend -> LayerNorm + Linear -> (mask) -> encoder.

``forward(wav (B, S), lengths (B,), time_mask (B, T) | None) -> UpstreamOutput``. The
pre-training objectives compute span masks themselves and pass them in as
``time_mask``; masked frames are replaced (after projection) by the learned ``mask_emb``
(``mask_mode: learned``; wav2vec 2.0, HuBERT, WavLM) or by a fresh standard-normal
vector per masked frame and forward pass (``mask_mode: random``; w2v-BERT).

``feature_grad_mult`` scales the gradient that reaches the frontend (forward unchanged),
fairseq's ``GradMultiply``: 0.1 in the released wav2vec 2.0 / HuBERT BASE pre-training
configs (fairseq ``feature_grad_mult``), 1.0 (default) leaves it alone, 0.0 runs the
frontend without gradients. The feature penalty's gradient is scaled too, as in fairseq.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Literal, Mapping, Optional

import torch
from torch import Tensor, nn

from speechssl2.interfaces import UpstreamOutput
from speechssl2.models.functional import normalize_waveform, padding_mask
from speechssl2.registry import ENCODERS, FRONTENDS, PRESETS

SPEC_KEYS = ("frontend", "encoder", "normalize_waveform", "feature_dropout", "mask_mode", "feature_grad_mult")

MaskMode = Literal["learned", "random"]


class GradMultiply(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:  # type: ignore[override]
        return grad * ctx.scale, None


class Upstream(nn.Module):
    """Frontend + feature projection + encoder, with the checks every caller needs.

    ``hidden_states`` follow HF's convention so layer indices mean the same in both:
    ``hidden_states[0]`` is the encoder input after the positional convolution (and, in
    the post-LN BASE layout, its LayerNorm), not the bare projected features; the
    encoders without a positional conv (conformers, wav2vec) give their input there.
    ``hidden_states[i]`` is the output of layer ``i``, the last one after any final LayerNorm.
    """

    def __init__(self, frontend: nn.Module, encoder: nn.Module, normalize_waveform: bool = False,
                 feature_dropout: float = 0.0, mask_mode: MaskMode = "learned",
                 feature_grad_mult: float = 1.0) -> None:
        super().__init__()
        if not feature_grad_mult >= 0.0:
            raise ValueError(f"upstream: feature_grad_mult must be >= 0, got {feature_grad_mult!r}")
        self.feature_grad_mult = float(feature_grad_mult)
        self.frontend, self.encoder = frontend, encoder
        self.feature_dim: int = frontend.output_dim  # C
        self.embed_dim: int = encoder.embed_dim  # D
        self.normalize_waveform = normalize_waveform
        self.feature_norm = nn.LayerNorm(self.feature_dim)
        self.feature_proj = nn.Linear(self.feature_dim, self.embed_dim)
        self.feature_drop = nn.Dropout(feature_dropout)
        if mask_mode not in ("learned", "random"):
            raise ValueError(f"upstream: mask_mode must be 'learned' or 'random', got {mask_mode!r}")
        self.mask_mode = mask_mode
        # "random" has no mask embedding at all: no parameter that never gets a gradient.
        self.mask_emb = nn.Parameter(torch.empty(self.embed_dim).uniform_()) if mask_mode == "learned" else None
        self.spec: Dict[str, Any] = {}  # the resolved spec, filled by build_upstream (saved in checkpoints)

    @property
    def min_samples(self) -> int:
        """Shortest input (samples) that yields one frame: the frontend's receptive field."""
        return self.frontend.min_samples

    def frame_lengths(self, sample_lengths: Tensor) -> Tensor:
        """(B,) samples -> (B,) frames."""
        return self.frontend.frame_lengths(sample_lengths)

    def forward(self, wav: Tensor, lengths: Tensor, time_mask: Optional[Tensor] = None) -> UpstreamOutput:
        self._check_input(wav, lengths)
        if self.normalize_waveform:
            wav = normalize_waveform(wav, lengths)
        if self.feature_grad_mult > 0.0:
            raw, frames = self.frontend(wav, lengths)  # (B, T, C), (B,)
            if self.feature_grad_mult != 1.0:
                raw = GradMultiply.apply(raw, self.feature_grad_mult)
        else:
            with torch.no_grad():
                raw, frames = self.frontend(wav, lengths)
        pad = padding_mask(frames, raw.shape[1])  # (B, T)
        valid = (~pad)[..., None]
        features_pen = (raw.float() ** 2 * valid).sum() / (valid.sum() * raw.shape[-1])
        features = self.feature_norm(raw)  # (B, T, C)
        x = self.feature_drop(self.feature_proj(features))  # (B, T, D)
        if time_mask is not None:
            if time_mask.shape != pad.shape or time_mask.dtype != torch.bool:
                raise ValueError(f"time_mask must be a bool tensor of shape {tuple(pad.shape)} (B, T), "
                                 f"got {time_mask.dtype} {tuple(time_mask.shape)}")
            fill = self.mask_emb.to(x.dtype) if self.mask_emb is not None else torch.randn_like(x)  # (D,) | (B, T, D)
            x = torch.where(time_mask[..., None], fill, x)
        out = self.encoder(x, frames)
        return UpstreamOutput(hidden_states=out.hidden_states, lengths=frames, padding_mask=pad,
                              features=features, features_pen=features_pen)

    def _check_input(self, wav: Tensor, lengths: Tensor) -> None:
        if wav.dim() != 2:
            raise ValueError(f"upstream expects a waveform batch of shape (B, S), got shape {tuple(wav.shape)}"
                             + (" (drop the channel axis: wav[:, 0])" if wav.dim() == 3 else ""))
        if wav.shape[0] == 0:
            raise ValueError("upstream got an empty batch (B == 0): pass at least one utterance")
        if lengths.shape != (wav.shape[0],):
            raise ValueError(f"lengths must have shape ({wav.shape[0]},), got {tuple(lengths.shape)}")
        if int(lengths.max()) > wav.shape[1]:
            raise ValueError(f"lengths {lengths.tolist()} exceed the padded length {wav.shape[1]}")
        short = (lengths < self.min_samples).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"utterance(s) {short} are shorter than the receptive field: got {lengths[short].tolist()} "
                f"samples, the minimum length is {self.min_samples} samples"
            )


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Recursive dict merge (overrides win); a new ``name`` in a sub-spec replaces it whole."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        same_kind = isinstance(out.get(key), dict) and isinstance(value, Mapping)
        if same_kind and value.get("name", out[key].get("name")) == out[key].get("name"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_spec(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"name": preset, **overrides}`` -> the full spec (preset merged with the overrides)."""
    if "name" not in spec:
        raise ValueError(f"upstream spec {dict(spec)!r} has no 'name'; valid presets: {', '.join(PRESETS.keys())}")
    unknown = sorted(set(spec) - set(SPEC_KEYS) - {"name"})
    if unknown:
        raise ValueError(f"upstream spec: unknown key(s) {unknown}; valid keys: name, {', '.join(SPEC_KEYS)}")
    preset = PRESETS.get(spec["name"])()
    return {"name": spec["name"], **merge(preset, {k: v for k, v in spec.items() if k != "name"})}


def build_upstream(spec: Mapping[str, Any]) -> Upstream:
    """Build an upstream from ``{"name": <preset key>, **overrides}``, e.g. ``{"name": "hubert_tiny"}``."""
    full = resolve_spec(spec)
    upstream = Upstream(
        FRONTENDS.build(full["frontend"]),
        ENCODERS.build(full["encoder"]),
        normalize_waveform=full.get("normalize_waveform", False),
        feature_dropout=full.get("feature_dropout", 0.0),
        mask_mode=full.get("mask_mode", "learned"),
        feature_grad_mult=full.get("feature_grad_mult", 1.0),
    )
    upstream.spec = full
    return upstream
