"""Peak memory and time of one transducer loss step (joiner + RNN-T loss + backward), whole batch vs chunks.

The shapes default to LibriSpeech fine-tuning: 16 s utterances (800 frames of 20 ms),
80 target units of a 500-unit BPE vocabulary, joint dimension 512 over a BASE-size
encoder (768) and a 640-unit LSTM prediction network. The encoder and prediction
outputs are leaves, so the numbers are the joint tensor's cost alone, what
``model.loss_chunk`` (``speechssl2.finetune.joint_loss``) bounds. Memory: the peak
tensor memory of the step (``bench/encoder.py``'s ``peak_memory_mb``: CUDA peak
allocation, or on CPU the torch profiler's allocation events).

    python bench/transducer_memory.py --batch 4 --chunks 0 1 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.encoder import peak_memory_mb  # noqa: E402
from speechssl2.finetune.heads import RNNTLoss  # noqa: E402
from speechssl2.finetune.joint_loss import joint_rnnt_loss  # noqa: E402
from speechssl2.finetune.transducer import Joiner  # noqa: E402


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=800, help="encoder frames per utterance (16 s at 20 ms)")
    p.add_argument("--labels", type=int, default=80, help="target units per utterance")
    p.add_argument("--vocab", type=int, default=500)
    p.add_argument("--joint-dim", type=int, default=512)
    p.add_argument("--encoder-dim", type=int, default=768)
    p.add_argument("--predictor-dim", type=int, default=640)
    p.add_argument("--chunks", type=int, nargs="+", default=[0, 1, 2], help="loss_chunk values (0 = whole batch)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    joiner = Joiner(args.encoder_dim, args.predictor_dim, args.joint_dim, args.vocab).to(device)
    enc = torch.randn(args.batch, args.frames, args.encoder_dim, device=device, requires_grad=True)
    pred = torch.randn(args.batch, args.labels + 1, args.predictor_dim, device=device, requires_grad=True)
    lengths = torch.full((args.batch,), args.frames, device=device)
    target_lens = torch.full((args.batch,), args.labels, device=device)
    targets = torch.randint(1, args.vocab, (args.batch, args.labels), device=device)
    criterion = RNNTLoss()
    rows: List[Dict[str, object]] = []
    for chunk in args.chunks:
        def step() -> None:
            joint_rnnt_loss(joiner, enc, pred, lengths, targets, target_lens, criterion, chunk=chunk).backward()
        start = time.perf_counter()
        mb = peak_memory_mb(step, device)
        rows.append(dict(chunk=chunk, peak_mb=mb, seconds=time.perf_counter() - start))
    whole = next((r["peak_mb"] for r in rows if r["chunk"] == 0), None)
    joint_mb = args.batch * args.frames * (args.labels + 1) * args.vocab * 4 / 2**20
    print(f"device={device} threads={args.threads} B={args.batch} T={args.frames} U={args.labels} V={args.vocab} "
          f"J={args.joint_dim}; one (B, T, U+1, V) float32 tensor = {joint_mb:.0f} MB")
    print("| loss_chunk | peak MB | x whole batch | step s (profiled) |")
    print("|---|---|---|---|")
    for r in rows:
        ratio = f"{r['peak_mb'] / whole:.2f}" if whole else "-"
        print(f"| {r['chunk'] or 'whole batch'} | {r['peak_mb']:.0f} | {ratio} | {r['seconds']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
