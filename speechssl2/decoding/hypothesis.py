"""The result type every decoder returns for one utterance."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Tuple


@dataclass(frozen=True)
class Hypothesis:
    """Token ids, the search score (log domain; greedy: sum of the picked log-probs), text."""

    tokens: Tuple[int, ...]
    score: float
    text: str = ""

    def with_text(self, text: str) -> "Hypothesis":
        return replace(self, text=text)
