"""Pure numerics: length formula, receptive field, masked norms, buckets, relative shift."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from speechssl2.models.functional import (
    conv_output_lengths, masked_group_norm, normalize_waveform, padding_mask, receptive_field,
    relative_position_buckets, relative_shift,
)


def test_conv_output_lengths_match_real_convs():
    kernels, strides = [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]
    for n in [400, 401, 719, 720, 16000, 12345]:
        x = torch.zeros(1, 1, n)
        for k, s in zip(kernels, strides):
            x = F.conv1d(x, torch.zeros(1, 1, k), stride=s)
        assert conv_output_lengths(torch.tensor([n]), kernels, strides).item() == x.shape[-1]
    assert conv_output_lengths(torch.tensor([399]), kernels, strides).item() == 0


def test_receptive_field_is_the_minimum_length():
    kernels, strides = [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]
    assert receptive_field(kernels, strides) == 400  # 25 ms at 16 kHz, as in SPEC section 2
    assert receptive_field([10, 8, 4, 4, 4], [5, 4, 2, 2, 2]) == 465  # wav2vec (2019): ~30 ms


def test_masked_group_norm_equals_group_norm_without_padding_and_ignores_padding():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 20)
    w, b = torch.randn(6), torch.randn(6)
    for groups in (6, 3, 1):
        full = masked_group_norm(x, torch.ones(2, 20, dtype=torch.bool), groups, w, b, 1e-5)
        torch.testing.assert_close(full, F.group_norm(x, groups, w, b, 1e-5), atol=1e-5, rtol=1e-5)
        padded = torch.cat([x, torch.randn(2, 6, 7) * 100], dim=-1)
        valid = ~padding_mask(torch.tensor([20, 20]), 27)
        out = masked_group_norm(padded, valid, groups, w, b, 1e-5)[..., :20]
        torch.testing.assert_close(out, full, atol=1e-5, rtol=1e-5)


def test_normalize_waveform_matches_layer_norm_per_utterance():
    torch.manual_seed(0)
    wav = torch.randn(2, 100) * 3 + 1
    lengths = torch.tensor([100, 60])
    out = normalize_waveform(wav, lengths)
    torch.testing.assert_close(out[0], F.layer_norm(wav[0], (100,)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :60], F.layer_norm(wav[1, :60], (60,)), atol=1e-5, rtol=1e-5)
    assert out[1, 60:].abs().max() == 0


def test_relative_position_buckets_layout():
    n, m = 320, 800
    b = relative_position_buckets(1, 2000, n, m)[0]  # offsets 0 .. 1999 (keys after the query)
    assert b[0] == 0 and b[1] == 161 and b[79] == 160 + 79  # exact below n/4 = 80, upper half for > 0
    assert (b[1:].diff() >= 0).all() and b[1:].max() == 319  # monotone, capped at the last bucket
    assert (b[m:] == 319).all()
    left = relative_position_buckets(2000, 1, n, m)[:, 0]  # negative offsets use the lower half
    assert left[5] == 5 and left.max() == 159 and (left[m:] == 159).all()


def test_relative_shift_picks_scores_by_offset():
    t = 5
    offsets = torch.arange(t - 1, -t, -1).float()  # column j <-> offset T-1-j
    scores = offsets.expand(1, 1, t, 2 * t - 1).clone()
    shifted = relative_shift(scores)[0, 0]  # entry [i, k] should be the score of offset i - k
    expected = torch.arange(t)[:, None] - torch.arange(t)[None, :]
    assert torch.equal(shifted, expected.float())
