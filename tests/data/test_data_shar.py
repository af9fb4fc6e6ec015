"""Lhotse Shar as a manifest kind: export (audio + HuBERT labels), reading, rank split, resume, training."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from lhotse import CutSet, NumpyFilesWriter

from speechssl2.bin import export_shar
from speechssl2.data.corpora.fsdd import prepare_fsdd
from speechssl2.data.loader import make_dataloader, open_cuts
from speechssl2.data.shar import open_shar, shar_shards
from speechssl2.targets.audio import at_rate
from speechssl2.targets.frames import FRAME_SHIFT_S, conv_frame_count

FIELD = "hubert_labels"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def labelled(fsdd_dir, tmp_path_factory) -> Path:
    """24 FSDD cuts with random 0..99 labels on the 16 kHz model frame grid, as dump_labels stores them."""
    out = tmp_path_factory.mktemp("shar_src")
    cuts = prepare_fsdd(str(fsdd_dir), str(out / "data"))["test"].subset(first=24)
    rng = np.random.default_rng(0)
    labelled = []
    with NumpyFilesWriter(out / "labels") as writer:
        for cut in cuts:
            frames = conv_frame_count(at_rate(cut, 16000).num_samples)
            labels = rng.integers(0, 100, frames).astype(np.int32)
            array = writer.store_array(cut.id, labels, frame_shift=FRAME_SHIFT_S, temporal_dim=0, start=cut.start)
            labelled.append(cut.with_custom(FIELD, array))
    CutSet.from_cuts(labelled).to_file(out / "cuts.jsonl.gz")
    return out / "cuts.jsonl.gz"


def export(manifest: Path, out: Path, shard_size: int) -> Path:
    return export_shar.main(["--set", f"cuts={manifest}", "--set", f"output={out}",
                             "--set", f"label_fields=[{FIELD}]", "--set", f"shard_size={shard_size}"])


def test_shar_holds_the_same_audio_and_labels_in_shards(labelled, tmp_path):
    shar = export(labelled, tmp_path / "shar", shard_size=10)
    assert len(shar_shards(shar)) == 3  # 24 cuts by 10
    source = {c.id: c for c in open_cuts(labelled)}
    read = list(open_cuts(shar))
    assert [c.id for c in read] == list(source)
    for cut in read:
        np.testing.assert_array_equal(cut.load_audio(), source[cut.id].load_audio())  # FLAC is lossless
        np.testing.assert_array_equal(cut.load_custom(FIELD), source[cut.id].load_custom(FIELD))
    stamp_mtime = (tmp_path / ".stage.export_shar.shar.json").stat().st_mtime_ns
    export(labelled, tmp_path / "shar", shard_size=10)  # unchanged: skipped
    assert (tmp_path / ".stage.export_shar.shar.json").stat().st_mtime_ns == stamp_mtime


def test_ranks_read_disjoint_shards_and_shuffling_is_seeded(labelled, tmp_path):
    shar = export(labelled, tmp_path / "shar", shard_size=5)  # 5 shards
    ranks = [[c.id for c in open_shar(shar, world_size=2, rank=r)] for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(open_cuts(labelled).ids)
    orders = [[c.id for c in open_shar(shar, shuffle_shards=True, seed=s)] for s in (0, 0, 1)]
    assert orders[0] == orders[1] and sorted(orders[0]) == sorted(orders[2])
    assert orders[0] != [c.id for c in open_cuts(shar)], "seed 0 left the 5 shards in order"
    with pytest.raises(ValueError, match=r"5 Shar shard\(s\) cannot be split over 6 ranks"):
        open_shar(shar, world_size=6, rank=0)
    next(shar.glob(f"{FIELD}.000003.tar")).unlink()
    with pytest.raises(ValueError, match=rf"field '{FIELD}' and the cuts have different shards \(e.g. \[3\]\)"):
        open_cuts(shar)


def test_export_names_a_cut_without_the_label_field(labelled, tmp_path):
    with pytest.raises(ValueError, match=r"cut '\S+' has no custom field\(s\) \['ils_labels'\]"):
        export_shar.main(["--set", f"cuts={labelled}", "--set", f"output={tmp_path / 'shar'}",
                          "--set", "label_fields=[ils_labels]"])
    assert not (tmp_path / "shar").exists()


def test_loader_resumes_mid_epoch_from_the_sampler_state(labelled, tmp_path):
    shar = export(labelled, tmp_path / "shar", shard_size=5)
    kwargs = dict(max_duration=3.0, shuffle=True, seed=4, label_field=FIELD)
    full = [b["ids"] for b in make_dataloader(shar, **kwargs)]
    loader = make_dataloader(shar, **kwargs)
    batches = iter(loader)
    next(batches), next(batches)
    state = loader.sampler.state_dict()
    resumed = make_dataloader(shar, **kwargs)
    resumed.sampler.load_state_dict(state)
    assert [b["ids"] for b in resumed] == full[2:]


def train_losses(data: Path, exp: Path) -> list:
    from speechssl2.bin import train

    sets = {"data.train": data, "exp_dir": exp, "trainer.max_updates": 3, "trainer.log_every": 1,
            "data.max_duration": 4.0, "scheduler.warmup_updates": 1}
    train.main(["--config", str(REPO / "egs/fsdd/ssl1/conf/pretrain_hubert.yaml")]
               + [arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")])
    return [float(x) for x in re.findall(r"update \d+ epoch \d+ \|.*? loss (\S+)", (exp / "train.log").read_text())]


@pytest.mark.slow
def test_training_from_shar_sees_what_the_manifest_gives(labelled, tmp_path):
    """One shard (no shard shuffle): the same seeded batches, so the same HuBERT losses to the last bit."""
    shar = export(labelled, tmp_path / "shar", shard_size=100)
    loader_kwargs = dict(max_duration=4.0, shuffle=True, seed=1, label_field=FIELD)
    for a, b in zip(make_dataloader(str(labelled), **loader_kwargs), make_dataloader(shar, **loader_kwargs)):
        assert a["ids"] == b["ids"]
        assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["targets"], b["targets"])
    from_manifest = train_losses(labelled, tmp_path / "exp_manifest")
    from_shar = train_losses(shar, tmp_path / "exp_shar")
    assert len(from_shar) == 3 and from_shar == from_manifest
