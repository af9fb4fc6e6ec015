"""HuBERT objective: cosine logits / 0.1, masked-only loss, label-rate check, ILS layers."""
import pytest
import torch
import torch.nn.functional as F

from speechssl2.interfaces import UpstreamOutput
from speechssl2.registry import OBJECTIVES

B, T, D, C = 3, 12, 8, 5


def _upstream_output(lengths, num_layers=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    padding = torch.arange(T)[None, :] >= lengths[:, None]
    hidden = [torch.randn(B, T, D, generator=gen, requires_grad=True) for _ in range(num_layers + 1)]
    return UpstreamOutput(hidden, lengths, padding, None, torch.tensor(0.25))


def _batch(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, C, (B, T), generator=gen)
    for b, n in enumerate(lengths):
        targets[b, n:] = -100
    return {"targets": targets, "target_lens": torch.tensor(lengths)}


def _mask(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, T, generator=gen) < 0.5
    return mask & (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None])


def _objective(**kwargs):
    torch.manual_seed(0)
    return OBJECTIVES.build({"name": "hubert", "num_classes": C, "final_dim": 6, **kwargs}, embed_dim=D)


def test_masked_ce_matches_reference():
    lengths = [12, 9, 5]
    obj, out, mask, batch = _objective(), _upstream_output(lengths), _mask(lengths), _batch(lengths)
    result = obj(out, mask, batch)
    assert set(result.terms) == {"masked_ce_l4", "feature_pen"}
    assert result.weights == {"masked_ce_l4": 1.0, "feature_pen": 10.0}
    projected = obj.final_proj[0](out.hidden_states[4][mask])  # (N, F)
    logits = torch.stack(
        [torch.stack([F.cosine_similarity(p, e, dim=0) for e in obj.label_embs]) for p in projected]
    ) / 0.1
    reference = F.cross_entropy(logits, batch["targets"][mask])
    torch.testing.assert_close(result.terms["masked_ce_l4"], reference)
    assert result.sample_size == int(mask.sum())
    expected = result.terms["masked_ce_l4"] + 10.0 * 0.25
    torch.testing.assert_close(result.weighted_loss(), expected)


def test_unmasked_targets_do_not_change_the_loss():
    lengths = [12, 9, 5]
    obj, out, mask, batch = _objective(), _upstream_output(lengths), _mask(lengths), _batch(lengths)
    before = obj(out, mask, batch).terms["masked_ce_l4"]
    batch["targets"][~mask & (batch["targets"] >= 0)] = 0
    torch.testing.assert_close(obj(out, mask, batch).terms["masked_ce_l4"], before)
    with_unmasked = _objective(unmasked_weight=0.5)(out, mask, batch)
    assert with_unmasked.weights["unmasked_ce_l4"] == 0.5


def test_ils_predicts_every_listed_layer():
    lengths = [12, 12, 7]
    obj = _objective(predict_layers=[2, 4], layer_weights=[0.3, 1.0])
    out = _upstream_output(lengths)
    result = obj(out, _mask(lengths), _batch(lengths))
    assert result.weights == {"masked_ce_l2": 0.3, "masked_ce_l4": 1.0, "feature_pen": 10.0}
    assert {"acc_masked_l2", "acc_unmasked_l2", "acc_masked_l4", "acc_unmasked_l4"} <= set(result.metrics)
    result.weighted_loss().backward()
    assert out.hidden_states[2].grad.abs().sum() > 0 and out.hidden_states[3].grad is None


def test_label_rate_mismatch_is_a_clear_error():
    lengths = [12, 9, 5]
    obj, out, mask = _objective(), _upstream_output(lengths), _mask(lengths)
    batch = _batch(lengths)
    batch.update(target_lens=torch.tensor([24, 18, 10]), sample_rate=16000, audio_lens=torch.tensor([3840, 2880, 1600]))
    batch["ids"] = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"utterance 'a' has 24 targets .* 12 frames .* label rate 100.0 Hz vs frame rate 50.0 Hz"):
        obj(out, mask, batch)
    batch = _batch(lengths)
    batch["target_lens"] = torch.tensor([12, 10, 5])  # one frame of rounding is tolerated
    obj(out, mask, batch)


def test_bad_targets_and_layers_raise():
    lengths = [12, 9, 5]
    out, mask, batch = _upstream_output(lengths), _mask(lengths), _batch(lengths)
    batch["targets"][1, 2] = C
    with pytest.raises(ValueError, match=r"#1 of the batch has target 5 outside \[0, 5\)"):
        _objective()(out, mask, batch)
    with pytest.raises(ValueError, match="predict layer 7 does not exist"):
        _objective(predict_layers=[7])(out, mask, _batch(lengths))
    with pytest.raises(ValueError, match="equal length"):
        _objective(predict_layers=[2, 4], layer_weights=[1.0])
    with pytest.raises(ValueError, match="no 'targets'"):
        _objective()(out, mask, {})


@pytest.mark.parametrize("layers,repeated", [([4, -1], 4), ([2, 2], 2), ([-2, 1, 3], 3)])
def test_ils_layers_naming_one_layer_twice_raise(layers, repeated):
    """Terms are keyed by resolved layer: a repeat would silently drop one term and its weight."""
    lengths = [12, 9, 5]
    obj = _objective(predict_layers=layers, layer_weights=[1.0] * len(layers))
    with pytest.raises(ValueError, match=rf"name layer\(s\) \[{repeated}\] more than once"):
        obj(_upstream_output(lengths), _mask(lengths), _batch(lengths))  # 4 blocks: hidden states 0..4


def test_separate_label_embeds_give_each_predicted_layer_its_own_table():
    """ILS BASE as released (UniSpeech --separate-label-embeds): layer 2 scores against its own embeddings."""
    lengths = [12, 9, 5]
    obj = _objective(predict_layers=[2, 4], separate_label_embeds=True)
    out, mask, batch = _upstream_output(lengths), _mask(lengths), _batch(lengths)
    assert len(obj.extra_label_embs) == 1 and not torch.equal(obj.extra_label_embs[0], obj.label_embs)
    result = obj(out, mask, batch)
    projected = obj.final_proj[1](out.hidden_states[4][mask])  # (N, F), the second predicted layer
    logits = F.cosine_similarity(projected[:, None], obj.extra_label_embs[0][None], dim=-1) / 0.1
    torch.testing.assert_close(result.terms["masked_ce_l4"], F.cross_entropy(logits, batch["targets"][mask]))
    result.terms["masked_ce_l2"].backward()
    assert obj.label_embs.grad is not None and obj.extra_label_embs[0].grad is None  # layer 2 uses table 0 only


def test_shared_label_embeds_are_one_table():
    obj = _objective(predict_layers=[2, 4])
    assert len(obj.extra_label_embs) == 0
    lengths = [12, 9, 5]
    result = obj(_upstream_output(lengths), _mask(lengths), _batch(lengths))
    result.terms["masked_ce_l4"].backward()
    assert obj.label_embs.grad is not None
