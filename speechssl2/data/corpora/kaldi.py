"""A Kaldi data directory (``wav.scp``, optional ``segments``, ``text``, ``utt2spk``) as one set.

Entries map as in Lhotse's Kaldi import (``lhotse.kaldi.load_kaldi_data_dir``): a
``wav.scp`` path becomes an ``AudioSource`` of type ``file``, a command ending in ``|``
(``sox x.wav -t wav - |``, ``flac -c -d x.flac |``) one of type ``command`` that Lhotse
runs whenever the audio is loaded; a ``segments`` line is a supervision on its recording;
``text``, ``utt2spk``, ``spk2gender`` and ``utt2lang`` fill its fields. What this module
adds, and why it does not call that function:

- Every ``wav.scp`` entry is opened once, so each recording has its own sample rate,
  length and channels (Lhotse's import takes one ``sampling_rate`` for the whole
  directory and trusts ``reco2dur``, which is ignored here). Commands are run by the
  shell and decoded with Lhotse's own reader, without ``kaldi_native_io``; ``num_jobs``
  entries are opened at a time.
- Nothing fails silently: a missing, empty, unreadable or truncated file, and a command
  that exits non-zero, writes nothing or writes what cannot be decoded, is an excluded
  recording with the reason and the command's stderr (Lhotse's import raises from a
  worker pool for a missing file, drops an unreadable command with a log line, and its
  loader ignores a command's exit status).
- With ``segments``, every segment is its own cut (cut id = utterance id). A segment on a
  recording that ``wav.scp`` lacks or that could not be read, with ``end <= start``, a
  negative start, a start past the end of the recording, or an end more than
  ``max_overshoot`` seconds past it is excluded and reported; a smaller overshoot is
  clipped to the end of the recording and an end of ``-1`` means the end, as Kaldi's
  ``extract-segments`` does.
- With ``text``, an utterance without a line is excluded (``no_transcript``) and a line
  without an utterance is reported (``missing_audio``); without ``text`` the set is
  unlabeled. A line without a transcript is an empty one, which validation reports.
- A repeated id in any file (named with its line), or a ``segments`` line that is not
  ``<utt> <recording> <start> <end>`` (named with its utterance), is an error.

Files named inside a command are not part of the stage stamps (``speechssl2.stage``
follows ``file`` sources only): after replacing such audio, rerun with ``--force``.
"""
from __future__ import annotations

import io
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from lhotse import AudioSource, CutSet, Recording, SupervisionSegment
from lhotse.audio.backend import read_audio

from speechssl2.data.corpora.folder import read_kaldi_text
from speechssl2.data.manifest import Problem, read_recording, write_set
from speechssl2.registry import CORPORA

Segment = Tuple[str, float, float]  # recording id, start (s), end (s; -1 = end of the recording)


@dataclass
class KaldiDir:
    """The text files of one Kaldi data directory, parsed (``None``: the file is absent)."""

    root: Path
    wavs: Dict[str, str]  # recording id -> path or command ending in "|"
    segments: Dict[str, Segment] | None
    texts: Dict[str, str] | None
    speakers: Dict[str, str]
    genders: Dict[str, str]  # speaker -> gender
    languages: Dict[str, str]

    @classmethod
    def read(cls, root: Path) -> "KaldiDir":
        if not (root / "wav.scp").is_file():
            raise FileNotFoundError(
                f"kaldi corpus: {root / 'wav.scp'} not found (a Kaldi data directory holds wav.scp, "
                "and optionally segments, text, utt2spk, spk2gender, utt2lang)"
            )
        optional = {name: read_kaldi_text(root / name) if (root / name).is_file() else None
                    for name in ("text", "utt2spk", "spk2gender", "utt2lang")}
        return cls(
            root, read_kaldi_text(root / "wav.scp"),
            read_segments(root / "segments") if (root / "segments").is_file() else None,
            optional["text"], optional["utt2spk"] or {}, optional["spk2gender"] or {}, optional["utt2lang"] or {},
        )

    @property
    def utterances(self) -> Dict[str, Segment]:
        """``utt_id -> segment``; without ``segments`` each recording is one utterance."""
        return self.segments if self.segments is not None else {r: (r, 0.0, -1.0) for r in self.wavs}


@CORPORA.register("kaldi")
def prepare_kaldi(
    corpus_dir: str, output_dir: str, set_name: str = "all", language: str | None = None,
    max_overshoot: float = 0.5, num_jobs: int = 1,
) -> Dict[str, CutSet]:
    """Write ``<output_dir>/<set_name>`` from the Kaldi data directory ``corpus_dir``.

    ``num_jobs`` entries of ``wav.scp`` are opened (commands run) at a time."""
    kaldi = KaldiDir.read(Path(corpus_dir))
    problems: List[Problem] = []
    recordings = read_recordings(kaldi, num_jobs, problems)
    sups = []
    for utt in sorted(set(kaldi.utterances) | set(kaldi.texts or {})):
        if (sup := supervision(kaldi, utt, recordings, max_overshoot, language, problems)) is not None:
            sups.append(sup)
    set_dir = Path(output_dir) / set_name
    cuts = write_set(set_dir, recordings.values(), sups, problems)
    if kaldi.segments is not None:  # one cut per segment instead of one per recording
        cuts = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()
        cuts.to_file(set_dir / "cuts.jsonl.gz")
    return {set_name: cuts}


def read_recordings(kaldi: KaldiDir, num_jobs: int, problems: List[Problem]) -> Dict[str, Recording]:
    """Every usable ``wav.scp`` entry opened once; the others become problems, in file order."""
    entries = list(kaldi.wavs.items())
    found: List[List[Problem]] = [[] for _ in entries]  # one list per entry: threads never share one

    def read(i: int) -> Recording | None:
        return read_entry(entries[i][0], entries[i][1], kaldi.root, found[i])

    with ThreadPoolExecutor(max(1, num_jobs)) as pool:  # commands and file headers wait on I/O
        recs = list(pool.map(read, range(len(entries))))
    problems.extend(p for entry in found for p in entry)
    return {rec.id: rec for rec in recs if rec is not None}


def supervision(
    kaldi: KaldiDir, utt: str, recordings: Dict[str, Recording], max_overshoot: float, language: str | None,
    problems: List[Problem],
) -> SupervisionSegment | None:
    """The supervision of utterance ``utt``, or ``None`` with the problem that rules it out."""
    if utt not in kaldi.utterances:
        where = "segments" if kaldi.segments is not None else "wav.scp"
        problems.append(Problem(utt, "missing_audio", f"{kaldi.root / 'text'}: no line in {where} for this id"))
        return None
    rec_id, start, end = kaldi.utterances[utt]
    if rec_id not in recordings:
        if kaldi.segments is not None:  # without segments the recording's own problem is the utterance's
            detail = "not in wav.scp" if rec_id not in kaldi.wavs else "could not be read (see its own entry)"
            problems.append(Problem(utt, "missing_audio", f"{kaldi.root / 'segments'}: recording {rec_id} {detail}"))
        return None
    if kaldi.texts is not None and utt not in kaldi.texts:
        problems.append(Problem(utt, "no_transcript", f"{kaldi.root / 'text'} has no line for this id"))
        return None
    span = segment_span(utt, start, end, recordings[rec_id].duration, max_overshoot, problems)
    if span is None:
        return None
    speaker = kaldi.speakers.get(utt)
    return SupervisionSegment(
        id=utt, recording_id=rec_id, start=span[0], duration=span[1], channel=0,
        text=kaldi.texts[utt] if kaldi.texts is not None else None, speaker=speaker,
        gender=kaldi.genders.get(speaker) if speaker else None, language=kaldi.languages.get(utt, language),
    )


def read_entry(rec_id: str, entry: str, root: Path, problems: List[Problem]) -> Recording | None:
    """The recording of one ``wav.scp`` entry: a path (relative to the working directory,
    as Kaldi reads it) or a command ending in ``|``; ``None`` with a problem when unusable."""
    if not entry:
        problems.append(Problem(rec_id, "missing_audio", f"{root / 'wav.scp'}: no path or command for this id"))
        return None
    if not entry.endswith("|"):
        return read_recording(Path(entry), rec_id, problems)
    command = entry[:-1].strip()
    run = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True)
    stderr = " ".join(run.stderr.decode("utf-8", "replace").split())[-300:]
    if run.returncode != 0 or not run.stdout:
        why = f"exit status {run.returncode}" if run.returncode else "no output"
        problems.append(Problem(rec_id, "unreadable", f"command `{command}`: {why}: {stderr}"))
        return None
    try:
        samples, rate = read_audio(io.BytesIO(run.stdout))  # what Lhotse will load: (C, L) or (L,)
    except Exception as err:  # each audio backend raises its own types
        problems.append(Problem(rec_id, "unreadable", f"command `{command}`: output is not audio: {err}"))
        return None
    channels = 1 if samples.ndim == 1 else samples.shape[0]
    num_samples = samples.shape[-1]
    if num_samples == 0:
        problems.append(Problem(rec_id, "empty", f"command `{command}`: 0 samples"))
        return None
    return Recording(
        id=rec_id, sources=[AudioSource(type="command", channels=list(range(channels)), source=command)],
        sampling_rate=int(rate), num_samples=num_samples, duration=num_samples / rate,
    )


def read_segments(path: Path) -> Dict[str, Segment]:
    """``utt_id -> (recording id, start, end)`` from ``<utt> <recording> <start> <end>`` lines."""
    segments: Dict[str, Segment] = {}
    for utt, rest in read_kaldi_text(path).items():
        fields = rest.split()
        try:
            if len(fields) != 3:
                raise ValueError
            segments[utt] = (fields[0], float(fields[1]), float(fields[2]))
        except ValueError:
            raise ValueError(f"{path}: line of {utt!r} is not '<utt> <recording> <start> <end>': {rest!r}") from None
    return segments


def segment_span(
    utt: str, start: float, end: float, rec_duration: float, max_overshoot: float, problems: List[Problem],
) -> Tuple[float, float] | None:
    """``(start, duration)`` of a segment inside its recording, or ``None`` with a problem."""
    if end == -1:
        end = rec_duration
    if start < 0 or end <= start:
        problems.append(Problem(utt, "bad_segment", f"start {start} s, end {end} s"))
        return None
    if start >= rec_duration or end > rec_duration + max_overshoot:
        problems.append(Problem(
            utt, "segment_outside",
            f"{start}-{end} s on a recording of {rec_duration} s (more than max_overshoot={max_overshoot} s past it)",
        ))
        return None
    return start, min(end, rec_duration) - start

