"""Parity with randomly initialised transformers models, and HF -> speechssl2 -> HF round trips.

Reference per utterance: HF run on each utterance alone (the padding-free answer).
Where HF's batched computation is itself padding-invariant (layer-norm frontend +
Transformer) the padded batch is also compared with HF's batched output. HF's group-norm
frontend and conformer conv module let padding leak into real frames; ours do not.
"""
from __future__ import annotations

import pytest
import torch

from speechssl2.models.functional import normalize_waveform
from speechssl2.models.io.hf import CONFORMER_IGNORE, load_hf, save_hf, to_hf_state

CASES = {
    "wav2vec2-group-postln": ("wav2vec2", {}, False),
    "wav2vec2-layer-preln": ("wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=True,
                                              conv_bias=True), True),
    "wav2vec2-layer-postln": ("wav2vec2", dict(feat_extract_norm="layer"), True),
    "hubert-group-postln": ("hubert", {}, False),
    "hubert-layer-preln": ("hubert", dict(feat_extract_norm="layer", do_stable_layer_norm=True), True),
    "wavlm-group-postln": ("wavlm", {}, False),
    "wavlm-layer-preln": ("wavlm", dict(feat_extract_norm="layer", do_stable_layer_norm=True), True),
    "conformer-relative": ("wav2vec2-conformer", dict(feat_extract_norm="layer", hidden_act="swish"), False),
    "conformer-rotary": ("wav2vec2-conformer", dict(feat_extract_norm="layer",
                                                    position_embeddings_type="rotary"), False),
}
TOL = 1e-4
# Tiny configs stride 20 samples: 24000 samples give 1199 frames, so WavLM sees relative distances
# well beyond max_bucket_distance (800) and a wrong clamp of its far buckets shows in both layouts.
WAVLM_SAMPLES = 24000


def hf_states(model, wav, mask=None):
    """HF hidden states in our convention: last entry = last_hidden_state (final LayerNorm applied)."""
    out = model(wav, attention_mask=mask, output_hidden_states=True)
    return list(out.hidden_states[:-1]) + [out.last_hidden_state]


def batch(longest: int = 4000):
    torch.manual_seed(1)
    wav = torch.randn(3, longest)
    lengths = torch.tensor([longest, 2500, 1234])
    wav[torch.arange(longest)[None] >= lengths[:, None]] = 0.0
    return wav, lengths


@pytest.mark.parametrize("case", sorted(CASES))
def test_hidden_states_match_hf(case, tiny_hf, tmp_path):
    kind, overrides, batched_reference = CASES[case]
    ref = tiny_hf(kind, **overrides)
    ref.save_pretrained(tmp_path)
    ours, spec = load_hf(tmp_path)
    ours.eval()
    wav, lengths = batch(WAVLM_SAMPLES if kind == "wavlm" else 4000)
    with torch.no_grad():
        out = ours(wav, lengths)
        hf_in = normalize_waveform(wav, lengths) if ours.normalize_waveform else wav
        assert len(out.hidden_states) == ref.config.num_hidden_layers + 1
        for b, n in enumerate(out.lengths.tolist()):
            alone = hf_states(ref, hf_in[b:b + 1, : lengths[b]])
            for layer, (o, r) in enumerate(zip(out.hidden_states, alone)):
                assert r.shape[1] == n
                torch.testing.assert_close(o[b, :n], r[0], atol=TOL, rtol=0, msg=f"{case} utt {b} layer {layer}")
        if batched_reference:
            mask = (torch.arange(wav.shape[1])[None] < lengths[:, None]).long()
            for o, r in zip(out.hidden_states, hf_states(ref, hf_in, mask)):
                for b, n in enumerate(out.lengths.tolist()):
                    torch.testing.assert_close(o[b, :n], r[b, :n], atol=TOL, rtol=0)
        conv = ref.feature_extractor(hf_in[:1]).transpose(1, 2)  # (1, T, C)
        extract = ref.feature_projection.layer_norm(conv)
        torch.testing.assert_close(out.features[0], extract[0], atol=TOL, rtol=0)


@pytest.mark.parametrize("case", ["wav2vec2-layer-preln", "hubert-group-postln", "hubert-layer-preln",
                                  "wavlm-group-postln", "wavlm-layer-preln", "conformer-relative",
                                  "conformer-rotary"])
def test_hf_round_trip_is_exact(case, tiny_hf, tmp_path):
    import transformers

    kind, overrides, _ = CASES[case]
    ref = tiny_hf(kind, **overrides)
    ref.save_pretrained(tmp_path / "src")
    ours, _ = load_hf(tmp_path / "src")
    ignore = CONFORMER_IGNORE if kind == "wav2vec2-conformer" else ()
    original = {k: v for k, v in ref.state_dict().items() if not k.startswith(ignore)}
    exported = to_hf_state(ours)
    assert exported.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(exported[key], value), key
    save_hf(ours, tmp_path / "dst")
    back = transformers.AutoModel.from_pretrained(tmp_path / "dst").eval()
    assert type(back) is type(ref)
    wav, lengths = batch()
    with torch.no_grad():
        for a, b in zip(hf_states(ref, wav[:1]), hf_states(back, wav[:1])):
            assert torch.equal(a, b)
