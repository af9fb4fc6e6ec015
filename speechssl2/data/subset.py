"""A labeled budget: a seeded random subset of a cut set, by total duration, count, or count per label.

Low-resource fine-tuning (Libri-Light's 10 min / 1 h / 10 h, the mini reproduction
table, the study's "5 utterances per digit") compares upstreams at equal labeled data; the
subset is a pure function of the cuts, the budget and the seed, so every upstream and every
rerun sees the same one.
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Dict, List, Optional

from lhotse import CutSet
from lhotse.cut import Cut


def budget_subset(cuts: CutSet, seconds: Optional[float] = None, num_cuts: Optional[int] = None,
                  seed: int = 0, per_label: Optional[int] = None) -> CutSet:
    """Shuffle with ``seed`` and keep cuts until ``seconds`` of audio or ``num_cuts`` cuts, or
    ``per_label`` cuts of every distinct transcript (exactly one given).

    The result is in the input's order. Asking for more than the set holds (or than a label
    has) is an error rather than a silently smaller budget.
    """
    if sum(x is not None for x in (seconds, num_cuts, per_label)) != 1:
        raise ValueError("budget_subset: give exactly one of seconds, num_cuts or per_label")
    items = list(cuts)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    keep = _per_label(items, order, per_label) if per_label is not None else _budget(items, order, seconds, num_cuts)
    return CutSet.from_cuts(items[i] for i in sorted(keep))


def _budget(items: List[Cut], order: List[int], seconds: Optional[float], num_cuts: Optional[int]) -> List[int]:
    keep: List[int] = []
    total = 0.0
    for i in order:
        if (num_cuts is not None and len(keep) >= num_cuts) or (seconds is not None and total >= seconds):
            break
        keep.append(i)
        total += items[i].duration
    short = (num_cuts is not None and len(keep) < num_cuts) or (seconds is not None and total < seconds)
    if short:
        have = f"{len(items)} cuts, {sum(c.duration for c in items):.1f} s"
        raise ValueError(f"budget_subset: the set holds only {have}; asked for "
                         f"{num_cuts if num_cuts is not None else f'{seconds} s'}")
    return keep


def _per_label(items: List[Cut], order: List[int], per_label: int) -> List[int]:
    """The first ``per_label`` shuffled cuts of each transcript (a cut's supervisions joined)."""
    by_label: Dict[str, List[int]] = defaultdict(list)
    for i in order:
        text = " ".join(s.text or "" for s in items[i].supervisions).strip()
        if not text:
            raise ValueError(f"budget_subset: per_label needs transcripts; cut {items[i].id} has none")
        by_label[text].append(i)
    short = {label: len(idx) for label, idx in by_label.items() if len(idx) < per_label}
    if short:
        raise ValueError(f"budget_subset: asked for {per_label} cuts per label; these labels have fewer: {short}")
    return [i for idx in by_label.values() for i in idx[:per_label]]
