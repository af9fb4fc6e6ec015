"""pool_cuts: manifests pooled, long cuts windowed, short pieces dropped and counted, text removed."""
from __future__ import annotations

import pytest
from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut, dummy_supervision

from speechssl2.bin import pool_cuts
from speechssl2.config import ConfigError


def write(path, durations, text="hello"):
    CutSet.from_cuts(dummy_cut(i, duration=d, supervisions=[dummy_supervision(i, duration=d, text=text)])
                     for i, d in enumerate(durations)).to_file(path)


def run(tmp_path, *sets):
    return pool_cuts.main(["--set", f"inputs=[{tmp_path / 'a.jsonl.gz'},{tmp_path / 'b.jsonl.gz'}]",
                           "--set", f"output={tmp_path / 'pool' / 'cuts.jsonl.gz'}", *sets])


def test_pool_windows_long_cuts_and_drops_short_pieces(tmp_path, capfd):
    write(tmp_path / "a.jsonl.gz", [9.1, 0.5])   # 4 + 4 + 1.1 s, and a short utterance kept whole
    write(tmp_path / "b.jsonl.gz", [4.1, 0.1])   # 4 + 0.1 (dropped) s, and one too short
    pooled = run(tmp_path, "--set", "window=4.0", "--set", "min_seconds=0.2")
    durations = sorted(round(c.duration, 3) for c in pooled)
    assert durations == [0.5, 1.1, 4.0, 4.0, 4.0]
    assert all(s.text is None for c in pooled for s in c.supervisions)
    assert "1 pieces kept, 2 shorter than 0.20 s dropped" in capfd.readouterr().err
    assert len(CutSet.from_file(tmp_path / "pool" / "cuts.jsonl.gz")) == 5


def test_whole_cuts_and_kept_text_on_request(tmp_path):
    write(tmp_path / "a.jsonl.gz", [9.1])
    write(tmp_path / "b.jsonl.gz", [1.0])
    pooled = run(tmp_path, "--set", "window=null", "--set", "drop_text=false")
    assert sorted(c.duration for c in pooled) == [1.0, 9.1]
    assert {s.text for c in pooled for s in c.supervisions} == {"hello"}


def test_nothing_left_or_nothing_asked_is_an_error(tmp_path):
    write(tmp_path / "a.jsonl.gz", [0.1])
    write(tmp_path / "b.jsonl.gz", [0.1])
    with pytest.raises(ValueError, match="no piece of at least"):
        run(tmp_path)
    with pytest.raises(ConfigError, match="set inputs"):
        pool_cuts.main(["--set", f"output={tmp_path / 'x.jsonl.gz'}"])
