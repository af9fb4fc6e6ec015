"""The small presets (issue 17): one per seed objective, CPU-trainable sizes, drop-in frame rates."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models.upstream import build_upstream

SMALL_OF_BASE = {"wav2vec_small": "wav2vec_base", "wav2vec2_small": "wav2vec2_base", "hubert_small": "hubert_base",
                 "wavlm_small": "wavlm_base", "ils_small": "hubert_base", "w2v_bert_small": "w2v_bert"}


@pytest.mark.parametrize("small, base", sorted(SMALL_OF_BASE.items()))
def test_small_preset_size_and_frame_rate(small, base):
    """5-25M parameters (docs/benchmarks.md), and the frames of the paper model it stands for, so
    labels and recipes made for that model fit it unchanged."""
    up, ref = build_upstream({"name": small}), build_upstream({"name": base})
    params = sum(p.numel() for p in up.parameters())
    assert 5e6 <= params <= 25e6, f"{small}: {params / 1e6:.1f}M parameters"
    assert params < sum(p.numel() for p in ref.parameters()) or small == "wav2vec_small"
    lengths = torch.tensor([400, 16000, 16001, 35999, 64000])
    assert torch.equal(up.frame_lengths(lengths), ref.frame_lengths(lengths))
    assert up.min_samples == ref.min_samples


def test_ils_small_has_the_ungated_bucketed_bias():
    """ILS's upstream is HuBERT's with the released ILS BASE's relative position bias, without WavLM's gate."""
    encoder = build_upstream({"name": "ils_small"}).encoder
    assert encoder.rel_bias is not None
    assert all(layer.gate is None for layer in encoder.layers)
    assert all(layer.gate is not None for layer in build_upstream({"name": "wavlm_small"}).encoder.layers)


@pytest.mark.parametrize("name", ["hubert_small", "w2v_bert_small", "wav2vec_small"])
def test_small_preset_is_padding_invariant(name):
    """An utterance alone equals the same utterance in a padded batch (the encoder contract)."""
    torch.manual_seed(0)
    up = build_upstream({"name": name, "feature_dropout": 0.0}).eval()
    wav = torch.randn(2, 12000) * 0.1
    lengths = torch.tensor([12000, 7000])
    with torch.no_grad():
        batch = up(wav, lengths)
        alone = up(wav[1:, :7000], lengths[1:])
    n = int(alone.lengths[0])
    torch.testing.assert_close(batch.hidden_states[-1][1, :n], alone.hidden_states[-1][0], rtol=1e-4, atol=1e-4)
