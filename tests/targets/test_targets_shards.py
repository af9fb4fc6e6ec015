"""Sharded feature dumps: every cut exactly once, resumable after a kill, stale dumps redone."""
import numpy as np
import pytest
from lhotse import CutSet
from lhotse.utils import fastcopy

from speechssl2.targets.audio import at_rate, load_mono
from speechssl2.targets.features import MfccFeatures
from speechssl2.targets.frames import conv_frame_count
from speechssl2.targets.shards import ShardFiles, dump_shard, iter_shard, require_complete, shard_bounds


class CountingMfcc(MfccFeatures):
    """MFCC that counts the utterances it computes, to see what a rerun recomputes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self, wav):
        self.calls += 1
        return super().__call__(wav)


@pytest.fixture(scope="module")
def cuts(make_fsdd_cuts, tmp_path_factory):
    return list(CutSet.from_file(make_fsdd_cuts([0], tmp_path_factory.mktemp("fsdd"))))  # 60 cuts


def dump_all(cuts, extractor, feat_dir, nshard, dtype="float32"):
    return [dump_shard(cuts, extractor, ShardFiles(feat_dir, r, nshard), 16000, dtype) for r in range(nshard)]


def test_shard_bounds_partition_every_index_once():
    for n in range(0, 40):
        for nshard in range(1, 8):
            bounds = [shard_bounds(n, nshard, r) for r in range(nshard)]
            covered = [i for lo, hi in bounds for i in range(lo, hi)]
            assert covered == list(range(n))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="rank=3, nshard=3"):
        shard_bounds(10, 3, 3)


def test_dump_covers_every_cut_once_with_model_frame_counts(cuts, tmp_path):
    assert dump_all(cuts, MfccFeatures(), tmp_path, nshard=3) == [True, True, True]
    stored = [item for r in range(3) for item in iter_shard(ShardFiles(tmp_path, r, 3))]
    assert [cid for cid, _ in stored] == [c.id for c in cuts]
    mfcc = MfccFeatures()
    for cut, (_, feats) in zip(cuts[::7], stored[::7]):
        assert feats.shape == (conv_frame_count(at_rate(cut, 16000).num_samples), 39)
        np.testing.assert_allclose(feats, mfcc(load_mono(cut, 16000)).numpy(), rtol=1e-6, atol=1e-5)


def test_resume_skips_complete_shards_and_redoes_partial_ones(cuts, tmp_path):
    dump_all(cuts, MfccFeatures(), tmp_path, nshard=3)
    shards = [ShardFiles(tmp_path, r, 3) for r in range(3)]
    before = shards[0].feats.stat().st_mtime_ns
    # kill simulation: shard 1 died after its .npy but before its marker; shard 2 died mid-write
    shards[1].marker.unlink()
    shards[2].marker.unlink()
    shards[2].lengths.unlink()
    shards[2].feats.rename(tmp_path / f".{shards[2].feats.name}.partial.npy")
    counting = CountingMfcc()
    assert dump_all(cuts, counting, tmp_path, nshard=3) == [False, True, True]
    redo = sum(hi - lo for lo, hi in (shard_bounds(len(cuts), 3, r) for r in (1, 2)))
    assert counting.calls == redo
    assert shards[0].feats.stat().st_mtime_ns == before
    for files in shards:
        require_complete(files)
    assert dump_all(cuts, counting, tmp_path, nshard=3) == [False, False, False]
    assert counting.calls == redo


def test_other_settings_or_cuts_make_a_shard_stale(cuts, tmp_path):
    dump_all(cuts, MfccFeatures(), tmp_path, nshard=2)
    assert dump_all(cuts, MfccFeatures(), tmp_path, nshard=2, dtype="float16") == [True, True]
    assert np.load(ShardFiles(tmp_path, 0, 2).feats).dtype == np.float16
    assert dump_all(cuts[:-2], MfccFeatures(), tmp_path, nshard=2, dtype="float16") == [True, True]


def test_missing_shard_and_wrong_frame_count_are_named(cuts, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"feats_1_2\.npy is missing or incomplete.*shard\.rank=1"):
        require_complete(ShardFiles(tmp_path, 1, 2))

    class DoubleRate(MfccFeatures):
        def __call__(self, wav):
            return super().__call__(wav).repeat_interleave(2, dim=0)

    with pytest.raises(ValueError, match=f"cut '{cuts[0].id}': extractor gave \\d+ frames, the model frame grid"):
        dump_shard(cuts, DoubleRate(), ShardFiles(tmp_path, 0, 1), 16000)
    assert not ShardFiles(tmp_path, 0, 1).marker.exists()


def test_unreadable_audio_names_the_cut(cuts, tmp_path):
    source = fastcopy(cuts[3].recording.sources[0], source=str(tmp_path / "missing.wav"))
    broken = list(cuts)
    broken[3] = fastcopy(cuts[3], recording=fastcopy(cuts[3].recording, sources=[source]))
    with pytest.raises(RuntimeError, match=f"cut '{cuts[3].id}': "):
        dump_shard(broken, MfccFeatures(), ShardFiles(tmp_path, 0, 1), 16000)
    assert not ShardFiles(tmp_path, 0, 1).marker.exists()
