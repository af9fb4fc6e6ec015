"""A recipe never keeps a stale result (issue 15): after each edit a user makes, the right
stages rerun or refuse, on a real FSDD subset run through the real recipe.

One recipe run is built once (stages 0-7 with a few updates of training), then edited as a
user would, in order: a bad transcript, a changed fine-tuning config, a rebuilt LM, a
deleted experiment directory. A dangling audio link in the corpus checks the data report.
"""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "egs" / "fsdd" / "ssl1" / "run.sh"
INDICES = (0, 1, 5, 6, 7, 8)  # 0-4 are FSDD's test split: 120 test and 240 train recordings


def sh(args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", args], cwd=cwd, capture_output=True, text=True)


def edit_yaml(path: Path, **sections: Dict) -> None:
    cfg = yaml.safe_load(path.read_text())
    for key, values in sections.items():
        cfg.setdefault(key, {}).update(values)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def results(work: Path) -> Dict[str, str]:
    """RESULTS.md rows by decoder (``greedy`` or ``beam``): the whole line."""
    lines = [line for line in (work / "RESULTS.md").read_text().splitlines() if "| hubert |" in line]
    return {line.split(" | ")[3].split()[1]: line for line in lines}


def cut_ids(manifest: Path) -> set:
    with gzip.open(manifest, "rt") as f:
        return {json.loads(line)["id"] for line in f}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, fsdd_dir):
    """A corpus subset (with one dangling link), a conf copy with short training, stages 0-7 run once."""
    if shutil.which("lmplz") is None and not (REPO / "tools" / "kenlm" / "bin" / "lmplz").exists():
        pytest.fail("KenLM is not built (make kenlm): the LM stage of this test needs it")
    root = tmp_path_factory.mktemp("fresh")
    corpus = root / "fsdd"
    corpus.mkdir()
    for wav in sorted(fsdd_dir.glob("*.wav")):
        if int(wav.stem.split("_")[2]) in INDICES:
            (corpus / wav.name).symlink_to(wav)
    (corpus / "3_ghost_9.wav").symlink_to(root / "gone.wav")  # a listed file whose audio is missing
    conf = root / "conf"
    shutil.copytree(REPO / "egs" / "fsdd" / "ssl1" / "conf", conf)
    short = dict(log_every=5, keep_last=None)
    edit_yaml(conf / "pretrain_hubert.yaml", trainer=dict(max_updates=5, save_every=5, **short))
    edit_yaml(conf / "finetune_ctc.yaml", trainer=dict(max_updates=30, save_every=30, valid_every=30, **short))
    for name in ("pretrain_hubert.yaml", "finetune_ctc.yaml"):
        cfg = yaml.safe_load((conf / name).read_text())
        cfg["scheduler"].pop("warmup_updates", None)
        (conf / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    work = root / "work"
    base = f"{RUN} --fsdd_dir {corpus} --work_dir {work} --conf {conf}"
    first = sh(f"{base} --stage 0 --stop_stage 0", root)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    return root, work, conf, base


def test_stale_results_are_impossible(recipe):
    root, work, conf, base = recipe
    data, exp = work / "data", work / "exp"
    ft = exp / "finetune_hubert_ctc_char"

    # 5. A missing audio file is a Problem in the report, not a crash.
    report = (data / "train" / "report.txt").read_text()
    assert "3_ghost_9\tmissing_audio" in report, report[:2000]

    # 4. A transcript outside the tokenizer's inventory: the report says dropped, and it is dropped.
    test_cuts = data / "test" / "cuts.jsonl.gz"
    with gzip.open(test_cuts, "rt") as f:
        rows = [json.loads(line) for line in f]
    victim = rows[0]["id"]
    rows[0]["supervisions"][0]["text"] = "seven é"
    with gzip.open(test_cuts, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    res = sh(f"{base} --stage 1 --stop_stage 7", root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "119 kept, 1 dropped" in (data / "test" / "report_char.txt").read_text()
    assert f"{victim}\tbad_chars" in (data / "test" / "report_char.txt").read_text()
    assert victim not in cut_ids(data / "test" / "cuts_char.jsonl.gz")
    before = results(work)
    assert set(before) == {"greedy", "beam"}, before
    assert all(" | 119 | " in row for row in before.values()), before  # scored without the dropped cut

    # Nothing changed: every stage skips itself, and the table stays. (Stage 0 would see its
    # output tampered with above and prepare the data again.)
    again = sh(f"{base} --stage 1 --stop_stage 7", root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "running:" not in again.stdout, again.stdout[-3000:]
    assert results(work) == before

    # 1. A changed fine-tuning config is not silently resumed: refused, naming the field...
    edit_yaml(conf / "finetune_ctc.yaml", optim=dict(lr=3.0e-4))
    refused = sh(f"{base} --stage 4 --stop_stage 7", root)
    assert refused.returncode != 0
    assert "optim.lr" in refused.stdout + refused.stderr and "trainer.resume=never" in refused.stdout + refused.stderr
    assert yaml.safe_load((ft / "config.yaml").read_text())["optim"]["lr"] != 3.0e-4  # describes the old weights
    # ... and retrains from scratch when asked to; decoding follows the new checkpoint.
    edit_yaml(conf / "finetune_ctc.yaml", trainer=dict(resume="never"))
    res = sh(f"{base} --stage 4 --stop_stage 7", root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert yaml.safe_load((ft / "config.yaml").read_text())["optim"]["lr"] == 3.0e-4
    assert torch.load(ft / "checkpoint_last.pt", weights_only=False)["config"]["optim"]["lr"] == 3.0e-4
    assert res.stdout.count("[decode] running") == 2, res.stdout[-3000:]
    retrained = results(work)

    # 2. A rebuilt LM re-decodes with it (only the decoder that uses it) and RESULTS.md shows it.
    ngram = conf / "ngram.yaml"
    ngram.write_text(ngram.read_text().replace("order: 3", "order: 2"))
    res = sh(f"{base} --stage 5 --stop_stage 7", root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert res.stdout.count("[decode] running") == 1 and res.stdout.count("[decode] up to date") == 1, res.stdout
    rebuilt = results(work)
    assert rebuilt["greedy"] == retrained["greedy"]
    assert rebuilt["beam"] != retrained["beam"]  # the LM cell names the LM's content

    # 3. A deleted output is noticed: its stage reruns instead of "up to date" and a crash.
    shutil.rmtree(ft)
    res = sh(f"{base} --stage 4 --stop_stage 7", root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "[train] running" in res.stdout and (ft / "checkpoint_last.pt").is_file()
    assert set(results(work)) == {"greedy", "beam"}
