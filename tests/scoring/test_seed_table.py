"""Seed spread tables: grouping by experiment, mean ± sample std, duplicate seeds, CLI outputs."""
from __future__ import annotations

import json
import statistics

import pytest

from speechssl2.bin import seed_table
from speechssl2.scoring.seeds import group_seeds


def write_result(root, name, upstream, seed, wer):
    d = root / name
    d.mkdir(parents=True)
    row = {"upstream": upstream, "finetune_set": "train_5min", "decoder": "ctc greedy", "lm": "none",
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
