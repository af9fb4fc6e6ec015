"""Recipe shell layer: option parsing, stage logs, and the recipes on real audio."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

UTILS = REPO / "utils"


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True)


def test_parse_options_sets_known_and_rejects_unknown(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"stage=0\nstop_stage=9\nname=x\n. {UTILS}/parse_options.sh\necho \"$stage $stop_stage $name $*\"\n")
    ok = sh(f"bash {script} --stage 3 --stop-stage=5 --name 'a b' rest", tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip() == "3 5 a b rest"
    bad = sh(f"bash {script} --nmae y", tmp_path)
    assert bad.returncode != 0 and "unknown option --nmae" in bad.stderr


def test_run_stage_logs_the_command_output_and_status(tmp_path):
    log = tmp_path / "exp" / "x" / "log" / "stage.log"
    res = sh(f"{UTILS}/run_stage.sh {log} -- bash -c 'echo hello; echo oops >&2'", tmp_path)
    assert res.returncode == 0 and "hello" in res.stdout and "oops" in res.stdout
    text = log.read_text()
    assert "hello" in text and "oops" in text and "exit status 0" in text


def test_run_stage_passes_a_failure_on_naming_the_log(tmp_path):
    log = tmp_path / "log" / "s.log"
    res = sh(f"{UTILS}/run_stage.sh {log} -- bash -c 'exit 3'", tmp_path)
    assert res.returncode == 3 and f"log: {log}" in res.stderr
    assert "exit status 3" in log.read_text()


def test_run_stage_exit_75_passes(tmp_path):
    res = sh(f"{UTILS}/run_stage.sh {tmp_path}/s.log -- bash -c 'exit 75'", tmp_path)
    assert res.returncode == 0 and "skipped by the stage itself" in res.stdout


def test_train_ngram_without_kenlm_exits_75(tmp_path, monkeypatch):
    from speechssl2.bin import train_ngram

    text = tmp_path / "text"
    text.write_text("u1 hello world\n")
    monkeypatch.setattr(train_ngram, "find_kenlm", lambda: None)
    status = train_ngram.exit_status(["--set", f"texts=[{text}]", "--set", f"out_dir={tmp_path}/lm"])
    assert status == 75 and not (tmp_path / "lm").exists()


def _count(manifest: Path) -> int:
    with gzip.open(manifest, "rt") as f:
        return sum(1 for _ in f)


@pytest.mark.slow
def test_fsdd_recipe_data_stages(tmp_path, fsdd_dir):
    run = REPO / "egs" / "fsdd" / "ssl1" / "run.sh"
    args = f"{run} --fsdd_dir {fsdd_dir} --work_dir {tmp_path} --stage 0 --stop_stage 1"
    first = sh(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    data = tmp_path / "data"
    assert _count(data / "train" / "cuts.jsonl.gz") == 2700
    assert _count(data / "test" / "cuts.jsonl.gz") == 300
    assert "2700 kept" in (data / "train" / "report.txt").read_text()
    tokens = (data / "lang_char" / "tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and set("zeroonetwothreefourfivesixseveneightnine") <= set(tokens)
    assert "300 kept, 0 dropped" in (data / "test" / "report_char.txt").read_text()
    assert _count(data / "test" / "cuts_char.jsonl.gz") == 300
    again = sh(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("up to date") == 4, again.stdout  # data, tokenizer, validation of train and test
    bpe = sh(f"{run} --fsdd_dir {fsdd_dir} --work_dir {tmp_path} --stage 1 --stop_stage 1 --token_type bpe", tmp_path)
    assert bpe.returncode == 0, bpe.stderr[-3000:]
    from speechssl2.tokenizers.base import load_tokenizer

    tok = load_tokenizer(data / "lang_bpe")
    assert type(tok).__name__ == "SentencePieceTokenizer"
    assert tok.decode(tok.encode("seven three")) == "seven three"
    assert len(tok.encode("seven")) < len("seven")  # BPE merged letters of a frequent word


def constant_guess(manifest: Path) -> tuple:
    """(WER %, CER %) of the best single digit word answered for every test utterance: chance."""
    from speechssl2.data.corpora.fsdd import DIGIT_WORDS
    from speechssl2.scoring.kaldi_text import read_transcripts
    from speechssl2.scoring.report import score_texts

    refs = read_transcripts(manifest)
    reports = [score_texts(refs, dict.fromkeys(refs, word)) for word in DIGIT_WORDS]
    return min(100 * r.wer for r in reports), min(100 * r.cer for r in reports)


@pytest.mark.slow
def test_fsdd_recipe_end_to_end_beats_chance(tmp_path, fsdd_dir):
    """Stages 0-7 with shortened training: beam + 3-gram below chance WER, greedy below chance CER."""
    import shutil

    import yaml

    conf = tmp_path / "conf"
    shutil.copytree(REPO / "egs" / "fsdd" / "ssl1" / "conf", conf)
    for name, updates in (("pretrain_hubert.yaml", 20), ("finetune_ctc.yaml", 500)):
        cfg = yaml.safe_load((conf / name).read_text())
        cfg["trainer"].update(max_updates=updates, save_every=updates, valid_every=updates)
        cfg["scheduler"].pop("warmup_updates", None)  # the schedulers' defaults fit any length
        (conf / name).write_text(yaml.safe_dump(cfg))
    run = REPO / "egs" / "fsdd" / "ssl1" / "run.sh"
    res = sh(f"{run} --fsdd_dir {fsdd_dir} --work_dir {tmp_path} --conf {conf} --stage 0 --stop_stage 7", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [line.split(" | ") for line in (tmp_path / "RESULTS.md").read_text().splitlines() if "| hubert |" in line]
    scores = {row[3].split()[1]: (float(row[8]), float(row[9])) for row in rows}  # greedy/beam -> (WER %, CER %)
    assert set(scores) == {"greedy", "beam"}, scores  # KenLM missing is a failure here, not a skip
    wer_chance, cer_chance = constant_guess(tmp_path / "data" / "test" / "cuts_char.jsonl.gz")
    assert scores["beam"][0] < wer_chance, (scores, wer_chance)  # the best constant digit word: 90 % WER
    assert scores["greedy"][1] < cer_chance, (scores, cer_chance)  # greedy spells letters, judged by CER
    # HuBERT's second iteration: k-means on a layer of the model just pre-trained, then pre-training on it.
    res = sh(f"{run} --fsdd_dir {fsdd_dir} --work_dir {tmp_path} --conf {conf} --stage 2 --stop_stage 3 "
             "--hubert_iter 2", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    targets = tmp_path / "exp" / "hubert_targets"
    assert json.loads((targets / "feats_iter2" / "train" / "feats_0_2.json").read_text())["dim"] == 64  # layer, not MFCC
    assert json.loads((targets / "kmeans_iter2" / "pnmi_train.json").read_text())["metrics"]["pnmi"] > 0.0
    assert (tmp_path / "data" / "train" / "cuts_hubert_iter2.jsonl.gz").is_file()
    assert (tmp_path / "exp" / "pretrain_hubert_iter2" / "checkpoint_last.pt").is_file()
