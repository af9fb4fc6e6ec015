"""Scoring: WER/CER with S/D/I counts and alignments, per-decode reports, RESULTS.md."""
from speechssl2.scoring.wer import AlignedPair, EditStats, char_stats, edit_stats, word_stats

__all__ = ["AlignedPair", "EditStats", "char_stats", "edit_stats", "word_stats"]
