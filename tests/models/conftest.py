"""Tiny randomly initialised transformers reference models (no hub access) for parity tests."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch


def _perturb(model: torch.nn.Module) -> None:
    """Move norms, biases, gates and BatchNorm statistics off their init values so they get tested.

    WavLM's relative position embedding starts at std 0.02, too small for a wrong gate to
    change the output beyond the tolerance; std 2 makes the gated bias matter.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_attn_embed" in name:
                p.normal_(0.0, 2.0)
            elif any(s in name for s in ("norm", "bias", "gru_rel", "pos_bias", "masked_spec")):
                p.add_(torch.randn_like(p) * 0.3)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                b.normal_()


@pytest.fixture
def tiny_hf() -> Callable[..., Any]:
    """``tiny_hf("wavlm", do_stable_layer_norm=True)`` -> an eval-mode HF model with a tiny config."""
    import transformers as T

    classes = {"wav2vec2": (T.Wav2Vec2Model, T.Wav2Vec2Config), "hubert": (T.HubertModel, T.HubertConfig),
               "wavlm": (T.WavLMModel, T.WavLMConfig),
               "wav2vec2-conformer": (T.Wav2Vec2ConformerModel, T.Wav2Vec2ConformerConfig)}

    def make(kind: str, seed: int = 0, **overrides: Any) -> Any:
        torch.manual_seed(seed)
        cfg = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                   conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, hidden_dropout=0.0,
                   attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
                   conv_depthwise_kernel_size=7)
        cfg.update(overrides)
        model_cls, cfg_cls = classes[kind]
        model = model_cls(cfg_cls(**cfg)).eval()
        _perturb(model)
        return model

    return make
