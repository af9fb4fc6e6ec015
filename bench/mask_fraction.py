"""Masked fraction of the two span-mask samplers on real utterance lengths and batch shapes.

``stationary`` masks every valid frame with probability ``1 - (1 - p) ** M`` whatever the
batch; ``fairseq`` (``compute_mask_indices``) draws a span count per utterance from its
length and, with ``require_same_masks``, cuts every utterance to the batch's smallest
count, so its fraction depends on the lengths and on how batches are formed. Rows:

* ``stationary``: p = mask_prob / M, any batching;
* ``fairseq, alone``: one utterance per batch (``require_same_masks`` has no effect);
* ``fairseq, bucketed``: batches of similar durations, as our loader's
  ``DynamicBucketingSampler`` forms them (10 equal-count duration buckets);
* ``fairseq, random``: batches of random utterances, padded;
* ``fairseq, cropped``: fairseq pre-training's batches, every utterance cropped to the
  batch's shortest (no padding).

Frame counts are the conv feature encoder's at 16 kHz (320-sample hop). The fraction is
masked frames / valid frames over all batches.

    python bench/mask_fraction.py --lengths fsdd --corpus /work/shared/data/fsdd/recordings
    python bench/mask_fraction.py --lengths librispeech   # uniform 2-16 s
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.masking import fairseq_span_mask, span_mask  # noqa: E402
from speechssl2.targets.frames import conv_frame_count  # noqa: E402

SAMPLE_RATE = 16000


def fsdd_frames(corpus: Path) -> np.ndarray:
    import soundfile as sf

    durations = [sf.info(str(p)).duration for p in sorted(corpus.glob("*.wav"))]
    if not durations:
        raise SystemExit(f"no .wav files under {corpus}")
    return np.array([conv_frame_count(round(d * SAMPLE_RATE)) for d in durations])


def uniform_frames(count: int, low_s: float, high_s: float, seed: int) -> np.ndarray:
    seconds = np.random.default_rng(seed).uniform(low_s, high_s, size=count)
    return np.array([conv_frame_count(round(s * SAMPLE_RATE)) for s in seconds])


def batches(frames: np.ndarray, batch: int, bucketed: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of ``batch`` utterances: random, or drawn within 10 equal-count duration buckets."""
    order = rng.permutation(len(frames))
    groups = [order]
    if bucketed:
        by_length = np.argsort(frames, kind="stable")
        groups = [rng.permutation(b) for b in np.array_split(by_length, 10)]
    for group in groups:
        for start in range(0, len(group) - batch + 1, batch):
            yield group[start:start + batch]


def fraction(frames: np.ndarray, sampler: str, prob: float, span: int, batch: int, shape: str, seed: int) -> float:
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    masked = valid = 0
    for idx in batches(frames, batch if shape != "alone" else 1, shape == "bucketed", rng):
        lengths = frames[idx]
        if shape == "cropped":
            lengths = np.full_like(lengths, lengths.min())
        pad = torch.arange(int(lengths.max()))[None, :] >= torch.from_numpy(lengths)[:, None]
        if sampler == "stationary":
            mask = span_mask(pad, prob / span, span, generator=gen)
        else:
            mask = fairseq_span_mask(pad, prob, span, min_masks=2, generator=gen)
        masked += int(mask.sum())
        valid += int(lengths.sum())
    return masked / valid


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", choices=["fsdd", "librispeech"], default="librispeech")
    p.add_argument("--corpus", type=Path, default=Path("/work/shared/data/fsdd/recordings"))
    p.add_argument("--utterances", type=int, default=20000, help="librispeech: how many 2-16 s lengths")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--probs", default="0.65,0.8", help="fairseq mask_prob values (wav2vec 2.0, HuBERT)")
    p.add_argument("--span", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    frames = fsdd_frames(args.corpus) if args.lengths == "fsdd" else uniform_frames(args.utterances, 2, 16, args.seed)
    print(f"{args.lengths}: {len(frames)} utterances, frames min {frames.min()} median {int(np.median(frames))} "
          f"max {frames.max()}; batch {args.batch}, M = {args.span}, min_masks 2, require_same_masks")
    rows = []
    shapes = [("stationary", "any"), ("fairseq", "alone"), ("fairseq", "bucketed"), ("fairseq", "random"),
              ("fairseq", "cropped")]
    probs = [float(x) for x in args.probs.split(",")]
    print("| sampler | batches | " + " | ".join(f"mask_prob {q}" for q in probs) + " |")
    print("|---|---|" + "---|" * len(probs))
    for sampler, shape in shapes:
        values = [fraction(frames, sampler, q, args.span, args.batch, shape, args.seed) for q in probs]
        rows.append(dict(sampler=sampler, shape=shape, fractions=values))
        print(f"| {sampler} | {shape} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return rows


if __name__ == "__main__":
    main()
