"""CTC greedy decoding: arg-max per frame, merge repeats, drop blanks.

Works on log-probs ``(B, T, V)`` with valid lengths ``(B,)``; frames beyond a length
are padding and never read. The blank id is 0 (SPEC §4).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor

from speechssl2.decoding.hypothesis import Hypothesis

BLANK = 0


def collapse(path: Sequence[int], blank: int = BLANK) -> List[int]:
    """A frame-level CTC path to its label sequence: ``a a - a b b -> a a b``."""
    out: List[int] = []
    prev: Optional[int] = None
    for tok in path:
        if tok != prev and tok != blank:
            out.append(tok)
        prev = tok
    return out


def check_log_probs(log_probs: Tensor, lengths: Tensor) -> None:
    """Shape and length checks shared by every CTC search, with errors that say what is off."""
    if log_probs.dim() != 3:
        raise ValueError(f"CTC decoding expects log-probs (B, T, V), got shape {tuple(log_probs.shape)}")
    if lengths.shape != log_probs.shape[:1]:
        raise ValueError(f"lengths {tuple(lengths.shape)} do not match batch size {log_probs.shape[0]}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > log_probs.shape[1]):
        raise ValueError(f"lengths {lengths.tolist()} outside [0, T={log_probs.shape[1]}]")


@torch.no_grad()
def ctc_greedy_ids(log_probs: Tensor, lengths: Tensor) -> List[List[int]]:
    """Best-path label ids per utterance: ``(B, T, V)``, ``(B,)`` -> B lists."""
    check_log_probs(log_probs, lengths)
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    return [collapse(best[b, : int(n)].tolist()) for b, n in enumerate(lengths.cpu())]


@torch.no_grad()
def ctc_greedy(
    log_probs: Tensor, lengths: Tensor, decode: Optional[Callable[[List[int]], str]] = None,
) -> List[Hypothesis]:
    """Greedy hypotheses with their path score; text via ``decode`` (e.g. ``tokenizer.decode``)."""
    check_log_probs(log_probs, lengths)
    top, best = log_probs.max(dim=-1)  # (B, T) each
    mask = torch.arange(log_probs.shape[1], device=log_probs.device)[None] < lengths.to(log_probs.device)[:, None]
    scores = (top * mask).sum(dim=1).cpu()  # (B,)
    best = best.cpu()
    hyps = []
    for b, n in enumerate(lengths.cpu().tolist()):
        ids = collapse(best[b, :n].tolist())
        text = decode(ids) if decode is not None else ""
        hyps.append(Hypothesis(tuple(ids), float(scores[b]), text))
    return hyps
