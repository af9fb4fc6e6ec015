"""Characters with an explicit word-boundary token (the wav2vec 2.0 letter setup).

Ids: 0 ``<blank>``, 1 ``|`` (word boundary, spelled after every word), then the
letters in sorted order. ``"hi you"`` encodes as ``h i | y o u |``; a trailing ``|``
after the last word keeps every word's spelling identical, which a decoding lexicon
relies on.
"""
from __future__ import annotations

import logging
import string
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence

from speechssl2.registry import TOKENIZERS
from speechssl2.text import normalize_text
from speechssl2.tokenizers.base import BLANK, BLANK_SYMBOL, TokenizerBase

BOUNDARY = "|"
INVENTORIES: Dict[str, str] = {  # fixed letter sets (after normalize_text, which lower-cases)
    "letters": string.ascii_lowercase,
    "letters+apostrophe": string.ascii_lowercase + "'",
}
log = logging.getLogger(__name__)


@TOKENIZERS.register("char")
class CharTokenizer(TokenizerBase):
    """Letters of ``letters`` plus ``|``; text is normalized with ``normalize_text`` first."""

    registry_key = "char"

    def __init__(self, letters: str) -> None:
        bad = sorted({c for c in letters if c.isspace() or c == BOUNDARY})
        if bad:
            raise ValueError(f"char tokenizer: letters must not contain whitespace or {BOUNDARY!r}: {bad!r}")
        self._symbols = [BLANK_SYMBOL, BOUNDARY, *sorted(set(letters))]
        self._index = {s: i for i, s in enumerate(self._symbols)}

    @classmethod
    def train(cls, texts: Iterable[str], inventory: str = "seen") -> "CharTokenizer":
        """The letters of ``inventory``: a name in ``INVENTORIES``, or ``seen`` (every character
        of the normalized ``texts``). A fixed inventory does not depend on which utterances
        the training set happens to hold; transcripts with other characters are left for
        validation to drop and report."""
        used: set[str] = set()
        for text in texts:
            used.update(normalize_text(text).replace(" ", ""))
        if inventory == "seen":
            if not used:
                raise ValueError("char tokenizer: the training texts contain no characters")
            return cls("".join(sorted(used)))
        if inventory not in INVENTORIES:
            raise ValueError(f"char tokenizer: unknown inventory {inventory!r}; "
                             f"valid: seen, {', '.join(INVENTORIES)}")
        outside = sorted(used - set(INVENTORIES[inventory]))
        if outside:
            log.warning("char tokenizer: training transcripts use %r outside the %s inventory; "
                        "validation drops those utterances", "".join(outside), inventory)
        return cls(INVENTORIES[inventory])

    @property
    def symbols(self) -> List[str]:
        return list(self._symbols)

    @property
    def separator(self) -> Optional[str]:
        return BOUNDARY

    def encode(self, text: str) -> List[int]:
        words = normalize_text(text).split()
        unknown = sorted({c for w in words for c in w if c not in self._index})
        if unknown:
            raise ValueError(f"characters {''.join(unknown)!r} are not in the char tokenizer (text {text!r})")
        return [self._index[s] for w in words for s in self.spell(w)]

    def decode(self, ids: Sequence[int]) -> str:
        chars = []
        for i in ids:
            if not 0 <= int(i) < len(self._symbols):
                raise ValueError(f"token id {int(i)} outside the vocabulary (size {len(self._symbols)})")
            if int(i) != BLANK:
                chars.append(self._symbols[int(i)])
        return " ".join("".join(chars).replace(BOUNDARY, " ").split())

    def spell(self, word: str) -> List[str]:
        return [*word, BOUNDARY]

    def chars(self) -> FrozenSet[str]:
        return frozenset(self._symbols[2:])

    def to_spec(self) -> Dict[str, Any]:
        return {"name": self.registry_key, "letters": "".join(self._symbols[2:])}

    def _save_args(self, out_dir: Path) -> Dict[str, Any]:
        return {"letters": "".join(self._symbols[2:])}
