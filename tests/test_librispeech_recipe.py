"""egs/librispeech/ssl1: the data stage on a miniature LibriSpeech + Libri-Light limited made of
real FSDD audio in the corpora's exact layout and naming, and every conf/*.yaml validated."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import soundfile as sf
import yaml
from lhotse import CutSet

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "librispeech" / "ssl1"
DIGITS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
SPEAKERS = {"george": "103", "jackson": "1034", "lucas": "1040", "nicolas": "1069", "theo": "1081", "yweweler": "1088"}

# part -> [(fsdd speaker, chapter, number of utterances)]
LIBRISPEECH = {
    "train-clean-100": [("george", "1240", 3), ("jackson", "121669", 2)],
    "train-clean-360": [("lucas", "4001", 2)],
    "train-other-500": [("nicolas", "22001", 2)],
    "dev-clean": [("theo", "2902", 2)],
    "dev-other": [("yweweler", "3001", 2)],
    "test-clean": [("george", "5001", 1), ("theo", "5002", 2)],
    "test-other": [("jackson", "6001", 2)],
}
# Libri-Light limited: 1h/{0..5}/{clean,other} and 9h/{clean,other}, LibriSpeech naming inside
LIMITED = {f"1h/{k}/{kind}": [(spk, str(7000 + 10 * k + i), 1)]
           for k in range(6) for i, (kind, spk) in enumerate((("clean", "lucas"), ("other", "nicolas")))}
LIMITED.update({"9h/clean": [("theo", "8001", 2)], "9h/other": [("yweweler", "8002", 2)]})


def write_chapters(split_dir: Path, chapters, fsdd_dir: Path, expected: Dict[str, Tuple[str, str, float]]) -> None:
    """Write ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` (16 kHz) and ``<spk>-<chapter>.trans.txt``."""
    for name, chapter, count in chapters:
        spk = SPEAKERS[name]
        folder = split_dir / spk / chapter
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for utt in range(count):
            digit = (int(chapter) + utt) % 10
            audio, rate = sf.read(fsdd_dir / f"{digit}_{name}_{utt + 5}.wav", dtype="float32")
            audio = np.repeat(audio, 16000 // rate)  # 8 kHz -> 16 kHz, sample-and-hold
            utt_id = f"{spk}-{chapter}-{utt:04d}"
            sf.write(folder / f"{utt_id}.flac", audio, 16000, format="FLAC", subtype="PCM_16")
            lines.append(f"{utt_id} {DIGITS[digit]}\n")
            expected[utt_id] = (spk, DIGITS[digit], len(audio) / 16000)
        (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fsdd_dir) -> Tuple[Path, Dict[str, Dict[str, Tuple[str, str, float]]]]:
    """A corpus_dir with LibriSpeech/ and librispeech_finetuning/; expected utterances per source folder."""
    root = tmp_path_factory.mktemp("corpora")
    expected: Dict[str, Dict[str, Tuple[str, str, float]]] = {}
    for part, chapters in LIBRISPEECH.items():
        write_chapters(root / "LibriSpeech" / part, chapters, fsdd_dir, expected.setdefault(part, {}))
    for rel, chapters in LIMITED.items():
        write_chapters(root / "librispeech_finetuning" / rel, chapters, fsdd_dir, expected.setdefault(rel, {}))
    # a transcript line whose audio is missing: excluded (missing_audio), never silently dropped
    trans = root / "LibriSpeech" / "dev-clean" / "1081" / "2902" / "1081-2902.trans.txt"
    trans.write_text(trans.read_text() + "1081-2902-0099 NINE\n")
    return root, expected


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> Path:
    root, _ = corpus
    work = tmp_path_factory.mktemp("work")
    res = subprocess.run(["bash", str(RECIPE / "run.sh"), "--stage", "0", "--stop_stage", "0",
                          "--corpus_dir", str(root), "--work_dir", str(work)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return work / "data"


SETS = {
    "train_960": ["train-clean-100", "train-clean-360", "train-other-500"],
    "train_100": ["train-clean-100"],
    "dev_clean": ["dev-clean"], "dev_other": ["dev-other"],
    "test_clean": ["test-clean"], "test_other": ["test-other"],
    "train_10m": ["1h/0/clean", "1h/0/other"],
    "train_1h": [f"1h/{k}/{kind}" for k in range(6) for kind in ("clean", "other")],
    "train_10h": [f"1h/{k}/{kind}" for k in range(6) for kind in ("clean", "other")] + ["9h/clean", "9h/other"],
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_data_stage_manifests(prepared, corpus, name):
    _, expected = corpus
    want = {utt: v for src in SETS[name] for utt, v in expected[src].items()}
    cuts = CutSet.from_file(prepared / name / "cuts.jsonl.gz")
    got = {c.id: c for c in cuts}
    assert sorted(got) == sorted(want)
    for utt, (spk, text, duration) in want.items():
        cut = got[utt]
        assert cut.duration == pytest.approx(duration, abs=1e-3)
        assert cut.sampling_rate == 16000
        (sup,) = cut.supervisions
        assert (sup.speaker, sup.text) == (spk, text)
    assert f"{len(want)} kept" in (prepared / name / "report.txt").read_text()


def test_data_stage_reports_missing_audio(prepared):
    excluded = (prepared / "dev_clean" / "excluded.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in excluded] == [["1081-2902-0099", "missing_audio"]]
    assert (prepared / "train_960" / "excluded.tsv").read_text() == ""


def test_limited_sets_nest(prepared):
    ids = {n: {c.id for c in CutSet.from_file(prepared / n / "cuts.jsonl.gz")} for n in ("train_10m", "train_1h", "train_10h")}
    assert ids["train_10m"] < ids["train_1h"] < ids["train_10h"]
