"""Frame grid: MFCC and the formula agree with the real conv frontend; label-rate checks."""
import numpy as np
import pytest
import torch

from speechssl2.registry import FRONTENDS
from speechssl2.targets.features import MfccFeatures
from speechssl2.targets.frames import LabelRateError, align_labels, check_label_rate, conv_frame_count

# Around the 400-sample receptive field and 320-sample hop, odd and even, up to 2 s.
LENGTHS = [0, 1, 399, 400, 401, 559, 560, 719, 720, 721, 1039, 1040, 3201, 7999, 8000, 12345, 16000, 16001, 31999]


@pytest.fixture(scope="module")
def conv_frontend():
    spec = {"name": "conv", "channels": [4] * 7, "kernels": [10, 3, 3, 3, 3, 2, 2],
            "strides": [5, 2, 2, 2, 2, 2, 2], "norm_mode": "group_norm", "conv_bias": False}
    return FRONTENDS.build(spec).eval()


@pytest.mark.parametrize("length", [n for n in LENGTHS if n >= 400])
def test_formula_matches_conv_frontend_output(conv_frontend, length):
    with torch.no_grad():
        feats, frames = conv_frontend(torch.randn(1, length), torch.tensor([length]))
    assert feats.shape[1] == int(frames[0]) == conv_frame_count(length)


def test_mfcc_frames_equal_conv_frames_and_39_dims():
    mfcc = MfccFeatures()
    gen = torch.Generator().manual_seed(0)
    for length in LENGTHS + list(range(10_000, 10_700, 37)):
        feats = mfcc(torch.randn(length, generator=gen))
        assert feats.shape == (conv_frame_count(length), 39), length
        assert mfcc.num_frames(length) == conv_frame_count(length)
        assert torch.isfinite(feats).all()


def test_mfcc_frame_i_sees_exactly_the_conv_receptive_field():
    """Static coefficients of frame i equal the MFCC of samples [320 i, 320 i + 400) alone."""
    mfcc = MfccFeatures()
    wav = torch.randn(16000 + 123, generator=torch.Generator().manual_seed(1))
    feats = mfcc(wav)  # (T, 39)
    for i in (0, 1, 7, feats.shape[0] - 1):
        alone = mfcc(wav[320 * i: 320 * i + 400])  # one frame
        assert alone.shape[0] == 1
        torch.testing.assert_close(feats[i, :13], alone[0, :13], atol=1e-4, rtol=1e-4)
    # and not the window of a neighbour: the grid is not off by one hop
    assert not torch.allclose(feats[2, :13], mfcc(wav[320:720])[0, :13], atol=1e-2)


def test_check_label_rate_names_the_cut_and_both_counts():
    check_label_rate(50, 50, "a")
    check_label_rate(51, 50, "a")
    check_label_rate(49, 50, "a")
    with pytest.raises(LabelRateError, match=r"cut 'spk1_utt7': 100 labels but the model produces 50 frames"):
        check_label_rate(100, 50, "spk1_utt7")
    with pytest.raises(LabelRateError, match="ratio 0.920"):
        check_label_rate(46, 50, "x")


def test_align_labels_trims_or_pads_one_frame_numpy_and_torch():
    labels = np.arange(11, dtype=np.int32)
    assert align_labels(labels, 10, "c").tolist() == list(range(10))
    padded = align_labels(labels, 12, "c")
    assert padded.tolist() == list(range(11)) + [-100] and padded.dtype == np.int32
    t = torch.arange(11)
    assert align_labels(t, 12, "c").tolist() == list(range(11)) + [-100]
    assert torch.equal(align_labels(t, 11, "c"), t)
    with pytest.raises(LabelRateError, match="cut 'c'"):
        align_labels(t, 22, "c")
