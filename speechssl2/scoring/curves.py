"""Learning curves and pre-training health against chance, from the runs' TensorBoard scalars.

A pre-training loss means little without its chance level: HuBERT's masked cross-entropy
must fall below the entropy of the cluster prior (what a model that ignores the audio
reaches), its masked accuracy must exceed the most frequent cluster's share; a contrastive
loss must fall below ln(K + 1) and its accuracy exceed 1 / (K + 1). This module reads the
scalars every run logged, computes a prior from a label manifest when asked, and draws one
panel per metric with a dashed chance line.
"""
from __future__ import annotations

import fnmatch
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Curve = List[Tuple[int, float]]


def read_scalars(tensorboard_dir: str | os.PathLike) -> Dict[str, Curve]:
    """Every scalar tag of a run's event files -> [(update, value)], in update order (the last write wins)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = Path(tensorboard_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"no TensorBoard directory {path} (did the run start?)")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    curves: Dict[str, Curve] = {}
    for tag in acc.Tags()["scalars"]:
        by_step = {e.step: e.value for e in acc.Scalars(tag)}
        curves[tag] = sorted(by_step.items())
    return curves


@dataclass
class Prior:
    """What a model that ignores the audio achieves on frame labels."""

    entropy: float  # nats: the cross-entropy of always predicting the label distribution
    majority: float  # accuracy of always predicting the most frequent label
    num_labels: int  # distinct labels used


def label_prior(cuts_path: str | os.PathLike, field: str = "hubert_labels", max_cuts: Optional[int] = None) -> Prior:
    """The frame-label prior of a label manifest (``cut.load_custom(field)`` per cut)."""
    from lhotse import load_manifest_lazy

    counts: Counter = Counter()
    for i, cut in enumerate(load_manifest_lazy(cuts_path)):
        if max_cuts is not None and i >= max_cuts:
            break
        if not cut.has_custom(field):
            raise ValueError(f"{cuts_path}: cut {cut.id} has no '{field}' labels")
        counts.update(np.asarray(cut.load_custom(field)).reshape(-1).tolist())
    total = sum(counts.values())
    if total == 0:
        raise ValueError(f"{cuts_path}: no labelled frames")
    probs = [c / total for c in counts.values()]
    return Prior(entropy=-sum(p * math.log(p) for p in probs), majority=max(probs), num_labels=len(counts))


def match(tags: Sequence[str], patterns: Sequence[str]) -> List[str]:
    """Tags matching any of the fnmatch ``patterns``, in pattern order, each once."""
    out: List[str] = []
    for pattern in patterns:
        out += [t for t in sorted(tags) if fnmatch.fnmatch(t, pattern) and t not in out]
    return out


def chance_of(tag: str, chance: Mapping[str, float]) -> Optional[float]:
    """The chance level of the first pattern in ``chance`` that matches ``tag``."""
    return next((v for p, v in chance.items() if fnmatch.fnmatch(tag, p)), None)


def health_rows(runs: Mapping[str, Dict[str, Curve]], patterns: Sequence[str], chance: Mapping[str, float],
                lower_is_better: Sequence[str] = ("*loss*", "*_ce*", "*contrastive*", "*/mlm")) -> List[List[str]]:
    """Markdown rows: run, metric, first and last logged value, chance, and whether the last beats chance."""
    rows: List[List[str]] = []
    for run, curves in runs.items():
        for tag in match(list(curves), patterns):
            (first_step, first), (last_step, last) = curves[tag][0], curves[tag][-1]
            level = chance_of(tag, chance)
            verdict = "-"
            if level is not None:
                lower = any(fnmatch.fnmatch(tag, p) for p in lower_is_better)
                verdict = "yes" if (last < level if lower else last > level) else "**no**"
            rows.append([run, tag, f"{first:.4g} (update {first_step})", f"{last:.4g} (update {last_step})",
                         "-" if level is None else f"{level:.4g}", verdict])
    return rows


def plot_curves(runs: Mapping[str, Dict[str, Curve]], patterns: Sequence[str], chance: Mapping[str, float],
                path: str | os.PathLike) -> None:
    """One panel per metric, one line per run, chance dashed (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = match(sorted({t for c in runs.values() for t in c}), patterns)
    if not tags:
        raise ValueError(f"no logged metric matches {list(patterns)}")
    cols = min(3, len(tags))
    nrows = math.ceil(len(tags) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, tag in zip(axes.flat, tags):
        for run, curves in runs.items():
            if tag in curves:
                steps, values = zip(*curves[tag])
                ax.plot(steps, values, label=run)
        level = chance_of(tag, chance)
        if level is not None:
            ax.axhline(level, color="k", linestyle="--", linewidth=1, label="chance")
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("update")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tags):]:
        ax.axis("off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
