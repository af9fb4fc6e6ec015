"""The study recipe (egs/study/ssl1) end to end, shortened to plumbing size: the real pool and FSDD,
pre-training, fine-tuning at a per-digit budget from scratch and from the pre-trained model, the
claims computed from the seed table, the health table against chance, and a rerun that skips."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from lhotse import CutSet

from speechssl2.data.corpora.fsdd import DIGIT_WORDS

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "study" / "ssl1"


def shorten(conf: Path) -> None:
    """A few updates each: this checks the plumbing; the measured study is docs/results/study.md."""
    for name, updates in (("pretrain_hubert.yaml", 4), ("finetune_budget.yaml", 4)):
        cfg = yaml.safe_load((conf / name).read_text())
        cfg["trainer"].update(max_updates=updates, save_every=updates)
        cfg["scheduler"].pop("warmup_updates", None)
        (conf / name).write_text(yaml.safe_dump(cfg))
    targets = yaml.safe_load((conf / "targets_iter1.yaml").read_text())
    targets["kmeans"]["n_clusters"] = 20
    (conf / "targets_iter1.yaml").write_text(yaml.safe_dump(targets))


def run(conf: Path, work: Path, fsdd_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECIPE / "run.sh"), "--fsdd_dir", str(fsdd_dir), "--work_dir", str(work),
                           "--conf", str(conf), "--pool_sets", "train", "--budgets", "per_label=2", "--seeds", "1",
                           "--nj", "1"], capture_output=True, text=True)


@pytest.mark.slow
def test_study_recipe_end_to_end(tmp_path, fsdd_dir):
    if not Path("/usr/share/asterisk/sounds/es").is_dir():
        pytest.skip("asterisk-core-sounds-*-wav not installed (make test installs them as root)")
    conf = tmp_path / "conf"
    shutil.copytree(RECIPE / "conf", conf)  # symlinks followed: a standalone copy
    shorten(conf)
    work = tmp_path / "w"
    res = run(conf, work, fsdd_dir)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    budget = (work / "BUDGET_per_label_2.md").read_text()
    for upstream in ("scratch", "hubert"):
        assert f"| {upstream} | train (per_label=2) | ctc beam" in budget, budget
    assert "- hubert beats scratch (ctc beam" in budget and "best decode at most half of chance (45.0 % of 90.0" in budget
    results = (work / "RESULTS.md").read_text()
    assert budget in results
    assert "| hubert | train/hubert/masked_ce_l4 |" in results and "entropy" in results  # vs the cluster prior
    for png in ("HEALTH.png", "BUDGET_per_label_2.png"):
        assert (work / png).stat().st_size > 1000
    texts = [c.supervisions[0].text for c in CutSet.from_file(work / "data" / "train_per_label_2" / "cuts.jsonl.gz")]
    assert sorted(set(texts)) == sorted(DIGIT_WORDS) and len(texts) == 20  # 2 per digit
    rerun = run(conf, work, fsdd_dir)  # every stage up to date: nothing is recomputed
    assert rerun.returncode == 0 and "running:" not in rerun.stderr + rerun.stdout, rerun.stderr[-2000:]
