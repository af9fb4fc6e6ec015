"""fairseq pre-training batches on real FSDD audio: crops to the shortest utterance, random windows of
the original samples, max/min sample sizes, HuBERT targets cropped with their audio, the wiring in bin.train."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from speechssl2.bin.train import build_loader
from speechssl2.config import load_config
from speechssl2.data.collate import IGNORE_INDEX
from speechssl2.data.corpora.fsdd import prepare_fsdd
from speechssl2.data.crop import BatchCrop, window_starts
from speechssl2.data.loader import make_dataloader
from speechssl2.train.config import DataConfig, TrainConfig
from speechssl2.train.distributed import DistInfo

pytestmark = pytest.mark.filterwarnings("ignore:You are using DynamicBucketingSampler with an eagerly")
SR = 8000  # FSDD's own rate: no resampling


@pytest.fixture(scope="module")
def fsdd_cuts(fsdd_dir, tmp_path_factory) -> CutSet:
    out = tmp_path_factory.mktemp("fsdd_crop")
    return prepare_fsdd(str(fsdd_dir), str(out))["test"].subset(first=40).to_eager()


@pytest.fixture(scope="module")
def padded_batch(fsdd_cuts):
    return next(iter(make_dataloader(fsdd_cuts.subset(first=6), max_duration=100.0, shuffle=False, sample_rate=SR)))


def find_window(row: torch.Tensor, original: torch.Tensor) -> list:
    """Every start s with original[s : s + len(row)] == row."""
    n = row.shape[0]
    return [s for s in range(original.shape[0] - n + 1) if torch.equal(original[s: s + n], row)]


def test_every_utterance_is_a_random_window_of_the_shortest_length(padded_batch):
    audio, lengths = padded_batch["audio"], padded_batch["audio_lens"]
    assert len(set(lengths.tolist())) > 1  # a batch that needs cropping
    crop = BatchCrop(sample_rate=SR)
    starts_seen = [set() for _ in range(len(lengths))]
    for seed in range(8):
        out = crop(padded_batch, torch.Generator().manual_seed(seed))
        shortest = int(lengths.min())
        assert out["audio"].shape == (len(lengths), shortest) and torch.all(out["audio_lens"] == shortest)
        assert not out["padding_mask"].any()
        for i in range(len(lengths)):
            starts = find_window(out["audio"][i], audio[i, : int(lengths[i])])
            assert starts, f"row {i} is not a window of its utterance"
            starts_seen[i].update(starts)
    longest = int(lengths.argmax())
    assert len(starts_seen[longest]) > 1  # windows move between draws
    assert padded_batch["ids"] == out["ids"]


def test_window_starts_are_uniform_over_the_possible_starts():
    lengths, sizes = torch.full((40000,), 13), torch.full((40000,), 10)  # starts 0..3
    counts = torch.bincount(window_starts(lengths, sizes, torch.Generator().manual_seed(0)), minlength=4)
    assert counts.numel() == 4 and counts.min() > 10000 - 5 * 87  # binomial sd sqrt(40000 * 1/4 * 3/4) = 87


def test_max_sample_size_caps_the_window_and_pad_mode_keeps_short_ones(padded_batch):
    lengths = padded_batch["audio_lens"]
    cap = int(lengths.min()) - 100
    out = BatchCrop(max_sample_size=cap, sample_rate=SR)(padded_batch, torch.Generator().manual_seed(0))
    assert out["audio"].shape[1] == cap and torch.all(out["audio_lens"] == cap)
    mid = int(lengths.float().median())
    out = BatchCrop(max_sample_size=mid, to_shortest=False, sample_rate=SR)(padded_batch, torch.Generator().manual_seed(0))
    assert torch.equal(out["audio_lens"], lengths.clamp(max=mid))
    for i, n in enumerate(lengths.tolist()):
        if n <= mid:  # untouched, padded as before
            assert torch.equal(out["audio"][i, :n], padded_batch["audio"][i, :n])
        else:
            assert find_window(out["audio"][i], padded_batch["audio"][i, :n])


def test_targets_are_cropped_with_their_audio():
    """Labels at 50 Hz of 16 kHz audio (320 samples a frame): label j of utterance i is 1000 i + j."""
    lengths = torch.tensor([48000, 40000, 33000])
    target_lens = lengths // 320
    targets = torch.full((3, int(target_lens.max())), IGNORE_INDEX)
    for i, n in enumerate(target_lens.tolist()):
        targets[i, :n] = 1000 * i + torch.arange(n)
    batch = {"audio": torch.randn(3, 48000), "audio_lens": lengths, "padding_mask": None,
             "targets": targets, "target_lens": target_lens}
    gen = torch.Generator().manual_seed(0)
    out = BatchCrop(sample_rate=16000)(batch, gen)
    starts = window_starts(lengths, torch.full((3,), 33000), torch.Generator().manual_seed(0))
    frames = int(out["target_lens"][0])
    assert torch.all(out["target_lens"] == frames) and frames == min(round(33000 / 320), 33000 // 320)
    for i in range(3):
        first = round(int(starts[i]) / 320)
        assert torch.equal(out["targets"][i], 1000 * i + torch.arange(first, first + frames))


def test_short_utterances_are_left_out_and_counted(fsdd_cuts):
    samples = {c.id: sf.info(c.recording.sources[0].source).frames for c in fsdd_cuts}
    limit = sorted(samples.values())[len(samples) // 3]  # about a third are shorter
    short = {cid for cid, n in samples.items() if n < limit}
    crop = BatchCrop(min_sample_size=limit, sample_rate=SR)
    loader = make_dataloader(crop.keep_long_enough(fsdd_cuts), max_duration=3.0, shuffle=True, sample_rate=SR,
                             batch_transforms=[crop])
    for _ in range(2):  # two epochs count each one once
        seen = [i for batch in loader for i in batch["ids"]]
    assert short and not short & set(seen) and len(seen) == len(samples) - len(short)
    assert crop.short.dropped == short


def test_bin_train_loader_crops_and_drops_from_the_data_config(fsdd_cuts, tmp_path):
    path = tmp_path / "cuts.jsonl.gz"
    fsdd_cuts.to_file(path)
    limit = 4000
    data = DataConfig(train=str(path), max_duration=3.0, sample_rate=SR, num_workers=0,
                      crop={"max_sample_size": 5000, "min_sample_size": limit})
    batches = list(build_loader(data, str(path), True, DistInfo(), seed=0))
    for batch in batches:
        n = batch["audio"].shape[1]
        assert n <= 5000 and torch.all(batch["audio_lens"] == n) and not batch["padding_mask"].any()
        assert int(batch["audio_lens"].min()) >= min(limit, 5000)
    kept = sum(len(b["ids"]) for b in batches)
    assert kept == sum(1 for c in fsdd_cuts if round(c.duration * SR) >= limit) < len(fsdd_cuts)


def test_bad_crop_configs_are_refused():
    with pytest.raises(ValueError, match="to_shortest: false"):
        BatchCrop(to_shortest=False)
    with pytest.raises(ValueError, match="drop crop.sample_rate"):
        BatchCrop.from_config({"sample_rate": 8000}, 16000)
    with pytest.raises(Exception, match="unknown argument 'max_samples'"):
        BatchCrop.from_config({"max_samples": 8000}, 16000)
    with pytest.raises(ValueError, match="wave only"):
        BatchCrop()({"audio": torch.zeros(2, 10, 80), "audio_lens": torch.tensor([10, 9])})


def test_librispeech_pretraining_configs_choose_fairseq_batches():
    """Every LibriSpeech pre-training config but w2v-BERT (fairseq2 batches differently) crops as fairseq."""
    confs = sorted((Path(__file__).parents[2] / "egs/librispeech/ssl1/conf").glob("pretrain_*.yaml"))
    assert len(confs) > 5
    for path in confs:
        data = load_config(TrainConfig, path).data
        if "w2v_bert" in path.name:
            continue
        crop = BatchCrop.from_config(data.crop or {}, data.sample_rate)
        assert data.crop and crop.to_shortest and crop.max_sample_size in (150000, 250000, 320000), path.name
