"""Run a padded batch one utterance at a time, each cut to its own length, on CPU.

Padding costs FLOPs: in a batch whose lengths fall from the longest to 60 % of it, a
fifth of the convolutions, projections and feed-forward layers work on padded frames,
and more of the attention (it grows with T^2). On a CPU the work is serial anyway, so
running each utterance alone and padding the results costs only the padding copies,
and it is exact: every encoder is padding invariant (an utterance alone equals the same
utterance in a padded batch; padded output frames are zero). On an accelerator batch-1
kernels would leave the device idle, and under ``torch.compile`` the lengths would
become data-dependent shapes, so there the padded batch is run as it is.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor

_enabled = True


def split_by_utterance(x: Tensor, lengths: Tensor) -> bool:
    """Whether to run the padded batch ``x`` (B, T, ...) with ``lengths`` (B,) one utterance at a time."""
    return (_enabled and x.device.type == "cpu" and x.shape[0] > 1 and not torch.compiler.is_compiling()
            and int(lengths.min()) < x.shape[1])


def pad_stack(rows: Sequence[Tensor], length: int) -> Tensor:
    """(1, T_i, ...) per-utterance outputs -> (B, length, ...), zero past each T_i."""
    out = rows[0].new_zeros(len(rows), length, *rows[0].shape[2:])
    for i, row in enumerate(rows):
        out[i, : row.shape[1]] = row[0]
    return out


@contextlib.contextmanager
def keep_padding() -> Iterator[None]:
    """Run padded batches as they are inside this block (tests and before/after benchmarks)."""
    global _enabled
    saved, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = saved
