"""Run a padded batch without its padding on CPU: one utterance at a time, or packed.

Padding costs FLOPs: in a batch whose lengths fall from the longest to 60 % of it, a
fifth of the convolutions, projections and feed-forward layers work on padded frames,
and more of the attention (it grows with T^2). On a CPU the work is serial anyway, so
running each utterance alone (convolutions) or all of them end to end in one row
(``pack``: per-frame layers see one matrix, attention is per utterance) and padding the
results costs only the copies and the extra operator calls, and it is exact: every
encoder is padding invariant (an utterance alone equals the same utterance in a padded
batch; padded output frames are zero).

The extra calls cost a fixed time per utterance, the padding a time that grows with its
frames and the layer width squared, so a batch is split only when the mean padding per
utterance times width^2 reaches ``MIN_SAVED_WORK``. Measured on 2026-12-01 (one thread,
AMD EPYC, 32 utterances of 0.3-0.9 s, a third of the frames padding; split / padded
step time of the conv frontend and a 2-layer Transformer, widths 64 / 128 / 256 / 512):
frontend 1.69 / 1.00 / 0.75 / 0.63, encoder 1.55 / 1.12 / 0.86 / 0.78. 15 padded frames
per utterance broke even at width 128 and paid at 256: the threshold splits a 128-wide
model from 32 padded frames on, a 512-wide one from 2. On an accelerator batch-1 kernels
would leave the device idle, and under ``torch.compile`` the lengths would become
data-dependent shapes, so there the padded batch is run as it is.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Literal, Sequence

import torch
from torch import Tensor

Mode = Literal["auto", "split", "padded"]
MIN_SAVED_WORK = 2**19  # mean padded frames per utterance x width^2 (module doc)
_mode: Mode = "auto"


def split_by_utterance(x: Tensor, frames: Tensor, total: int, width: int) -> bool:
    """Whether to run the padded batch ``x`` (B, ...) without its padding.

    frames (B,) valid frames per utterance out of ``total``; width: the layers' channels.
    """
    if _mode == "padded" or x.device.type != "cpu" or x.shape[0] < 2 or torch.compiler.is_compiling():
        return False
    padding = total - frames.double().mean().item()  # mean padded frames per utterance
    return padding > 0 and (_mode == "split" or padding * width**2 >= MIN_SAVED_WORK)


def pad_stack(rows: Sequence[Tensor], length: int) -> Tensor:
    """(1, T_i, ...) per-utterance outputs -> (B, length, ...), zero past each T_i."""
    out = rows[0].new_zeros(len(rows), length, *rows[0].shape[2:])
    for i, row in enumerate(rows):
        out[i, : row.shape[1]] = row[0]
    return out


def pack(x: Tensor, lengths: Sequence[int]) -> Tensor:
    """Padded (B, T, ...) -> (1, N, ...): the valid frames of every row end to end, N = sum(lengths)."""
    return torch.cat([x[i : i + 1, :n] for i, n in enumerate(lengths)], dim=1)


def unpack(x: Tensor, lengths: Sequence[int], total: int) -> Tensor:
    """Packed (1, N, ...) -> (B, total, ...), zero past each length: the inverse of ``pack``."""
    return pad_stack(x.split(list(lengths), dim=1), total)


@contextlib.contextmanager
def padding_mode(mode: Mode) -> Iterator[None]:
    """Inside this block CPU batches are split whenever padded ("split"), never ("padded"), or as measured ("auto")."""
    global _mode
    saved, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = saved
