"""fairseq wav2vec 2.0 / HuBERT checkpoints (``{"cfg" | "args": ..., "model": state_dict}``).

fairseq is never imported: the config is read as a plain dict (or argparse Namespace)
and the weights are renamed with an explicit table. The same parameter names are used
by UniSpeech's WavLM, whose extra keys are in this table too.
"""
from __future__ import annotations

import ast
from typing import Any, Dict, List, Mapping, Tuple

from torch import Tensor

from speechssl2.models.io.rename import CheckpointError, Table, load_strict, rename
from speechssl2.models.upstream import Upstream, build_upstream

# Pre-training heads and targets that an upstream does not own.
IGNORE = ("quantizer.", "project_q.", "final_proj.", "label_embs_concat", "project_inp.", "target_glu.")
FINETUNED_PREFIX = "w2v_encoder.w2v_model."


def table(norm_mode: str) -> Table:
    """Rename table for a given feature-encoder norm mode (fairseq nests the LayerNorm one level deeper)."""
    norm = "feature_extractor.conv_layers.{n}.2.1." if norm_mode == "layer_norm" else "feature_extractor.conv_layers.{n}.2."
    return [
        ("frontend.blocks.{n}.conv.", "feature_extractor.conv_layers.{n}.0."),
        ("frontend.blocks.{n}.norm.", norm),
        ("feature_norm.", "layer_norm."),
        ("feature_proj.", "post_extract_proj."),
        ("mask_emb", "mask_emb"),
        ("encoder.pos_conv.conv.bias", "encoder.pos_conv.0.bias"),
        ("encoder.pos_conv.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
        ("encoder.pos_conv.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
        ("encoder.norm.", "encoder.layer_norm."),
        ("encoder.rel_bias.embedding.", "encoder.layers.0.self_attn.relative_attention_bias."),
        ("encoder.layers.{n}.gate.scale", "encoder.layers.{n}.self_attn.grep_a"),
        ("encoder.layers.{n}.gate.linear.", "encoder.layers.{n}.self_attn.grep_linear."),
        ("encoder.layers.{n}.attention.", "encoder.layers.{n}.self_attn."),
        ("encoder.layers.{n}.attn_norm.", "encoder.layers.{n}.self_attn_layer_norm."),
        ("encoder.layers.{n}.ffn.fc1.", "encoder.layers.{n}.fc1."),
        ("encoder.layers.{n}.ffn.fc2.", "encoder.layers.{n}.fc2."),
        ("encoder.layers.{n}.ffn_norm.", "encoder.layers.{n}.final_layer_norm."),
    ]


def parse_conv_layers(text: str) -> List[Tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``, without eval."""
    layers: List[Tuple[int, int, int]] = []
    for term in text.split("+"):
        part, _, times = term.partition("*")
        try:
            block = ast.literal_eval(part.strip())
            count = int(times) if times.strip() else 1
        except (ValueError, SyntaxError) as err:
            raise CheckpointError(f"cannot parse conv_feature_layers {text!r}: {err}") from None
        layers += [tuple(layer) for layer in block] * count
    return layers


def cfg_to_spec(m: Mapping[str, Any], normalize: bool, name: str) -> Dict[str, Any]:
    """fairseq/UniSpeech model config (flat mapping) -> speechssl2 upstream spec."""
    if m.get("activation_fn", "gelu") != "gelu":
        raise CheckpointError(f"activation_fn {m['activation_fn']!r} is not supported (only gelu)")
    conv = parse_conv_layers(m.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    mode = m.get("extractor_mode", "default")
    if mode not in ("default", "layer_norm"):
        raise CheckpointError(f"extractor_mode {mode!r} is not supported")
    encoder: Dict[str, Any] = {
        "name": "transformer", "embed_dim": m.get("encoder_embed_dim", 768), "num_layers": m.get("encoder_layers", 12),
        "num_heads": m.get("encoder_attention_heads", 12), "ffn_dim": m.get("encoder_ffn_embed_dim", 3072),
        "layer_norm_first": bool(m.get("layer_norm_first", False)), "dropout": m.get("dropout", 0.1),
        "attention_dropout": m.get("attention_dropout", 0.1), "activation_dropout": m.get("activation_dropout", 0.0),
        "layerdrop": m.get("encoder_layerdrop", 0.0), "pos_conv_kernel": m.get("conv_pos", 128),
        "pos_conv_groups": m.get("conv_pos_groups", 16),
    }
    if m.get("relative_position_embedding", False):
        if not m.get("gru_rel_pos", True):
            raise CheckpointError("WavLM without gru_rel_pos (ungated relative bias) is not supported")
        encoder.update(num_buckets=m.get("num_buckets", 320), max_distance=m.get("max_distance", 800))
    frontend = {"name": "conv", "channels": [c for c, _, _ in conv], "kernels": [k for _, k, _ in conv],
                "strides": [s for _, _, s in conv], "conv_bias": bool(m.get("conv_bias", False)),
                "norm_mode": "layer_norm" if mode == "layer_norm" else "group_norm"}
    size = "large" if encoder["layer_norm_first"] else "base"
    return {"name": f"{name}_{size}", "frontend": frontend, "encoder": encoder, "normalize_waveform": normalize,
            "feature_dropout": m.get("dropout_input", 0.0)}


def as_dict(cfg: Any) -> Dict[str, Any]:
    """argparse Namespace or mapping -> plain dict."""
    return dict(vars(cfg)) if hasattr(cfg, "__dict__") and not isinstance(cfg, Mapping) else dict(cfg or {})


def load_state(upstream: Upstream, state: Mapping[str, Tensor], where: str) -> Upstream:
    state = {k[len(FINETUNED_PREFIX):]: v for k, v in state.items() if k.startswith(FINETUNED_PREFIX)} or state
    ours = rename(state, table(upstream.spec["frontend"]["norm_mode"]), ignore=IGNORE + ("w2v_encoder.",),
                  where=where)
    load_strict(upstream, ours, where=where)
    return upstream


def checkpoint_spec(ckpt: Mapping[str, Any]) -> Dict[str, Any]:
    """The upstream spec a fairseq checkpoint's config describes (of the encoder, for a fine-tuned one)."""
    if "cfg" in ckpt and ckpt["cfg"]:
        cfg = as_dict(ckpt["cfg"])
        model, task = as_dict(cfg.get("model")), as_dict(cfg.get("task"))
    else:
        model = task = as_dict(ckpt.get("args"))
    if "w2v_args" in model and model["w2v_args"]:  # a fine-tuned model: the encoder config is nested
        inner = as_dict(model["w2v_args"])
        model, task = as_dict(inner.get("model", inner)), as_dict(inner.get("task", inner))
    name = "hubert" if "hubert" in str(model.get("_name", model.get("arch", ""))) else "wav2vec2"
    return cfg_to_spec(model, bool(task.get("normalize", False)), name)


def load_fairseq(ckpt: Mapping[str, Any], where: str) -> Tuple[Upstream, Dict[str, Any]]:
    """fairseq checkpoint dict -> (upstream, resolved spec)."""
    upstream = build_upstream(checkpoint_spec(ckpt))
    return load_state(upstream, ckpt["model"], where), upstream.spec


def to_fairseq_state(upstream: Upstream) -> Dict[str, Tensor]:
    """speechssl2 upstream -> fairseq/UniSpeech parameter names (for export and round-trip tests)."""
    return rename(upstream.state_dict(), table(upstream.spec["frontend"]["norm_mode"]), reverse=True,
                  where="speechssl2 upstream")
