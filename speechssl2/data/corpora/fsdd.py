"""Free Spoken Digit Dataset: ``{digit}_{speaker}_{index}.wav``, 8 kHz, English digits.

Official split: index 0-4 of every speaker/digit is ``test``, 5-49 is ``train``.
Each cut carries the digit word as text (``"seven"``), the speaker, and
``custom={"digit": "7"}`` for classification tasks.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

from lhotse import CutSet, Recording, SupervisionSegment

from speechssl2.data.manifest import Problem, read_recording, whole_recording_supervision, write_set
from speechssl2.registry import CORPORA

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_INDICES = range(0, 5)
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


@CORPORA.register("fsdd")
def prepare_fsdd(corpus_dir: str, output_dir: str) -> Dict[str, CutSet]:
    """Manifests for the ``train`` and ``test`` sets of FSDD found in ``corpus_dir``.

    ``corpus_dir`` is the ``recordings`` folder (or its parent). A ``.wav`` whose name
    does not follow the pattern is excluded and reported, never guessed at.
    """
    root = Path(corpus_dir)
    if (root / "recordings").is_dir():
        root = root / "recordings"
    paths = sorted(root.glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"FSDD: no .wav files in {root} (expected {{digit}}_{{speaker}}_{{index}}.wav)")
    sets: Dict[str, tuple[List[Recording], List[SupervisionSegment], List[Problem]]] = {
        name: ([], [], []) for name in ("train", "test")
    }
    for path in paths:
        match = _NAME.match(path.stem)
        if match is None:
            sets["train"][2].append(Problem(path.stem, "bad_name", f"{path}: not digit_speaker_index.wav"))
            continue
        digit, speaker, index = match.group(1), match.group(2), int(match.group(3))
        recs, sups, problems = sets["test" if index in TEST_INDICES else "train"]
        rec = read_recording(path, path.stem, problems)
        if rec is None:
            continue
        recs.append(rec)
        sups.append(whole_recording_supervision(
            rec, text=DIGIT_WORDS[int(digit)], speaker=speaker, language="English",
            custom={"digit": digit},
        ))
    out = Path(output_dir)
    return {name: write_set(out / name, *parts) for name, parts in sets.items()}
