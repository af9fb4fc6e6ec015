"""wav2vec (2019) context network and presets: causal field, padding invariance, skips, checkpoints."""
from __future__ import annotations

import math

import pytest
import soundfile as sf
import torch

import speechssl2
from speechssl2.models import build_upstream
from speechssl2.models.io.native import save_upstream
from speechssl2.probe.featurizer import FrozenUpstream
from speechssl2.registry import ENCODERS


def context_net(**kwargs):
    torch.manual_seed(0)
    net = ENCODERS.build({"name": "wav2vec_context", "embed_dim": 8, "kernels": [3, 3, 3], **kwargs}).eval()
    with torch.no_grad():  # move the norms off identity so that they get tested
        for layer in net.layers:
            layer.norm.weight.uniform_(0.5, 1.5)
            layer.norm.bias.normal_(0.0, 0.3)
    return net


@pytest.mark.parametrize("kwargs", [{}, {"kernels": [2, 3, 4, 5], "skip_connections": True}])
def test_padding_invariance(kwargs):
    """An utterance alone equals the same utterance inside a padded batch, every layer, within 1e-5."""
    net = context_net(**kwargs)
    lengths = torch.tensor([20, 13, 5, 1])
    x = torch.randn(4, 20, 8) * 3 + 1
    x[torch.arange(20)[None, :] >= lengths[:, None]] = 1e3  # garbage in the padding must not leak
    with torch.no_grad():
        out = net(x, lengths)
        assert out.x.shape == (4, 20, 8) and torch.equal(out.lengths, lengths)
        assert len(out.hidden_states) == len(net.layers) + 1
        for b, n in enumerate(lengths.tolist()):
            alone = net(x[b:b + 1, :n], lengths[b:b + 1])
            for o, a in zip(out.hidden_states, alone.hidden_states):
                torch.testing.assert_close(o[b, :n], a[0], atol=1e-5, rtol=0)
                assert (o[b, n:] == 0).all()  # padding frames are zero at every layer


@pytest.mark.parametrize("kernels", [[3] * 9, list(range(2, 14)), [1, 4]])
def test_causal_receptive_field(kernels, monkeypatch):
    """Frame j reaches frames j .. j + field - 1 and nothing before (the linear part of the stack).

    The utterance-level GroupNorm shares statistics over the whole utterance (as in the
    paper's model) and ReLU may zero a path, so both are identities here.
    """
    module = "speechssl2.models.wav2vec_context"
    monkeypatch.setattr(f"{module}.masked_group_norm", lambda x, valid, groups, weight, bias, eps: x)
    monkeypatch.setattr(f"{module}.F.relu", lambda x: x)
    torch.manual_seed(0)
    net = ENCODERS.build({"name": "wav2vec_context", "embed_dim": 4, "kernels": kernels}).eval()
    field = 1 + sum(k - 1 for k in kernels)
    assert net.receptive_field == field
    t, j = field + 30, 10
    x = torch.randn(1, t, 4)
    with torch.no_grad():
        base = net(x, torch.tensor([t])).x
        x[0, j] += 10.0
        moved = (net(x, torch.tensor([t])).x - base).abs().amax(dim=-1)[0]  # (T,)
    reached = (moved > 0).nonzero().flatten()
    assert reached.min() == j and reached.max() == j + field - 1


def test_paper_receptive_fields():
    """SPEC 3: encoder 30 ms / 10 ms hop; context 210 ms (BASE) and 810 ms (LARGE) at 16 kHz."""
    ms = lambda samples: 1000 * samples / 16000  # noqa: E731
    for name, context_ms in (("wav2vec_base", 210), ("wav2vec_large", 810)):
        up = build_upstream({"name": name})
        hop = int(up.frame_lengths(torch.tensor([16000 * 10]))[0])
        assert hop in (998, 999)  # 10 ms frames
        field_ms = ms(up.min_samples) + 10 * (up.encoder.receptive_field - 1)
        assert abs(field_ms - context_ms) < 1.5, (name, field_ms)
        assert up.embed_dim == up.feature_dim == 512
    large = build_upstream({"name": "wav2vec_large"})
    assert large.frontend.kernels[-2:] == [1, 1] and len(large.encoder.layers) == 12  # two extra linear layers
    assert [layer.kernel for layer in large.encoder.layers] == list(range(2, 14))
    assert len(build_upstream({"name": "wav2vec_base"}).encoder.layers) == 9


def test_skip_connection_scales_the_sum():
    torch.manual_seed(0)
    plain = ENCODERS.build({"name": "wav2vec_context", "embed_dim": 6, "kernels": [3]}).eval()
    skip = ENCODERS.build({"name": "wav2vec_context", "embed_dim": 6, "kernels": [3], "skip_connections": True,
                           "residual_scale": 0.5}).eval()
    skip.load_state_dict(plain.state_dict())
    x, lengths = torch.randn(2, 9, 6), torch.tensor([9, 9])
    with torch.no_grad():
        torch.testing.assert_close(skip(x, lengths).x, (plain(x, lengths).x + x) * math.sqrt(0.5))
    with pytest.raises(ValueError, match="kernels must be a non-empty list"):
        ENCODERS.build({"name": "wav2vec_context", "kernels": []})


def test_tiny_upstream_on_real_audio_checkpoint_and_probe(fsdd_dir, tmp_path):
    """FSDD digits in a padded batch equal each digit alone; the upstream saves, loads and probes."""
    files = sorted(fsdd_dir.glob("*_jackson_0.wav"))[:3]
    waves = [torch.tensor(sf.read(f, dtype="float32")[0]) for f in files]
    lengths = torch.tensor([len(w) for w in waves])
    wav = torch.zeros(3, int(lengths.max()))
    for i, w in enumerate(waves):
        wav[i, : len(w)] = w
    torch.manual_seed(0)
    up = build_upstream({"name": "wav2vec_tiny", "encoder": {"skip_connections": True}}).eval()
    with torch.no_grad():
        out = up(wav, lengths)
        for b in range(3):
            alone = up(wav[b:b + 1, : lengths[b]], lengths[b:b + 1])
            n = int(out.lengths[b])
            for o, a in zip(out.hidden_states, alone.hidden_states):
                torch.testing.assert_close(o[b, :n], a[0], atol=1e-5, rtol=0)
    back, spec = speechssl2.load_pretrained(save_upstream(up, tmp_path / "w2v.pt"))
    assert spec["encoder"]["name"] == "wav2vec_context" and spec["encoder"]["skip_connections"]
    with torch.no_grad():
        for x, y in zip(out.hidden_states, back(wav, lengths).hidden_states):
            assert torch.equal(x, y)
    hidden, frames = FrozenUpstream(back)(wav, lengths)
    assert hidden.shape == (3, 5, int(frames.max()), 64)  # projected input + 4 context layers, for the probe


def test_fine_tune_encoder_uses_every_context_layer():
    from speechssl2.finetune.encoder import FineTuneEncoder

    torch.manual_seed(0)
    encoder = FineTuneEncoder({"name": "wav2vec_tiny"}, weighted_sum=True).train()
    x, frames, pad = encoder(torch.randn(2, 6000), torch.tensor([6000, 4000]))
    assert x.shape == (2, int(frames.max()), 64) and encoder.layer_sum.weights.numel() == 5
    x[~pad].sum().backward()
    assert encoder.layer_sum.weights.grad is not None
    assert all(p.grad is not None for p in encoder.upstream.encoder.parameters())
