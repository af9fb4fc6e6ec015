"""Kaldi ark/scp out of dump_features and in to the HuBERT target steps, checked with kaldiio."""
from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torchaudio.compliance.kaldi as kaldi
from lhotse import CutSet

import speechssl2
from speechssl2.bin import dump_features, dump_labels, learn_kmeans
from speechssl2.models import build_upstream
from speechssl2.targets.audio import at_rate, load_mono
from speechssl2.targets.features import LayerFeatures, MfccFeatures
from speechssl2.targets.frames import conv_frame_count
from speechssl2.targets.kmeans import NearestCentroid
from speechssl2.targets.shards import ShardFiles, iter_shard


@pytest.fixture
def train(make_fsdd_cuts, tmp_path):
    manifest = make_fsdd_cuts([5], tmp_path / "data" / "train")  # 60 utterances
    return manifest, list(CutSet.from_file(manifest))


def test_mfcc_to_ark_scp_reads_back_exactly_with_kaldiio(train, tmp_path, monkeypatch):
    manifest, cuts = train
    args = [f"--set=cuts={manifest}", f"--set=exp_dir={tmp_path / 'exp'}", "--set=shard.nshard=2",
            "--set=features.format=both"]
    feat_dir = tmp_path / "exp" / "feats_iter1" / "train"
    dump_features.main(args + ["--set=shard.rank=1"])
    assert not (feat_dir / "feats.scp").exists()  # shard 0 not dumped yet
    dump_features.main(args + ["--set=shard.rank=0"])  # the job completing the set joins the lists

    monkeypatch.chdir(tmp_path / "data")  # ark paths in the scp are absolute
    table = kaldiio.load_scp(str(feat_dir / "feats.scp"))
    assert list(table) == [c.id for c in cuts]
    npy = {cid: feats for r in range(2) for cid, feats in iter_shard(ShardFiles(feat_dir, r, 2))}
    for cut in cuts:
        assert table[cut.id].dtype == np.float32
        np.testing.assert_array_equal(table[cut.id], npy[cut.id])
    mfcc = MfccFeatures()
    for cut in cuts[::10]:
        np.testing.assert_array_equal(table[cut.id], mfcc(load_mono(cut, 16000)).numpy())


def test_espnet_reads_the_dumped_feats_scp(train, tmp_path):
    dataset = pytest.importorskip("espnet2.train.dataset")
    manifest, cuts = train
    dump_features.main([f"--set=cuts={manifest}", f"--set=exp_dir={tmp_path / 'exp'}", "--set=features.format=kaldi"])
    scp = str(tmp_path / "exp" / "feats_iter1" / "train" / "feats.scp")
    espnet = dataset.ESPnetDataset([(scp, "speech", "kaldi_ark")])  # an ESPnet data dir's feats_type=extracted
    mfcc = MfccFeatures()
    for cut in cuts[::20]:
        key, item = espnet[cut.id]
        np.testing.assert_array_equal(item["speech"], mfcc(load_mono(cut, 16000)).numpy())


def test_layer_features_to_kaldi_only(train, tmp_path, monkeypatch):
    manifest, cuts = train
    upstream = build_upstream({"name": "hubert_tiny"})
    monkeypatch.setattr(speechssl2, "load_pretrained", lambda path: (upstream, {}), raising=False)
    args = [f"--set=cuts={manifest}", f"--set=exp_dir={tmp_path / 'exp'}", "--set=features.kind=layer",
            "--set=features.checkpoint=iter1.pt", "--set=features.layer=1", "--set=features.format=kaldi"]
    dump_features.main(args)
    feat_dir = tmp_path / "exp" / "feats_iter1" / "train"
    table = kaldiio.load_scp(str(feat_dir / "feats.scp"))
    layer = LayerFeatures(upstream, layer=1)
    for cut in cuts[::15]:
        np.testing.assert_array_equal(table[cut.id], layer(load_mono(cut, 16000)).numpy())
    assert not ShardFiles(feat_dir, 0, 1).feats.exists()
    with pytest.raises(FileNotFoundError, match="features.format=both"):
        learn_kmeans.main(args)


def _kaldi_mfcc(cuts, ark, scp, offset=0.0):
    """What a Kaldi recipe gives: 13 MFCC per 10 ms frame (snip_edges), written with kaldiio."""
    written = {}
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for cut in cuts:
            wav = load_mono(cut, 16000)[None]
            written[cut.id] = kaldi.mfcc(wav, sample_frequency=16000, num_ceps=13, dither=0.0).numpy() + offset
            writer(cut.id, written[cut.id])
    return written


def test_kaldi_feats_scp_to_kmeans_and_labels(train, tmp_path):
    manifest, cuts = train
    ark, scp = tmp_path / "kaldi" / "feats.ark", tmp_path / "kaldi" / "feats.scp"
    ark.parent.mkdir()
    written = _kaldi_mfcc(cuts, ark, scp)
    exp = tmp_path / "exp"
    args = [f"--set=cuts={manifest}", f"--set=exp_dir={exp}", "--set=features.kind=scp", f"--set=features.scp={scp}",
            "--set=features.subsample=2", "--set=kmeans.n_clusters=8"]
    for stage in (dump_features, learn_kmeans, dump_labels):
        stage.main(args)

    shard = ShardFiles(exp / "feats_iter1" / "train", 0, 1)
    stored = dict(iter_shard(shard))
    centroids = NearestCentroid.load(exp / "kmeans_iter1")
    labelled = CutSet.from_file(manifest.parent / "cuts_hubert_iter1.jsonl.gz")
    for cut in labelled:
        at_20ms = written[cut.id][::2]  # Kaldi's snip_edges frames, every other: the model grid exactly
        assert at_20ms.shape[0] == conv_frame_count(at_rate(cut, 16000).num_samples)
        np.testing.assert_array_equal(stored[cut.id], at_20ms)
        np.testing.assert_array_equal(cut.load_custom("hubert_labels"), centroids(at_20ms))

    # the ark is an input: new values under the same scp (same offsets) are dumped again
    before = shard.feats.stat().st_mtime_ns
    dump_features.main(args)
    assert shard.feats.stat().st_mtime_ns == before
    scp_text = scp.read_text()
    rewritten = _kaldi_mfcc(cuts, ark, scp, offset=1.0)
    assert scp.read_text() == scp_text
    dump_features.main(args)
    first = cuts[0].id
    np.testing.assert_array_equal(dict(iter_shard(shard))[first], rewritten[first][::2])


def test_feats_scp_errors_name_the_cut(train, tmp_path):
    manifest, cuts = train
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    _kaldi_mfcc(cuts[1:], ark, scp)
    args = [f"--set=cuts={manifest}", f"--set=exp_dir={tmp_path / 'exp'}", "--set=features.kind=scp",
            f"--set=features.scp={scp}"]
    with pytest.raises(KeyError, match=rf"1 of 60 cuts have no line in {scp} \(e.g. \['{cuts[0].id}'\]\)"):
        dump_features.main(args)
    _kaldi_mfcc(cuts, ark, scp)
    with pytest.raises(RuntimeError, match=rf"'{cuts[0].id}': .* frames after subsample=1, .*need features.subsample=2"):
        dump_features.main(args)  # 10 ms frames for a 20 ms model
