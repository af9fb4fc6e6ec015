"""Labeled budgets: seeded, exact in count, at least the asked duration, errors when too small."""
from __future__ import annotations

import pytest
from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut, dummy_supervision

from speechssl2.bin import subset_cuts
from speechssl2.data.subset import budget_subset


def cuts(n=20):
    return CutSet.from_cuts(dummy_cut(i, duration=1.0 + i % 3) for i in range(n))


def test_count_budget_is_seeded_and_keeps_input_order():
    a, b, c = (list(budget_subset(cuts(), num_cuts=5, seed=s).ids) for s in (0, 0, 1))
    assert a == b and a != c
    assert len(a) == 5
    order = list(cuts().ids)
    assert [order.index(i) for i in a] == sorted(order.index(i) for i in a)


def test_duration_budget_reaches_the_asked_seconds_with_the_fewest_cuts():
    sub = budget_subset(cuts(), seconds=10.0, seed=3)
    total = sum(c.duration for c in sub)
    assert total >= 10.0 and total - max(c.duration for c in sub) < 10.0


def test_asking_for_more_than_the_set_holds_is_an_error():
    with pytest.raises(ValueError, match="holds only 20 cuts"):
        budget_subset(cuts(), num_cuts=21)
    with pytest.raises(ValueError, match="exactly one of seconds, num_cuts or per_label"):
        budget_subset(cuts(), seconds=1.0, num_cuts=1)


def test_cli_writes_the_subset(tmp_path):
    cuts().to_file(tmp_path / "all.jsonl.gz")
    out = tmp_path / "sub" / "cuts.jsonl.gz"
    sub = subset_cuts.main(["--set", f"cuts={tmp_path / 'all.jsonl.gz'}", "--set", f"output={out}",
                            "--set", "num_cuts=4", "--set", "seed=2"])
    assert list(CutSet.from_file(out).ids) == list(sub.ids) and len(sub) == 4
    assert "seed: 2" in (out.parent / "subset_cuts.yaml").read_text()  # the resolved config


def labeled(n_per=4, labels=("one", "two", "three")):
    return CutSet.from_cuts(dummy_cut(i * 10 + j, duration=1.0, supervisions=[dummy_supervision(i * 10 + j, text=t)])
                            for i, t in enumerate(labels) for j in range(n_per))


def test_per_label_budget_takes_the_same_count_of_every_transcript():
    subs = [budget_subset(labeled(), per_label=2, seed=s) for s in (0, 0, 1)]
    texts = [c.supervisions[0].text for c in subs[0]]
    assert sorted(texts) == ["one", "one", "three", "three", "two", "two"]
    assert list(subs[0].ids) == list(subs[1].ids) != list(subs[2].ids)
    with pytest.raises(ValueError, match="these labels have fewer"):
        budget_subset(labeled(), per_label=5)
