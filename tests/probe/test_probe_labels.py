"""Labels from supervision fields (the ER slot is any custom field), subsets, bad labels named."""
from __future__ import annotations

import pytest

from speechssl2.probe.labels import label_of, load_labelled_set


def test_fsdd_labels_for_each_task(fsdd_manifests):
    data = load_labelled_set(fsdd_manifests["train"], "text")
    cut = next(c for c in data.cuts if c.id == "7_theo_12")
    assert (label_of(cut, "text"), label_of(cut, "speaker"), label_of(cut, "custom.digit")) == ("seven", "theo", "7")
    assert len(data.cuts) == len(data.labels) == 2700
    assert set(data.labels) == {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def test_subset_is_seeded_and_of_the_requested_size(fsdd_manifests):
    a = load_labelled_set(fsdd_manifests["train"], "speaker", max_utts=50, seed=1)
    b = load_labelled_set(fsdd_manifests["train"], "speaker", max_utts=50, seed=1)
    c = load_labelled_set(fsdd_manifests["train"], "speaker", max_utts=50, seed=2)
    assert a.ids == b.ids and a.ids != c.ids and len(set(a.ids)) == 50
    assert a.labels == [i.split("_")[1] for i in a.ids]


def test_missing_or_unknown_label_fields_name_the_cut(fsdd_manifests):
    cut = load_labelled_set(fsdd_manifests["test"], "speaker", max_utts=1).cuts[0]
    with pytest.raises(ValueError, match=rf"cut {cut.id}: no label 'custom.emotion' \(.*\['digit'\]\)"):
        label_of(cut, "custom.emotion")
    with pytest.raises(ValueError, match=rf"cut {cut.id}: supervision has no 'gender'"):
        label_of(cut, "gender")
    with pytest.raises(ValueError, match="label field 'emotion' unknown"):
        label_of(cut, "emotion")
