"""The model frame grid that HuBERT targets live on, and the check that labels fit it.

Targets are only useful if label ``i`` describes the same audio as model frame ``i``.
The conv feature encoder of wav2vec 2.0 / HuBERT / WavLM (SPEC §2) has kernels
(10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2): frame ``i`` sees samples
``[320 i, 320 i + 400)`` at 16 kHz. Everything in ``speechssl2.targets`` counts frames
with :func:`conv_frame_count` so that features, labels and the model agree exactly.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple, TypeVar

import numpy as np
import torch

from speechssl2.models.functional import conv_output_lengths
from speechssl2.models.functional import receptive_field as conv_receptive_field

CONV_KERNELS: Tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDES: Tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
SAMPLE_RATE = 16000
FRAME_SHIFT_S = 0.02  # 320 samples at 16 kHz

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class LabelRateError(ValueError):
    """Labels and model frames of one utterance disagree by more than one frame."""


def conv_frame_count(
    num_samples: int,
    kernels: Sequence[int] = CONV_KERNELS,
    strides: Sequence[int] = CONV_STRIDES,
) -> int:
    """Frames the conv stack emits for ``num_samples`` (0 if shorter than its receptive field)."""
    return int(conv_output_lengths(torch.tensor([num_samples]), kernels, strides)[0])


def receptive_field(kernels: Sequence[int] = CONV_KERNELS, strides: Sequence[int] = CONV_STRIDES) -> Tuple[int, int]:
    """``(window, hop)`` in samples of one output frame of the conv stack: (400, 320) by default."""
    return conv_receptive_field(kernels, strides), math.prod(strides)


def check_label_rate(num_labels: int, num_frames: int, cut_id: str) -> None:
    """Raise :class:`LabelRateError` unless labels and model frames differ by at most one.

    A larger gap means the labels were made at another frame rate (e.g. 100 Hz MFCC
    labels for a 50 Hz model) or for another audio file, and training on them would
    silently teach the model shifted targets.
    """
    if abs(num_labels - num_frames) > 1:
        raise LabelRateError(
            f"cut {cut_id!r}: {num_labels} labels but the model produces {num_frames} frames "
            f"(ratio {num_labels / max(num_frames, 1):.3f}); labels must be at the model frame "
            f"rate ({1 / FRAME_SHIFT_S:.0f} Hz for a {int(FRAME_SHIFT_S * 1000)} ms hop) — "
            "were they dumped for another frame rate or another audio file?"
        )


def align_labels(labels: ArrayT, num_frames: int, cut_id: str, pad_value: int = -100) -> ArrayT:
    """Return ``labels`` (T,) fitted to ``num_frames``: trim one extra label, pad one missing.

    The missing label is filled with ``pad_value`` (the loss's ignore index) rather than a
    guessed class. Larger gaps raise (see :func:`check_label_rate`).
    """
    check_label_rate(len(labels), num_frames, cut_id)
    if len(labels) >= num_frames:
        return labels[:num_frames]
    if isinstance(labels, torch.Tensor):
        pad = labels.new_full((num_frames - len(labels),), pad_value)
        return torch.cat([labels, pad])
    return np.concatenate([labels, np.full(num_frames - len(labels), pad_value, dtype=labels.dtype)])
