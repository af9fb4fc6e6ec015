"""FSDD manifests from the real corpus: counts, split, speakers, durations, digit labels."""
from __future__ import annotations

import re

import pytest
from lhotse import CutSet, RecordingSet, SupervisionSet

from speechssl2.data.corpora.fsdd import DIGIT_WORDS, prepare_fsdd
from speechssl2.registry import CORPORA


@pytest.fixture(scope="module")
def fsdd_sets(fsdd_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdd")
    return out, prepare_fsdd(str(fsdd_dir), str(out))


def test_counts_and_official_split(fsdd_sets, fsdd_dir):
    _, sets = fsdd_sets
    assert sorted(sets) == ["test", "train"]
    assert len(sets["train"]) == 2700 and len(sets["test"]) == 300
    assert len(sets["train"]) + len(sets["test"]) == len(list(fsdd_dir.glob("*.wav")))
    for name, cuts in sets.items():
        indices = {int(c.id.split("_")[2]) for c in cuts}
        assert indices == (set(range(5)) if name == "test" else set(range(5, 50)))


def test_speakers_durations_and_digit_labels(fsdd_sets):
    _, sets = fsdd_sets
    speakers = {name: {c.supervisions[0].speaker for c in cuts} for name, cuts in sets.items()}
    assert len(speakers["train"]) == 6 and speakers["train"] == speakers["test"]
    minutes = sum(c.duration for cuts in sets.values() for c in cuts) / 60
    assert minutes == pytest.approx(21.9, abs=0.05)
    for cut in sets["test"]:
        sup = cut.supervisions[0]
        digit = re.match(r"(\d)_", cut.id).group(1)
        assert sup.custom == {"digit": digit}
        assert sup.text == DIGIT_WORDS[int(digit)]
        assert sup.duration == cut.duration == cut.recording.duration
        assert cut.sampling_rate == 8000


def test_manifests_on_disk_match_returned_cuts(fsdd_sets):
    out, sets = fsdd_sets
    set_dir = out / "test"
    assert sorted(CutSet.from_file(set_dir / "cuts.jsonl.gz").ids) == sorted(sets["test"].ids)
    assert len(RecordingSet.from_file(set_dir / "recordings.jsonl.gz")) == 300
    assert len(SupervisionSet.from_file(set_dir / "supervisions.jsonl.gz")) == 300
    assert (set_dir / "excluded.tsv").read_text() == ""


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        prepare_fsdd(str(tmp_path), str(tmp_path / "out"))


def test_every_corpus_is_registered():
    for key in ("fsdd", "asterisk", "librispeech", "librilight_limited", "folder"):
        assert CORPORA.get(key).__name__ == f"prepare_{key}"
