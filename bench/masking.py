"""Span masking speed: ``speechssl2.masking.span_mask`` vs a numpy loop in fairseq's style.

``fairseq_style_mask`` below follows fairseq's ``compute_mask_indices`` (static span
lengths, ``min_masks=2``, ``require_same_masks=True``, no ``no_overlap``): per utterance
a count ``int(p * L / M + u)`` of span starts drawn without replacement, spans expanded,
then every utterance cut to the batch's smallest count. fairseq's ``mask_prob`` is the
expected fraction of frames *before* overlaps, i.e. our per-frame start probability
times the span (wav2vec 2.0: 0.65 = 0.065 x 10), and is passed as such. It is written here for the
comparison only; speechssl2 draws a stationary span process instead (see the
``speechssl2.masking`` docstring), so the masked fractions differ slightly and are
printed beside the times.

    python bench/masking.py --batch 32 --frames 500 --repeats 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.masking import span_mask  # noqa: E402


def fairseq_style_mask(padding_mask: np.ndarray, prob: float, span: int, rng: np.random.Generator,
                       min_masks: int = 2) -> np.ndarray:
    """(B, T) bool padding (True = pad) -> (B, T) bool mask, fairseq ``compute_mask_indices`` style.

    ``prob`` is fairseq's ``mask_prob`` (fraction of frames before overlaps), not ours.
    """
    bsz, all_sz = padding_mask.shape
    mask = np.full((bsz, all_sz), False)
    mask_idcs = []
    for i in range(bsz):
        sz = all_sz - int(padding_mask[i].sum())
        num_mask = max(min_masks, int(prob * sz / float(span) + rng.random()))
        if sz - span <= num_mask:
            num_mask = max(sz - span - 1, 0)
        starts = rng.choice(sz - span, num_mask, replace=False) if num_mask else np.zeros(0, dtype=int)
        idc = np.asarray([starts[j] + offset for j in range(len(starts)) for offset in range(span)])
        mask_idcs.append(np.unique(idc[idc < sz]))
    min_len = min(len(m) for m in mask_idcs)
    for i, idc in enumerate(mask_idcs):
        if len(idc) > min_len:
            idc = rng.choice(idc, min_len, replace=False)
        mask[i, idc] = True
    return mask


def make_padding(batch: int, frames: int, seed: int = 0) -> np.ndarray:
    """Lengths uniform in [frames / 2, frames]; (B, T) bool, True = padding."""
    lengths = np.random.default_rng(seed).integers(frames // 2, frames + 1, size=batch)
    lengths[0] = frames
    return np.arange(frames)[None, :] >= lengths[:, None]


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=500, help="longest utterance in frames (500 = 10 s at 50 Hz)")
    p.add_argument("--prob", type=float, default=0.065)
    p.add_argument("--span", type=int, default=10)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: like the single-threaded numpy loop; on a loaded machine more threads "
                   "mostly add synchronisation cost to these tiny ops)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pad_np = make_padding(args.batch, args.frames)
    pad = torch.from_numpy(pad_np).to(args.device)
    gen = torch.Generator(device=args.device).manual_seed(0)
    rng = np.random.default_rng(0)

    def ours() -> torch.Tensor:
        out = span_mask(pad, args.prob, args.span, generator=gen)
        if pad.is_cuda:
            torch.cuda.synchronize()
        return out

    impls = {"speechssl2 span_mask (torch)": ours,
             "fairseq-style numpy loop": lambda: fairseq_style_mask(pad_np, args.prob * args.span, args.span, rng)}
    valid = int((~pad_np).sum())
    rows = []
    for name, fn in impls.items():
        seconds = timed(fn, args.repeats)
        fraction = float(np.asarray(torch.as_tensor(fn()).cpu()).sum()) / valid
        rows.append(dict(impl=name, ms=1e3 * seconds, fraction=fraction))
    ref = rows[1]["ms"]
    print(f"batch={args.batch} frames={args.frames} p={args.prob} M={args.span} repeats={args.repeats} "
          f"device={args.device} threads={torch.get_num_threads()}")
    print("| impl | ms / batch | speed-up vs numpy loop | masked fraction of valid frames |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['ms']:.3f} | {ref / r['ms']:.1f}x | {r['fraction']:.3f} |")
    return rows


if __name__ == "__main__":
    main()
