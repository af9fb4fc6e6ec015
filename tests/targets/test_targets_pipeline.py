"""The four stages end to end on real FSDD audio: MFCC -> k-means -> labels on cuts -> PNMI.

Reference for PNMI: every frame of an utterance carries its spoken digit word (FSDD has
no phone alignments), so PNMI here measures how much the clusters say about the word.
"""
import json

import numpy as np
import pytest
from lhotse import CutSet

import speechssl2
from speechssl2.bin import dump_features, dump_labels, learn_kmeans, pnmi
from speechssl2.models import build_upstream
from speechssl2.targets.audio import at_rate
from speechssl2.targets.frames import conv_frame_count
from speechssl2.targets.pnmi import Contingency, cluster_metrics, frame_references

STAGES = (dump_features, learn_kmeans, dump_labels, pnmi)


def run_all(args):
    for stage in STAGES:
        stage.main(args)


def baseline_pnmi(cuts, labels, rng):
    """PNMI of uniformly random labels over the same frames and clusters."""
    counts = Contingency()
    for cut, lab in zip(cuts, labels):
        counts.update(frame_references(cut, len(lab), "text"), rng.integers(0, 50, size=len(lab)))
    return cluster_metrics(counts.table()[0])["pnmi"]


@pytest.mark.slow
def test_mfcc_kmeans_labels_pnmi_on_fsdd(make_fsdd_cuts, tmp_path, monkeypatch):
    manifest = make_fsdd_cuts(range(5, 10), tmp_path / "data" / "train")  # 300 utterances, 10 words, 6 speakers
    exp = tmp_path / "exp"
    args = [f"--set=cuts={manifest}", f"--set=exp_dir={exp}", "--set=shard.nshard=2",
            "--set=kmeans.n_clusters=50", "--set=kmeans.max_frames=4000"]
    run_all(args)

    # labels stored on the cuts load back at the model frame rate
    labelled = CutSet.from_file(manifest.parent / "cuts_hubert_iter1.jsonl.gz")
    cuts = list(labelled)
    assert [c.id for c in cuts] == [c.id for c in CutSet.from_file(manifest)]
    labels = [cut.load_custom("hubert_labels") for cut in cuts]
    for cut, lab in zip(cuts, labels):
        assert lab.dtype == np.int32 and lab.shape == (conv_frame_count(at_rate(cut, 16000).num_samples),)
    assert 0 <= min(lab.min() for lab in labels) and max(lab.max() for lab in labels) < 50

    km = json.loads((exp / "kmeans_iter1" / "km.json").read_text())
    assert km["n_clusters"] == 50 and km["features"]["kind"] == "mfcc"
    assert 3000 < km["num_frames"] <= 4000 and km["sample"]["utterances"] < 300  # whole utterances under the cap
    assert f"K-means inertia / frame: {km['inertia_per_frame']:.5f}" in (exp / "kmeans_iter1" / "pnmi_train.md").read_text()
    report = json.loads((exp / "kmeans_iter1" / "pnmi_train.json").read_text())
    kmeans_pnmi = report["metrics"]["pnmi"]
    random_pnmi = baseline_pnmi(cuts, labels, np.random.default_rng(0))
    print(f"FSDD MFCC k-means(50) PNMI {kmeans_pnmi:.3f} vs random labels {random_pnmi:.3f}")
    assert kmeans_pnmi > 0.15 and kmeans_pnmi > 4 * random_pnmi
    assert f"{kmeans_pnmi:.4f}" in (exp / "pnmi_train.md").read_text()

    # every stage skips finished work
    stamps = {p: p.stat().st_mtime_ns for p in exp.rglob("*") if p.is_file() and "log" not in p.parts
              and "conf" not in p.parts and p.name != "pnmi_train.md"}
    run_all(args)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # quality gate
    with pytest.raises(SystemExit, match="quality gate failed: PNMI"):
        pnmi.main(args + ["--set=pnmi.min_pnmi=0.99"])
    # other k-means settings: the codebook is trained again and the labels follow it, never a mix;
    # the features, which do not depend on k-means, are not dumped again
    feats = {p: p.stat().st_mtime_ns for p in (exp / "feats_iter1").rglob("feats_*")}
    run_all(args + ["--set=kmeans.n_clusters=20"])
    assert json.loads((exp / "kmeans_iter1" / "km.json").read_text())["n_clusters"] == 20
    relabelled = [c.load_custom("hubert_labels") for c in CutSet.from_file(manifest.parent / "cuts_hubert_iter1.jsonl.gz")]
    assert max(lab.max() for lab in relabelled) < 20 < max(lab.max() for lab in labels)
    assert {p: p.stat().st_mtime_ns for p in feats} == feats

    # iteration 2 from layer features of a (tiny, untrained) upstream; one row per iteration
    monkeypatch.setattr(speechssl2, "load_pretrained", lambda path: (build_upstream({"name": "hubert_tiny"}), {}),
                        raising=False)
    run_all(args + ["--set=iteration=2", "--set=features.kind=layer", "--set=features.checkpoint=iter1.pt",
                    "--set=features.layer=1", "--set=kmeans.n_clusters=20"])
    table = (exp / "pnmi_train.md").read_text().strip().splitlines()
    assert [row.split("|")[1].strip() for row in table[-2:]] == ["1", "2"]
    assert "layer1:iter1.pt" in table[-1]
    layer_labels = next(iter(CutSet.from_file(manifest.parent / "cuts_hubert_iter2.jsonl.gz"))).load_custom("hubert_labels")
    assert layer_labels.shape == labels[0].shape
