"""Kaldi-style ``text`` files: one ``utt_id word word ...`` per line.

Both sides of scoring use this format, so the reader is strict: a duplicated id or a
line without an id is an error naming the file and line, never a silent overwrite.
An id alone on a line is an utterance with an empty transcript.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Mapping

from speechssl2.config import atomic_write_text


def read_text(path: str | os.PathLike) -> Dict[str, str]:
    """``{utt_id: transcript}`` in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            utt, _, words = line.partition(" ")
            if utt in out:
                raise ValueError(f"{path}:{lineno}: utterance id {utt!r} appears twice")
            out[utt] = " ".join(words.split())
    return out


def write_text(path: str | os.PathLike, texts: Mapping[str, str]) -> None:
    """Write ``{utt_id: transcript}`` atomically; ids must not contain whitespace."""
    lines = []
    for utt, text in texts.items():
        if not utt or any(c.isspace() for c in utt):
            raise ValueError(f"{path}: utterance id {utt!r} is empty or contains whitespace")
        lines.append(f"{utt} {text}".rstrip() + "\n")
    atomic_write_text(Path(path), "".join(lines))


def read_transcripts(path: str | os.PathLike) -> Dict[str, str]:
    """``{id: transcript}`` from a Kaldi ``text`` file or a Lhotse cut manifest (``*.jsonl[.gz]``).

    Training stages (tokenizer, n-gram) accept either; a cut contributes the text of its
    supervisions joined in time order, and a cut with no text is skipped.
    """
    name = Path(path).name
    if not (name.endswith(".jsonl.gz") or name.endswith(".jsonl")):
        return read_text(path)
    from speechssl2.data.loader import open_cuts

    out: Dict[str, str] = {}
    for cut in open_cuts(path):
        sups = sorted(cut.supervisions, key=lambda s: s.start)
        text = " ".join(s.text for s in sups if s.text)
        if text:
            out[cut.id] = text
    return out
