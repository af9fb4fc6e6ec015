"""N-best rescoring with a sentence-level LM (the Transformer LM).

Every first-pass hypothesis (from CTC beam search or transducer beam search: anything
with ``.text`` and ``.score``) gets

    total = first_pass_score + lm_weight * log P_lm(text) + word_bonus * num_words

and the list is re-ranked by ``total``. The LM is queried in batches across utterances,
so a test set costs about ``num_hypotheses / batch_size`` LM calls. The word bonus
offsets the LM's preference for short hypotheses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Protocol, Sequence

from torch import Tensor

from speechssl2.logging_utils import progress


class Candidate(Protocol):
    text: str
    score: float


class SentenceLM(Protocol):
    def score(self, texts: Sequence[str]) -> Tensor: ...  # (N,) natural-log P(text)


@dataclass(frozen=True)
class Rescored:
    text: str
    first_pass: float  # the decoder's own score
    lm: float  # log P_lm(text), unweighted
    total: float


def lm_scores(lm: SentenceLM, texts: Sequence[str], batch_size: int = 64) -> List[float]:
    """log P_lm of every text, ``batch_size`` texts per LM call."""
    scores: List[float] = []
    chunks = range(0, len(texts), batch_size)
    for start in progress(chunks, desc="LM rescoring", total=len(chunks)):
        scores.extend(lm.score(texts[start : start + batch_size]).tolist())
    return scores


def rescore_nbest(
    nbests: Sequence[Sequence[Candidate]],
    lm: SentenceLM,
    lm_weight: float,
    word_bonus: float = 0.0,
    batch_size: int = 64,
) -> List[List[Rescored]]:
    """Re-rank each utterance's n-best list; returns the lists best first (``[0]`` is the new 1-best)."""
    flat = [hyp for nbest in nbests for hyp in nbest]
    scores = iter(lm_scores(lm, [h.text for h in flat], batch_size))
    ranked: List[List[Rescored]] = []
    for nbest in nbests:
        items = []
        for hyp in nbest:
            lm_score = next(scores)
            total = hyp.score + lm_weight * lm_score + word_bonus * len(hyp.text.split())
            items.append(Rescored(hyp.text, hyp.score, lm_score, total))
        ranked.append(sorted(items, key=lambda r: -r.total))
    return ranked
