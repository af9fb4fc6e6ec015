"""Any folder of audio files, optionally with a Kaldi-style transcript file.

The utterance id is the file name without extension (so ids must be unique across
sub-folders). With ``transcripts`` (lines ``utt_id text``; a line with only the id
means an empty transcript, which validation reports) every cut is labeled, and audio
without a line or a line without audio is excluded and reported. Without it the set
is unlabeled (``text`` None), e.g. for pre-training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from lhotse import CutSet

from speechssl2.data.manifest import Problem, read_recording, whole_recording_supervision, write_set
from speechssl2.registry import CORPORA

AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "sph")


@CORPORA.register("folder")
def prepare_folder(
    corpus_dir: str, output_dir: str, transcripts: str | None = None, set_name: str = "all",
    language: str | None = None, extensions: List[str] = list(AUDIO_EXTENSIONS),
) -> Dict[str, CutSet]:
    """Write ``<output_dir>/<set_name>`` from the audio files under ``corpus_dir``."""
    audio = find_audio(Path(corpus_dir), extensions)
    labels = read_kaldi_text(Path(transcripts)) if transcripts is not None else None
    recs, sups, problems = [], [], []
    for utt in sorted(set(audio) | set(labels or {})):
        if utt not in audio:
            problems.append(Problem(utt, "missing_audio", f"{transcripts}: no audio file for this id"))
        elif labels is not None and utt not in labels:
            problems.append(Problem(utt, "no_transcript", f"{audio[utt]} has no line in {transcripts}"))
        elif (rec := read_recording(audio[utt], utt, problems)) is not None:
            recs.append(rec)
            text = labels[utt] if labels is not None else None
            sups.append(whole_recording_supervision(rec, text=text, language=language))
    return {set_name: write_set(Path(output_dir) / set_name, recs, sups, problems)}


def find_audio(root: Path, extensions: List[str]) -> Dict[str, Path]:
    """``utt_id -> path`` for audio files under ``root``; duplicate ids are an error."""
    if not root.is_dir():
        raise FileNotFoundError(f"folder corpus: {root} is not a directory")
    found: Dict[str, Path] = {}
    suffixes = {f".{e.lower().lstrip('.')}" for e in extensions}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(f"folder corpus: id {path.stem!r} used by both {found[path.stem]} and {path}")
        found[path.stem] = path
    if not found:
        raise FileNotFoundError(f"folder corpus: no audio files ({', '.join(sorted(suffixes))}) under {root}")
    return found


def read_kaldi_text(path: Path) -> Dict[str, str]:
    """``utt_id -> text`` from lines ``utt_id text``; a repeated id is an error."""
    labels: Dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if parts[0] in labels:
            raise ValueError(f"{path}:{number}: utterance id {parts[0]!r} appears twice")
        labels[parts[0]] = parts[1] if len(parts) > 1 else ""
    return labels
