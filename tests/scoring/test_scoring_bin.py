"""bin.score on Kaldi text files and bin.results over an exp tree: files, numbers, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechssl2.bin import results as results_bin
from speechssl2.bin import score as score_bin
from speechssl2.config import ConfigError
from speechssl2.scoring.kaldi_text import read_text, write_text
from speechssl2.scoring.report import score_texts, top_errors

REFS = {"u1": "Press 1, then the POUND key.", "u2": "Goodbye!", "u3": "Please hold."}
HYPS = {"u1": "press one then the pound key", "u2": "good bye"}  # u3 missing


def test_score_texts_normalizes_both_sides_explicitly():
    refs, hyps = {"a": "Hello, World!"}, {"a": "hello world"}
    assert score_texts(refs, hyps, normalize=True).words.errors == 0
    assert score_texts(refs, hyps, normalize=False).words.substitutions == 2


def test_missing_hypothesis_scores_as_empty_and_unknown_id_is_an_error():
    report = score_texts(REFS, HYPS)
    assert report.missing == ["u3"]
    u3 = next(u for u in report.utts if u.utt_id == "u3")
    assert (u3.hyp, u3.words.deletions) == ("", 2)
    with pytest.raises(ValueError, match="no reference.*'zz'"):
        score_texts(REFS, {"zz": "hello"})


def test_top_errors_counts_each_kind():
    report = score_texts({"a": "one two three", "b": "one two"}, {"a": "won two", "b": "won two four"})
    errs = top_errors(report)
    assert errs["substitutions"] == [("one -> won", 2)]
    assert errs["deletions"] == [("three", 1)]
    assert errs["insertions"] == [("four", 1)]


def test_read_text_rejects_duplicate_ids(tmp_path: Path):
    path = tmp_path / "text"
    path.write_text("u1 hello\nu2 there\nu1 again\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"text:3: utterance id 'u1' appears twice"):
        read_text(path)
    path.write_text("u1 hello\nu2\n", encoding="utf-8")
    assert read_text(path) == {"u1": "hello", "u2": ""}


def _write_decode(tmp_path: Path, name: str, hyps: dict) -> Path:
    ref = tmp_path / "data" / "text"
    if not ref.exists():
        write_text(ref, REFS)
    hyp = tmp_path / "exp" / name / "text"
    write_text(hyp, hyps)
    return hyp


def test_score_cli_writes_summary_alignments_and_result_json(tmp_path: Path):
    hyp = _write_decode(tmp_path, "ctc_greedy", HYPS)
    report = score_bin.main([
        "--set", f"ref={tmp_path / 'data' / 'text'}", "--set", f"hyp={hyp}",
        "--set", "meta.upstream=hubert_tiny", "--set", "meta.decoder=greedy", "--set", "meta.test_set=en_test",
    ])
    out = hyp.parent
    result = json.loads((out / "result.json").read_text())
    # refs: press 1 then the pound key (6) + goodbye (1) + please hold (2) = 9 words
    # u1: 1 -> one (S); u2: goodbye -> good bye (S + I); u3: 2 deletions
    assert (result["substitutions"], result["deletions"], result["insertions"]) == (2, 2, 1)
    assert result["num_words"] == 9 and result["num_utts"] == 3
    assert result["wer"] == pytest.approx(100 * 5 / 9, abs=1e-3)
    assert result["wer"] == pytest.approx(100 * report.wer, abs=1e-3)
    assert result["upstream"] == "hubert_tiny" and result["missing"] == ["u3"]
    assert (out / "wer.txt").read_text().startswith("%WER 55.56 [ 5 / 9, 1 ins, 2 del, 2 sub ]")
    align = (out / "alignments.txt").read_text()
    assert "u2 ref  GOODBYE ***" in align and "u2 hyp  GOOD    BYE" in align
    assert "1 -> one" in (out / "top_errors.txt").read_text()
    assert "upstream: hubert_tiny" in (out / "score.yaml").read_text()  # the resolved config


def test_score_cli_requires_ref_and_hyp(tmp_path: Path):
    with pytest.raises(ConfigError, match="^ref: required field missing$"):
        score_bin.main(["--set", f"hyp={tmp_path / 'text'}"])


def test_results_cli_collects_every_experiment_into_one_table(tmp_path: Path):
    for name, decoder, hyps in [("a/greedy", "greedy", HYPS), ("a/beam_lm", "beam", {**HYPS, "u3": "please hold"})]:
        hyp = _write_decode(tmp_path, name, hyps)
        score_bin.main(["--set", f"ref={tmp_path / 'data' / 'text'}", "--set", f"hyp={hyp}",
                        "--set", f"meta.decoder={decoder}", "--set", "meta.lm=3gram"])
    out, png = tmp_path / "RESULTS.md", tmp_path / "exp" / "results.png"
    rows = results_bin.main(["--set", f"exp_dir={tmp_path / 'exp'}", "--set", f"output={out}", "--set", f"plot={png}"])
    assert [r["decoder"] for r in rows] == ["beam", "greedy"]
    table = [line for line in out.read_text().splitlines() if line.startswith("|")]
    assert table[0].startswith("| upstream | fine-tune set | units | decoder | LM | test set | seed | #utts | WER % | CER %")
    assert len(table) == 2 + 2
    assert "| beam | 3gram | - | - | 3 | 33.33 |" in table[2]  # u3 now right: 3 errors / 9 words
    assert "| greedy | 3gram | - | - | 3 | 55.56 |" in table[3]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_results_rejects_a_foreign_result_json(tmp_path: Path):
    (tmp_path / "exp" / "x").mkdir(parents=True)
    (tmp_path / "exp" / "x" / "result.json").write_text('{"wer": 3}')
    with pytest.raises(ValueError, match=r"x/result.json: missing field\(s\) num_utts"):
        results_bin.main(["--set", f"exp_dir={tmp_path / 'exp'}", "--set", f"output={tmp_path / 'R.md'}"])
