"""Levenshtein alignment of a reference and a hypothesis, with S/D/I counts.

One pure function, :func:`edit_stats`, serves both WER (word sequences) and CER
(character sequences). Costs are 1 for a substitution, deletion or insertion and 0 for
a match, so the error count is the edit distance. Among alignments with that many
errors the one with the most matches wins, and remaining ties are broken from the
left: a match or substitution first, then a deletion, then an insertion. The counts
and alignments are therefore deterministic.

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


def edit_stats(ref_words: Sequence[str], hyp_words: Sequence[str]) -> EditStats:
    """Minimum-edit alignment of ``ref_words`` to ``hyp_words`` (any tokens) and its S/D/I counts."""
    cost = _suffix_costs(ref_words, hyp_words)
    alignment = _walk(cost, ref_words, hyp_words)
    counts = {op: 0 for op in "CSDI"}
    for pair in alignment:
        counts[pair.op] += 1
    return EditStats(counts["S"], counts["D"], counts["I"], len(ref_words), alignment)


def _suffix_costs(ref: Sequence[str], hyp: Sequence[str]) -> List[List[Tuple[int, int]]]:
    """``cost[i][j]`` = (edits, -matches) of the best alignment of ``ref[i:]`` with ``hyp[j:]``.

    Edits come first; among equally short alignments the one with more matches wins
    (``is on / on now`` aligns ``on`` with ``on`` rather than substituting twice).
    """
    n, m = len(ref), len(hyp)
    cost = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        cost[i][m] = (n - i, 0)
    for j in range(m - 1, -1, -1):
        cost[n][j] = (m - j, 0)
    for i in range(n - 1, -1, -1):
        row, nxt = cost[i], cost[i + 1]
        for j in range(m - 1, -1, -1):
            same = ref[i] == hyp[j]
            diag = (nxt[j + 1][0] + (not same), nxt[j + 1][1] - same)
            dele = (nxt[j][0] + 1, nxt[j][1])
            ins = (row[j + 1][0] + 1, row[j + 1][1])
            row[j] = min(diag, dele, ins)
    return cost


def _walk(cost: List[List[Tuple[int, int]]], ref: Sequence[str], hyp: Sequence[str]) -> List[AlignedPair]:
    """Follow optimal moves from the start: diagonal first, then deletion, then insertion."""
    i, j, n, m = 0, 0, len(ref), len(hyp)
    pairs: List[AlignedPair] = []
    while i < n or j < m:
        here = cost[i][j]
        if i < n and j < m:
            same = ref[i] == hyp[j]
            if here == (cost[i + 1][j + 1][0] + (not same), cost[i + 1][j + 1][1] - same):
                pairs.append(AlignedPair("C" if same else "S", ref[i], hyp[j]))
                i, j = i + 1, j + 1
                continue
        if i < n and here == (cost[i + 1][j][0] + 1, cost[i + 1][j][1]):
            pairs.append(AlignedPair("D", ref[i], None))
            i += 1
        else:
            pairs.append(AlignedPair("I", None, hyp[j]))
            j += 1
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
