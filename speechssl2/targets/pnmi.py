"""How much cluster labels tell about a reference labelling: PNMI and purities.

With frame references ``y`` (phones, or whatever the corpus transcribes) and cluster
ids ``z`` over the same frames (HuBERT paper, §IV-F):

- PNMI = I(y; z) / H(y): the share of the reference's uncertainty the clusters remove
- phone purity = E_z[max_y p(y | z)]: how consistently one cluster maps to one reference
- cluster purity = E_y[max_z p(z | y)]: how consistently one reference maps to one cluster

Frame ``i`` is assigned the reference unit covering its centre, ``i * hop + window / 2``
samples into the cut (12.5 ms + 20 ms * i). Reference sources: ``"text"`` gives every frame
inside a supervision that supervision's text (for FSDD: the spoken digit word, an
utterance-level stand-in for phones); ``"alignment:<kind>"`` uses
``supervision.alignment[kind]`` items (e.g. ``alignment:phone``). Frames covered by no
reference and frames labelled below 0 (padding) are left out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from lhotse.cut import Cut

from speechssl2.targets.frames import SAMPLE_RATE, receptive_field


def frame_references(cut: Cut, num_frames: int, reference: str) -> List[Optional[str]]:
    """Reference symbol (or None) for each of ``num_frames`` model frames of ``cut``."""
    window, hop = receptive_field()
    centres = (np.arange(num_frames) * hop + window / 2) / SAMPLE_RATE  # (T,) seconds into the cut
    spans = reference_spans(cut, reference)
    refs: List[Optional[str]] = [None] * num_frames
    for start, end, symbol in spans:
        for i in np.nonzero((centres >= start) & (centres < end))[0]:
            refs[i] = symbol
    return refs


def reference_spans(cut: Cut, reference: str) -> List[Tuple[float, float, str]]:
    """``(start, end, symbol)`` in seconds relative to the cut, from its supervisions."""
    spans = []
    for sup in cut.supervisions:
        if reference == "text":
            if not sup.text:
                raise ValueError(f"cut {cut.id!r}: supervision {sup.id!r} has no text to use as reference")
            spans.append((sup.start, sup.end, sup.text))
        elif reference.startswith("alignment:"):
            kind = reference.split(":", 1)[1]
            if not sup.alignment or kind not in sup.alignment:
                raise ValueError(f"cut {cut.id!r}: supervision {sup.id!r} has no {kind!r} alignment")
            spans.extend((item.start, item.end, item.symbol) for item in sup.alignment[kind])
        else:
            raise ValueError(f"unknown reference {reference!r}: use 'text' or 'alignment:<kind>'")
    return spans


class Contingency:
    """Joint counts of (reference symbol, cluster id) over frames."""

    def __init__(self) -> None:
        self.counts: Dict[Tuple[str, int], int] = defaultdict(int)

    def update(self, refs: List[Optional[str]], labels: np.ndarray) -> None:
        if len(refs) != len(labels):
            raise ValueError(f"{len(refs)} references for {len(labels)} labels")
        for ref, label in zip(refs, labels.tolist()):
            if ref is not None and label >= 0:
                self.counts[(ref, label)] += 1

    def table(self) -> Tuple[np.ndarray, List[str], List[int]]:
        """(Y, Z) count matrix with its row symbols and column cluster ids."""
        symbols = sorted({y for y, _ in self.counts})
        clusters = sorted({z for _, z in self.counts})
        row = {y: i for i, y in enumerate(symbols)}
        col = {z: j for j, z in enumerate(clusters)}
        table = np.zeros((len(symbols), len(clusters)), dtype=np.float64)
        for (y, z), n in self.counts.items():
            table[row[y], col[z]] = n
        return table, symbols, clusters


def cluster_metrics(table: np.ndarray) -> Dict[str, float]:
    """PNMI, phone purity and cluster purity of a (Y, Z) joint count matrix."""
    total = table.sum()
    if total == 0:
        raise ValueError("no frame has both a reference and a label: nothing to measure")
    joint = table / total  # (Y, Z)
    p_y = joint.sum(axis=1)  # (Y,)
    p_z = joint.sum(axis=0)  # (Z,)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(p_y, p_z)[nz])).sum())
    h_y = float(-(p_y[p_y > 0] * np.log(p_y[p_y > 0])).sum())
    h_z = float(-(p_z[p_z > 0] * np.log(p_z[p_z > 0])).sum())
    return {
        "pnmi": mutual / h_y if h_y > 0 else 0.0,
        "phone_purity": float(joint.max(axis=0).sum()),
        "cluster_purity": float(joint.max(axis=1).sum()),
        "mutual_information_nats": mutual,
        "reference_entropy_nats": h_y,
        "cluster_perplexity": float(np.exp(h_z)),
        "num_frames": int(total),
        "num_references": int(table.shape[0]),
        "num_clusters_used": int(table.shape[1]),
    }


def measure_cuts(cuts: Iterable[Cut], field: str, reference: str) -> Dict[str, float]:
    """Metrics of the labels stored in custom field ``field`` against ``reference``."""
    counts = Contingency()
    for cut in cuts:
        if not cut.has_custom(field):
            raise ValueError(f"cut {cut.id!r} has no custom field {field!r}: run dump_labels first")
        labels = np.asarray(cut.load_custom(field))  # (T,)
        counts.update(frame_references(cut, len(labels), reference), labels)
    table, _, _ = counts.table()
    return cluster_metrics(table)
