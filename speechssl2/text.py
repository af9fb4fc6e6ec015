"""The one text normalization shared by data preparation, tokenizers and scoring.

Every transcript that enters a manifest, every tokenizer's training text and both
sides of a WER computation go through :func:`normalize_text`, so that a model is
never scored against a spelling it was never trained on. The rules:

1. Unicode NFC, then lower case.
2. Typographic apostrophes (``’ ‘ ʼ``) become ``'``.
3. Every character that is not a letter, a digit, a combining mark, an apostrophe or
   whitespace becomes a space: punctuation and symbols separate words
   (``"Call-Forward."`` -> ``"call forward"``).
4. An apostrophe survives only inside a word (``"don't"``, ``"o'clock"``); a quote
   at a word edge (``"'hello'"``) becomes a space.
5. Runs of whitespace collapse to one space; leading and trailing space is removed.

Numbers are not spelled out: ``"press 1"`` stays ``"press 1"``. Corpora whose
audio says the words do that themselves (see ``speechssl2.data.corpora.asterisk``).
"""
from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_EDGE_APOSTROPHE = re.compile(r"(?<![^\W_])'|'(?![^\W_])")  # ' not between two word characters


def normalize_text(text: str) -> str:
    """Lower-case ``text``, drop punctuation (apostrophes inside words stay), collapse spaces."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES).lower()
    text = "".join(c if c == "'" or _is_word_char(c) else " " for c in text)
    text = _EDGE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def _is_word_char(c: str) -> bool:
    return unicodedata.category(c)[0] in "LNM"  # letters, numbers, combining marks
