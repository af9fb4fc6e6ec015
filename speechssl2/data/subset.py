"""A labeled budget: a seeded random subset of a cut set, by total duration or count.

Low-resource fine-tuning (Libri-Light's 10 min / 1 h / 10 h, the mini reproduction
table) compares upstreams at equal labeled data; the subset is a pure function of the
cuts, the budget and the seed, so every upstream and every rerun sees the same one.
"""
from __future__ import annotations

import random
from typing import List, Optional

from lhotse import CutSet


def budget_subset(cuts: CutSet, seconds: Optional[float] = None, num_cuts: Optional[int] = None,
                  seed: int = 0) -> CutSet:
    """Shuffle with ``seed`` and keep cuts until ``seconds`` of audio or ``num_cuts`` cuts (exactly one given).

    The result is in the input's order. Asking for more than the set holds is an error
    rather than a silently smaller budget.
    """
    if (seconds is None) == (num_cuts is None):
        raise ValueError("budget_subset: give exactly one of seconds or num_cuts")
    items = list(cuts)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
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
    return CutSet.from_cuts(items[i] for i in sorted(keep))
