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
  shell and decoded with Lhotse's own reader, without ``kaldi_native_io``.
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
- A repeated id in any file, or a ``segments`` line that is not
  ``<utt> <recording> <start> <end>``, is an error naming the file and line.

Files named inside a command are not part of the stage stamps (``speechssl2.stage``
follows ``file`` sources only): after replacing such audio, rerun with ``--force``.
"""
from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from lhotse import AudioSource, CutSet, Recording, SupervisionSegment
from lhotse.audio.backend import read_audio

from speechssl2.data.corpora.folder import read_kaldi_text
from speechssl2.data.manifest import Problem, read_recording, write_set
from speechssl2.registry import CORPORA

Segment = Tuple[str, float, float]  # recording id, start (s), end (s; -1 = end of the recording)


@CORPORA.register("kaldi")
def prepare_kaldi(
    corpus_dir: str, output_dir: str, set_name: str = "all", language: str | None = None,
    max_overshoot: float = 0.5,
) -> Dict[str, CutSet]:
    """Write ``<output_dir>/<set_name>`` from the Kaldi data directory ``corpus_dir``."""
    root = Path(corpus_dir)
    if not (root / "wav.scp").is_file():
        raise FileNotFoundError(
            f"kaldi corpus: {root / 'wav.scp'} not found (a Kaldi data directory holds wav.scp, "
            "and optionally segments, text, utt2spk, spk2gender, utt2lang)"
        )
    problems: List[Problem] = []
    wavs = read_kaldi_text(root / "wav.scp")
    recordings = {}
    for rec_id, entry in wavs.items():
        if (rec := read_entry(rec_id, entry, root, problems)) is not None:
            recordings[rec_id] = rec
    has_segments = (root / "segments").is_file()
    segments = read_segments(root / "segments") if has_segments else {r: (r, 0.0, -1.0) for r in wavs}
    texts = _optional(root / "text")
    speakers, genders, languages = (_optional(root / name) or {} for name in ("utt2spk", "spk2gender", "utt2lang"))
    sups = []
    for utt in sorted(set(segments) | set(texts or {})):
        if utt not in segments:
            where = "segments" if has_segments else "wav.scp"
            problems.append(Problem(utt, "missing_audio", f"{root / 'text'}: no line in {where} for this id"))
            continue
        rec_id, start, end = segments[utt]
        if rec_id not in recordings:
            if has_segments:  # without segments the recording's own problem is the utterance's
                detail = "not in wav.scp" if rec_id not in wavs else "could not be read (see its own entry)"
                problems.append(Problem(utt, "missing_audio", f"{root / 'segments'}: recording {rec_id} {detail}"))
            continue
        if texts is not None and utt not in texts:
            problems.append(Problem(utt, "no_transcript", f"{root / 'text'} has no line for this id"))
            continue
        span = segment_span(utt, start, end, recordings[rec_id].duration, max_overshoot, problems)
        if span is None:
            continue
        speaker = speakers.get(utt)
        sups.append(SupervisionSegment(
            id=utt, recording_id=rec_id, start=span[0], duration=span[1], channel=0,
            text=texts[utt] if texts is not None else None, speaker=speaker,
            gender=genders.get(speaker) if speaker else None, language=languages.get(utt, language),
        ))
    set_dir = Path(output_dir) / set_name
    cuts = write_set(set_dir, recordings.values(), sups, problems)
    if has_segments:  # one cut per segment instead of one per recording
        cuts = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()
        cuts.to_file(set_dir / "cuts.jsonl.gz")
    return {set_name: cuts}


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


def _optional(path: Path) -> Dict[str, str] | None:
    return read_kaldi_text(path) if path.is_file() else None
