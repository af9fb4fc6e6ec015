"""FSDD cuts for the target-pipeline tests, built from the shared recordings (never copied)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pytest
import torch
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Per-utterance MFCC is hundreds of tiny ops: a second intra-op thread only spins, and on
    a shared 2-core machine that made these tests 20x slower. Restored after each module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture(scope="session")
def make_fsdd_cuts(fsdd_dir: Path) -> Callable[[Sequence[int], Path], Path]:
    """``make(indices, out_dir)`` -> ``out_dir/cuts.jsonl.gz``: every digit and speaker at those
    recording indices, supervision text = the digit word, 8 kHz as recorded."""

    def make(indices: Sequence[int], out_dir: Path) -> Path:
        cuts = []
        for path in sorted(fsdd_dir.glob("*.wav")):
            digit, speaker, index = path.stem.split("_")
            if int(index) not in indices:
                continue
            rec = Recording.from_file(path)
            sup = SupervisionSegment(id=path.stem, recording_id=rec.id, start=0.0, duration=rec.duration,
                                     text=DIGITS[int(digit)], speaker=speaker)
            cuts.append(MonoCut(id=path.stem, start=0.0, duration=rec.duration, channel=0, recording=rec,
                                supervisions=[sup]))
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = out_dir / "cuts.jsonl.gz"
        CutSet.from_cuts(cuts).to_file(manifest)
        return manifest

    return make
