"""CTC fine-tuning: learning on real FSDD audio, freeze policy, weighted sum, masking, bad input."""
from __future__ import annotations

import logging

import pytest
import torch

from finetune_helpers import CHARS, DIGITS, NO_MASKS, fsdd_batch, overfit
from speechssl2.registry import MODELS, RegistryError

UPSTREAM = {"name": "wav2vec2_tiny", "feature_dropout": 0.0}
NAMES = ["0_jackson_5", "1_nicolas_6", "2_theo_7", "3_george_8"]


def ctc_model(**encoder) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build({"name": "ctc", "tokenizer": CHARS, "encoder": {"upstream": UPSTREAM, **encoder}})


@pytest.mark.slow
def test_ctc_overfits_fsdd_and_greedy_decodes_the_digit_words(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES)
    model = ctc_model(**NO_MASKS)
    losses = overfit(model, batch, steps=100)
    assert losses[-1] < 0.05 * losses[0], losses[::10]
    assert model.transcribe(batch["audio"], batch["audio_lens"]) == ["zero", "one", "two", "three"]
    out = model(batch)  # eval mode: validation metrics
    assert out.metrics["token_error_rate"] == 0.0


def _grads(model: torch.nn.Module, prefix: str) -> list:
    return [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]


def test_freeze_policy_frontend_always_transformer_for_first_updates(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES[:2])
    model = ctc_model(freeze_updates=3)
    model.train()
    for updates, transformer_trains in [(0, False), (2, False), (3, True), (10, True)]:
        model.zero_grad(set_to_none=True)
        model.set_num_updates(updates)
        model(batch).loss.backward()
        assert all(g is None for g in _grads(model, "encoder.upstream.frontend.")), updates
        assert all(p.requires_grad is False for p in model.encoder.upstream.frontend.parameters())
        encoder_grads = _grads(model, "encoder.upstream.encoder.")
        if transformer_trains:
            assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads), updates
        else:
            assert all(g is None for g in encoder_grads), updates
        assert all(g is not None for g in _grads(model, "head."))


def test_weighted_sum_of_layers_receives_gradients_while_upstream_frozen(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES[:2])
    model = ctc_model(weighted_sum=True, freeze_updates=100)
    model.train()
    model(batch).loss.backward()
    weights = model.encoder.layer_sum.weights
    assert weights.numel() == len(model.encoder.upstream.encoder.layers) + 1
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    assert all(g is None for g in _grads(model, "encoder.upstream."))


def test_channel_mask_zeroes_whole_channels_in_training_only(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES[:2])
    model = ctc_model(time_mask=[0.0, 10], channel_mask=[0.2, 8])
    enc = model.encoder
    enc.train()
    torch.manual_seed(1)
    x, lengths, pad = enc(batch["audio"], batch["audio_lens"])
    zero_channels = (x == 0).all(dim=1)  # (B, D)
    assert zero_channels.any() and not zero_channels.all()
    enc.eval()
    x, _, _ = enc(batch["audio"], batch["audio_lens"])
    assert not (x[~pad] == 0).all(dim=0).any()


def test_time_mask_changes_training_output_and_never_eval(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES[:1])
    model = ctc_model(time_mask=[0.5, 2])
    model.encoder.train()
    model.encoder.upstream.eval()  # no dropout: only the mask differs between the calls below
    masked, _, _ = model.encoder(batch["audio"], batch["audio_lens"])
    model.encoder.eval()
    clean1, _, _ = model.encoder(batch["audio"], batch["audio_lens"])
    clean2, _, _ = model.encoder(batch["audio"], batch["audio_lens"])
    assert torch.equal(clean1, clean2)
    assert not torch.allclose(masked, clean1, atol=1e-3)


def test_transcript_outside_the_tokenizer_names_the_utterance(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, NAMES[:2])
    batch["text"][1] = "one 2"
    with pytest.raises(ValueError, match="1_nicolas_6.*cannot tokenize"):
        ctc_model()(batch)


def test_transcript_longer_than_the_audio_is_reported(fsdd_dir, caplog):
    batch = fsdd_batch(fsdd_dir, NAMES[:2])
    batch["text"][0] = " ".join(DIGITS * 3)
    with caplog.at_level(logging.WARNING):
        out = ctc_model()(batch)
    assert torch.isfinite(out.loss)
    assert "0_jackson_5" in caplog.text and "1_nicolas_6" not in caplog.text


def test_unknown_encoder_argument_is_rejected():
    with pytest.raises(RegistryError, match="unknown argument 'freeze_update'"):
        MODELS.build({"name": "ctc", "tokenizer": CHARS, "encoder": {"upstream": UPSTREAM, "freeze_update": 3}})
