"""Encoder training-step throughput: speechssl2 vs transformers vs torchaudio, same weights.

For each model (BASE-size wav2vec 2.0, HuBERT, WavLM) a ``transformers`` model is built
from its default config with random init (no hub access), saved to a temporary folder
and imported into speechssl2 with ``speechssl2.models.io.hf.load_hf`` and into torchaudio
with ``torchaudio.models.wav2vec2.utils.import_huggingface_model``: all three hold the
same weights. torchaudio's WavLM cannot take lengths (its attention asserts on the
padding mask in torchaudio 2.11), so it runs the padded batch unmasked: the same compute.
Each timed step is forward + backward in train mode (dropouts on,
LayerDrop and HF's SpecAugment off so every implementation does the same work) on one
padded batch whose lengths fall linearly from ``--seconds`` to 60 % of it.

Timing: the implementations are run round-robin, ``--repeats`` times each after one
warm-up step, and the fastest step is reported (``--stat median`` for the median), so
load from other processes hits them alike; compare ratios within one run, not absolute
numbers across runs. On CPU the clock is the process's CPU time (``--clock cpu``,
``time.process_time``) with one torch thread by default: on a machine shared with other
jobs, wall time mostly measures the other jobs, and several threads mostly measure
synchronisation waits. ``--clock wall --threads N`` measures the usual way.

``--impls ...,speechssl2-plain`` adds our model with its fast paths (masked group norm,
WavLM position mask, CPU runs one utterance at a time) swapped back for the plain
formulas and the padded batch: before/after in one run.
``speechssl2-sdpa`` is our model with WavLM's gated bias always made dense for SDPA; on
CUDA ``speechssl2`` applies it inside FlexAttention instead, but only without active
attention dropout (``--attention-dropout 0``, all implementations alike; default 0.1).

Memory: on CUDA ``torch.cuda.max_memory_allocated`` over one step. On CPU the peak of
the tensor memory the torch profiler (``profile_memory=True``) sees allocated and freed
during one step, at operator granularity, parameter gradients included (they are reset
to None before the step); RSS-based numbers would mix in the allocator's caching.

FLOPs: counted once per model with ``torch.utils.flop_counter.FlopCounterMode`` on the
speechssl2-sdpa step of each utterance alone (matmuls and convs, forward + backward, valid
samples only: the useful work, whatever an implementation spends on padding; the counter
does not see inside FlexAttention, which does the same matmuls); "TFLOP/s" divides that
same count by each implementation's step time, and on CUDA MFU is that over the device's
dense peak for ``--precision``: bf16 autocast (bf16 tensor-core peak), tf32 (float32 with
TF32 matmuls and convolutions: TF32 peak) or fp32 (IEEE float32 everywhere: the
non-tensor-core peak).

    python bench/encoder.py --models wav2vec2,hubert,wavlm --batch 2 --seconds 4 --repeats 5 \
        --impls speechssl2,speechssl2-plain,transformers,torchaudio
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.models.io.hf import load_hf  # noqa: E402

SAMPLE_RATE = 16000
IMPLS = ("speechssl2", "transformers", "torchaudio", "speechssl2-plain", "speechssl2-sdpa")
HF_CLASSES = {"wav2vec2": ("Wav2Vec2Model", "Wav2Vec2Config"), "hubert": ("HubertModel", "HubertConfig"),
              "wavlm": ("WavLMModel", "WavLMConfig")}
# Dense peaks from NVIDIA's datasheets (the sparse figures are twice these): bf16 and TF32 on
# tensor cores, fp32 without. Matched as whole words of the device name, first match wins.
PEAK_TFLOPS = {
    "H100 PCIe": dict(bf16=756.0, tf32=378.0, fp32=51.0),
    "H100": dict(bf16=989.0, tf32=494.5, fp32=67.0),
    "H200": dict(bf16=989.0, tf32=494.5, fp32=67.0),
    "A100": dict(bf16=312.0, tf32=156.0, fp32=19.5),
    "L40S": dict(bf16=362.0, tf32=183.0, fp32=91.6),
    "L4": dict(bf16=121.0, tf32=60.0, fp32=30.3),
    "A10": dict(bf16=125.0, tf32=62.5, fp32=31.2),
}


def hf_model(kind: str, seed: int, tiny: bool, attention_dropout: float = 0.1) -> nn.Module:
    """A randomly initialised BASE-size (or, with ``tiny``, a 2-layer) transformers model."""
    import transformers

    model_name, cfg_name = HF_CLASSES[kind]
    overrides = dict(layerdrop=0.0, mask_time_prob=0.0, mask_feature_prob=0.0, attention_dropout=attention_dropout)
    if tiny:
        overrides.update(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                         conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(seed)
    return getattr(transformers, model_name)(getattr(transformers, cfg_name)(**overrides))


def build_all(kind: str, impls: List[str], seed: int, tiny: bool,
              attention_dropout: float = 0.1) -> Dict[str, nn.Module]:
    """The same weights in every requested implementation."""
    ref = hf_model(kind, seed, tiny, attention_dropout)
    models: Dict[str, nn.Module] = {}
    ours = [impl for impl in IMPLS if impl.startswith("speechssl2") and impl in impls]
    if ours:
        with tempfile.TemporaryDirectory() as tmp:
            ref.save_pretrained(tmp)
            for impl in ours:
                models[impl], _ = load_hf(tmp)
    if "torchaudio" in impls:
        from torchaudio.models.wav2vec2.utils import import_huggingface_model

        with warnings.catch_warnings(), _quiet_logging():
            warnings.simplefilter("ignore")
            models["torchaudio"] = import_huggingface_model(ref)
    if "transformers" in impls:
        models["transformers"] = ref
    return models


@contextlib.contextmanager
def _quiet_logging():
    import logging

    logger = logging.getLogger("torchaudio")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def make_batch(batch: int, seconds: float, device: torch.device, seed: int = 0):
    """Padded waveforms (B, S) and lengths (B,) falling linearly from ``seconds`` to 0.6 x."""
    gen = torch.Generator().manual_seed(seed)
    longest = int(seconds * SAMPLE_RATE)
    fractions = torch.linspace(1.0, 0.6, batch) if batch > 1 else torch.ones(1)
    lengths = (fractions * longest).long()
    wav = torch.randn(batch, longest, generator=gen) * 0.1
    wav[torch.arange(longest)[None] >= lengths[:, None]] = 0.0
    return wav.to(device), lengths.to(device)


def plain_group_norm(x: Tensor, valid: Tensor, groups: int, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """The masked-sum group norm speechssl2 used before its fast path (for before/after runs)."""
    b, c, t = x.shape
    xg = x.float().view(b, groups, c // groups, t)
    m = valid[:, None, None, :].to(xg.dtype)
    count = m.sum(dim=(2, 3), keepdim=True) * (c // groups)
    mean = (xg * m).sum(dim=(2, 3), keepdim=True) / count
    var = (((xg - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / count
    y = ((xg - mean) / torch.sqrt(var + eps)).view(b, c, t).to(x.dtype)
    return y * weight[None, :, None] + bias[None, :, None]


def plain_position_mask(gate: Tensor, bias: Tensor, pad: Tensor) -> Tensor:
    """The two-pass WavLM mask speechssl2 used before its fast path: product, then masked_fill_."""
    return (gate * bias[None]).masked_fill_(pad[:, None, None, :], float("-inf"))


@contextlib.contextmanager
def swapped(group_norm: Callable[..., Tensor], position_mask: Callable[..., object]):
    """Our model with its group norm and WavLM position mask functions replaced (restored after)."""
    from speechssl2.models import conv_frontend, transformer

    saved = conv_frontend.masked_group_norm, transformer.gated_position_mask
    conv_frontend.masked_group_norm, transformer.gated_position_mask = group_norm, position_mask
    try:
        yield
    finally:
        conv_frontend.masked_group_norm, transformer.gated_position_mask = saved


@contextlib.contextmanager
def plain_formulas():
    """Swap speechssl2's fast paths for the plain formulas and run the padded batch (impl ``speechssl2-plain``)."""
    from speechssl2.models.unpadded import padding_mode

    with swapped(plain_group_norm, plain_position_mask), padding_mode("padded"):
        yield


def sdpa_position_mask():
    """WavLM's gated bias always made dense for SDPA, never FlexAttention (impl ``speechssl2-sdpa``)."""
    from speechssl2.models.functional import masked_group_norm
    from speechssl2.models.wavlm import gated_position_mask

    return swapped(masked_group_norm, functools.partial(gated_position_mask, flex=False))


def forward_fn(impl: str, model: nn.Module, wav: Tensor, lengths: Tensor,
               wavlm: bool = False) -> Callable[[], Tensor]:
    """The model's last hidden state (B, T, D) on the padded batch, the way ``impl`` is run."""
    mask = (torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None]).long()

    def forward() -> Tensor:
        if impl == "speechssl2":
            return model(wav, lengths).last_hidden_state
        if impl == "speechssl2-plain":
            with plain_formulas():
                return model(wav, lengths).last_hidden_state
        if impl == "speechssl2-sdpa":
            with sdpa_position_mask():
                return model(wav, lengths).last_hidden_state
        if impl == "torchaudio":  # its WavLM asserts on a padding mask (2.11): run it unmasked, same compute
            return model(wav, None if wavlm else lengths)[0]
        return model(wav, attention_mask=mask).last_hidden_state

    return forward


def step_fn(impl: str, model: nn.Module, wav: Tensor, lengths: Tensor, amp: bool,
            wavlm: bool = False) -> Callable[[], None]:
    """One forward + backward of ``mean(last_hidden_state ** 2)``."""
    forward = forward_fn(impl, model, wav, lengths, wavlm)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast():
            out = forward()
        out.float().pow(2).mean().backward()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(step: Callable[[], None], device: torch.device) -> float:
    """Peak tensor memory of one step above what was allocated before it (module doc)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def count_flops(step: Callable[[], None]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def valid_flops(model: nn.Module, wav: Tensor, lengths: Tensor, amp: bool) -> float:
    """FLOPs of one step on the valid samples only: each utterance counted alone, so padding adds nothing."""
    return sum(count_flops(step_fn("speechssl2-sdpa", model, wav[i : i + 1, :n], lengths[i : i + 1], amp))
               for i, n in enumerate(lengths.tolist()))


def device_peak_tflops(device: torch.device, precision: str = "bf16") -> Optional[float]:
    """Dense peak TFLOP/s of a CUDA device at ``precision`` (bf16, tf32, fp32); None if unknown or not CUDA."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks[precision] for key, peaks in PEAK_TFLOPS.items()
                 if re.search(rf"\b{re.escape(key)}\b", name)), None)


def set_precision(precision: str) -> None:
    """On CUDA: float32 matmuls and convolutions in TF32 (``tf32``) or IEEE float32 (``bf16``: autocast, ``fp32``)."""
    mode = "tf32" if precision == "tf32" else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode


def bench_model(kind: str, args: argparse.Namespace, device: torch.device) -> List[Dict[str, object]]:
    models = build_all(kind, args.impls, args.seed, args.tiny, args.attention_dropout)
    wav, lengths = make_batch(args.batch, args.seconds, device)
    audio_seconds = float(lengths.sum()) / SAMPLE_RATE
    amp = device.type == "cuda" and args.precision == "bf16"
    steps = {}
    for impl in args.impls:
        model = models[impl].to(device).train()
        if args.compile:
            model = torch.compile(model)
        steps[impl] = step_fn(impl, model, wav, lengths, amp, wavlm=kind == "wavlm")
    ours = next((impl for impl in args.impls if impl.startswith("speechssl2")), None)
    flops = valid_flops(models[ours], wav, lengths, amp) if ours and not args.compile else float("nan")
    for step in steps.values():  # warm-up (and compilation)
        step()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times: Dict[str, List[float]] = {impl: [] for impl in args.impls}
    for _ in range(args.repeats):
        for impl, step in steps.items():
            sync(device)
            start = clock()
            step()
            sync(device)
            times[impl].append(clock() - start)
    memory = {impl: peak_memory_mb(step, device) for impl, step in steps.items()} if not args.no_memory else {}
    peak = device_peak_tflops(device, args.precision)
    rows = []
    for impl in args.impls:
        median = statistics.median(times[impl]) if args.stat == "median" else min(times[impl])
        tflops = flops / median / 1e12
        rows.append(dict(model=kind, impl=impl, step_s=median, audio_per_s=audio_seconds / median,
                         mem_mb=memory.get(impl, float("nan")), tflops=tflops,
                         mfu=(tflops / peak) if peak else None))
    base = {r["impl"]: r["audio_per_s"] for r in rows}
    for r in rows:
        others = [v for k, v in base.items() if not k.startswith("speechssl2")]
        r["vs_ours"] = r["audio_per_s"] / base["speechssl2"] if "speechssl2" in base else float("nan")
        r["ours_vs_best_peer"] = (base["speechssl2"] / max(others)) if others and "speechssl2" in base else None
    return rows


def markdown(rows: List[Dict[str, object]], show_mfu: bool, clock: str = "wall") -> str:
    head = ["model", "impl", f"step ({clock} s)", "audio s / s", "x speechssl2", "peak mem (MiB)", "TFLOP/s"]
    if show_mfu:
        head.append("MFU")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["impl"], f"{r['step_s']:.3f}", f"{r['audio_per_s']:.2f}", f"{r['vs_ours']:.2f}",
                 f"{r['mem_mb']:.0f}", f"{r['tflops']:.3f}"]
        if show_mfu:
            cells.append(f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    summary = []
    for kind in dict.fromkeys(r["model"] for r in rows):
        ratio = next(r["ours_vs_best_peer"] for r in rows if r["model"] == kind)
        if ratio is not None:
            summary.append(f"{kind}: speechssl2 / fastest peer = {ratio:.2f}x")
    return "\n".join(lines) + ("\n\n" + "; ".join(summary) if summary else "")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="wav2vec2,hubert,wavlm", help="comma list of wav2vec2, hubert, wavlm")
    p.add_argument("--impls", default=",".join(IMPLS[:3]),
                   help="comma list of " + ", ".join(IMPLS) + " (speechssl2-plain: our model with the fast "
                   "paths swapped for the plain formulas, for before/after)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seconds", type=float, default=4.0, help="longest utterance of the batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true", help="torch.compile every model (FLOPs not counted then)")
    p.add_argument("--precision", choices=("bf16", "tf32", "fp32"), default="bf16",
                   help="on CUDA: bf16 autocast, float32 with TF32 matmuls/convs, or IEEE float32; "
                   "MFU divides by the matching dense peak")
    p.add_argument("--attention-dropout", type=float, default=0.1,
                   help="every model's attention dropout (0: WavLM's FlexAttention path runs on CUDA)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--clock", choices=("cpu", "wall"), default=None,
                   help="cpu: process CPU time (default on CPU); wall: elapsed time (always on CUDA)")
    p.add_argument("--stat", choices=("min", "median"), default="min", help="step time over the repeats")
    p.add_argument("--no-memory", action="store_true", help="skip the (profiled, slower) memory step")
    p.add_argument("--tiny", action="store_true", help="2-layer, 64-dim models (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.clock = args.clock or ("cpu" if args.device == "cpu" else "wall")
    if args.clock == "cpu" and args.device != "cpu":
        p.error("--clock cpu measures CPU time: use --clock wall on an accelerator")
    args.models = [m for m in args.models.split(",") if m]
    args.impls = [i for i in args.impls.split(",") if i]
    bad = [m for m in args.models if m not in HF_CLASSES] + [i for i in args.impls if i not in IMPLS]
    if bad:
        p.error(f"unknown model/impl {bad}")
    return args


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        set_precision(args.precision)
    rows: List[Dict[str, object]] = []
    for kind in args.models:
        rows += bench_model(kind, args, device)
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} seconds={args.seconds} "
          f"repeats={args.repeats} ({args.stat}, {args.clock} clock) compile={args.compile} "
          f"attention_dropout={args.attention_dropout} torch={torch.__version__}"
          + (f" precision={args.precision} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(markdown(rows, show_mfu=device.type == "cuda", clock=args.clock))
    return rows


if __name__ == "__main__":
    main()
