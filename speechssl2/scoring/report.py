"""Scoring a decode directory: WER/CER totals, per-utterance alignments, top errors.

:func:`score_texts` compares two ``{utt_id: text}`` maps; :func:`write_report` writes
``wer.txt`` (human summary), ``result.json`` (machine summary, read by
``speechssl2.bin.results``), ``alignments.txt`` and ``top_errors.txt``.

Normalization is explicit: with ``normalize=True`` both sides go through
``speechssl2.text.normalize_text``, the one normalization used for training text too.
A reference utterance the hypothesis lacks is scored as an empty hypothesis (all
deletions) and listed under ``missing``; a hypothesis id without a reference is an error.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from speechssl2.config import atomic_write_text
from speechssl2.scoring.wer import EditStats, char_stats, format_alignment, word_stats
from speechssl2.text import normalize_text


@dataclass
class ExperimentMeta:
    """The RESULTS.md columns that describe what was scored."""

    upstream: str = "-"  # pre-trained model the system starts from
    finetune_set: str = "-"  # labeled data it was fine-tuned on
    units: str = "-"  # output units of the fine-tuned model: char, bpe, ...
    decoder: str = "-"  # search: greedy, beam, ...
    lm: str = "-"  # language model used in decoding, or none
    test_set: str = "-"  # data set that was scored
    seed: Optional[int] = None  # fine-tuning seed, for tables of the spread over seeds


@dataclass
class UttScore:
    utt_id: str
    ref: str
    hyp: str
    words: EditStats
    chars: EditStats


@dataclass
class ScoreReport:
    utts: List[UttScore]
    words: EditStats
    chars: EditStats
    missing: List[str] = field(default_factory=list)

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate

    def summary(self) -> Dict[str, Any]:
        """The numbers ``result.json`` stores (rates in percent)."""
        w, c = self.words, self.chars
        return {
            "num_utts": len(self.utts), "num_words": w.ref_len, "num_chars": c.ref_len,
            "wer": round(100 * self.wer, 4), "cer": round(100 * self.cer, 4),
            "substitutions": w.substitutions, "deletions": w.deletions, "insertions": w.insertions,
            "char_substitutions": c.substitutions, "char_deletions": c.deletions,
            "char_insertions": c.insertions, "sentence_errors": sum(u.words.errors > 0 for u in self.utts),
            "missing_hyps": len(self.missing),
        }


def score_texts(refs: Mapping[str, str], hyps: Mapping[str, str], normalize: bool = True) -> ScoreReport:
    """Score every reference utterance against its hypothesis (module doc for the rules)."""
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise ValueError(f"{len(extra)} hypothesis id(s) have no reference, e.g. {extra[:5]}")
    norm = normalize_text if normalize else (lambda s: " ".join(s.split()))
    utts, missing = [], []
    words, chars = EditStats(), EditStats()
    for utt, ref_text in refs.items():
        if utt not in hyps:
            missing.append(utt)
        ref, hyp = norm(ref_text), norm(hyps.get(utt, ""))
        score = UttScore(utt, ref, hyp, word_stats(ref, hyp), char_stats(ref, hyp))
        words, chars = words + score.words, chars + score.chars
        utts.append(score)
    return ScoreReport(utts, words, chars, missing)


def top_errors(report: ScoreReport, n: int = 20) -> Dict[str, List[Tuple[str, int]]]:
    """The ``n`` most frequent substitutions (``ref -> hyp``), deletions and insertions."""
    counts: Dict[str, Counter] = {"substitutions": Counter(), "deletions": Counter(), "insertions": Counter()}
    for u in report.utts:
        for p in u.words.alignment:
            if p.op == "S":
                counts["substitutions"][f"{p.ref} -> {p.hyp}"] += 1
            elif p.op == "D":
                counts["deletions"][p.ref] += 1
            elif p.op == "I":
                counts["insertions"][p.hyp] += 1
    return {kind: c.most_common(n) for kind, c in counts.items()}


def write_report(report: ScoreReport, out_dir: str | os.PathLike, meta: Mapping[str, Any], n_top: int = 20) -> Path:
    """Write the four files of a scored decode directory; return ``result.json``'s path."""
    out = Path(out_dir)
    s = report.summary()
    atomic_write_text(out / "wer.txt", (
        f"%WER {s['wer']:.2f} [ {report.words.errors} / {s['num_words']}, {s['insertions']} ins, "
        f"{s['deletions']} del, {s['substitutions']} sub ]\n"
        f"%CER {s['cer']:.2f} [ {report.chars.errors} / {s['num_chars']}, {s['char_insertions']} ins, "
        f"{s['char_deletions']} del, {s['char_substitutions']} sub ]\n"
        f"%SER {100 * s['sentence_errors'] / max(s['num_utts'], 1):.2f} "
        f"[ {s['sentence_errors']} / {s['num_utts']} ]\n"
        + (f"missing hypotheses (scored as empty): {len(report.missing)}\n" if report.missing else "")
    ))
    atomic_write_text(out / "alignments.txt", "".join(_alignment_block(u) for u in report.utts))
    errors = top_errors(report, n_top)
    atomic_write_text(out / "top_errors.txt", "".join(
        f"# {kind}\n" + "".join(f"{count}\t{item}\n" for item, count in items) + "\n"
        for kind, items in errors.items()
    ))
    result = {**dict(meta), **s, "missing": report.missing[:100]}
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    return out / "result.json"


def _alignment_block(u: UttScore) -> str:
    ref, hyp, ops = format_alignment(u.words.alignment)
    w = u.words
    return (
        f"{u.utt_id} #csid {w.hits} {w.substitutions} {w.deletions} {w.insertions}\n"
        f"{u.utt_id} ref  {ref}\n{u.utt_id} hyp  {hyp}\n{u.utt_id} op   {ops}\n\n"
    )
