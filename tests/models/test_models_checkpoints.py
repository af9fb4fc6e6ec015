"""Checkpoint formats: fairseq/UniSpeech key maps, speechssl2 formats, detection, errors, convert CLI."""
from __future__ import annotations

import argparse

import pytest
import torch

import speechssl2
from speechssl2.bin import convert
from speechssl2.models import build_upstream
from speechssl2.models.io.fairseq import parse_conv_layers, to_fairseq_state
from speechssl2.models.io.native import save_upstream
from speechssl2.models.io.rename import CheckpointError

# Parameter names as they appear in released fairseq / UniSpeech checkpoints.
FAIRSEQ_NAMES = [
    "feature_extractor.conv_layers.0.0.weight", "feature_extractor.conv_layers.0.2.weight",
    "feature_extractor.conv_layers.6.0.weight", "layer_norm.weight", "post_extract_proj.weight",
    "post_extract_proj.bias", "mask_emb", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
    "encoder.pos_conv.0.bias", "encoder.layer_norm.weight", "encoder.layers.0.self_attn.k_proj.weight",
    "encoder.layers.1.self_attn.out_proj.bias", "encoder.layers.0.self_attn_layer_norm.weight",
    "encoder.layers.0.fc1.weight", "encoder.layers.1.fc2.bias", "encoder.layers.1.final_layer_norm.weight",
]
WAVLM_NAMES = ["encoder.layers.0.self_attn.grep_linear.weight", "encoder.layers.1.self_attn.grep_a",
               "encoder.layers.0.self_attn.relative_attention_bias.weight"]
TINY_CFG = dict(conv_feature_layers="[(64,10,5)] + [(64,3,2)] * 4 + [(64,2,2)] * 2", encoder_embed_dim=64,
                encoder_layers=2, encoder_attention_heads=4, encoder_ffn_embed_dim=128, conv_pos=16,
                conv_pos_groups=4, extractor_mode="default", layer_norm_first=False)


def assert_matches_hf(ours, hf, atol: float) -> None:
    """Every hidden state of ``ours`` equals the HF model's (last = after its final LayerNorm)."""
    wav = torch.randn(1, 4000)
    with torch.no_grad():
        out, ref = ours(wav, torch.tensor([4000])), hf(wav, output_hidden_states=True)
    expected = list(ref.hidden_states[:-1]) + [ref.last_hidden_state]
    assert len(out.hidden_states) == len(expected)
    for layer, (o, r) in enumerate(zip(out.hidden_states, expected)):
        torch.testing.assert_close(o, r, atol=atol, rtol=0, msg=f"layer {layer}")


def same_outputs(a, b):
    wav, lengths = torch.randn(2, 5000), torch.tensor([5000, 3000])
    with torch.no_grad():
        for x, y in zip(a.eval()(wav, lengths).hidden_states, b.eval()(wav, lengths).hidden_states):
            assert torch.equal(x, y)


def test_parse_conv_layers_without_eval():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == \
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    with pytest.raises(CheckpointError, match="cannot parse conv_feature_layers"):
        parse_conv_layers("__import__('os')")


def test_fairseq_names_and_round_trip(tmp_path):
    torch.manual_seed(0)
    up = build_upstream({"name": "hubert_tiny"})
    state = to_fairseq_state(up)
    assert set(FAIRSEQ_NAMES) <= set(state)
    assert state["encoder.pos_conv.0.weight_g"].shape == (1, 1, 16)
    ckpt = {"cfg": {"model": {"_name": "hubert", **TINY_CFG}, "task": {"normalize": False}},
            "model": {**state, "label_embs_concat": torch.zeros(3, 4), "final_proj.weight": torch.zeros(4, 64)}}
    torch.save(ckpt, tmp_path / "hubert.pt")
    back, spec = speechssl2.load_pretrained(tmp_path / "hubert.pt")
    assert spec["name"] == "hubert_base" and not back.training
    same_outputs(up, back)


def test_fairseq_layer_norm_mode_with_argparse_args(tmp_path):
    torch.manual_seed(0)
    spec = {"name": "wav2vec2_tiny", "frontend": {"norm_mode": "layer_norm", "conv_bias": True},
            "encoder": {"layer_norm_first": True}, "normalize_waveform": True}
    up = build_upstream(spec)
    state = to_fairseq_state(up)
    assert "feature_extractor.conv_layers.3.2.1.weight" in state and "feature_extractor.conv_layers.3.0.bias" in state
    args = argparse.Namespace(**{**TINY_CFG, "extractor_mode": "layer_norm", "layer_norm_first": True,
                                 "conv_bias": True, "normalize": True, "arch": "wav2vec2"})
    torch.save({"args": args, "model": {**state, "quantizer.vars": torch.zeros(1)}}, tmp_path / "w2v.pt")
    back, spec = speechssl2.load_pretrained(tmp_path / "w2v.pt")
    assert back.normalize_waveform and spec["encoder"]["layer_norm_first"]
    same_outputs(up, back)


def test_unispeech_wavlm_checkpoint(tmp_path):
    torch.manual_seed(0)
    up = build_upstream({"name": "wavlm_tiny"})
    state = to_fairseq_state(up)
    assert set(WAVLM_NAMES) <= set(state) and state["encoder.layers.1.self_attn.grep_a"].shape == (1, 4, 1, 1)
    cfg = {**TINY_CFG, "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800,
           "gru_rel_pos": True, "normalize": False}
    torch.save({"cfg": cfg, "model": state}, tmp_path / "wavlm.pt")
    back, spec = speechssl2.load_pretrained(tmp_path / "wavlm.pt")
    assert spec["encoder"]["num_buckets"] == 320
    same_outputs(up, back)


def test_native_and_training_checkpoints(tmp_path):
    torch.manual_seed(0)
    up = build_upstream({"name": "w2v_bert_tiny", "encoder": {"num_layers": 3}})
    save_upstream(up, tmp_path / "up.pt")
    back, spec = speechssl2.load_pretrained(tmp_path / "up.pt")
    assert spec["encoder"]["num_layers"] == 3
    same_outputs(up, back)
    trainable = {f"upstream.{k}": v for k, v in up.state_dict().items()}
    trainable["head.weight"] = torch.zeros(5, 64)
    config = {"model": {"name": "w2v_bert", "upstream": {"name": "w2v_bert_tiny", "encoder": {"num_layers": 3}}}}
    torch.save({"model": trainable, "config": config, "step": 10}, tmp_path / "train.pt")
    back, _ = speechssl2.load_pretrained(tmp_path / "train.pt")
    same_outputs(up, back)


def test_mismatched_and_unknown_checkpoints(tmp_path):
    up = build_upstream({"name": "hubert_tiny"})
    state = up.state_dict()
    state.pop("feature_proj.bias")
    state["extra.weight"] = torch.zeros(1)
    state["feature_norm.weight"] = torch.zeros(3)
    torch.save({"format": "speechssl2-upstream", "spec": up.spec, "state_dict": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as err:
        speechssl2.load_pretrained(tmp_path / "bad.pt")
    message = str(err.value)
    assert "bad.pt" in message and "missing keys (1): feature_proj.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "feature_norm.weight: checkpoint (3,) vs model (64,)" in message
    fairseq_state = to_fairseq_state(up)
    fairseq_state["decoder.weight"] = torch.zeros(1)
    torch.save({"cfg": {"model": {"_name": "hubert", **TINY_CFG}}, "model": fairseq_state}, tmp_path / "fs.pt")
    with pytest.raises(CheckpointError, match=r"fs\.pt: 1 key\(s\) have no rename rule: decoder\.weight"):
        speechssl2.load_pretrained(tmp_path / "fs.pt")
    fairseq_state.pop("decoder.weight")
    fairseq_state["encoder.layers.0.self_attn.mystery"] = torch.zeros(1)
    torch.save({"cfg": {"model": {"_name": "hubert", **TINY_CFG}}, "model": fairseq_state}, tmp_path / "fs.pt")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): encoder\.layers\.0\.attention\.mystery"):
        speechssl2.load_pretrained(tmp_path / "fs.pt")
    torch.save({"weights": {}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd\.pt: unknown checkpoint format \(top-level keys: \['weights'\]"):
        speechssl2.load_pretrained(tmp_path / "odd.pt")
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        speechssl2.load_pretrained(tmp_path / "noconfig")


@pytest.mark.parametrize("kind, weights", [("hubert", "model.safetensors"), ("wavlm", "pytorch_model.bin")])
def test_hf_legacy_weight_norm_names(kind, weights, tiny_hf, tmp_path):
    """Hub checkpoints name the positional conv's weight norm ``weight_g``/``weight_v``; they load unchanged."""
    from safetensors.torch import load_file, save_file

    ref = tiny_hf(kind)
    ref.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    assert {"encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v"} <= set(legacy)
    if weights == "model.safetensors":
        save_file(legacy, str(tmp_path / weights))
    else:
        torch.save(legacy, tmp_path / weights)
    ours, _ = speechssl2.load_pretrained(tmp_path)
    assert_matches_hf(ours, ref, atol=1e-5)


def test_convert_cli_hf_round_trip(tmp_path):
    import transformers

    torch.manual_seed(0)
    up = build_upstream({"name": "wavlm_tiny"}).eval()
    save_upstream(up, tmp_path / "up.pt")
    convert.main([str(tmp_path / "up.pt"), str(tmp_path / "hf"), "--to", "hf"])
    hf = transformers.AutoModel.from_pretrained(tmp_path / "hf").eval()
    assert type(hf).__name__ == "WavLMModel"
    assert_matches_hf(up, hf, atol=1e-4)
    convert.main([str(tmp_path / "hf"), str(tmp_path / "back.pt"), "--to", "speechssl2", "--from", "hf"])
    back, _ = speechssl2.load_pretrained(tmp_path / "back.pt")
    same_outputs(up, back)
    with pytest.raises(CheckpointError, match="cannot export a 'fbank' frontend to HF"):
        save_upstream(build_upstream({"name": "w2v_bert_tiny"}), tmp_path / "wb.pt")
        convert.main([str(tmp_path / "wb.pt"), str(tmp_path / "wb"), "--to", "hf"])
