"""Upstream presets (registered in PRESETS): paper sizes and tiny CPU variants.

Each preset is a function returning a spec dict; ``build_upstream({"name": key, ...})``
merges overrides into it. Sizes follow the released checkpoints (SPEC.md section 2).
"""
from __future__ import annotations

from typing import Any, Dict

from speechssl2.registry import PRESETS

Spec = Dict[str, Any]


def conv(norm_mode: str, conv_bias: bool = False, channels: int = 512) -> Spec:
    return {"name": "conv", "channels": [channels] * 7, "kernels": [10, 3, 3, 3, 3, 2, 2],
            "strides": [5, 2, 2, 2, 2, 2, 2], "norm_mode": norm_mode, "conv_bias": conv_bias}


def transformer(size: str, wavlm: bool = False, **extra: Any) -> Spec:
    dims = {
        "base": dict(embed_dim=768, num_layers=12, num_heads=12, ffn_dim=3072, layer_norm_first=False),
        "large": dict(embed_dim=1024, num_layers=24, num_heads=16, ffn_dim=4096, layer_norm_first=True),
        "tiny": dict(embed_dim=64, num_layers=2, num_heads=4, ffn_dim=128, layer_norm_first=False,
                     pos_conv_kernel=16, pos_conv_groups=4),
    }[size]
    buckets = {"num_buckets": 320, "max_distance": 800} if wavlm else {}
    return {"name": "transformer", **dims, **buckets, **extra}


def upstream(frontend: Spec, encoder: Spec, normalize: bool, feature_dropout: float = 0.1,
             mask_mode: str = "learned") -> Spec:
    return {"frontend": frontend, "encoder": encoder, "normalize_waveform": normalize,
            "feature_dropout": feature_dropout, "mask_mode": mask_mode}


@PRESETS.register("wav2vec2_base")
def wav2vec2_base() -> Spec:
    return upstream(conv("group_norm"), transformer("base", layerdrop=0.05), normalize=False)


@PRESETS.register("wav2vec2_large")
def wav2vec2_large() -> Spec:
    """The LV-60 layout: layer-norm feature encoder with conv bias, pre-LN, normalized input."""
    return upstream(conv("layer_norm", conv_bias=True), transformer("large", layerdrop=0.1), normalize=True)


@PRESETS.register("hubert_base")
def hubert_base() -> Spec:
    return upstream(conv("group_norm"), transformer("base", layerdrop=0.05), normalize=False)


@PRESETS.register("hubert_large")
def hubert_large() -> Spec:
    return upstream(conv("layer_norm"), transformer("large", layerdrop=0.1), normalize=True)


@PRESETS.register("wavlm_base")
def wavlm_base() -> Spec:
    return upstream(conv("group_norm"), transformer("base", wavlm=True, layerdrop=0.05), normalize=False)


@PRESETS.register("wavlm_base_plus")
def wavlm_base_plus() -> Spec:
    """Same network as WavLM Base; trained on 94k h instead of 960 h."""
    return wavlm_base()


@PRESETS.register("wavlm_large")
def wavlm_large() -> Spec:
    return upstream(conv("layer_norm"), transformer("large", wavlm=True, layerdrop=0.1), normalize=True)


@PRESETS.register("wav2vec2_conformer_large")
def wav2vec2_conformer_large() -> Spec:
    """HF/fairseq Wav2Vec2-Conformer: raw-wave conv frontend, relative-position conformer."""
    conformer = {"name": "conformer", "embed_dim": 1024, "num_layers": 24, "num_heads": 16, "ffn_dim": 4096,
                 "depthwise_kernel": 31}
    return upstream(conv("layer_norm", conv_bias=True), conformer, normalize=True)


@PRESETS.register("w2v_bert")
def w2v_bert() -> Spec:
    """w2v-BERT XL: log-mel + conv2d subsampling, 24 conformer blocks (12 contrastive + 12 MLM).

    Masked frames are replaced by random vectors (``mask_mode: random``), as in the paper;
    log-mels are normalized per utterance (see ``fbank_frontend``).
    """
    conformer = {"name": "conformer", "embed_dim": 1024, "num_layers": 24, "num_heads": 8, "ffn_dim": 4096,
                 "depthwise_kernel": 31}
    fbank = {"name": "fbank", "channels": 128, "normalize": True}
    return upstream(fbank, conformer, normalize=False, mask_mode="random")


@PRESETS.register("wav2vec2_tiny")
def wav2vec2_tiny() -> Spec:
    return upstream(conv("group_norm", channels=64), transformer("tiny"), normalize=False)


@PRESETS.register("hubert_tiny")
def hubert_tiny() -> Spec:
    return upstream(conv("group_norm", channels=64), transformer("tiny"), normalize=False)


@PRESETS.register("wavlm_tiny")
def wavlm_tiny() -> Spec:
    return upstream(conv("group_norm", channels=64), transformer("tiny", wavlm=True), normalize=False)


@PRESETS.register("w2v_bert_tiny")
def w2v_bert_tiny() -> Spec:
    conformer = {"name": "conformer", "embed_dim": 64, "num_layers": 2, "num_heads": 4, "ffn_dim": 128,
                 "depthwise_kernel": 15}
    fbank = {"name": "fbank", "channels": 16, "normalize": True}
    return upstream(fbank, conformer, normalize=False, mask_mode="random")
