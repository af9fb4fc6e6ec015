"""Sampler + collate on real FSDD audio: shapes, lengths, masks, resampling, fbank, labels, resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from lhotse import CutSet

from speechssl2.data.corpora.fsdd import prepare_fsdd
from speechssl2.data.loader import make_dataloader

# the fixture's small eager CutSet is deliberate; lhotse warns that lazy manifests save memory
pytestmark = pytest.mark.filterwarnings("ignore:You are using DynamicBucketingSampler with an eagerly")


@pytest.fixture(scope="module")
def fsdd_test(fsdd_dir, tmp_path_factory) -> CutSet:
    out = tmp_path_factory.mktemp("fsdd_loader")
    return prepare_fsdd(str(fsdd_dir), str(out))["test"].subset(first=60).to_eager()


def _check_padding(batch: dict) -> None:
    lens, mask = batch["audio_lens"], batch["padding_mask"]
    assert mask.dtype == torch.bool and mask.shape == batch["audio"].shape[:2]
    assert torch.equal((~mask).sum(1), lens)  # True = padding, exactly past each length
    assert int(lens.max()) == batch["audio"].shape[1]
    assert torch.all(batch["audio"][mask] == 0)


def test_wave_batches_resampled_to_16k(fsdd_test):
    loader = make_dataloader(fsdd_test, max_duration=4.0, shuffle=False)
    seen = []
    by_id = {c.id: c for c in fsdd_test}
    for batch in loader:
        _check_padding(batch)
        assert batch["audio"].dtype == torch.float32 and batch["sample_rate"] == 16000
        assert sum(by_id[i].duration for i in batch["ids"]) <= 4.0
        for i, n in zip(batch["ids"], batch["audio_lens"].tolist()):
            assert abs(n - 2 * by_id[i].num_samples) <= 1  # 8 kHz -> 16 kHz doubles the length
        assert batch["text"] == [by_id[i].supervisions[0].text for i in batch["ids"]]
        assert batch["speakers"] == [by_id[i].supervisions[0].speaker for i in batch["ids"]]
        seen += batch["ids"]
    assert sorted(seen) == sorted(fsdd_test.ids)  # every cut exactly once


def test_resampled_wave_matches_the_source(fsdd_test):
    cut = fsdd_test[0]
    batch = make_dataloader(CutSet.from_cuts([cut]), max_duration=10.0, shuffle=False).dataset[
        CutSet.from_cuts([cut])
    ]
    original = torch.from_numpy(cut.load_audio()[0])
    assert torch.allclose(batch["audio"][0, ::2][: len(original)], original, atol=0.05)


def test_fbank_batches(fsdd_test):
    batch = next(iter(make_dataloader(fsdd_test, max_duration=4.0, shuffle=False, features="fbank")))
    _check_padding(batch)
    assert batch["audio"].shape[2] == 80
    seconds = np.array([c.duration for c in fsdd_test.subset(cut_ids=batch["ids"])])
    assert np.all(np.abs(batch["audio_lens"].numpy() - seconds * 100) <= 1.5)  # 10 ms hop
    assert torch.isfinite(batch["audio"]).all()


def test_label_field_targets_padded_with_ignore_index(fsdd_test):
    labeled = CutSet.from_cuts(
        c.attach_tensor("km", np.arange(int(c.duration / 0.02)) % 7, frame_shift=0.02, temporal_dim=0)
        for c in fsdd_test.subset(first=8)
    )
    batch = next(iter(make_dataloader(labeled, max_duration=100.0, shuffle=False, label_field="km")))
    targets, lens = batch["targets"], batch["target_lens"]
    assert targets.dtype == torch.long and targets.shape == (len(batch["ids"]), int(lens.max()))
    for row, n in zip(targets, lens.tolist()):
        assert torch.equal(row[:n], torch.arange(n) % 7) and torch.all(row[n:] == -100)
    with pytest.raises(KeyError, match=fsdd_test[0].id):
        next(iter(make_dataloader(fsdd_test.subset(first=2), max_duration=100.0, shuffle=False, label_field="km")))


def test_batch_transforms_run_in_order(fsdd_test):
    calls = []

    def first(b):
        calls.append("first")
        return {**b, "audio": b["audio"] * 0}

    def second(b):
        calls.append("second")
        return {**b, "flag": float(b["audio"].abs().sum())}

    batch = next(iter(make_dataloader(fsdd_test, max_duration=2.0, shuffle=False, batch_transforms=[first, second])))
    assert calls == ["first", "second"] and batch["flag"] == 0.0


def test_sampler_state_resumes_exactly_and_shards_by_rank(fsdd_test):
    loader = make_dataloader(fsdd_test, max_duration=3.0, shuffle=True, seed=3)
    it = iter(loader)
    next(it)
    state = loader.sampler.state_dict()
    rest = [b["ids"] for b in it]
    resumed = make_dataloader(fsdd_test, max_duration=3.0, shuffle=True, seed=3)
    resumed.sampler.load_state_dict(state)
    assert [b["ids"] for b in resumed] == rest
    shards = [
        {i for b in make_dataloader(fsdd_test, max_duration=3.0, shuffle=True, world_size=2, rank=r) for i in b["ids"]}
        for r in (0, 1)
    ]
    assert shards[0] and shards[1] and not shards[0] & shards[1]


def test_manifest_path_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_data"):
        make_dataloader(str(tmp_path / "missing.jsonl.gz"), max_duration=1.0, shuffle=False)
