"""Probe data: the cuts of one set and the label each carries in a named supervision field.

A task names its label by field (``text``, ``speaker``, ``language``, ``gender`` or
``custom.<key>``), so any manifest whose supervisions carry such a field can fill a
classification slot (e.g. ``custom.emotion`` for an emotion-recognition set).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List, Optional

from lhotse.cut import Cut

from speechssl2.data.loader import open_cuts
from speechssl2.text import normalize_text

SUPERVISION_FIELDS = ("text", "speaker", "language", "gender")


@dataclass
class LabelledSet:
    """The cuts of one manifest (possibly a seeded subset) and one label string per cut."""

    manifest: str
    cuts: List[Cut]
    labels: List[str]

    @property
    def ids(self) -> List[str]:
        return [cut.id for cut in self.cuts]


def label_of(cut: Cut, field: str) -> str:
    """The label of ``cut`` in supervision ``field``; an error names the cut and what is missing."""
    if len(cut.supervisions) != 1:
        raise ValueError(f"cut {cut.id}: a probe needs exactly one supervision per cut, got {len(cut.supervisions)}")
    sup = cut.supervisions[0]
    if field.startswith("custom."):
        key = field[len("custom."):]
        value = (sup.custom or {}).get(key)
        if value is None:
            raise ValueError(f"cut {cut.id}: no label {field!r} "
                             f"(supervision custom fields: {sorted(sup.custom or {})})")
        return str(value)
    if field not in SUPERVISION_FIELDS:
        raise ValueError(f"label field {field!r} unknown; use one of {', '.join(SUPERVISION_FIELDS)} or custom.<key>")
    value = getattr(sup, field)
    if value is None or (field == "text" and not normalize_text(value)):
        raise ValueError(f"cut {cut.id}: supervision has no {field!r}")
    return normalize_text(value) if field == "text" else str(value)


def load_labelled_set(manifest: str, field: str, max_utts: Optional[int] = None, seed: int = 0) -> LabelledSet:
    """Every cut of ``manifest`` with its label, or a seeded random subset of ``max_utts`` cuts."""
    cuts = list(open_cuts(manifest))
    if not cuts:
        raise ValueError(f"{manifest}: no cuts")
    if max_utts is not None and max_utts < len(cuts):
        cuts = random.Random(seed).sample(cuts, max_utts)
    return LabelledSet(str(manifest), cuts, [label_of(cut, field) for cut in cuts])
