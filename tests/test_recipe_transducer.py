"""The small recipes' transducer path end to end (--finetune_type transducer), beside CTC from the same upstream."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from speechssl2.scoring.kaldi_text import read_transcripts

REPO = Path(__file__).resolve().parents[1]
TRANSDUCER_DECODERS = ("transducer_greedy", "transducer_beam", "transducer_beam_tlm", "transducer_beam_rescore")


def short_confs(recipe: str, dest: Path, updates: dict) -> Path:
    """The recipe's conf/ with fewer updates (the test checks plumbing, not accuracy)."""
    conf = dest / "conf"
    shutil.copytree(REPO / "egs" / recipe / "ssl1" / "conf", conf, symlinks=True)
    for name, n in updates.items():
        cfg = yaml.safe_load((conf / name).read_text())
        cfg["trainer"].update(max_updates=n, save_every=n, valid_every=n)
        cfg["scheduler"].pop("warmup_updates", None)
        if "encoder" in cfg.get("model", {}):
            cfg["model"]["encoder"]["freeze_updates"] = 0
        (conf / name).write_text(yaml.safe_dump(cfg))
    return conf


def run(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


def results_rows(path: Path, upstream: str) -> dict:
    """decoder + LM columns -> the row's cells, for the rows of one upstream."""
    lines = [line.strip("| ").split(" | ") for line in path.read_text().splitlines() if f"| {upstream} |" in line]
    header = next(line.strip("| ").split(" | ") for line in path.read_text().splitlines() if line.startswith("| "))
    return {(row[header.index("decoder")], row[header.index("LM")]): dict(zip(header, row)) for row in lines}


def check_transducer_beside_ctc(work: Path, upstream: str, test_set: str, utts: int) -> None:
    rows = results_rows(work / "RESULTS.md", upstream)
    decoders = {d for d, _ in rows}
    assert {"ctc greedy", "ctc beam (beam 20)", "transducer greedy", "transducer beam (beam 8)"} <= decoders, rows.keys()
    lms = {lm for d, lm in rows if d.startswith("transducer beam")}
    assert {"none", "TLM fusion x0.3", "TLM rescoring x0.5"} <= lms, rows.keys()
    for row in rows.values():
        assert 0.0 <= float(row["WER %"]) and row["test set"] == test_set
    ft = work / "exp" / f"finetune_{upstream}_transducer_char"
    for dec in TRANSDUCER_DECODERS:
        assert len((ft / f"decode_{dec}_{test_set}" / "text").read_text().splitlines()) == utts


@pytest.fixture
def fsdd_subset(fsdd_dir, tmp_path) -> Path:
    """60 test and 180 train recordings, every speaker and digit (index 0 and 5-7)."""
    sub = tmp_path / "fsdd"
    sub.mkdir()
    for wav in fsdd_dir.glob("*.wav"):
        if int(wav.stem.rsplit("_", 1)[1]) in (0, 5, 6, 7):
            (sub / wav.name).symlink_to(wav)
    return sub


@pytest.mark.slow
def test_fsdd_recipe_transducer_path(tmp_path, fsdd_subset):
    conf = short_confs("fsdd", tmp_path, {"pretrain_wav2vec2.yaml": 3, "finetune_transducer.yaml": 10,
                                          "finetune_ctc.yaml": 10, "lm_transformer.yaml": 10})
    run_sh = (f"{REPO}/egs/fsdd/ssl1/run.sh --fsdd_dir {fsdd_subset} --work_dir {tmp_path} --conf {conf} "
              "--pretrain_model wav2vec2 --hubert_iter 0")
    run(f"{run_sh} --stage 0 --stop_stage 6 --finetune_type transducer", tmp_path)
    run(f"{run_sh} --stage 4 --stop_stage 4 --finetune_type ctc", tmp_path)  # stage 5's LMs are there
    run(f"{run_sh} --stage 6 --stop_stage 7 --finetune_type ctc", tmp_path)
    check_transducer_beside_ctc(tmp_path, "wav2vec2", "test", 60)


@pytest.mark.slow
def test_asterisk_recipe_transducer_path(tmp_path):
    sounds = Path("/usr/share/asterisk/sounds")
    if not (sounds / "en").is_dir():
        pytest.skip("asterisk-core-sounds-en not installed (make demo)")
    conf = short_confs("asterisk", tmp_path, {"pretrain_wav2vec2.yaml": 3, "finetune_transducer.yaml": 10,
                                              "finetune_ctc.yaml": 10, "lm_transformer.yaml": 10})
    run_sh = f"{REPO}/egs/asterisk/ssl1/run.sh --work_dir {tmp_path} --conf {conf} --pretrain_model wav2vec2 --hubert_iter 0"
    run(f"{run_sh} --stage 0 --stop_stage 6 --finetune_type transducer", tmp_path)
    run(f"{run_sh} --stage 4 --stop_stage 4 --finetune_type ctc", tmp_path)  # stage 5's LMs are there
    run(f"{run_sh} --stage 6 --stop_stage 7 --finetune_type ctc", tmp_path)
    utts = len(read_transcripts(tmp_path / "data" / "en_test" / "cuts_char.jsonl.gz"))
    check_transducer_beside_ctc(tmp_path, "wav2vec2", "en_test", utts)
