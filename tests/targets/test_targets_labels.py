"""K-means sampling and assignment, labels on cuts, and layer features of a real tiny upstream."""
import numpy as np
import pytest
import torch
from lhotse import CutSet

from speechssl2.models import build_upstream
from speechssl2.targets.audio import load_mono
from speechssl2.targets.features import LayerFeatures, MfccFeatures
from speechssl2.targets.frames import LabelRateError
from speechssl2.targets.kmeans import NearestCentroid, sample_frames, train_kmeans
from speechssl2.targets.labels import label_shard, merge_parts
from speechssl2.targets.shards import ShardFiles, dump_shard


@pytest.fixture(scope="module")
def dumped(make_fsdd_cuts, tmp_path_factory):
    """60 FSDD cuts, MFCC dumped in 2 shards."""
    root = tmp_path_factory.mktemp("labels")
    cuts = list(CutSet.from_file(make_fsdd_cuts([1], root / "data")))
    shards = [ShardFiles(root / "feats", r, 2) for r in range(2)]
    for files in shards:
        dump_shard(cuts, MfccFeatures(), files, 16000)
    return cuts, shards


def all_rows(shards):
    return np.concatenate([np.load(f.feats) for f in shards])


def test_sample_frames_is_a_seeded_subset_of_the_dump(dumped):
    _, shards = dumped
    rows = all_rows(shards)
    sample = sample_frames(shards, max_frames=10**9, percent=0.25, seed=3)
    assert sample.shape == (round(0.25 * len(rows)), 39) and sample.dtype == np.float32
    assert sample_frames(shards, max_frames=100, percent=1.0, seed=3).shape == (100, 39)
    np.testing.assert_array_equal(sample, sample_frames(shards, 10**9, 0.25, seed=3))
    assert not np.array_equal(sample, sample_frames(shards, 10**9, 0.25, seed=4))
    dump_rows = {r.tobytes() for r in rows}
    assert all(r.tobytes() in dump_rows for r in sample)
    with pytest.raises(ValueError, match=r"percent must be in \(0, 1\]"):
        sample_frames(shards, 100, 0.0, 0)


def test_kmeans_fits_better_with_more_clusters_and_assigns_nearest(dumped):
    rows = all_rows(dumped[1]).astype(np.float32)
    coarse, fine = (train_kmeans(rows, k, niter=10, nredo=1, seed=0) for k in (4, 32))
    assert fine.inertia < 0.6 * coarse.inertia
    brute = ((rows[:, None, :] - fine.centroids[None]) ** 2).sum(-1).argmin(1)
    assert (NearestCentroid(fine.centroids)(rows) == brute).mean() > 0.999  # float ties aside
    with pytest.raises(ValueError, match="cannot make 5000 clusters"):
        train_kmeans(rows[:100], 5000, 1, 1, 0)


def test_labels_on_cuts_and_label_rate_mismatch(dumped, tmp_path):
    cuts, shards = dumped
    labeler = NearestCentroid(train_kmeans(all_rows(shards), 8, 5, 1, 0).centroids)
    parts = [label_shard(cuts, f, labeler, tmp_path, "km", 16000) for f in shards]
    merged = merge_parts(cuts, parts, tmp_path / "cuts_km.jsonl.gz")
    reloaded = list(CutSet.from_file(tmp_path / "cuts_km.jsonl.gz"))
    assert [c.id for c in reloaded] == [c.id for c in cuts] == [c.id for c in merged]
    mfcc = MfccFeatures()
    for cut in reloaded[::9]:
        expected = labeler(mfcc(load_mono(cut, 16000)).numpy())
        np.testing.assert_array_equal(cut.load_custom("km"), expected)

    double_rate = lambda feats: np.repeat(labeler(feats), 2)  # noqa: E731 -- labels at 100 Hz
    with pytest.raises(LabelRateError, match=f"cut '{cuts[0].id}': \\d+ labels but the model produces"):
        label_shard(cuts, shards[0], double_rate, tmp_path / "bad", "km", 16000)
    with pytest.raises(ValueError, match="does not hold the cuts 0..28 of this manifest"):
        label_shard(cuts[1:], shards[0], labeler, tmp_path / "other", "km", 16000)
    with pytest.raises(ValueError, match="30 cuts have no labels"):
        merge_parts(cuts, parts[:1], tmp_path / "partial.jsonl.gz")


def test_layer_features_of_a_tiny_upstream_follow_its_frames(dumped, tmp_path):
    cuts, _ = dumped
    torch.manual_seed(0)
    upstream = build_upstream({"name": "hubert_tiny"}).eval()
    features = LayerFeatures(upstream, layer=2, source="tiny")
    assert features.dim == upstream.embed_dim
    files = ShardFiles(tmp_path, 0, 6)
    dump_shard(cuts, features, files, 16000)
    wav = load_mono(cuts[0], 16000)
    with torch.no_grad():
        ref = upstream(wav[None], torch.tensor([len(wav)])).hidden_states[2][0]  # (T, D)
    stored = np.load(files.feats)[: ref.shape[0]]
    np.testing.assert_allclose(stored, ref.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"layer 3 does not exist: the upstream returns 3 hidden states"):
        LayerFeatures(upstream, layer=3)
