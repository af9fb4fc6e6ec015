"""SSLModel: one span mask per batch, weighted objectives by name, temperature propagation."""
import pytest
import torch

from speechssl2.models.functional import padding_mask
from speechssl2.registry import MODELS, RegistryError

W2V = {"name": "wav2vec2", "final_dim": 16, "num_negatives": 5, "quantizer": {"num_vars": 8, "codebook_dim": 16}}


def _batch():
    gen = torch.Generator().manual_seed(0)
    lens = torch.tensor([8000, 5000, 3000])
    audio = torch.randn(3, 8000, generator=gen) * (torch.arange(8000)[None, :] < lens[:, None])
    return {"audio": audio, "audio_lens": lens}


def _model(objectives, upstream="hubert_tiny"):
    torch.manual_seed(0)
    return MODELS.build({"name": "ssl", "upstream": {"name": upstream}, "masking": {"prob": 0.2, "span": 3},
                         "objectives": objectives})


def _targets(model, batch):
    frames = model.upstream.frame_lengths(batch["audio_lens"])
    targets = torch.randint(0, 6, (3, int(frames.max())), generator=torch.Generator().manual_seed(1))
    targets[torch.arange(targets.shape[1])[None, :] >= frames[:, None]] = -100
    return {**batch, "targets": targets, "target_lens": frames}


def test_objectives_combine_by_their_config_weights():
    model = _model([{"name": "hubert", "weight": 0.7, "num_classes": 6, "final_dim": 16},
                    {**W2V, "weight": 0.25, "feature_pen_weight": 0}])
    model.eval()  # no dropout, argmax quantizer: two forwards with the same mask agree
    batch = _targets(model, _batch())
    step = model(batch, generator=torch.Generator().manual_seed(3))
    hub, w2v = model.objectives["hubert"], model.objectives["wav2vec2"]
    terms = step.terms
    assert "wav2vec2/feature_pen" not in terms
    expected = 0.7 * (terms["hubert/masked_ce_l2"] + 10 * terms["hubert/feature_pen"]) + 0.25 * (
        terms["wav2vec2/contrastive"] + 0.1 * terms["wav2vec2/diversity"]
    )
    torch.testing.assert_close(step.loss.detach(), expected)
    assert "hubert/acc_masked_l2" in step.metrics and "wav2vec2/code_ppl" in step.metrics
    assert 0.0 < step.metrics["mask_ratio"] < 1.0
    step.loss.backward()
    assert model.upstream.mask_emb.grad.abs().sum() > 0  # the mask reached the upstream
    assert hub.label_embs.grad is not None and w2v.quantizer.codebooks.grad is not None


def test_feature_penalty_of_the_shared_upstream_is_added_once():
    model = _model([{"name": "hubert", "num_classes": 6, "final_dim": 16}, W2V])  # both default to 10
    with pytest.raises(ValueError, match=r"\['hubert', 'wav2vec2'\] each add the feature penalty"):
        model(_targets(model, _batch()))


@pytest.mark.parametrize("order", [1, -1])
def test_sample_size_is_the_mean_over_objectives_in_any_order(order):
    """HuBERT counts masked frames that have a target, wav2vec 2.0 every masked frame: they differ here."""
    hubert = {"name": "hubert", "num_classes": 6, "final_dim": 16, "feature_pen_weight": 0}
    model = _model([hubert, W2V][::order])
    batch = _targets(model, _batch())
    batch["targets"][0] = -100  # no targets for the first utterance
    step = model(batch, generator=torch.Generator().manual_seed(3))
    frames = model.upstream.frame_lengths(batch["audio_lens"])
    mask = model.masker(padding_mask(frames, batch["targets"].shape[1]), torch.Generator().manual_seed(3))
    masked, with_target = int(mask.sum()), int((mask & (batch["targets"] >= 0)).sum())
    assert 0 < with_target < masked
    assert step.sample_size == round((masked + with_target) / 2)


def test_mask_is_padding_aware_and_seeded():
    model = _model([{"name": "hubert", "num_classes": 6}])
    batch = _targets(model, _batch())
    seen = []
    original = model.upstream.forward

    def spy(wav, lengths, time_mask=None):
        seen.append(time_mask)
        return original(wav, lengths, time_mask)

    model.upstream.forward = spy
    model(batch, generator=torch.Generator().manual_seed(5))
    model(batch, generator=torch.Generator().manual_seed(5))
    frames = model.upstream.frame_lengths(batch["audio_lens"])
    assert torch.equal(seen[0], seen[1])
    assert not seen[0][torch.arange(seen[0].shape[1])[None, :] >= frames[:, None]].any()


def test_set_num_updates_reaches_the_quantizer():
    model = _model([W2V], upstream="wav2vec2_tiny")
    model.set_num_updates(20000)
    assert model.objectives["wav2vec2"].quantizer.temperature == pytest.approx(2.0 * 0.999995**20000)


def test_bad_model_configs_raise():
    with pytest.raises(ValueError, match="listed twice"):
        _model([{"name": "hubert", "num_classes": 6}, {"name": "hubert", "num_classes": 6}])
    with pytest.raises(ValueError, match="empty"):
        _model([])
    with pytest.raises(RegistryError, match="unknown objectives key 'hubbert'"):
        _model([{"name": "hubbert"}])
