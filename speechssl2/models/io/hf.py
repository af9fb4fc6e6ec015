"""Hugging Face ``transformers`` directories (config.json + weights) <-> speechssl2 upstreams.

Covers Wav2Vec2Model, HubertModel, WavLMModel and Wav2Vec2ConformerModel. transformers
is imported only when exporting; reading needs just the JSON and the weight file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import torch
from torch import Tensor

from speechssl2.models.io.rename import CheckpointError, Table, load_strict, rename
from speechssl2.models.upstream import Upstream, build_upstream

COMMON: Table = [
    ("frontend.blocks.{n}.conv.", "feature_extractor.conv_layers.{n}.conv."),
    ("frontend.blocks.{n}.norm.", "feature_extractor.conv_layers.{n}.layer_norm."),
    ("feature_norm.", "feature_projection.layer_norm."),
    ("feature_proj.", "feature_projection.projection."),
    ("mask_emb", "masked_spec_embed"),
    ("encoder.norm.", "encoder.layer_norm."),
]
TRANSFORMER: Table = COMMON + [
    ("encoder.pos_conv.conv.", "encoder.pos_conv_embed.conv."),
    ("encoder.rel_bias.embedding.", "encoder.layers.0.attention.rel_attn_embed."),
    ("encoder.layers.{n}.gate.scale", "encoder.layers.{n}.attention.gru_rel_pos_const"),
    ("encoder.layers.{n}.gate.linear.", "encoder.layers.{n}.attention.gru_rel_pos_linear."),
    ("encoder.layers.{n}.attention.", "encoder.layers.{n}.attention."),
    ("encoder.layers.{n}.attn_norm.", "encoder.layers.{n}.layer_norm."),
    ("encoder.layers.{n}.ffn.fc1.", "encoder.layers.{n}.feed_forward.intermediate_dense."),
    ("encoder.layers.{n}.ffn.fc2.", "encoder.layers.{n}.feed_forward.output_dense."),
    ("encoder.layers.{n}.ffn_norm.", "encoder.layers.{n}.final_layer_norm."),
]
CONFORMER: Table = COMMON + [
    (f"encoder.layers.{{n}}.{ours}", f"encoder.layers.{{n}}.{theirs}")
    for ours, theirs in [
        ("ffn1_norm.", "ffn1_layer_norm."), ("ffn2_norm.", "ffn2_layer_norm."),
        ("ffn1.fc1.", "ffn1.intermediate_dense."), ("ffn1.fc2.", "ffn1.output_dense."),
        ("ffn2.fc1.", "ffn2.intermediate_dense."), ("ffn2.fc2.", "ffn2.output_dense."),
        ("attn_norm.", "self_attn_layer_norm."), ("attention.q_proj.", "self_attn.linear_q."),
        ("attention.k_proj.", "self_attn.linear_k."), ("attention.v_proj.", "self_attn.linear_v."),
        ("attention.out_proj.", "self_attn.linear_out."), ("attention.pos_proj.", "self_attn.linear_pos."),
        ("attention.pos_bias_u", "self_attn.pos_bias_u"), ("attention.pos_bias_v", "self_attn.pos_bias_v"),
        ("conv.norm.", "conv_module.layer_norm."), ("conv.pointwise1.", "conv_module.pointwise_conv1."),
        ("conv.depthwise.", "conv_module.depthwise_conv."), ("conv.batch_norm.", "conv_module.batch_norm."),
        ("conv.pointwise2.", "conv_module.pointwise_conv2."), ("final_norm.", "final_layer_norm."),
    ]
]
# HF builds a positional conv for conformers but never uses it; rotary keeps inv_freq as a buffer.
CONFORMER_IGNORE = ("encoder.pos_conv_embed.", "encoder.embed_positions.")
BASE_PREFIXES = ("wav2vec2.", "hubert.", "wavlm.", "wav2vec2_conformer.")
# Released hub checkpoints predate torch's parametrized weight_norm: they name the positional conv's g and v so.
LEGACY_WEIGHT_NORM = {f"encoder.pos_conv_embed.conv.weight_{old}":
                      f"encoder.pos_conv_embed.conv.parametrizations.weight.original{new}"
                      for old, new in (("g", 0), ("v", 1))}
MODEL_CLASSES = {"wav2vec2": "Wav2Vec2Model", "hubert": "HubertModel", "wavlm": "WavLMModel",
                 "wav2vec2-conformer": "Wav2Vec2ConformerModel"}


def hf_config_to_spec(cfg: Mapping[str, Any], normalize: bool) -> Dict[str, Any]:
    """config.json dict -> speechssl2 upstream spec (``{"name": preset, **full overrides}``)."""
    kind = cfg.get("model_type")
    if kind not in MODEL_CLASSES:
        raise CheckpointError(f"HF model_type {kind!r} is not supported; supported: {', '.join(MODEL_CLASSES)}")
    if cfg.get("feat_extract_norm", "group") not in ("group", "layer"):
        raise CheckpointError(f"HF feat_extract_norm {cfg['feat_extract_norm']!r} is not 'group' or 'layer'")
    if not cfg.get("feat_proj_layer_norm", True):
        raise CheckpointError("HF HuBERT with feat_proj_layer_norm=false (no LayerNorm before the projection) "
                              "is not supported")
    frontend = {"name": "conv", "channels": list(cfg["conv_dim"]), "kernels": list(cfg["conv_kernel"]),
                "strides": list(cfg["conv_stride"]), "conv_bias": bool(cfg.get("conv_bias", False)),
                "norm_mode": "layer_norm" if cfg.get("feat_extract_norm") == "layer" else "group_norm",
                "activation": cfg.get("feat_extract_activation", "gelu")}
    encoder: Dict[str, Any] = {
        "embed_dim": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"],
        "num_heads": cfg["num_attention_heads"], "ffn_dim": cfg["intermediate_size"],
        "dropout": cfg.get("hidden_dropout", 0.1), "attention_dropout": cfg.get("attention_dropout", 0.1),
        "activation_dropout": cfg.get("activation_dropout", 0.0), "layerdrop": cfg.get("layerdrop", 0.0),
    }
    if kind == "wav2vec2-conformer":
        act = {"swish": "swish", "silu": "swish", "gelu": "gelu"}.get(cfg.get("hidden_act", "gelu"))
        position = cfg.get("position_embeddings_type", "relative")
        if act is None or position not in ("relative", "rotary"):
            raise CheckpointError(f"HF conformer with hidden_act={cfg.get('hidden_act')!r}, "
                                  f"position_embeddings_type={position!r} is not supported")
        encoder.update(name="conformer", depthwise_kernel=cfg.get("conv_depthwise_kernel_size", 31),
                       position=position, rotary_base=float(cfg.get("rotary_embedding_base", 10000)),
                       activation=act)
        name = "wav2vec2_conformer_large"
    else:
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise CheckpointError(f"HF hidden_act {cfg['hidden_act']!r} is not supported (only gelu)")
        encoder.update(name="transformer", layer_norm_first=bool(cfg.get("do_stable_layer_norm", False)),
                       pos_conv_kernel=cfg["num_conv_pos_embeddings"],
                       pos_conv_groups=cfg["num_conv_pos_embedding_groups"])
        if kind == "wavlm":
            encoder.update(num_buckets=cfg.get("num_buckets", 320), max_distance=cfg.get("max_bucket_distance", 800))
        size = "large" if encoder["layer_norm_first"] else "base"
        name = f"{kind}_{size}"
    return {"name": name, "frontend": frontend, "encoder": encoder, "normalize_waveform": normalize,
            "feature_dropout": cfg.get("feat_proj_dropout", 0.0)}


def family(spec: Mapping[str, Any]) -> str:
    """HF model_type an upstream spec exports to."""
    if spec["frontend"]["name"] != "conv":
        raise CheckpointError(f"cannot export a {spec['frontend']['name']!r} frontend to HF: "
                              "HF speech SSL models all start with the raw-wave conv frontend")
    if spec["encoder"]["name"] == "conformer":
        return "wav2vec2-conformer"
    if spec["encoder"].get("num_buckets", 0):
        if not spec["encoder"].get("gated_position", True):
            raise CheckpointError("cannot export an ungated relative position bias (gated_position: false) to "
                                  "HF: its only relative-bias model, WavLM, gates the bias")
        return "wavlm"
    return "hubert" if spec["name"].startswith("hubert") else "wav2vec2"


def spec_to_hf_config(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """Full upstream spec -> keyword arguments of the matching transformers config class."""
    fe, enc, kind = spec["frontend"], spec["encoder"], family(spec)
    if fe.get("norm_mode", "group_norm") not in ("group_norm", "layer_norm"):
        raise CheckpointError(f"cannot export norm_mode {fe['norm_mode']!r} to HF")
    cfg: Dict[str, Any] = dict(
        model_type=kind, conv_dim=fe["channels"], conv_kernel=fe["kernels"], conv_stride=fe["strides"],
        num_feat_extract_layers=len(fe["channels"]), conv_bias=fe.get("conv_bias", False),
        feat_extract_norm="layer" if fe.get("norm_mode") == "layer_norm" else "group",
        feat_extract_activation=fe.get("activation", "gelu"), hidden_size=enc["embed_dim"],
        num_hidden_layers=enc["num_layers"], num_attention_heads=enc["num_heads"],
        intermediate_size=enc["ffn_dim"], hidden_dropout=enc.get("dropout", 0.1),
        attention_dropout=enc.get("attention_dropout", 0.1), activation_dropout=enc.get("activation_dropout", 0.0),
        layerdrop=enc.get("layerdrop", 0.0), feat_proj_dropout=spec.get("feature_dropout", 0.0),
        layer_norm_eps=1e-5,
    )
    if kind == "wav2vec2-conformer":
        cfg.update(position_embeddings_type=enc.get("position", "relative"),
                   rotary_embedding_base=int(enc.get("rotary_base", 10000)),
                   conv_depthwise_kernel_size=enc.get("depthwise_kernel", 31), hidden_act=enc.get("activation", "swish"))
    else:
        cfg.update(do_stable_layer_norm=enc.get("layer_norm_first", False), hidden_act="gelu",
                   num_conv_pos_embeddings=enc.get("pos_conv_kernel", 128),
                   num_conv_pos_embedding_groups=enc.get("pos_conv_groups", 16))
    if kind == "wavlm":
        cfg.update(num_buckets=enc["num_buckets"], max_bucket_distance=enc.get("max_distance", 800))
    return cfg


def table_for(spec: Mapping[str, Any]) -> Tuple[Table, Tuple[str, ...]]:
    return (CONFORMER, CONFORMER_IGNORE) if spec["encoder"]["name"] == "conformer" else (TRANSFORMER, ())


def read_state_file(directory: Path) -> Dict[str, Tensor]:
    """The raw state dict of model.safetensors or pytorch_model.bin, task heads included."""
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(directory / "model.safetensors"))
    if (directory / "pytorch_model.bin").is_file():
        return torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise CheckpointError(f"{directory}: no model.safetensors or pytorch_model.bin next to config.json")


def split_base(state: Mapping[str, Tensor]) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """(base model weights with the task-head prefix (``wav2vec2.`` ...) removed and legacy weight-norm
    names (``weight_g``/``weight_v``) renamed to torch's parametrization names, the task heads' weights)."""
    state = dict(state)
    heads: Dict[str, Tensor] = {}
    for prefix in BASE_PREFIXES:
        if any(k.startswith(prefix) for k in state):  # a ForCTC/ForPreTraining checkpoint: keep the base model
            heads = {k: v for k, v in state.items() if not k.startswith(prefix)}
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            break
    return {LEGACY_WEIGHT_NORM.get(k, k): v for k, v in state.items()}, heads


def read_weights(directory: Path) -> Dict[str, Tensor]:
    """The base model's weights of an HF directory (``split_base`` of its state file)."""
    return split_base(read_state_file(directory))[0]


def read_config(directory: Path) -> Tuple[Dict[str, Any], bool]:
    """(config.json, whether the waveform is normalized: preprocessor_config.json, else HF's default)."""
    cfg = json.loads((directory / "config.json").read_text())
    pre = directory / "preprocessor_config.json"
    normalize = json.loads(pre.read_text()).get("do_normalize", False) if pre.is_file() \
        else cfg.get("feat_extract_norm") == "layer"
    return cfg, bool(normalize)


def load_hf(directory: str | Path) -> Tuple[Upstream, Dict[str, Any]]:
    """HF directory -> (upstream, resolved spec). Waveform normalization comes from preprocessor_config.json."""
    directory = Path(directory)
    cfg, normalize = read_config(directory)
    spec = hf_config_to_spec(cfg, normalize)
    upstream = build_upstream(spec)
    table, ignore = table_for(upstream.spec)
    state = read_weights(directory)
    if "masked_spec_embed" not in state:  # HF drops it when mask_time_prob == 0; it is unused for inference
        state["masked_spec_embed"] = upstream.mask_emb.detach().clone()
    load_strict(upstream, rename(state, table, ignore=ignore, where=str(directory)), where=str(directory))
    return upstream, upstream.spec


def to_hf_state(upstream: Upstream) -> Dict[str, Tensor]:
    table, _ = table_for(upstream.spec)
    return rename(upstream.state_dict(), table, reverse=True, where="speechssl2 upstream")


def save_hf(upstream: Upstream, directory: str | Path) -> Path:
    """Write a directory that ``transformers.AutoModel.from_pretrained`` loads with matching outputs."""
    import transformers

    cfg = spec_to_hf_config(upstream.spec)
    kind = cfg.pop("model_type")
    config = transformers.AutoConfig.for_model(kind, **cfg)
    model = getattr(transformers, MODEL_CLASSES[kind])(config)
    state = to_hf_state(upstream)
    _, ignore = table_for(upstream.spec)
    expected = {k for k in model.state_dict() if not k.startswith(ignore)}
    if set(state) != expected:
        raise CheckpointError(f"HF export: key mismatch, missing {sorted(expected - set(state))}, "
                              f"unexpected {sorted(set(state) - expected)}")
    model.load_state_dict(state, strict=False)
    directory = Path(directory)
    model.save_pretrained(directory)
    transformers.Wav2Vec2FeatureExtractor(
        do_normalize=upstream.normalize_waveform, return_attention_mask=True, sampling_rate=16000
    ).save_pretrained(directory)
    return directory
