"""Span masking: exact expected ratio, padding never masked, short utterances, vectorized."""
import pytest
import torch

from speechssl2.masking import SpanMasker, channel_mask, expected_mask_ratio, span_mask


def _padding(lengths, max_len):
    return torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]


def test_expected_ratio_matches_spec():
    assert expected_mask_ratio(0.065, 10) == pytest.approx(0.4894, abs=1e-4)  # SPEC: ~49 %
    assert SpanMasker(0.08, 10).expected_ratio == pytest.approx(1 - 0.92**10)


@pytest.mark.parametrize("prob,span", [(0.065, 10), (0.08, 10), (0.3, 3), (0.05, 1)])
def test_ratio_over_many_draws_matches_expectation(prob, span):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 120, (4000,), generator=gen)
    padding = _padding(lengths.tolist(), 120)
    mask = span_mask(padding, prob, span, generator=gen)
    ratio = mask.sum().item() / (~padding).sum().item()
    # ~240k valid frames in spans of <= 10: standard error < 0.004
    assert ratio == pytest.approx(expected_mask_ratio(prob, span), abs=0.012)


def test_ratio_is_the_same_at_every_position():
    """Stationary: the first and last frame of an utterance are masked as often as the middle."""
    gen = torch.Generator().manual_seed(1)
    padding = _padding([30] * 20000, 40)
    rate = span_mask(padding, 0.065, 10, generator=gen).float().mean(0)  # (T,)
    expected = expected_mask_ratio(0.065, 10)
    for t in (0, 1, 15, 29):
        assert rate[t].item() == pytest.approx(expected, abs=0.015)
    assert rate[30:].sum() == 0


def test_padding_never_masked_and_short_utterances_safe():
    gen = torch.Generator().manual_seed(2)
    lengths = [0, 1, 2, 5, 9, 10, 11, 60]
    padding = _padding(lengths, 60).repeat(500, 1)
    mask = span_mask(padding, 0.5, 10, generator=gen)
    assert not (mask & padding).any()
    assert mask[padding[:, 1] & ~padding[:, 0]].any()  # length-1 utterances do get masked
    # a batch whose frames are all shorter than one span
    tiny = span_mask(_padding([1, 3], 3), 0.065, 10, generator=gen)
    assert tiny.shape == (2, 3) and not tiny[0, 1:].any()


def test_short_utterance_ratio_is_exact_too():
    """Utterances shorter than M (HF #14524-style) keep the same per-frame probability."""
    gen = torch.Generator().manual_seed(3)
    padding = _padding([4] * 50000, 4)
    ratio = span_mask(padding, 0.065, 10, generator=gen).float().mean().item()
    assert ratio == pytest.approx(expected_mask_ratio(0.065, 10), abs=0.01)


def test_one_random_draw_for_the_whole_batch(monkeypatch):
    """Vectorized: the batch is drawn in one call, not one per utterance."""
    calls = []
    real_rand = torch.rand

    def counting_rand(*args, **kwargs):
        calls.append(args)
        return real_rand(*args, **kwargs)

    monkeypatch.setattr(torch, "rand", counting_rand)
    span_mask(_padding([5, 50, 17, 33] * 16, 50), 0.065, 10)
    assert len(calls) == 1


def test_seeded_and_spans_are_contiguous():
    padding = _padding([200], 200)
    a = span_mask(padding, 0.01, 10, generator=torch.Generator().manual_seed(7))
    b = span_mask(padding, 0.01, 10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    # with sparse starts, every run of masked frames away from the edges is at least M frames long
    runs = torch.diff(torch.cat([torch.tensor([0]), a[0].int(), torch.tensor([0])])).nonzero().flatten()
    starts, ends = runs[0::2], runs[1::2]
    inner = (starts > 0) & (ends < 200)
    assert ((ends - starts)[inner] >= 10).all()


def test_channel_mask_ratio():
    gen = torch.Generator().manual_seed(4)
    mask = channel_mask(3000, 64, 0.02, 8, generator=gen)
    assert mask.shape == (3000, 64)
    assert mask.float().mean().item() == pytest.approx(expected_mask_ratio(0.02, 8), abs=0.01)


@pytest.mark.parametrize("prob,span,match", [(1.5, 10, "prob"), (-0.1, 10, "prob"), (0.1, 0, "span")])
def test_bad_parameters_raise(prob, span, match):
    with pytest.raises(ValueError, match=match):
        SpanMasker(prob, span)
