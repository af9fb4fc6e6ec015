"""Toy CTC emissions and hand-written ARPA files for the decoding tests."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import torch
from torch import Tensor


def frames_to_log_probs(symbols: Sequence[str], frames: List[Dict[str, float]], floor: float = 1e-4) -> Tensor:
    """``(1, T, V)`` log-probs: each frame gives probabilities of some symbols, the rest ``floor``.

    A symbol key ``"-"`` stands for the blank (id 0).
    """
    rows = []
    for frame in frames:
        p = torch.full((len(symbols),), floor)
        for sym, prob in frame.items():
            p[0 if sym == "-" else symbols.index(sym)] = prob
        rows.append((p / p.sum()).log())
    return torch.stack(rows)[None]


def spell_frames(symbols: Sequence[str]) -> List[Dict[str, float]]:
    """A confident path emitting ``symbols`` with a blank between every two."""
    frames: List[Dict[str, float]] = []
    for sym in symbols:
        frames += [{sym: 0.98}, {"-": 0.98}]
    return frames


def write_arpa(path: Path, log10_probs: Dict[str, float]) -> Path:
    """A bigram ARPA whose unigrams (and ``<s> w`` bigrams) are ``log10_probs``.

    flashlight's KenLM wrapper needs at least a bigram model; the bigrams repeat the
    unigram probabilities so the LM is effectively a unigram.
    """
    uni = {"<unk>": -2.0, "<s>": -99.0, "</s>": -0.5, **log10_probs}
    lines = ["\\data\\", f"ngram 1={len(uni)}", f"ngram 2={len(log10_probs)}", "", "\\1-grams:"]
    lines += [f"{p}\t{w}\t0" for w, p in uni.items()]
    lines += ["", "\\2-grams:"] + [f"{p}\t<s> {w}" for w, p in log10_probs.items()]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]), encoding="utf-8")
    return path
