"""CPU runs of a padded batch without its padding: same numbers as the padded batch, less work."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models import build_upstream
from speechssl2.models.unpadded import MIN_SAVED_WORK, pack, pad_stack, padding_mode, split_by_utterance, unpack


def batch(lengths):
    torch.manual_seed(1)
    wav = torch.randn(len(lengths), max(lengths)) * 0.1
    lengths = torch.tensor(lengths)
    return wav * (torch.arange(wav.shape[1])[None] < lengths[:, None]), lengths


def test_split_when_the_saved_padding_outweighs_the_extra_calls():
    x, frames = torch.zeros(2, 100), torch.tensor([100, 60])  # 20 padded frames per utterance on average
    wide = int((MIN_SAVED_WORK / 20) ** 0.5) + 1
    assert split_by_utterance(x, frames, 100, wide)
    assert not split_by_utterance(x, frames, 100, wide - 2)  # too narrow: the calls would cost more
    assert not split_by_utterance(x, torch.tensor([100, 100]), 100, 768)  # no padding
    assert not split_by_utterance(x[:1], frames[:1], 100, 768)  # one utterance
    with padding_mode("padded"):
        assert not split_by_utterance(x, frames, 100, 768)
    with padding_mode("split"):
        assert split_by_utterance(x, frames, 100, 8)
        assert not split_by_utterance(x, torch.tensor([100, 100]), 100, 8)
    assert not split_by_utterance(x, frames, 100, 8)  # restored


def test_pack_and_unpack_are_inverse_and_zero_fill():
    rows = [torch.ones(1, 3, 2), 2 * torch.ones(1, 5, 2)]
    out = pad_stack(rows, 6)
    assert out.shape == (2, 6, 2)
    assert out[0, :3].eq(1).all() and out[0, 3:].eq(0).all() and out[1, :5].eq(2).all() and out[1, 5:].eq(0).all()
    packed = pack(out, [3, 5])
    assert packed.shape == (1, 8, 2) and packed[0, :3].eq(1).all() and packed[0, 3:].eq(2).all()
    torch.testing.assert_close(unpack(packed, [3, 5], 6), out)


@pytest.mark.parametrize("name", ["wav2vec2_tiny", "hubert_tiny", "wavlm_tiny", "wav2vec_tiny"])
def test_split_equals_padded_batch_outputs_and_gradients(name):
    """Every hidden state and every parameter gradient of the split run equal the padded batch's (1e-5)."""
    torch.manual_seed(0)
    up = build_upstream({"name": name}).eval()  # dropout off: both runs must see the same function
    wav, lengths = batch([4000, 2500, 3300])

    def run():
        up.zero_grad(set_to_none=True)
        out = up(wav, lengths)
        valid = (~out.padding_mask)[..., None]
        (sum((h * valid).pow(2).mean() for h in out.hidden_states) + out.features_pen).backward()
        return out, {n: p.grad.clone() for n, p in up.named_parameters() if p.grad is not None}

    with padding_mode("split"):
        split, split_grads = run()
    with padding_mode("padded"):
        padded, padded_grads = run()
    valid = (~padded.padding_mask)[..., None]
    assert split.lengths.tolist() == padded.lengths.tolist()
    for s, p in zip(split.hidden_states, padded.hidden_states):
        torch.testing.assert_close(s * valid, p * valid, atol=1e-5, rtol=0)
        if name != "wav2vec_tiny":  # the Transformer's split run leaves padded frames at exactly 0
            assert s.masked_select(~valid).eq(0).all()
    assert split_grads.keys() == padded_grads.keys()
    for key, grad in padded_grads.items():
        torch.testing.assert_close(split_grads[key], grad, atol=1e-5, rtol=1e-4, msg=key)


def test_layerdrop_drops_the_same_layers_for_every_utterance():
    """One LayerDrop draw per layer and batch, as in fairseq, also when the batch runs packed."""
    torch.manual_seed(0)
    up = build_upstream({"name": "wav2vec2_tiny", "encoder": {"layerdrop": 0.5}}).train()
    wav, lengths = batch([4000, 2500])
    dropped_somewhere = False
    with padding_mode("split"):
        for _ in range(8):
            hidden = up(wav, lengths).hidden_states
            for before, after in zip(hidden, hidden[1:]):
                same = [bool(torch.equal(before[b], after[b])) for b in range(2)]
                assert same[0] == same[1]
                dropped_somewhere |= same[0]
    assert dropped_somewhere
