"""Pre-training step throughput of the small (and tiny) presets, next to the BASE encoder's FLOP/s.

One timed step is what ``speechssl2.train.trainer`` does per update with one micro-batch:
the SSL model's forward (span masking, upstream, objective), ``(loss * sample_size).backward()``,
the gradient divided by the sample size, clipping, AdamW's step and ``zero_grad``, in train
mode. Each objective runs on its own preset (``<upstream>_<size>``) with the objective settings
of the BASE recipes, except the layers an objective reads, which follow the preset's depth:
HuBERT and WavLM (and ILS on the intermediate layer as well) predict random cluster IDs
(100 classes, the HuBERT k-means targets' shape); wav2vec (2019) predicts 12 steps ahead
without masking. The batch: ``--batch`` random waveforms whose lengths fall linearly from
``--seconds`` to ``--min-fraction`` of it (8 utterances of 4 to 2 s by default).

Timing as ``bench/encoder.py``: the presets round-robin, one warm-up step each, the best of
``--repeats`` steps. With one thread the clock is the process's CPU time (what a loaded
machine cannot inflate); with more threads (``--threads``, default ``1,2``) it is wall time,
since CPU time would count every thread. FLOPs (matmuls and convolutions, forward and
backward) are counted once per preset with ``torch.utils.flop_counter.FlopCounterMode`` on
one step; "GFLOP/s" divides them by the one-thread CPU time. The BASE reference row is
``bench/encoder.py``'s speechssl2 HuBERT BASE forward + backward on the same batch, timed
and counted by that script's functions in this run; "x BASE" is each row's GFLOP/s over it.

    python bench/train_step.py --models wav2vec,wav2vec2,hubert,wavlm,w2v_bert,ils --sizes small,tiny
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.encoder import build_all, count_flops, make_batch, step_fn  # noqa: E402
from speechssl2.models.ssl import SSLModel  # noqa: E402
from speechssl2.registry import load_components  # noqa: E402

SAMPLE_RATE = 16000
NUM_CLASSES = 100
HUBERT_MASK = {"prob": 0.08, "span": 10}
WAV2VEC2_MASK = {"prob": 0.065, "span": 10}


def objectives(model: str, num_layers: int) -> tuple:
    """(masking, objective list) of ``model`` on an upstream of ``num_layers`` layers."""
    hubert = {"name": "hubert", "num_classes": NUM_CLASSES}
    return {
        "wav2vec": ({"prob": 0.0, "span": 1}, [{"name": "wav2vec", "prediction_steps": 12, "num_negatives": 10}]),
        "wav2vec2": (WAV2VEC2_MASK, [{"name": "wav2vec2", "num_negatives": 100}]),
        "hubert": (HUBERT_MASK, [hubert]),
        "wavlm": (HUBERT_MASK, [hubert]),
        "ils": (HUBERT_MASK, [{**hubert, "predict_layers": [max(num_layers // 2, 1), num_layers]}]),
        "w2v_bert": (WAV2VEC2_MASK, [{"name": "w2v_bert", "contrastive_layers": max(num_layers // 2, 1),
                                      "num_negatives": 100}]),
    }[model]


def build_model(model: str, size: str, seed: int) -> SSLModel:
    from speechssl2.models.upstream import build_upstream

    torch.manual_seed(seed)
    up = build_upstream({"name": f"{model}_{size}"})
    num_layers = len(up.encoder.layers)
    masking, objs = objectives(model, num_layers)
    return SSLModel(up, objs, masking).train()


def audio_batch(batch: int, seconds: float, min_fraction: float, seed: int) -> tuple:
    """Padded random waveforms (B, S) and lengths (B,) falling linearly from ``seconds`` to ``min_fraction`` x."""
    wav, _ = make_batch(batch, seconds, torch.device("cpu"), seed)
    fractions = torch.linspace(1.0, min_fraction, batch) if batch > 1 else torch.ones(1)
    lengths = (fractions * wav.shape[1]).long()
    wav[torch.arange(wav.shape[1])[None] >= lengths[:, None]] = 0.0
    return wav, lengths


def ssl_batch(model: SSLModel, wav: torch.Tensor, lengths: torch.Tensor, seed: int) -> Dict[str, Any]:
    """The waveforms with random frame labels, collated as ``speechssl2.data.dataset`` does."""
    frames = model.upstream.frame_lengths(lengths)
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(NUM_CLASSES, (len(lengths), int(frames.max())), generator=gen)
    targets[torch.arange(targets.shape[1])[None] >= frames[:, None]] = -100
    return {"audio": wav, "audio_lens": lengths, "sample_rate": SAMPLE_RATE, "targets": targets,
            "target_lens": frames}


def train_step_fn(model: SSLModel, batch: Dict[str, Any], lr: float = 1e-4) -> Callable[[], None]:
    """One update as the trainer makes it (module doc)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    updates = [0]

    def step() -> None:
        out = model(batch)
        (out.loss.float() * out.sample_size).backward()
        for p in params:
            if p.grad is not None:
                p.grad.div_(max(out.sample_size, 1))
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updates[0] += 1
        model.set_num_updates(updates[0])

    return step


def best_time(step: Callable[[], None], threads: int, repeats: int) -> float:
    """Fastest of ``repeats`` steps: CPU time with one thread, wall time with more (module doc)."""
    torch.set_num_threads(threads)
    clock = time.process_time if threads == 1 else time.perf_counter
    times = []
    for _ in range(repeats):
        start = clock()
        step()
        times.append(clock() - start)
    return min(times)


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    load_components()
    steps: Dict[str, Callable[[], None]] = {}
    info: Dict[str, Dict[str, Any]] = {}
    wav, lengths = audio_batch(args.batch, args.seconds, args.min_fraction, args.seed)
    audio = float(lengths.sum()) / SAMPLE_RATE
    for size in args.sizes:
        for model in args.models:
            name = f"{model}_{size}"
            ssl = build_model(model, size, args.seed)
            steps[name] = train_step_fn(ssl, ssl_batch(ssl, wav, lengths, args.seed))
            info[name] = dict(preset=name, params=sum(p.numel() for p in ssl.upstream.parameters()), audio=audio)
    if args.base:
        base = build_all("hubert", ["speechssl2"], args.seed, tiny=args.base == "tiny")["speechssl2"].train()
        name = f"hubert BASE encoder ({args.base}, fwd+bwd)"
        steps[name] = step_fn("speechssl2", base, wav, lengths, amp=False)
        info[name] = dict(preset=name, params=sum(p.numel() for p in base.parameters()), audio=audio)
    torch.set_num_threads(1)
    for name, step in steps.items():
        step()  # warm-up
        info[name]["flops"] = count_flops(step)
    times: Dict[str, Dict[int, List[float]]] = {name: {t: [] for t in args.threads} for name in steps}
    for threads in args.threads:
        for _ in range(args.repeats):  # round-robin, so load from other processes hits every preset alike
            for name, step in steps.items():
                times[name][threads].append(best_time(step, threads, 1))
    rows = []
    for name in steps:
        row = dict(info[name])
        for threads in args.threads:
            row[f"step_{threads}"] = min(times[name][threads])
            row[f"audio_per_s_{threads}"] = row["audio"] / row[f"step_{threads}"]
        row["gflops"] = row["flops"] / row[f"step_{args.threads[0]}"] / 1e9 if 1 in args.threads else float("nan")
        rows.append(row)
    reference = rows[-1]["gflops"] if args.base else float("nan")
    for row in rows:
        row["x_base"] = row["gflops"] / reference
    return rows


def markdown(rows: List[Dict[str, Any]], threads: List[int]) -> str:
    head = ["preset", "params (M)", "GFLOP / step"]
    for t in threads:
        head += [f"step ({'CPU' if t == 1 else 'wall'} s, {t} thr)", f"audio s / s ({t} thr)"]
    head += ["GFLOP/s (1 thr)", "x BASE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["preset"], f"{r['params'] / 1e6:.2f}", f"{r['flops'] / 1e9:.1f}"]
        for t in threads:
            cells += [f"{r[f'step_{t}']:.3f}", f"{r[f'audio_per_s_{t}']:.2f}"]
        cells += [f"{r['gflops']:.1f}", f"{r['x_base']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="wav2vec,wav2vec2,hubert,wavlm,w2v_bert,ils",
                   help="comma list of wav2vec, wav2vec2, hubert, wavlm, w2v_bert, ils")
    p.add_argument("--sizes", default="small,tiny", help="comma list of preset sizes (small, tiny)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0, help="longest utterance of the batch")
    p.add_argument("--min-fraction", type=float, default=0.5, help="shortest utterance / longest")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="comma list of torch thread counts (1 must come first)")
    p.add_argument("--base", choices=("base", "tiny", ""), default="base",
                   help="the reference encoder: HuBERT BASE, its 2-layer tiny twin (smoke tests), or none")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.threads = [int(t) for t in args.threads.split(",") if t]
    return args


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    rows = run(args)
    print(f"batch={args.batch} seconds={args.seconds}..{args.seconds * args.min_fraction:g} repeats={args.repeats} "
          f"(best; 1 thread: CPU clock, more: wall clock) torch={torch.__version__}")
    print(markdown(rows, args.threads))
    return rows


if __name__ == "__main__":
    main()
