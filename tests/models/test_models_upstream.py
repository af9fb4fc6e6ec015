"""Upstream contract over every preset/encoder: shapes, lengths, padding invariance, masking, bad input."""
from __future__ import annotations

import pytest
import soundfile as sf
import torch

from speechssl2.models import build_upstream
from speechssl2.models.unpadded import padding_mode
from speechssl2.registry import ENCODERS, PRESETS, RegistryError

TINY = ["wav2vec2_tiny", "hubert_tiny", "wavlm_tiny", "w2v_bert_tiny", "wav2vec_tiny"]
ENCODER_OF = {"transformer": "wav2vec2_tiny", "conformer": "w2v_bert_tiny", "wav2vec_context": "wav2vec_tiny"}


def real_batch(fsdd_dir, n=3):
    """Three FSDD digits (8 kHz, different lengths), zero-padded into one batch."""
    files = sorted(fsdd_dir.glob("*_jackson_0.wav"))[:n]
    waves = [torch.tensor(sf.read(f, dtype="float32")[0]) for f in files]
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(n, int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, lengths


def test_every_encoder_has_a_tiny_preset():
    assert set(ENCODERS.keys()) <= set(ENCODER_OF)
    assert set(TINY) | {"wav2vec2_base", "wav2vec2_large", "hubert_base", "hubert_large", "wavlm_base",
                        "wavlm_base_plus", "wavlm_large", "w2v_bert"} <= set(PRESETS.keys())


@pytest.mark.parametrize("mode", ["split", "padded"])
@pytest.mark.parametrize("name", TINY + [f"{ENCODER_OF['transformer']}+layer_norm"])
def test_padding_invariance_on_real_audio(name, mode, fsdd_dir):
    """An utterance alone equals the same utterance inside a padded batch (every encoder, both norm modes).

    Both ways a batch runs: without its padding (CPU, wide models) and padded (accelerators).
    """
    spec = {"name": name.split("+")[0]}
    if name.endswith("+layer_norm"):
        spec.update(frontend={"norm_mode": "layer_norm"}, encoder={"layer_norm_first": True}, normalize_waveform=True)
    torch.manual_seed(0)
    up = build_upstream(spec).eval()
    wav, lengths = real_batch(fsdd_dir)
    with torch.no_grad(), padding_mode(mode):
        out = up(wav, lengths)
        assert out.lengths.tolist() == up.frame_lengths(lengths).tolist()
        assert out.padding_mask.sum(1).tolist() == (out.padding_mask.shape[1] - out.lengths).tolist()
        for b in range(len(lengths)):
            alone = up(wav[b:b + 1, : lengths[b]], lengths[b:b + 1])
            n = int(out.lengths[b])
            assert alone.hidden_states[0].shape[1] == n
            for o, a in zip(out.hidden_states, alone.hidden_states):
                torch.testing.assert_close(o[b, :n], a[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", TINY)
def test_contract_attributes_and_length_formula(name):
    up = build_upstream({"name": name}).eval()
    lengths = torch.tensor([up.min_samples, up.min_samples + 1234, 8000])
    out = up(torch.randn(3, 8000), lengths)
    assert out.hidden_states[0].shape == (3, int(up.frame_lengths(lengths).max()), up.embed_dim)
    assert out.lengths[0] == 1  # the receptive field gives exactly one frame
    assert out.features.shape[-1] == up.feature_dim and out.features_pen.ndim == 0
    assert len(out.hidden_states) == len(up.encoder.layers) + 1


def test_time_mask_replaces_frames_with_mask_emb():
    torch.manual_seed(0)
    up = build_upstream({"name": "wavlm_tiny", "feature_dropout": 0.0}).eval()
    wav, lengths = torch.randn(2, 4000), torch.tensor([4000, 4000])
    everything = torch.ones(2, int(up.frame_lengths(lengths)[0]), dtype=torch.bool)
    with torch.no_grad():
        out = up(wav, lengths, time_mask=everything)
        torch.testing.assert_close(out.hidden_states[-1][0], out.hidden_states[-1][1])  # input no longer matters
        some = torch.zeros_like(everything)
        some[:, 3:6] = True
        plain, masked = up(wav, lengths), up(wav, lengths, time_mask=some)
        assert not torch.allclose(plain.hidden_states[-1], masked.hidden_states[-1])
        torch.testing.assert_close(plain.features, masked.features)  # quantizer input stays unmasked
    with pytest.raises(ValueError, match=r"time_mask must be a bool tensor of shape \(2, 12\)"):
        up(wav, lengths, time_mask=some[:, :5])


def test_bad_input_errors():
    up = build_upstream({"name": "hubert_tiny"})
    with pytest.raises(ValueError, match=r"shape \(B, S\), got shape \(2, 1, 4000\).*wav\[:, 0\]"):
        up(torch.randn(2, 1, 4000), torch.tensor([4000, 4000]))
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\].*got \[399\].*minimum length is 400 samples"):
        up(torch.randn(2, 4000), torch.tensor([4000, 399]))
    with pytest.raises(ValueError, match="exceed the padded length 4000"):
        up(torch.randn(2, 4000), torch.tensor([4000, 4001]))
    with pytest.raises(ValueError, match=r"empty batch \(B == 0\)"):
        up(torch.randn(0, 4000), torch.zeros(0, dtype=torch.long))
    with pytest.raises(RegistryError, match="unknown presets key 'hubert_tinyy'"):
        build_upstream({"name": "hubert_tinyy"})
    with pytest.raises(RegistryError, match="unknown argument 'num_layer'"):
        build_upstream({"name": "hubert_tiny", "encoder": {"num_layer": 3}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['encodr'\]"):
        build_upstream({"name": "hubert_tiny", "encodr": {}})


def test_overrides_merge_into_presets_and_layerdrop_keeps_layer_indices():
    up = build_upstream({"name": "wav2vec2_tiny", "encoder": {"num_layers": 3, "layerdrop": 0.99}})
    assert len(up.encoder.layers) == 3 and up.spec["encoder"]["embed_dim"] == 64
    torch.manual_seed(0)
    out = up.train()(torch.randn(1, 4000), torch.tensor([4000]))
    assert len(out.hidden_states) == 4
    assert torch.equal(out.hidden_states[1], out.hidden_states[0])  # p=0.99: layers skipped, input repeated


@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    """No parameter is dead weight: one backward through a masked batch touches all of them."""
    torch.manual_seed(0)
    up = build_upstream({"name": name}).train()
    wav, lengths = torch.randn(2, 6000), torch.tensor([6000, 5000])
    mask = torch.zeros(2, int(up.frame_lengths(lengths).max()), dtype=torch.bool)
    mask[:, 2:5] = True
    out = up(wav, lengths, time_mask=mask)
    (out.hidden_states[-1][~out.padding_mask].pow(3).mean() + out.features_pen).backward()
    dead = [n for n, p in up.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
