"""Levenshtein alignment of a reference and a hypothesis, with S/D/I counts.

One pure function, :func:`edit_stats`, serves both WER (word sequences) and CER
(character sequences). Costs are 1 for a substitution, deletion or insertion and 0 for
a match. Among alignments of equal cost the backtrace prefers a match or substitution,
then a deletion, then an insertion, so that the counts are deterministic and a
one-to-one word swap reads as a substitution rather than a deletion plus an insertion.

Empty reference: the rate is ``errors / max(N, 1)``, i.e. an empty reference counts as
one word. An empty reference with an empty hypothesis scores 0; with ``k`` inserted
words it scores ``k`` (100 % per insertion), which stays finite and still penalises
every hallucinated word. Corpus-level rates use the summed counts, where this
convention matters only if every reference is empty.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional, Sequence, Tuple

Op = Literal["C", "S", "D", "I"]  # correct, substitution, deletion, insertion


@dataclass(frozen=True)
class AlignedPair:
    """One column of an alignment: ``ref`` is None for an insertion, ``hyp`` for a deletion."""

    op: Op
    ref: Optional[str]
    hyp: Optional[str]


@dataclass
class EditStats:
    """Error counts of one (or, summed, many) reference/hypothesis pairs."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_len: int = 0
    alignment: List[AlignedPair] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def hits(self) -> int:
        return self.ref_len - self.substitutions - self.deletions

    @property
    def rate(self) -> float:
        """Errors per reference token; an empty reference counts as one token (module doc)."""
        return self.errors / max(self.ref_len, 1)

    def __add__(self, other: "EditStats") -> "EditStats":
        """Counts add up; the alignment of a sum is not kept (it would mix utterances)."""
        return EditStats(
            self.substitutions + other.substitutions, self.deletions + other.deletions,
            self.insertions + other.insertions, self.ref_len + other.ref_len,
        )


def edit_stats(ref: Sequence[str], hyp: Sequence[str]) -> EditStats:
    """Minimum-edit alignment of ``ref`` to ``hyp`` (token sequences) and its S/D/I counts."""
    n, m = len(ref), len(hyp)
    # cost[i][j]: edits turning ref[:i] into hyp[:j]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (ref[i - 1] != hyp[j - 1])
            row[j] = min(diag, prev[j] + 1, row[j - 1] + 1)
    alignment = _backtrace(cost, ref, hyp)
    counts = {op: 0 for op in "CSDI"}
    for pair in alignment:
        counts[pair.op] += 1
    return EditStats(counts["S"], counts["D"], counts["I"], n, alignment)


def _backtrace(cost: List[List[int]], ref: Sequence[str], hyp: Sequence[str]) -> List[AlignedPair]:
    """Walk the cost table back from the corner: diagonal first, then deletion, then insertion."""
    i, j = len(ref), len(hyp)
    pairs: List[AlignedPair] = []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            op: Op = "C" if ref[i - 1] == hyp[j - 1] else "S"
            pairs.append(AlignedPair(op, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append(AlignedPair("D", ref[i - 1], None))
            i -= 1
        else:
            pairs.append(AlignedPair("I", None, hyp[j - 1]))
            j -= 1
    pairs.reverse()
    return pairs


def word_stats(ref: str, hyp: str) -> EditStats:
    """Word-level stats of two already-normalized strings (split on whitespace)."""
    return edit_stats(ref.split(), hyp.split())


def char_stats(ref: str, hyp: str) -> EditStats:
    """Character-level stats; a word boundary counts as one character.

    Whitespace runs collapse to one space and the ends are stripped, so CER counts a
    missing or extra word boundary as one error, like a missing letter.
    """
    return edit_stats(list(" ".join(ref.split())), list(" ".join(hyp.split())))


def format_alignment(alignment: Sequence[AlignedPair], empty: str = "***") -> Tuple[str, str, str]:
    """Three column-aligned lines (REF, HYP, OP) for a human to read; case marks errors."""
    refs, hyps, ops = [], [], []
    for p in alignment:
        r = p.ref if p.ref is not None else empty
        h = p.hyp if p.hyp is not None else empty
        if p.op != "C":
            r, h = r.upper(), h.upper()
        width = max(len(r), len(h), 1)
        refs.append(r.ljust(width))
        hyps.append(h.ljust(width))
        ops.append(("" if p.op == "C" else p.op).ljust(width))
    return " ".join(refs).rstrip(), " ".join(hyps).rstrip(), " ".join(ops).rstrip()
