"""Seed spread tables: grouping by experiment, mean ± sample std, duplicate seeds, CLI outputs."""
from __future__ import annotations

import json
import statistics

import pytest

from speechssl2.bin import seed_table
from speechssl2.scoring.seeds import group_seeds


def write_result(root, name, upstream, seed, wer, decoder="ctc greedy"):
    d = root / name
    d.mkdir(parents=True)
    row = {"upstream": upstream, "finetune_set": "train_5min", "decoder": decoder, "lm": "none",
           "test_set": "test", "seed": seed, "num_utts": 10, "wer": wer, "cer": wer / 2,
           "substitutions": 1, "deletions": 0, "insertions": 0}
    (d / "result.json").write_text(json.dumps(row))


def test_groups_by_experiment_and_reports_mean_and_sample_std(tmp_path):
    for seed, wer in zip((1, 2, 3), (40.0, 50.0, 60.0)):
        write_result(tmp_path, f"hubert_{seed}", "hubert", seed, wer)
    for seed, wer in zip((1, 2, 3), (90.0, 80.0, 100.0)):
        write_result(tmp_path, f"scratch_{seed}", "scratch", seed, wer)
    groups = seed_table.main(["--set", f"exp_dir={tmp_path}", "--set", f"output={tmp_path / 'T.md'}",
                              "--set", f"plot={tmp_path / 'T.png'}", "--set", "notes=budget 5 min"])
    assert [g.key[0] for g in groups] == ["hubert", "scratch"]  # best mean first
    assert groups[0].mean == 50.0 and groups[0].std == pytest.approx(statistics.stdev([40, 50, 60]))
    text = (tmp_path / "T.md").read_text()
    assert "| hubert | train_5min | ctc greedy | none | test | 3 | 50.0 ± 10.0 | 1: 40.0, 2: 50.0, 3: 60.0 |" in text
    assert "budget 5 min" in text
    assert (tmp_path / "T.png").stat().st_size > 1000


def test_the_same_seed_twice_in_one_experiment_is_an_error(tmp_path):
    write_result(tmp_path, "a", "hubert", 1, 40.0)
    write_result(tmp_path, "b", "hubert", 1, 45.0)
    rows = [json.loads((tmp_path / n / "result.json").read_text()) | {"path": n} for n in ("a", "b")]
    with pytest.raises(ValueError, match="seed 1 twice"):
        group_seeds(rows)


def test_no_results_is_a_clear_exit(tmp_path):
    with pytest.raises(SystemExit, match="no result.json"):
        seed_table.main(["--set", f"exp_dir={tmp_path}", "--set", f"output={tmp_path / 'T.md'}"])


def test_claims_need_a_margin_larger_than_the_seed_spread(tmp_path):
    for seed, (a, b, c) in zip((1, 2, 3), ((40.0, 80.0, 50.0), (50.0, 90.0, 95.0), (60.0, 100.0, 75.0))):
        write_result(tmp_path, f"hubert_{seed}", "hubert", seed, a)
        write_result(tmp_path, f"scratch_{seed}", "scratch", seed, b)
        write_result(tmp_path, f"wavlm_{seed}", "wavlm", seed, c)
    seed_table.main(["--set", f"exp_dir={tmp_path}", "--set", f"output={tmp_path / 'T.md'}",
                     "--set", "baseline=scratch", "--set", "chance=90"])
    text = (tmp_path / "T.md").read_text()
    # hubert 50 ± 10 vs scratch 90 ± 10: 40 > 10; wavlm 73.3 ± 22.5: 16.7 < 22.5
    assert "- hubert beats scratch (ctc greedy, none): **shown**: 50.0 ± 10.0 vs 90.0 ± 10.0" in text
    assert "- wavlm beats scratch (ctc greedy, none): **not shown**" in text
    assert "best decode at most half of chance (45.0 % of 90.0 % WER): **not shown**: hubert" in text


def test_claims_compare_only_within_one_decoder(tmp_path):
    write_result(tmp_path, "h", "hubert", 1, 30.0, decoder="ctc beam")
    write_result(tmp_path, "s", "scratch", 1, 50.0, decoder="ctc greedy")
    seed_table.main(["--set", f"exp_dir={tmp_path}", "--set", f"output={tmp_path / 'T.md'}",
                     "--set", "baseline=scratch", "--set", "chance=90"])
    text = (tmp_path / "T.md").read_text()
    assert "beats scratch" not in text
    assert "**shown**: hubert (ctc beam, none) 30.0 ± 0.0 %" in text
