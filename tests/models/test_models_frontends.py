"""Frontends on their own: wav2vec (2019) encoder, conv frontend registry build, fbank frame rate."""
from __future__ import annotations

import torch

from speechssl2.registry import FRONTENDS


def test_wav2vec_frontend_hop_scale_invariance_and_padding():
    torch.manual_seed(0)
    fe = FRONTENDS.build({"name": "wav2vec", "channels": 32}).eval()
    assert fe.min_samples == 465 and fe.output_dim == 32
    wav, lengths = torch.randn(2, 16000), torch.tensor([16000, 8000])
    with torch.no_grad():
        out, frames = fe(wav, lengths)
        assert out.shape[1] == frames[0] and frames.tolist() == [98, 48]  # 10 ms hop at 16 kHz
        scaled, _ = fe(wav * 7.0, lengths)  # one-group norm over channels x time removes input scale
        torch.testing.assert_close(scaled, out, atol=1e-4, rtol=1e-4)
        alone, _ = fe(wav[1:, :8000], lengths[1:])
        torch.testing.assert_close(out[1, :48], alone[0], atol=1e-5, rtol=0)


def test_log_compression_is_log_of_abs_plus_one_of_the_plain_output():
    """fairseq wav2vec's --log-compression (wav2vec.py:L413-416): log(|z| + 1) of the encoder output."""
    torch.manual_seed(0)
    plain = FRONTENDS.build({"name": "wav2vec", "channels": 16}).eval()
    compressed = FRONTENDS.build({"name": "wav2vec", "channels": 16, "log_compression": True}).eval()
    compressed.load_state_dict(plain.state_dict())
    wav, lengths = torch.randn(2, 8000) * 3.0, torch.tensor([8000, 5000])
    with torch.no_grad():
        z, frames = plain(wav, lengths)
        y, frames_y = compressed(wav, lengths)
    assert torch.equal(frames, frames_y) and z.abs().max() > 1.0  # values where the log bends
    torch.testing.assert_close(y, (z.abs() + 1.0).log(), atol=1e-6, rtol=1e-6)
    assert not torch.allclose(y, z, atol=1e-2)
    with torch.no_grad():
        alone, _ = compressed(wav[1:, :5000], lengths[1:])
    torch.testing.assert_close(y[1, : int(frames[1])], alone[0], atol=1e-5, rtol=0)  # padding changes nothing


def test_fbank_frontend_frames_every_40ms_at_any_rate():
    fe = FRONTENDS.build({"name": "fbank", "sample_rate": 8000, "channels": 4, "n_mels": 40})
    assert fe.output_dim == 4 * 9
    lengths = torch.tensor([8000, 4000])
    out, frames = fe(torch.randn(2, 8000), lengths)
    assert frames.tolist() == [23, 11] and out.shape == (2, 23, 36)  # (98 - 3)//2 + 1 = 48 -> 23
