"""Upstream presets (registered in PRESETS): paper sizes, small CPU-trainable and tiny test variants.

Each preset is a function returning a spec dict; ``build_upstream({"name": key, ...})``
merges overrides into it. Sizes follow the released checkpoints (SPEC.md section 2).

The ``_small`` presets are for pre-training on a CPU (docs/benchmarks.md, "Small presets:
training throughput", measured with ``bench/train_step.py``): a 256-channel feature encoder
(the BASE layout with a quarter of its conv FLOPs; the same 20 ms frames, so BASE's labels
and recipes fit) and a 384-wide, 6-layer encoder whose matrices are large enough to run near
BASE's FLOP/s: 13.0M parameters (w2v-BERT's conformer blocks 21.6M at half the frame rate,
the same FLOPs per second of audio; wav2vec's conv context network 5.4M).
"""
from __future__ import annotations

from typing import Any, Dict

from speechssl2.registry import PRESETS

Spec = Dict[str, Any]


def conv(norm_mode: str, conv_bias: bool = False, channels: int = 512) -> Spec:
    """The wav2vec 2.0 feature encoder: 7 convs, 25 ms field, 20 ms hop at 16 kHz."""
    return {"name": "conv", "channels": [channels] * 7, "kernels": [10, 3, 3, 3, 3, 2, 2],
            "strides": [5, 2, 2, 2, 2, 2, 2], "norm_mode": norm_mode, "conv_bias": conv_bias}


def transformer(size: str, wavlm: bool = False, **extra: Any) -> Spec:
    dims = {
        "base": dict(embed_dim=768, num_layers=12, num_heads=12, ffn_dim=3072, layer_norm_first=False),
        "large": dict(embed_dim=1024, num_layers=24, num_heads=16, ffn_dim=4096, layer_norm_first=True),
        "small": dict(embed_dim=384, num_layers=6, num_heads=6, ffn_dim=1536, layer_norm_first=False),
        "tiny": dict(embed_dim=64, num_layers=2, num_heads=4, ffn_dim=128, layer_norm_first=False,
                     pos_conv_kernel=16, pos_conv_groups=4),
    }[size]
    buckets = {"num_buckets": 320, "max_distance": 800} if wavlm else {}
    return {"name": "transformer", **dims, **buckets, **extra}


def upstream(frontend: Spec, encoder: Spec, normalize: bool, feature_dropout: float = 0.1,
             mask_mode: str = "learned") -> Spec:
    return {"frontend": frontend, "encoder": encoder, "normalize_waveform": normalize,
            "feature_dropout": feature_dropout, "mask_mode": mask_mode}


def w2v_bert_upstream(size: str) -> Spec:
    """Log-mel + conv2d subsampling (``channels``) and a conformer; random vectors at masked frames."""
    dims, channels = {
        "xl": (dict(embed_dim=1024, num_layers=24, num_heads=8, ffn_dim=4096, depthwise_kernel=31), 128),
        "small": (dict(embed_dim=384, num_layers=6, num_heads=6, ffn_dim=1536, depthwise_kernel=31), 32),
        "tiny": (dict(embed_dim=64, num_layers=2, num_heads=4, ffn_dim=128, depthwise_kernel=15), 16),
    }[size]
    fbank = {"name": "fbank", "channels": channels, "normalize": True}
    return upstream(fbank, {"name": "conformer", **dims}, normalize=False, mask_mode="random")


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
    return w2v_bert_upstream("xl")


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
    return w2v_bert_upstream("tiny")


SMALL_CHANNELS = 256  # feature encoder channels of the small presets (module doc)


@PRESETS.register("wav2vec2_small")
def wav2vec2_small() -> Spec:
    return upstream(conv("group_norm", channels=SMALL_CHANNELS), transformer("small"), normalize=False)


@PRESETS.register("hubert_small")
def hubert_small() -> Spec:
    return upstream(conv("group_norm", channels=SMALL_CHANNELS), transformer("small"), normalize=False)


@PRESETS.register("wavlm_small")
def wavlm_small() -> Spec:
    return upstream(conv("group_norm", channels=SMALL_CHANNELS), transformer("small", wavlm=True), normalize=False)


def ils(size: str) -> Spec:
    """ILS-SSL's upstream: HuBERT with the bucketed relative position bias, ungated, as the released
    ILS BASE (egs/librispeech/ssl1/conf/pretrain_ils_hubert.yaml); the objective picks the layers."""
    channels = SMALL_CHANNELS if size == "small" else 64
    return upstream(conv("group_norm", channels=channels), transformer(size, wavlm=True, gated_position=False),
                    normalize=False)


@PRESETS.register("ils_small")
def ils_small() -> Spec:
    return ils("small")


@PRESETS.register("ils_tiny")
def ils_tiny() -> Spec:
    return ils("tiny")


@PRESETS.register("w2v_bert_small")
def w2v_bert_small() -> Spec:
    """6 conformer blocks of 384 (3 contrastive + 3 masked prediction in the objective), 32 subsampling channels."""
    return w2v_bert_upstream("small")
