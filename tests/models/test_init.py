"""Initialisation as the references: fairseq's init_bert_params on the Transformer encoder (WavLM's
relative position embedding and gate included, as unilm), the quantizer's input dropout (fairseq
``dropout_features``).

Tolerances: the sample std of n i.i.d. N(0, s^2) draws has a standard error of s / sqrt(2n);
a weight passes when its std is within 5 such errors of 0.02 and its mean within 5 s / sqrt(n) of 0.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechssl2.models.transformer import BERT_STD, TransformerEncoder
from speechssl2.config import load_config
from speechssl2.models.upstream import build_upstream, resolve_spec
from speechssl2.registry import OBJECTIVES, QUANTIZERS
from speechssl2.train.config import TrainConfig

WAVLM = dict(embed_dim=256, num_layers=2, num_heads=8, ffn_dim=1024, pos_conv_kernel=16, pos_conv_groups=4,
             num_buckets=320, max_distance=800)


def encoder(init: str, seed: int = 0) -> TransformerEncoder:
    torch.manual_seed(seed)
    return TransformerEncoder(**WAVLM, init=init)


def assert_normal_002(name: str, weight: torch.Tensor) -> None:
    n = weight.numel()
    std_tol, mean_tol = 5 * BERT_STD / math.sqrt(2 * n), 5 * BERT_STD / math.sqrt(n)
    assert abs(weight.std().item() - BERT_STD) < std_tol, f"{name}: std {weight.std().item():.5f} (n={n})"
    assert abs(weight.mean().item()) < mean_tol, f"{name}: mean {weight.mean().item():.5f} (n={n})"


def test_bert_init_draws_linear_and_embedding_weights_n0_002_with_zero_biases():
    enc = encoder("bert")
    linears = {name: m for name, m in enc.named_modules() if isinstance(m, nn.Linear)}
    # q, k, v, out, fc1, fc2 and the WavLM gate in each of the 2 layers
    assert len(linears) == 2 * 7 and any(name.endswith("gate.linear") for name in linears)
    for name, m in linears.items():
        assert_normal_002(name, m.weight.detach())
        assert torch.count_nonzero(m.bias) == 0, name
    assert_normal_002("rel_bias.embedding", enc.rel_bias.embedding.weight.detach())  # unilm: init_bert over xavier
    for layer in enc.layers:
        assert torch.equal(layer.gate.scale, torch.ones_like(layer.gate.scale))  # grep_a stays 1
        assert torch.equal(layer.attn_norm.weight, torch.ones(256)) and torch.count_nonzero(layer.attn_norm.bias) == 0


def test_bert_init_leaves_the_positional_conv_alone_and_torch_init_is_the_old_one():
    bert, torch_init = encoder("bert"), encoder("torch")
    pos = dict(torch_init.pos_conv.named_parameters())
    for name, value in bert.pos_conv.named_parameters():  # built first, from the same seed: its own init
        assert torch.equal(value, pos[name]), name
    # PyTorch's defaults: Embedding N(0, 1), Linear U(+-1/sqrt(fan_in)) weights and biases
    assert abs(torch_init.rel_bias.embedding.weight.std().item() - 1.0) < 0.1
    fc1 = torch_init.layers[0].ffn.fc1
    assert torch.count_nonzero(fc1.bias) == fc1.bias.numel()
    uniform_std = 1 / math.sqrt(3 * 256)  # U(-b, b), b = 1 / sqrt(fan_in = 256)
    assert abs(fc1.weight.std().item() - uniform_std) < 0.05 * uniform_std


def test_the_config_switch_reaches_the_encoder_and_changes_its_output():
    outputs = {}
    for init in ("torch", "bert"):
        torch.manual_seed(0)
        upstream = build_upstream({"name": "wavlm_tiny", "encoder": {"init": init}}).eval()
        fc2 = upstream.encoder.layers[0].ffn.fc2
        assert (torch.count_nonzero(fc2.bias) == 0) == (init == "bert")
        torch.manual_seed(1)
        with torch.no_grad():
            outputs[init] = upstream(torch.randn(1, 4000), torch.tensor([4000])).hidden_states[-1]
    assert not torch.allclose(outputs["torch"], outputs["bert"], atol=1e-3)


def test_bad_init_name_is_refused():
    with pytest.raises(ValueError, match="init must be 'torch' or 'bert'"):
        TransformerEncoder(**WAVLM, init="xavier")


def test_quantizer_input_dropout_drops_the_features_before_the_logits():
    """Training: the perplexity of the softmax (no Gumbel noise) equals that of the plain quantizer on
    F.dropout(x) drawn from the same seed; evaluation: no dropout."""
    torch.manual_seed(0)
    dropped = QUANTIZERS.build({"name": "gumbel", "codebook_dim": 8, "num_groups": 2, "num_vars": 16,
                                "input_dropout": 0.5}, input_dim=12)
    plain = QUANTIZERS.build({"name": "gumbel", "codebook_dim": 8, "num_groups": 2, "num_vars": 16}, input_dim=12)
    plain.load_state_dict(dropped.state_dict())
    x = torch.randn(50, 12)
    torch.manual_seed(3)
    train_ppl = dropped.train()(x).prob_perplexity
    torch.manual_seed(3)
    reference = plain.eval()(F.dropout(x, 0.5, training=True)).prob_perplexity
    torch.testing.assert_close(train_ppl, reference, atol=1e-6, rtol=0)
    assert not torch.isclose(train_ppl, plain(x).prob_perplexity, atol=1e-4)  # dropout did change the logits
    torch.testing.assert_close(dropped.eval()(x).prob_perplexity, plain(x).prob_perplexity, atol=0, rtol=0)
    with pytest.raises(ValueError, match="input_dropout must be in"):
        QUANTIZERS.build({"name": "gumbel", "input_dropout": 1.0}, input_dim=12)


def test_wav2vec2_objective_passes_the_input_dropout_to_its_quantizer():
    objective = OBJECTIVES.build({"name": "wav2vec2", "quantizer": {"input_dropout": 0.1}}, embed_dim=16,
                                 feature_dim=12)
    assert objective.quantizer.input_drop.p == 0.1


def test_librispeech_transformer_configs_choose_the_reference_init():
    confs = sorted((Path(__file__).parents[2] / "egs/librispeech/ssl1/conf").glob("pretrain_*.yaml"))
    encoders = {p.name: resolve_spec(load_config(TrainConfig, p).model["upstream"])["encoder"] for p in confs}
    transformers = {name: enc for name, enc in encoders.items() if enc["name"] == "transformer"}
    assert len(transformers) >= 8
    assert all(enc.get("init") == "bert" for enc in transformers.values()), transformers.keys()
