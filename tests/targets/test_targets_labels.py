"""K-means sampling and assignment, labels on cuts, and layer features of a real tiny upstream."""
import numpy as np
import pytest
import torch
from lhotse import CutSet

from speechssl2.models import build_upstream
from speechssl2.targets.audio import load_mono
from speechssl2.targets.features import LayerFeatures, MfccFeatures
from speechssl2.targets.frames import LabelRateError
from speechssl2.targets.kmeans import (NearestCentroid, given_centroids, inertia_of, sample_utterances, seed_centroids,
                                     train_kmeans)
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


def utterance_rows(shards):
    """{frames of one utterance as bytes: cut id} over the whole dump."""
    rows = {}
    for files in shards:
        feats, start = np.load(files.feats), 0
        for cut_id, n in files.read_lengths():
            rows[feats[start:start + n].tobytes()] = cut_id
            start += n
    return rows


def split_by_utterance(sample, shards):
    """The sample cut back into the dump's utterances (it must be whole ones, in dump order)."""
    lengths = {cid: n for files in shards for cid, n in files.read_lengths()}
    known, picked, start = utterance_rows(shards), [], 0
    order = [cid for files in shards for cid, _ in files.read_lengths()]
    for cid in order:
        n = lengths[cid]
        if start + n <= len(sample.frames) and known.get(sample.frames[start:start + n].tobytes()) == cid:
            picked.append(cid)
            start += n
    assert start == len(sample.frames), "the sample is not a concatenation of whole utterances"
    return picked


def test_sample_utterances_takes_whole_utterances_at_the_stated_fraction(dumped):
    cuts, shards = dumped
    sample = sample_utterances(shards, percent=0.25, max_frames=10**9, seed=3)
    picked = split_by_utterance(sample, shards)
    assert len(picked) == sample.utterances == int(np.ceil(0.25 * len(cuts))) and sample.total_utterances == len(cuts)
    assert sample.frames.dtype == np.float32 and sample.frames.shape[1] == 39
    np.testing.assert_array_equal(sample.frames, sample_utterances(shards, 0.25, 10**9, seed=3).frames)
    assert picked != split_by_utterance(sample_utterances(shards, 0.25, 10**9, seed=4), shards)
    # every utterance is equally likely: over seeds, each is picked about 25 % of the time
    counts = {c.id: 0 for c in cuts}
    for seed in range(200):
        for cid in split_by_utterance(sample_utterances(shards, 0.25, 10**9, seed), shards):
            counts[cid] += 1
    assert all(20 <= n <= 80 for n in counts.values()), sorted(counts.values())  # 50 expected, binomial sd 6
    # the cap drops whole utterances: all of them under it, none cut
    capped = sample_utterances(shards, 1.0, max_frames=500, seed=3)
    assert len(capped.frames) <= 500 and len(split_by_utterance(capped, shards)) == capped.utterances
    with pytest.raises(ValueError, match=r"percent must be in \(0, 1\]"):
        sample_utterances(shards, 0.0, 100, 0)


def test_restarts_never_fit_worse_and_every_inertia_is_reported(dumped):
    rows = all_rows(dumped[1]).astype(np.float32)
    one = train_kmeans(rows, 16, niter=3, nredo=1, seed=5)
    four = train_kmeans(rows, 16, niter=3, nredo=4, seed=5)
    assert four.restarts[0] == pytest.approx(one.inertia, rel=1e-6)  # restart 0 is the nredo=1 run
    assert four.inertia == min(four.restarts) <= one.inertia and len(set(four.restarts)) == 4
    exact = ((rows[:, None, :] - four.centroids[None]) ** 2).sum(-1).min(1).sum()
    assert four.inertia == pytest.approx(float(exact), rel=1e-4)


def test_kmeans_plus_plus_seeds_every_separated_cluster():
    """16 well-separated Gaussians: k-means++ seeding alone (no Lloyd step) lands near the fit of the
    true centres, and far below faiss's random seeding, on average over restarts."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (16, 8))
    x = (centres[rng.integers(16, size=3200)] + rng.normal(size=(3200, 8))).astype(np.float32)
    plus = train_kmeans(x, 16, niter=0, nredo=8, seed=0)
    rand = train_kmeans(x, 16, niter=0, nredo=8, seed=0, init="random")
    assert np.mean(plus.restarts) < 0.5 * np.mean(rand.restarts)
    # n_init seedings on one pool: the kept one is the best of them (the first is the n_init=1 seeding)
    pool_once = seed_centroids(x, 16, 1000, 1, np.random.default_rng(1))
    pool_best = seed_centroids(x, 16, 1000, 8, np.random.default_rng(1))
    pool = x[np.random.default_rng(1).choice(len(x), size=1000, replace=False)]
    assert inertia_of(pool, pool_best) <= inertia_of(pool, pool_once)
    with pytest.raises(ValueError, match="init must be 'k-means\\+\\+' or 'random'"):
        train_kmeans(x, 16, 1, 1, 0, init="kmeans++")


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


def test_given_centroids_are_kept_and_measured(dumped, tmp_path):
    """kmeans.centroids: a released model's k-means is used as given, its inertia on the sample reported."""
    rows = all_rows(dumped[1]).astype(np.float32)
    trained = train_kmeans(rows, 8, niter=5, nredo=1, seed=0)
    np.save(tmp_path / "km.npy", trained.centroids.astype(np.float64))  # sklearn's cluster_centers_ are float64
    given = given_centroids(tmp_path / "km.npy", rows, 8)
    np.testing.assert_array_equal(given.centroids, trained.centroids)
    assert given.inertia == pytest.approx(trained.inertia, rel=1e-5)
    with pytest.raises(ValueError, match=r"km.npy: centroids of shape \(8, 39\), expected \(n_clusters=16"):
        given_centroids(tmp_path / "km.npy", rows, 16)
