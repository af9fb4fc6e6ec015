"""UniSpeech WavLM checkpoints: ``{"cfg": <flat WavLMConfig dict>, "model": state_dict}``.

The parameter names are fairseq's plus ``grep_linear``/``grep_a``/``relative_attention_bias``,
so the fairseq rename table covers them; only the config layout differs (flat).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from speechssl2.models.io.fairseq import as_dict, cfg_to_spec, load_state
from speechssl2.models.upstream import Upstream, build_upstream


def is_unispeech(ckpt: Mapping[str, Any]) -> bool:
    """A flat cfg (model fields at the top level) marks a UniSpeech checkpoint."""
    cfg = as_dict(ckpt.get("cfg"))
    return "encoder_layers" in cfg and "model" not in cfg


def load_unispeech(ckpt: Mapping[str, Any], where: str) -> Tuple[Upstream, Dict[str, Any]]:
    cfg = as_dict(ckpt["cfg"])
    name = "wavlm" if cfg.get("relative_position_embedding", False) else "wav2vec2"
    upstream = build_upstream(cfg_to_spec(cfg, bool(cfg.get("normalize", False)), name))
    return load_state(upstream, ckpt["model"], where), upstream.spec
