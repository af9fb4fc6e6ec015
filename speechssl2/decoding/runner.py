"""Run a search (CTC or transducer) over batches with a progress bar and real-time factors.

The batches come from any iterable, typically a generator that runs the acoustic model:
the time spent producing a batch counts into the total RTF, the search alone into the
search RTF, so both the model and the decoder cost are visible::

    run = run_decoding(batches, CTCBeamSearch(tok, lexicon=..., lm=...).best)
    write_text(out_dir / "text", run.texts())
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

from torch import Tensor

from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.logging_utils import progress

log = logging.getLogger(__name__)
Search = Callable[[Tensor, Tensor], List[Hypothesis]]


@dataclass
class DecodeBatch:
    ids: List[str]
    emissions: Tensor  # what the search reads: CTC log-probs (B, T, V) or transducer encoder output (B, T, D)
    lengths: Tensor  # (B,) valid frames
    audio_seconds: float  # summed duration of the batch's utterances


@dataclass
class DecodeRun:
    hyps: Dict[str, Hypothesis] = field(default_factory=dict)
    audio_seconds: float = 0.0
    search_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Wall time (batch production + search) per second of audio."""
        return self.total_seconds / max(self.audio_seconds, 1e-9)

    @property
    def search_rtf(self) -> float:
        return self.search_seconds / max(self.audio_seconds, 1e-9)

    def texts(self) -> Dict[str, str]:
        return {utt: h.text for utt, h in self.hyps.items()}


def run_decoding(batches: Iterable[DecodeBatch], search: Search, total: Optional[int] = None,
                 desc: str = "decode") -> DecodeRun:
    """Decode every batch with ``search``; a repeated utterance id is an error."""
    run = DecodeRun()
    start = time.perf_counter()
    for batch in progress(batches, desc=desc, total=total):
        if len(batch.ids) != batch.emissions.shape[0]:
            raise ValueError(f"batch has {len(batch.ids)} ids for {batch.emissions.shape[0]} emission rows")
        t0 = time.perf_counter()
        hyps = search(batch.emissions, batch.lengths)
        run.search_seconds += time.perf_counter() - t0
        for utt, hyp in zip(batch.ids, hyps):
            if utt in run.hyps:
                raise ValueError(f"utterance id {utt!r} decoded twice")
            run.hyps[utt] = hyp
        run.audio_seconds += batch.audio_seconds
    run.total_seconds = time.perf_counter() - start
    log.info("%s: %d utterances, %.1f s of audio, RTF %.4f (search %.4f)", desc, len(run.hyps),
             run.audio_seconds, run.rtf, run.search_rtf)
    return run
