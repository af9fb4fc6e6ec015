"""Check every cut before training and say, by utterance id, what is wrong with it.

A model should never meet an utterance it cannot read or learn from, and a user should
never lose one without being told. ``validate_cuts`` loads every cut's audio once and
returns the clean cuts plus a :class:`ValidationReport` listing each problem.

Multi-channel audio is reported (``multi_channel``) and **kept**: manifests put every
cut on channel 0, so the model sees the first channel. Every other problem drops the
cut from the clean set (the unfiltered manifest stays on disk as ``cuts_raw.jsonl.gz``).
Transcripts are checked after ``normalize_text``; a supervision whose ``text`` is None
is unlabeled and only its audio is checked. A space is always allowed: it separates
words, whatever symbol a tokenizer uses for it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from lhotse import CutSet
from lhotse.cut import Cut

from speechssl2.config import atomic_write_text
from speechssl2.data.manifest import Problem
from speechssl2.logging_utils import progress
from speechssl2.text import normalize_text

REASONS: Dict[str, str] = {
    "unreadable": "audio file cannot be read or decoded",
    "truncated": "audio data ends before the length its header declares (preparation)",
    "empty": "audio has no samples",
    "too_short": "fewer samples than the model's receptive field",
    "non_finite": "audio contains NaN or Inf samples",
    "multi_channel": "more than one channel; channel 0 is used",
    "empty_transcript": "labeled, but the transcript is empty after normalization",
    "bad_chars": "transcript has characters outside the tokenizer's set",
    "non_speech": "prompt is a tone or silence, not speech (preparation)",
    "missing_audio": "transcript entry without an audio file (preparation)",
    "no_transcript": "audio file without a transcript entry (preparation)",
    "bad_name": "file name does not follow the corpus's naming (preparation)",
    "bad_segment": "Kaldi segment with a negative start or end <= start (preparation)",
    "segment_outside": "Kaldi segment starting after, or ending past, its recording (preparation)",
}
KEPT_REASONS = frozenset({"multi_channel"})


@dataclass
class ValidationReport:
    """Problems found in one set: from validation (``problems``) and from preparation (``excluded``)."""

    name: str
    checked: int = 0
    kept: int = 0
    settings: str = ""
    problems: List[Problem] = field(default_factory=list)
    excluded: List[Problem] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        """Number of entries per reason, validation and preparation together."""
        return dict(Counter(p.reason for p in self.problems + self.excluded))

    def reasons_of(self, utt_id: str) -> List[str]:
        return [p.reason for p in self.problems + self.excluded if p.id == utt_id]

    def format(self) -> str:
        """Human-readable text: header, a summary table per reason, then every problem by id."""
        lines = [
            f"Data report: {self.name}",
            f"validated {self.checked} cuts: {self.kept} kept, {self.checked - self.kept} dropped; "
            f"{len(self.excluded)} entries excluded during preparation",
        ]
        if self.settings:
            lines.append(self.settings)
        lines += ["", f"{'reason':<18}{'count':>7}  {'action':<9}meaning"]
        rows = Counter([(p.reason, _action(p.reason)) for p in self.problems])
        rows.update((p.reason, "excluded") for p in self.excluded)
        for (reason, action), count in sorted(rows.items()):
            lines.append(f"{reason:<18}{count:>7}  {action:<9}{REASONS.get(reason, '')}")
        if not self.problems and not self.excluded:
            lines.append("(no problems found)")
        lines += ["", "Problems by utterance id:"]
        for p in sorted(self.problems + self.excluded, key=lambda p: (p.id, p.reason)):
            lines.append(f"{p.id}\t{p.reason}\t{p.detail}")
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.format())
        return path


def validate_cuts(
    cuts: CutSet, *, min_samples: int = 400, sample_rate: int = 16000,
    allowed_chars: set[str] | None = None, name: str = "cuts",
) -> Tuple[CutSet, ValidationReport]:
    """Load and check every cut; return the clean cuts and the report.

    ``min_samples`` is the model's receptive field at ``sample_rate`` (400 samples,
    25 ms, for the wav2vec 2.0 conv encoder at 16 kHz): a shorter input gives no frame.
    """
    chars = "any" if allowed_chars is None else repr("".join(sorted(allowed_chars)))
    report = ValidationReport(
        name, settings=f"min_samples={min_samples} at {sample_rate} Hz; allowed characters: {chars}"
    )
    clean = []
    for cut in progress(cuts, desc=f"validating {name}"):
        found = audio_problems(cut, min_samples, sample_rate) + text_problems(cut, allowed_chars)
        report.checked += 1
        report.problems.extend(found)
        if all(p.reason in KEPT_REASONS for p in found):
            clean.append(cut)
    report.kept = len(clean)
    return CutSet.from_cuts(clean), report


def audio_problems(cut: Cut, min_samples: int, sample_rate: int) -> List[Problem]:
    """Unreadable, empty, non-finite, too short at ``sample_rate``, multi-channel."""
    found = []
    channels = cut.recording.num_channels if cut.has_recording else 1
    if channels > 1:
        found.append(Problem(cut.id, "multi_channel", f"{channels} channels at {cut.sampling_rate} Hz"))
    try:
        audio = cut.load_audio()  # (C, S); C = 1: cuts sit on channel 0
    except Exception as err:  # each audio backend raises its own exception types
        return found + [Problem(cut.id, "unreadable", f"{_source(cut)}: {' '.join(str(err).split())[:300]}")]
    if audio.size == 0:
        return found + [Problem(cut.id, "empty", f"{_source(cut)}: 0 samples")]
    bad = int(np.size(audio) - np.isfinite(audio).sum())
    if bad:
        found.append(Problem(cut.id, "non_finite", f"{bad} of {audio.size} samples are NaN/Inf"))
    resampled = round(audio.shape[-1] * sample_rate / cut.sampling_rate)
    if resampled < min_samples:
        found.append(Problem(
            cut.id, "too_short",
            f"{resampled} samples at {sample_rate} Hz ({cut.duration * 1000:.1f} ms) < {min_samples}",
        ))
    return found


def text_problems(cut: Cut, allowed_chars: set[str] | None) -> List[Problem]:
    """Empty transcripts and characters outside ``allowed_chars``, per labeled supervision."""
    found = []
    for sup in cut.supervisions:
        if sup.text is None:
            continue
        text = normalize_text(sup.text)
        if not text:
            found.append(Problem(cut.id, "empty_transcript", f"supervision {sup.id}: {sup.text!r}"))
        elif allowed_chars is not None:
            outside = sorted(set(text) - set(allowed_chars) - {" "})
            if outside:
                found.append(Problem(cut.id, "bad_chars", f"{''.join(outside)!r} in {_clip(text)!r}"))
    return found


def load_allowed_chars(path: str | Path) -> set[str]:
    """A tokenizer's character set from a file: every character of every line (newlines aside)."""
    text = Path(path).read_text(encoding="utf-8")
    chars = set(text.replace("\n", "").replace("\r", ""))
    if not chars:
        raise ValueError(f"{path}: character file is empty")
    return chars


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _action(reason: str) -> str:
    return "kept" if reason in KEPT_REASONS else "dropped"


def _source(cut: Cut) -> str:
    if not cut.has_recording:
        return "(no recording)"
    return ", ".join(str(s.source) for s in cut.recording.sources)


def require_encodable(cuts: CutSet, allowed_chars: set[str], name: str) -> None:
    """Raise before training, naming the utterances whose transcripts ``allowed_chars`` cannot spell.

    Without this a bad transcript in the validation set stops a run hours in, at its
    first validation."""
    bad = [p for cut in cuts for p in text_problems(cut, allowed_chars)]
    if bad:
        shown = "; ".join(f"{p.id}: {p.reason} {p.detail}" for p in bad[:5])
        raise ValueError(f"{name}: {len(bad)} transcript(s) the tokenizer cannot encode ({shown}"
                         f"{' ...' if len(bad) > 5 else ''}); validate the set against the tokenizer's "
                         "chars.txt (speechssl2.bin.validate_data with output=...) and train on its output")
