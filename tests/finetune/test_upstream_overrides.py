"""FineTuneEncoder(upstream_overrides=...) sets the upstream's dropout rates for fine-tuning."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from speechssl2.finetune.encoder import FineTuneEncoder
from speechssl2.models.attention import SelfAttention
from speechssl2.models.transformer import FeedForward

# activation_dropout first: setting "dropout" afterwards must leave the activation dropouts alone
RATES = {"activation_dropout": 0.3, "dropout": 0.0, "attention_dropout": 0.0, "layerdrop": 0.05,
         "feature_dropout": 0.0}


def _rates(enc: FineTuneEncoder):
    """(residual dropouts, attention dropouts, activation dropouts, layerdrop, feature dropout) as set."""
    encoder = enc.upstream.encoder
    ffns = [m for m in encoder.modules() if isinstance(m, FeedForward)]
    act = [f.act_drop for f in ffns]
    residual = [m.p for m in encoder.modules() if isinstance(m, nn.Dropout) and all(m is not a for a in act)]
    attention = [m.dropout for m in encoder.modules() if isinstance(m, SelfAttention)]
    return residual, attention, [a.p for a in act], encoder.layerdrop, enc.upstream.feature_drop.p


@pytest.mark.parametrize("preset", ["wavlm_tiny", "w2v_bert_tiny"])
def test_overrides_reach_every_module(preset):
    before = _rates(FineTuneEncoder({"name": preset}))
    assert set(before[0]) == {0.1} and set(before[1]) == {0.1} and set(before[2]) == {0.0}  # preset rates
    residual, attention, activation, layerdrop, feature = _rates(FineTuneEncoder({"name": preset},
                                                                                 upstream_overrides=RATES))
    assert len(residual) >= 1 + 2 * 2 and set(residual) == {0.0}  # encoder input + 2 per layer at least
    assert len(attention) == 2 and set(attention) == {0.0}
    assert len(activation) >= 2 and set(activation) == {0.3}
    assert (layerdrop, feature) == (0.05, 0.0)


def test_overrides_apply_to_an_upstream_loaded_from_a_checkpoint(tmp_path):
    """A saved upstream comes back with its pre-training rates; the overrides replace them."""
    from speechssl2.models import build_upstream
    from speechssl2.models.io.native import save_upstream

    path = save_upstream(build_upstream({"name": "hubert_tiny", "encoder": {"layerdrop": 0.2}}), tmp_path / "up.pt")
    assert _rates(FineTuneEncoder(str(path)))[3] == 0.2
    residual, attention, activation, layerdrop, feature = _rates(FineTuneEncoder(str(path), upstream_overrides=RATES))
    assert (set(residual), set(attention), set(activation), layerdrop, feature) == ({0.0}, {0.0}, {0.3}, 0.05, 0.0)


def test_zero_rates_make_training_forward_deterministic():
    """With every rate 0 and no masking, train mode computes what eval mode does; the preset's 0.1 does not."""
    torch.manual_seed(0)
    audio, lens = torch.randn(2, 3200), torch.tensor([3200, 2400])
    zero = {k: 0.0 for k in RATES}
    for overrides, same in ((zero, True), (None, False)):
        torch.manual_seed(1)
        enc = FineTuneEncoder({"name": "hubert_tiny"}, time_mask=(0.0, 10), upstream_overrides=overrides)
        with torch.no_grad():
            train_out = enc.train()(audio, lens)[0]
            eval_out = enc.eval()(audio, lens)[0]
        assert torch.allclose(train_out, eval_out, atol=1e-6) is same


def test_unknown_name_raises_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['drop_out'\].*layerdrop"):
        FineTuneEncoder({"name": "wavlm_tiny"}, upstream_overrides={"drop_out": 0.0})


def test_rate_out_of_range_raises():
    with pytest.raises(ValueError, match=r"layerdrop must be in \[0, 1\)"):
        FineTuneEncoder({"name": "wavlm_tiny"}, upstream_overrides={"layerdrop": 1.5})


def test_rate_the_encoder_lacks_raises():
    """wav2vec (2019)'s convolutional context network has no attention and no LayerDrop."""
    with pytest.raises(ValueError, match="Wav2VecContextNetwork encoder has no attention_dropout"):
        FineTuneEncoder({"name": "wav2vec_tiny"}, upstream_overrides={"attention_dropout": 0.0})
    enc = FineTuneEncoder({"name": "wav2vec_tiny"}, upstream_overrides={"dropout": 0.2})
    assert {m.p for m in enc.upstream.encoder.modules() if isinstance(m, nn.Dropout)} == {0.2}


def test_ctc_config_checks_the_argument_type():
    from speechssl2.registry import check_arguments
    from speechssl2.typecheck import ConfigTypeError

    check_arguments(FineTuneEncoder, {"upstream": "x.pt", "upstream_overrides": {"layerdrop": 0.1}}, "enc")
    with pytest.raises(ConfigTypeError, match="upstream_overrides"):
        check_arguments(FineTuneEncoder, {"upstream": "x.pt", "upstream_overrides": {"layerdrop": "high"}}, "enc")
