"""edit_stats: hand-made cases, the empty-reference convention, alignments, parity, CER."""
from __future__ import annotations

import random

import pytest
from torchaudio.functional import edit_distance

from speechssl2.scoring.wer import EditStats, char_stats, edit_stats, format_alignment, word_stats


def ops(stats: EditStats) -> str:
    return "".join(p.op for p in stats.alignment)


@pytest.mark.parametrize(
    "ref, hyp, s, d, i, alignment",
    [
        ("the cat sat", "the cat sat", 0, 0, 0, "CCC"),
        ("the cat sat", "the bat sat", 1, 0, 0, "CSC"),
        ("the cat sat", "the sat", 0, 1, 0, "CDC"),
        ("the cat sat", "the cat sat down", 0, 0, 1, "CCCI"),
        ("a b c d", "x a b d", 0, 1, 1, "ICCDC"),
        ("one two", "three four five", 2, 0, 1, "SSI"),
    ],
)
def test_hand_made_cases(ref, hyp, s, d, i, alignment):
    stats = word_stats(ref, hyp)
    assert (stats.substitutions, stats.deletions, stats.insertions) == (s, d, i)
    assert ops(stats) == alignment
    assert stats.ref_len == len(ref.split())
    assert stats.rate == pytest.approx((s + d + i) / len(ref.split()))


def test_alignment_pairs_the_right_words():
    stats = word_stats("call forward is on", "call forwarded on now")
    pairs = [(p.op, p.ref, p.hyp) for p in stats.alignment]
    assert pairs == [
        ("C", "call", "call"), ("S", "forward", "forwarded"), ("D", "is", None), ("C", "on", "on"), ("I", None, "now"),
    ]


def test_empty_reference_counts_as_one_word():
    assert word_stats("", "").rate == 0.0
    both_empty = word_stats("", "")
    assert (both_empty.errors, both_empty.ref_len, both_empty.alignment) == (0, 0, [])
    stats = word_stats("", "hello there")
    assert (stats.insertions, stats.ref_len) == (2, 0)
    assert stats.rate == 2.0  # two insertions against a reference counted as one word


def test_empty_hypothesis_is_all_deletions():
    stats = word_stats("press one now", "")
    assert (stats.deletions, stats.substitutions, stats.insertions) == (3, 0, 0)
    assert stats.rate == 1.0
    assert ops(stats) == "DDD"


def test_matches_torchaudio_edit_distance_and_alignment_rebuilds_both_sides():
    rng = random.Random(0)
    vocab = list("abcde")
    for _ in range(300):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        stats = edit_stats(ref_words=ref, hyp_words=hyp)  # the documented keyword names
        assert stats.errors == edit_distance(ref, hyp)
        assert [p.ref for p in stats.alignment if p.ref is not None] == ref
        assert [p.hyp for p in stats.alignment if p.hyp is not None] == hyp
        assert all((p.op == "C") == (p.ref == p.hyp) for p in stats.alignment)
        assert stats.hits == sum(p.op == "C" for p in stats.alignment)


def test_cer_counts_characters_and_word_boundaries():
    stats = char_stats("hello world", "hello word")
    assert (stats.ref_len, stats.deletions, stats.errors) == (11, 1, 1)
    merged = char_stats("to do", "todo")  # a lost word boundary is one character error
    assert (merged.deletions, merged.errors) == (1, 1)
    assert char_stats("abc", "abd").rate == pytest.approx(1 / 3)


def test_sums_add_counts():
    total = word_stats("a b", "a c") + word_stats("x y z", "x")
    assert (total.substitutions, total.deletions, total.insertions, total.ref_len) == (1, 2, 0, 5)
    assert total.rate == pytest.approx(3 / 5)


def test_format_alignment_columns_line_up():
    ref, hyp, op = format_alignment(word_stats("the cat sat", "the bat").alignment)
    assert ref.split() == ["the", "CAT", "SAT"]
    assert hyp.split() == ["the", "BAT", "***"]
    assert op.split() == ["S", "D"]
    assert ref.index("CAT") == hyp.index("BAT")
