"""Debian's Asterisk voice prompts: English labeled prompts plus an unlabeled pool.

``en`` prompts (``<root>/en/<relpath>.wav``) are labeled from the package's
``core-sounds-en.txt.gz`` (lines ``relpath: Text.``) and split deterministically by
hashing the prompt id into ``en_train`` / ``en_dev`` / ``en_test`` (~80/10/10).
The es, fr, it and ru prompts form the unlabeled ``pool`` (``language`` set, ``text``
None) for pre-training.

Transcript clean-up specific to these prompts, before ``normalize_text``:
bracketed or parenthesised remarks are descriptions, not speech, and are removed
(``"at [@]"`` -> ``"at"``); a prompt with nothing left (``"[ascending tones]"``,
``"(1 second of silence)"``) is non-speech: it is excluded from the labeled sets and
from the pool (the same file names exist in every language) and reported as
``non_speech``. IVR keys are spoken as words, so standalone ``*``, ``#`` and single
digits become ``star``, ``pound`` and the digit's name; longer numbers stay digits
(their reading is ambiguous) and fail a letters-only character check.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path
from typing import Dict, List, Tuple

from lhotse import CutSet, Recording, SupervisionSegment

from speechssl2.data.corpora.fsdd import DIGIT_WORDS
from speechssl2.data.manifest import Problem, read_recording, whole_recording_supervision, write_set
from speechssl2.registry import CORPORA
from speechssl2.text import normalize_text

DEFAULT_ROOT = "/usr/share/asterisk/sounds"
DEFAULT_TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
POOL_LANGUAGES = ("es", "fr", "it", "ru")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "it": "Italian", "ru": "Russian"}
DEBIAN_PACKAGES = "asterisk-core-sounds-en asterisk-core-sounds-en-wav " + " ".join(
    f"asterisk-core-sounds-{lang}-wav" for lang in POOL_LANGUAGES
)
_REMARK = re.compile(r"\[[^\]]*\]|\([^)]*\)")
_KEY_WORDS = {"*": "star", "#": "pound", **{str(d): w for d, w in enumerate(DIGIT_WORDS)}}

Parts = Tuple[List[Recording], List[SupervisionSegment], List[Problem]]


@CORPORA.register("asterisk")
def prepare_asterisk(
    corpus_dir: str = DEFAULT_ROOT, output_dir: str = "data", transcripts: str = DEFAULT_TRANSCRIPTS,
    pool_languages: List[str] = list(POOL_LANGUAGES),
) -> Dict[str, CutSet]:
    """Write ``en_train``, ``en_dev``, ``en_test`` and ``pool`` under ``output_dir``."""
    root = Path(corpus_dir)
    _require(root / "en", "English prompts")
    _require(Path(transcripts), "English prompt transcripts")
    labels = read_transcripts(Path(transcripts))
    nonspeech = {rel for rel, text in labels.items() if not spoken_text(text)}
    sets: Dict[str, Parts] = {name: ([], [], []) for name in ("en_train", "en_dev", "en_test", "pool")}
    _add_english(root / "en", labels, sets)
    for lang in pool_languages:
        _require(root / lang, f"{lang} prompts")
        _add_pool(root / lang, lang, nonspeech, sets["pool"])
    out = Path(output_dir)
    return {name: write_set(out / name, *parts) for name, parts in sets.items()}


def read_transcripts(path: Path) -> Dict[str, str]:
    """``relpath -> raw text`` from ``core-sounds-<lang>.txt(.gz)`` (``;`` starts a comment)."""
    opener = gzip.open if path.suffix == ".gz" else open
    labels: Dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith(";"):
                continue
            if ":" not in line:
                raise ValueError(f"{path}: line {line.strip()!r} is not 'relpath: text'")
            rel, text = line.split(":", 1)
            labels[rel.strip()] = text.strip()
    return labels


def spoken_text(raw: str) -> str:
    """The normalized words a prompt speaks: remarks removed, IVR keys spelled out."""
    words = _REMARK.sub(" ", raw).split()
    return normalize_text(" ".join(_KEY_WORDS.get(w.rstrip(".,"), w) for w in words))


def split_of(relpath: str) -> str:
    """Deterministic ~80/10/10 split from the prompt id, stable across machines and runs."""
    bucket = int(hashlib.md5(relpath.encode("utf-8")).hexdigest(), 16) % 10
    return "en_test" if bucket == 0 else "en_dev" if bucket == 1 else "en_train"


def _add_english(lang_dir: Path, labels: Dict[str, str], sets: Dict[str, Parts]) -> None:
    speaker = _speaker(lang_dir)
    audio = {_relpath(p, lang_dir): p for p in sorted(lang_dir.rglob("*.wav"))}
    for rel in sorted(set(audio) | set(labels)):
        recs, sups, problems = sets[split_of(rel)]
        utt = _utt_id("en", rel)
        if rel not in audio:
            problems.append(Problem(utt, "missing_audio", f"transcript line {rel!r} has no {lang_dir}/{rel}.wav"))
        elif rel not in labels:
            problems.append(Problem(utt, "no_transcript", f"{audio[rel]} has no line in the transcripts"))
        elif not spoken_text(labels[rel]):
            problems.append(Problem(utt, "non_speech", f"{labels[rel]!r}"))
        elif (rec := read_recording(audio[rel], utt, problems)) is not None:
            recs.append(rec)
            sups.append(whole_recording_supervision(
                rec, text=spoken_text(labels[rel]), speaker=speaker, language="English",
                custom={"prompt": rel, "raw_text": labels[rel]},
            ))


def _add_pool(lang_dir: Path, lang: str, nonspeech: set[str], parts: Parts) -> None:
    recs, sups, problems = parts
    speaker = _speaker(lang_dir)
    for path in sorted(lang_dir.rglob("*.wav")):
        rel = _relpath(path, lang_dir)
        utt = _utt_id(lang, rel)
        if rel in nonspeech:
            problems.append(Problem(utt, "non_speech", f"{path}: non-speech in English ({rel})"))
        elif (rec := read_recording(path, utt, problems)) is not None:
            recs.append(rec)
            sups.append(whole_recording_supervision(
                rec, speaker=speaker, language=LANGUAGE_NAMES.get(lang, lang), custom={"prompt": rel},
            ))


def _relpath(path: Path, lang_dir: Path) -> str:
    return path.relative_to(lang_dir).with_suffix("").as_posix()


def _utt_id(lang: str, relpath: str) -> str:
    return f"{lang}_{relpath.replace('/', '-')}"


def _speaker(lang_dir: Path) -> str:
    """Voice talent from Debian's voice folder name (``en_US_f_Allison`` -> ``Allison``)."""
    return Path(os.path.realpath(lang_dir)).name.split("_")[-1]


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"asterisk: {what} not found at {path}; install the Debian packages "
            f"{DEBIAN_PACKAGES} (apt-get install -y {DEBIAN_PACKAGES}) or pass corpus_dir/transcripts"
        )
