"""Writing a prepared set to disk, and keeping account of what preparation left out.

Corpus functions never drop an entry silently: whatever they cannot turn into a cut
(a transcript line without audio, a non-speech prompt, an unreadable file) goes into
``<set>/excluded.tsv`` as ``id<TAB>reason<TAB>detail``, which the validation report
includes.
"""
from __future__ import annotations

import logging
import os
import struct
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List

from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from speechssl2.config import atomic_write_text

log = logging.getLogger(__name__)
EXCLUDED_FILE = "excluded.tsv"


@dataclass(frozen=True)
class Problem:
    """One entry that is not (or not fully) usable: which one, the reason key, specifics."""

    id: str
    reason: str
    detail: str = ""


def read_recording(path: Path, recording_id: str, problems: List[Problem]) -> Recording | None:
    """``Recording.from_file`` that records a bad file in ``problems`` instead of raising."""
    if not path.is_file():
        problems.append(Problem(recording_id, "missing_audio", f"{path}: no such file"))
        return None
    if path.stat().st_size == 0:
        problems.append(Problem(recording_id, "empty", f"{path}: 0-byte file"))
        return None
    try:
        rec = Recording.from_file(path, recording_id=recording_id)
    except Exception as err:  # soundfile, audioread and ffmpeg each raise their own types
        problems.append(Problem(recording_id, "unreadable", f"{path}: {_one_line(err)[:300]}"))
        return None
    if path.suffix.lower() == ".wav" and (missing := wav_missing_bytes(path)) > 0:
        # libsndfile reads such a file as a shorter one: the cut would be silently short.
        problems.append(Problem(recording_id, "truncated", f"{path}: {missing} bytes of audio data missing"))
        return None
    return rec


def wav_missing_bytes(path: Path) -> int:
    """Bytes the RIFF ``data`` chunk declares beyond the end of the file (0 when complete).

    A copy or download cut off inside the audio data keeps a valid header, so decoders
    read it without complaint; only the declared chunk size tells.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(12)[:4] != b"RIFF":
            return 0  # RF64 and other containers: trust the decoder
        while len(head := f.read(8)) == 8:
            chunk, length = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk == b"data":
                return max(0, f.tell() + length - size) if length != 0xFFFFFFFF else 0
            f.seek(length + (length & 1), 1)
    return 0


def whole_recording_supervision(rec: Recording, **fields: object) -> SupervisionSegment:
    """One supervision spanning the whole (first channel of the) recording, id = recording id."""
    return SupervisionSegment(
        id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, channel=0, **fields
    )


def write_set(
    set_dir: Path, recordings: Iterable[Recording], supervisions: Iterable[SupervisionSegment],
    problems: Iterable[Problem] = (),
) -> CutSet:
    """Write recordings, supervisions, cuts and ``excluded.tsv``; return the cuts.

    One cut per recording, with the recording's id, on channel 0: a multi-channel
    file yields its first channel (validation reports it as ``multi_channel``).
    """
    set_dir.mkdir(parents=True, exist_ok=True)
    recs = RecordingSet.from_recordings(sorted(recordings, key=lambda r: r.id))
    sups = SupervisionSet.from_segments(sorted(supervisions, key=lambda s: s.id))
    by_recording: Dict[str, List[SupervisionSegment]] = defaultdict(list)
    for sup in sups:
        by_recording[sup.recording_id].append(sup)
    cuts = CutSet.from_cuts(
        MonoCut(id=r.id, start=0.0, duration=r.duration, channel=0, recording=r,
                supervisions=by_recording[r.id])
        for r in recs
    )
    recs.to_file(set_dir / "recordings.jsonl.gz")
    sups.to_file(set_dir / "supervisions.jsonl.gz")
    cuts.to_file(set_dir / "cuts.jsonl.gz")
    write_excluded(set_dir, problems)
    return cuts


def write_excluded(set_dir: Path, problems: Iterable[Problem]) -> None:
    problems = list(problems)
    if problems:
        counts = Counter(p.reason for p in problems)
        log.warning("%s: %d entries excluded (%s), listed in %s", set_dir, len(problems),
                    ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())), EXCLUDED_FILE)
    lines = [f"{p.id}\t{p.reason}\t{_one_line(p.detail)}\n" for p in problems]
    atomic_write_text(set_dir / EXCLUDED_FILE, "".join(lines))


def read_excluded(set_dir: Path) -> List[Problem]:
    """The problems a corpus function recorded for ``set_dir`` (empty when none were)."""
    path = set_dir / EXCLUDED_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, reason, detail = (line.split("\t") + ["", ""])[:3]
        out.append(Problem(utt, reason, detail))
    return out


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())


def write_manifest_atomic(cuts: CutSet, path: Path) -> None:
    """``cuts.to_file`` under a temporary name with the same suffixes, then rename: a reader never
    sees half a manifest, and a killed stage leaves the old one or none.

    The temporary name is this writer's own (random): the last two shard jobs to finish may
    both find every shard labelled and merge at the same time; each renames a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial.{uuid.uuid4().hex}.{path.name}")
    try:
        cuts.to_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
