"""fairseq's span-mask sampler against a plain-numpy oracle of ``compute_mask_indices``.

The oracle below is written from the algorithm's description (static spans, overlaps
allowed, ``num_mask_ver=2``, ``idc_select_ver=1``): per utterance a count
``max(min_masks, int(prob * L / M + u))`` of distinct starts drawn from ``[0, L - M)``
(``[0, count]`` when that is too short), spans clipped at ``L``; ``require_same_masks``
keeps a random ``min`` count of masked frames per utterance; ``mask_dropout`` unmasks
``rint(count * mask_dropout)`` random masked frames. Sampler and oracle use different
random streams, so they are compared in distribution over many draws.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import torch
import yaml
from scipy.stats import ks_2samp

from speechssl2.masking import (FairseqMasker, SpanMasker, build_masker, fairseq_span_mask, fairseq_span_starts,
                                span_mask)
from speechssl2.registry import RegistryError, check_arguments

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of small batches: intra-op threads only add contention (5x slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def oracle(lengths: List[int], frames: int, prob: float, span: int, min_masks: int = 0,
           require_same_masks: bool = True, mask_dropout: float = 0.0,
           rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """(B, T) bool mask by the reference algorithm, one utterance at a time."""
    rng = rng or np.random.default_rng(0)
    picked = []
    for length in lengths:
        count = max(min_masks, int(prob * length / float(span) + rng.random()))
        high = length - span if length - span > count else count + 1
        starts = rng.choice(high, count, replace=False)
        frames_hit = (starts[:, None] + np.arange(span)[None, :]).ravel()
        picked.append(np.unique(frames_hit[frames_hit < length]))
    nonempty = [len(p) for p, length in zip(picked, lengths) if length > 0]
    target = min(nonempty) if require_same_masks and nonempty else None
    mask = np.zeros((len(lengths), frames), dtype=bool)
    for row, idx in enumerate(picked):
        if target is not None and len(idx) > target:
            idx = rng.choice(idx, target, replace=False)
        mask[row, idx] = True
        if mask_dropout > 0:
            masked = np.flatnonzero(mask[row])
            mask[row, rng.choice(masked, int(np.rint(len(masked) * mask_dropout)), replace=False)] = False
    return mask


def _padding(lengths, frames=None):
    frames = max(lengths) if frames is None else frames
    return torch.arange(frames)[None, :] >= torch.tensor(lengths)[:, None]


def _draws(lengths, draws, seed=0, **options):
    """(draws, B) masked fraction per utterance from the sampler and from the oracle, one batch per draw."""
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    pad = _padding(lengths)
    ours = torch.stack([fairseq_span_mask(pad, generator=gen, **options).sum(1) for _ in range(draws)]).numpy()
    ref = np.stack([oracle(lengths, pad.shape[1], rng=rng, **options).sum(1) for _ in range(draws)])
    return ours / np.array(lengths), ref / np.array(lengths)


@pytest.mark.parametrize("length", [7, 12, 30, 137, 400, 801])
def test_start_count_has_the_reference_distribution(length):
    """int(prob * L / M + u) with min_masks: the same two values with the same frequencies."""
    rows = 4000
    starts = fairseq_span_starts(torch.full((rows,), length), 0.65, 10, min_masks=2,
                                 generator=torch.Generator().manual_seed(length))
    ours = np.bincount(starts.sum(1).numpy(), minlength=200)[:200] / rows
    rng = np.random.default_rng(length)
    ref = np.bincount([max(2, int(0.65 * length / 10 + rng.random())) for _ in range(rows)], minlength=200) / rows
    assert set(np.flatnonzero(ours)) == set(np.flatnonzero(ref))
    np.testing.assert_allclose(ours, ref, atol=0.035)  # binomial s.d. <= 0.008 at 4000 rows
    # starts lie where the reference draws them: [0, L - M), or [0, count] for short utterances
    first_free = max(length - 10, int(starts.sum(1).max()) + 1)
    assert not starts[:, first_free:].any()


def _independent(length, rows, prob, min_masks, seed=0):
    """Masked fraction of ``rows`` independent utterances (no require_same_masks): sampler, oracle."""
    pad = _padding([length] * rows)
    ours = fairseq_span_mask(pad, prob, 10, min_masks, require_same_masks=False,
                             generator=torch.Generator().manual_seed(seed)).sum(1).numpy() / length
    ref = oracle([length] * rows, length, prob, 10, min_masks, require_same_masks=False,
                 rng=np.random.default_rng(seed)).mean(1)
    return ours, ref


@pytest.mark.parametrize("length,prob,min_masks", [(12, 0.65, 2), (50, 0.65, 2), (137, 0.8, 2), (801, 0.65, 2),
                                                   (300, 0.3, 0)])
def test_masked_fraction_per_utterance_has_the_reference_distribution(length, prob, min_masks):
    """The whole distribution of one utterance's masked fraction matches (mean, s.d., KS)."""
    ours, ref = _independent(length, 3000, prob, min_masks, seed=length)
    assert ours.mean() == pytest.approx(ref.mean(), abs=0.01)
    assert ours.std() == pytest.approx(ref.std(), abs=0.01)
    assert ks_2samp(ours, ref).statistic < 0.05  # 5 % critical value at 3000 + 3000 draws: 0.035


def test_the_comparison_tells_the_stationary_sampler_apart():
    """The KS check above has power: the stationary process at prob / M fails it on 50 frames."""
    _, ref = _independent(50, 3000, 0.65, 2)
    stationary = span_mask(_padding([50] * 3000), 0.065, 10, generator=torch.Generator().manual_seed(1))
    assert ks_2samp(stationary.sum(1).numpy() / 50, ref).statistic > 0.15


@pytest.mark.parametrize("options", [{"require_same_masks": True}, {"require_same_masks": True, "mask_dropout": 0.2},
                                     {"require_same_masks": False, "mask_dropout": 0.1}])
def test_batch_of_mixed_lengths_matches_the_reference(options):
    """require_same_masks ties every utterance to the batch's smallest count: per-row means match the oracle."""
    lengths = [60, 137, 400, 801]
    ours, ref = _draws(lengths, 1200, seed=7, prob=0.65, span=10, min_masks=2, **options)
    np.testing.assert_allclose(ours.mean(0), ref.mean(0), atol=0.012)  # s.e. of the difference <= 0.004
    if options["require_same_masks"]:
        counts = np.rint(ours * np.array(lengths))
        assert (counts == counts[:, :1]).all()
        assert ours.mean(0)[-1] < 0.5 * ours.mean(0)[0]  # the long utterance gets the short one's count


def test_min_masks_is_a_floor_on_the_number_of_spans():
    pad = _padding([30] * 2000)
    starts = fairseq_span_starts((~pad).sum(1), 0.05, 10, min_masks=2, generator=torch.Generator().manual_seed(0))
    assert (starts.sum(1) == 2).all()  # 0.05 * 30 / 10 + u < 2: always the floor
    mask = fairseq_span_mask(pad, 0.05, 10, min_masks=2, require_same_masks=False,
                             generator=torch.Generator().manual_seed(0))
    assert (mask.sum(1) >= 11).all() and (mask.sum(1) <= 20).all()  # two distinct starts in [0, 20)
    none = fairseq_span_mask(pad, 0.05, 10, min_masks=0, require_same_masks=False,
                             generator=torch.Generator().manual_seed(0))
    assert (none.sum(1) == 0).float().mean() > 0.8  # int(0.15 + u) is 0 with probability 0.85


def test_require_same_masks_unmasks_random_frames_down_to_the_batch_minimum():
    pad = _padding([0, 90, 200, 500, 800])
    removed = torch.zeros(pad.shape[1])
    for seed in range(200):
        free = fairseq_span_mask(pad, 0.65, 10, 2, False, generator=torch.Generator().manual_seed(seed))
        same = fairseq_span_mask(pad, 0.65, 10, 2, True, generator=torch.Generator().manual_seed(seed))
        assert not (same & ~free).any()  # only unmasks: the same spans (the starts come first from the seed)
        assert same[0].sum() == 0  # the empty utterance does not set the minimum to zero
        assert (same[1:].sum(1) == free[1:].sum(1).min()).all()
        removed += (free & ~same)[4].float()
    # the frames unmasked in the longest utterance are spread over it, not cut from one end
    assert removed[:400].sum() > 0.3 * removed.sum() and removed[400:].sum() > 0.3 * removed.sum()


@pytest.mark.parametrize("dropout", [0.1, 0.25, 0.5])
def test_mask_dropout_unmasks_the_rounded_share_of_each_utterance(dropout):
    pad = _padding([100, 333, 800])
    for seed in range(20):
        full = fairseq_span_mask(pad, 0.65, 10, 2, False, 0.0, generator=torch.Generator().manual_seed(seed))
        holes = fairseq_span_mask(pad, 0.65, 10, 2, False, dropout, generator=torch.Generator().manual_seed(seed))
        assert not (holes & ~full).any()
        counts = full.sum(1)
        assert torch.equal(holes.sum(1), counts - torch.round(counts * dropout).long())


def test_padding_is_never_masked_and_short_utterances_are_safe():
    lengths = [0, 1, 2, 5, 9, 10, 11, 12, 25, 60]
    pad = _padding(lengths, 64)
    gen = torch.Generator().manual_seed(0)
    for options in ({"require_same_masks": False}, {"require_same_masks": True}, {"mask_dropout": 0.3}):
        for _ in range(100):
            mask = fairseq_span_mask(pad, 0.65, 10, min_masks=2, generator=gen, **options)
            assert mask.shape == pad.shape and not (mask & pad).any()
    free = torch.stack([fairseq_span_mask(pad, 0.65, 10, 2, False, generator=gen) for _ in range(200)])
    # lengths 1..12 (<= count + M): two starts of [0, 3); frame 0 is masked when start 0 is one of them
    assert free[:, 1:8, 0].float().mean().item() == pytest.approx(2 / 3, abs=0.05)
    full = free[:, 7, :12].all(dim=-1).float().mean().item()  # 12 frames: starts {0, 2} cover all (fairseq raises)
    assert full == pytest.approx(1 / 3, abs=0.1)


def test_channel_masks_as_fairseq_with_its_defaults():
    """mask_channel_prob 0.5, length 64 on D = 768: exactly six spans per row, equal counts across the batch."""
    masker = build_masker({"sampler": "fairseq", "prob": 0.5, "span": 64})
    gen = torch.Generator().manual_seed(0)
    mask = masker.channel(3000, 768, generator=gen)
    assert mask.shape == (3000, 768)
    starts = fairseq_span_starts(torch.full((100,), 768), 0.5, 64, generator=gen)
    assert (starts.sum(1) == 6).all()
    counts = torch.stack([masker.channel(8, 768, generator=gen).sum(1) for _ in range(200)])
    assert (counts == counts[:, :1]).all()
    ref = np.stack([oracle([768] * 8, 768, 0.5, 64, rng=np.random.default_rng(s)).sum(1) for s in range(200)])
    assert counts.float().mean().item() / 768 == pytest.approx(ref.mean() / 768, abs=0.01)


def test_seeded_and_one_sampler_per_config_key():
    pad = _padding([40, 300, 1000])
    a = fairseq_span_mask(pad, 0.65, 10, 2, generator=torch.Generator().manual_seed(5))
    b = fairseq_span_mask(pad, 0.65, 10, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert isinstance(build_masker({"prob": 0.065, "span": 10}), SpanMasker)
    assert isinstance(build_masker([0.065, 10]), SpanMasker)
    fs = build_masker({"sampler": "fairseq", "prob": 0.8, "span": 10, "min_masks": 2, "mask_dropout": 0.1})
    assert isinstance(fs, FairseqMasker) and (fs.prob, fs.min_masks, fs.mask_dropout) == (0.8, 2, 0.1)
    assert torch.equal(fs(pad, torch.Generator().manual_seed(5)),
                       fairseq_span_mask(pad, 0.8, 10, 2, True, 0.1, torch.Generator().manual_seed(5)))
    with pytest.raises(RegistryError, match="unknown argument 'min_masks'; valid arguments: prob, span"):
        build_masker({"prob": 0.065, "span": 10, "min_masks": 2})  # the stationary sampler takes no min_masks
    with pytest.raises(RegistryError, match="valid keys: fairseq, stationary"):
        build_masker({"sampler": "fairsek", "prob": 0.65, "span": 10})


@pytest.mark.parametrize("kwargs,match", [({"prob": 1.5}, "prob"), ({"span": 0}, "span"),
                                          ({"min_masks": -1}, "min_masks"), ({"mask_dropout": 1.5}, "mask_dropout")])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FairseqMasker(**{"prob": 0.65, "span": 10, **kwargs})


def test_models_take_either_sampler_from_their_config():
    from speechssl2.registry import MODELS

    model = MODELS.build({"name": "ssl", "upstream": {"name": "hubert_tiny"}, "objectives": [
        {"name": "hubert", "num_classes": 6, "final_dim": 16}],
        "masking": {"sampler": "fairseq", "prob": 0.8, "span": 3, "min_masks": 2}})
    assert isinstance(model.masker, FairseqMasker)
    upstream = {"name": "wav2vec2_tiny", "feature_dropout": 0.0}
    ctc = MODELS.build({"name": "ctc", "tokenizer": {"name": "char", "letters": "abc"}, "encoder": {
        "upstream": upstream, "time_mask": {"sampler": "fairseq", "prob": 0.65, "span": 2, "min_masks": 2},
        "channel_mask": {"sampler": "fairseq", "prob": 0.5, "span": 8}}})
    enc = ctc.encoder
    assert isinstance(enc.time_mask, FairseqMasker) and isinstance(enc.channel_mask, FairseqMasker)
    enc.train()
    torch.manual_seed(0)
    x, _, pad = enc(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    zero_channels = (x == 0).all(dim=1)  # (B, D): int(0.5 * D / 8 + u) spans of 8 channels zeroed per utterance
    assert (zero_channels.sum(1) == zero_channels.sum(1)[0]).all() and zero_channels.sum(1)[0] > 0


LIBRISPEECH = REPO / "egs" / "librispeech" / "ssl1" / "conf"
# fairseq mask_prob per paper config: wav2vec 2.0 0.65, HuBERT / WavLM / ILS-SSL 0.8 (pre-training). Not here:
# wav2vec (no masking) and w2v-BERT (its reference, fairseq2, has its own masking algorithm).
PAPER_PRETRAIN = {"pretrain_wav2vec2_base": 0.65, "pretrain_wav2vec2_large": 0.65,
                  "pretrain_wav2vec2_large_lv60k": 0.65, "pretrain_hubert_base_iter1": 0.8,
                  "pretrain_hubert_base_iter2": 0.8, "pretrain_hubert_large": 0.8, "pretrain_ils_hubert": 0.8,
                  "pretrain_wavlm_base": 0.8, "pretrain_wavlm_base_plus": 0.8, "pretrain_wavlm_large": 0.8}


@pytest.mark.parametrize("name,prob", sorted(PAPER_PRETRAIN.items()))
def test_librispeech_paper_pretrain_configs_use_the_fairseq_sampler(name, prob):
    masking = yaml.safe_load((LIBRISPEECH / f"{name}.yaml").read_text())["model"]["masking"]
    masker = build_masker(masking)
    assert isinstance(masker, FairseqMasker)
    assert (masker.prob, masker.span, masker.min_masks, masker.require_same_masks) == (prob, 10, 2, True)


@pytest.mark.parametrize("path", sorted(LIBRISPEECH.glob("finetune_ctc_*.yaml")), ids=lambda p: p.stem)
def test_librispeech_finetune_configs_use_the_fairseq_sampler(path):
    from speechssl2.finetune.encoder import FineTuneEncoder

    encoder = yaml.safe_load(path.read_text())["model"]["encoder"]
    check_arguments(FineTuneEncoder, encoder, where=path.stem)
    time, channel = build_masker(encoder["time_mask"]), build_masker(encoder["channel_mask"])
    assert isinstance(time, FairseqMasker) and isinstance(channel, FairseqMasker)
    assert (time.span, time.min_masks, channel.span, channel.min_masks) == (10, 2, 64, 0)
    assert time.prob in (0.5, 0.65, 0.75) and channel.prob in (0.1, 0.25, 0.5)
