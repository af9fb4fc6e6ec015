"""HuBERT targets dumped in parallel jobs (ssl.sh stage 2 with --nj): the same labels as one job."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from lhotse import CutSet

from speechssl2.data.manifest import write_manifest_atomic

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO / "egs" / "fsdd" / "ssl1"


def test_two_merges_of_the_same_manifest_at_once_both_complete(make_fsdd_cuts, tmp_path, monkeypatch):
    """The last two label jobs may merge together: one writer's rename never takes the other's file."""
    cuts = CutSet.from_file(make_fsdd_cuts([7], tmp_path / "data"))
    first, second = cuts.subset(first=3), cuts.subset(last=3)
    out = tmp_path / "cuts_merged.jsonl.gz"
    to_file = CutSet.to_file

    def racing_to_file(self, path):  # the other job writes and renames its manifest in between
        to_file(self, path)
        if self is first:
            write_manifest_atomic(second, out)

    monkeypatch.setattr(CutSet, "to_file", racing_to_file)
    write_manifest_atomic(first, out)
    monkeypatch.undo()
    assert [c.id for c in CutSet.from_file(out)] == [c.id for c in first]  # whole, from the last rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cuts_merged.jsonl.gz", "data"]  # no temporaries left


def run_targets_stage(work: Path, conf: Path, nj: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a shared machine: one thread per job
    return subprocess.run(["bash", str(FSDD / "ssl.sh"), "--stage", "2", "--stop_stage", "2", "--work_dir", str(work),
                           "--conf", str(conf), "--pretrain_set", "train", "--nj", str(nj)],
                          cwd=FSDD, capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_targets_stage_in_two_jobs_gives_the_labels_of_one(make_fsdd_cuts, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(FSDD / "conf", conf)
    targets = yaml.safe_load((conf / "targets_iter1.yaml").read_text())
    targets["kmeans"]["n_clusters"] = 12  # 60 digits: ~2000 frames
    (conf / "targets_iter1.yaml").write_text(yaml.safe_dump(targets))
    manifests = {}
    for nj in (1, 2):
        work = tmp_path / f"nj{nj}"
        source = make_fsdd_cuts([7], work / "data" / "train")
        res = run_targets_stage(work, conf, nj)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        exp = work / "exp" / "hubert_targets"
        assert sorted(p.name for p in (exp / "feats_iter1" / "train").glob("feats_*.json")) == [
            f"feats_{r}_{nj}.json" for r in range(nj)]  # one shard per job
        for step in ("dump_features", "dump_labels"):
            for r in range(nj):
                assert (exp / "log" / f"{step}_iter1.{r}.log").read_text().rstrip().endswith("exit status 0")
        manifests[nj] = work / "data" / "train" / "cuts_hubert_iter1.jsonl.gz"
        assert [c.id for c in CutSet.from_file(manifests[nj])] == [c.id for c in CutSet.from_file(source)]
    one, two = (list(CutSet.from_file(manifests[nj])) for nj in (1, 2))
    assert [c.id for c in one] == [c.id for c in two] and len(one) == 60
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.load_custom("hubert_labels"), b.load_custom("hubert_labels"))
    centroids = [np.load(tmp_path / f"nj{nj}" / "exp" / "hubert_targets" / "kmeans_iter1" / "km.npy") for nj in (1, 2)]
    np.testing.assert_array_equal(*centroids)
    assert len({int(x) for c in one for x in c.load_custom("hubert_labels")}) > 1
