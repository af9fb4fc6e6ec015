"""Scale by simulation: metadata of a 60k-hour corpus (1M cuts, no audio) through the data steps.

A synthetic cut manifest of N cuts (LibriLight-like: 60k hours over 1M cuts, 216 s mean,
durations uniform in 1..431 s; recordings point at files that do not exist) goes through the
steps whose cost grows with the number of cuts, each timed (process CPU seconds) with its peak extra
resident memory (Linux ``VmHWM`` reset before the step via ``/proc/self/clear_refs``):

* ``lazy load``: ``open_cuts`` + one pass over every cut (total duration);
* ``sampler start``: ``make_dataloader(...).sampler`` (DynamicBucketingSampler, shuffle,
  bins estimated from the data) up to its first batch;
* ``attach labels``: ``merge_parts`` (what ``dump_labels`` does once all shards are
  labelled) over ``--nshard`` partial manifests whose cuts carry a label ``TemporalArray``;
* ``k-means sample``: ``sample_utterances`` (``--percent`` of the utterances, capped at
  ``--max-frames``) over ``--nshard`` feature shards of 39-dim MFCC at 50 Hz, stored as sparse
  ``.npy`` files (full logical size, no disk used; the sampled frames read as zeros);
* ``Shar index``: ``shar_shards`` + one pass over the ``cuts`` field of a Shar directory
  (``--shard-size`` cuts a shard; metadata only, as reading the index needs no tar).

Then the labelling rate (MFCC + nearest of 100 centroids, one thread, on noise) and what a
60k-hour run needs. ``--sizes`` too large for the machine can be left out and extrapolated
with ``--extrapolate``: rows marked ``extrapolated`` follow each step's growth between the
two largest measured sizes (see ``extrapolate``).

    python bench/scale.py --sizes 10000,100000,1000000
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.data.loader import make_dataloader, open_cuts  # noqa: E402
from speechssl2.data.shar import shar_shards  # noqa: E402
from speechssl2.targets.kmeans import NearestCentroid, sample_utterances  # noqa: E402
from speechssl2.targets.labels import merge_parts  # noqa: E402
from speechssl2.targets.shards import ShardFiles, shard_bounds  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_RATE, FRAME_RATE, MFCC_DIM, MEAN_SECONDS = 16000, 50, 39, 216.0
FIELD = "hubert_labels"
STEPS = ("lazy load", "sampler start", "attach labels", "k-means sample", "Shar index")


def cut_entry(index: int, duration: float, shar: bool = False, labels: bool = False) -> dict:
    """One MonoCut as lhotse serializes it; a file source, or a Shar one (data in the tars)."""
    cid = f"utt{index:08d}"
    source = {"type": "shar", "channels": [0], "source": ""} if shar else \
        {"type": "file", "channels": [0], "source": f"/synthetic/{cid[-3:]}/{cid}.flac"}
    samples = round(duration * SAMPLE_RATE)
    entry = {"id": cid, "start": 0, "duration": samples / SAMPLE_RATE, "channel": 0,
             "supervisions": [{"id": cid, "recording_id": cid, "start": 0.0, "duration": samples / SAMPLE_RATE,
                               "channel": 0, "speaker": f"spk{index % 7000:04d}"}],
             "recording": {"id": cid, "sources": [source], "sampling_rate": SAMPLE_RATE, "num_samples": samples,
                           "duration": samples / SAMPLE_RATE, "channel_ids": [0]},
             "type": "MonoCut"}
    if labels:
        frames = int(duration * FRAME_RATE)
        entry["custom"] = {FIELD: {"array": {"storage_type": "numpy_files", "storage_path": "/synthetic/labels",
                                             "storage_key": f"{cid}.npy", "shape": [frames]},
                                   "temporal_dim": 0, "frame_shift": 1 / FRAME_RATE, "start": 0}}
    return entry


def write_jsonl(path: Path, entries) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")


def durations(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1.0, 2 * MEAN_SECONDS - 1.0, n)


def build(work: Path, n: int, nshard: int, shard_size: int, seed: int) -> Dict[str, Path]:
    """Manifest, label parts, sparse feature shards and a metadata-only Shar directory for n cuts."""
    dur = durations(n, seed)
    write_jsonl(work / "cuts.jsonl.gz", (cut_entry(i, d) for i, d in enumerate(dur)))
    parts, shards = [], []
    for rank in range(nshard):
        start, end = shard_bounds(n, nshard, rank)
        parts.append(work / f"cuts_{rank}_{nshard}.jsonl.gz")
        write_jsonl(parts[-1], (cut_entry(i, dur[i], labels=True) for i in range(start, end)))
        files = ShardFiles(work / "feats", rank, nshard)
        files.feat_dir.mkdir(exist_ok=True)
        frames = (dur[start:end] * FRAME_RATE).astype(np.int64)
        files.lengths.write_text("".join(f"utt{i:08d}\t{f}\n" for i, f in zip(range(start, end), frames)))
        sparse_npy(files.feats, (int(frames.sum()), MFCC_DIM))
        files.marker.write_text("{}")
        shards.append(files)
    shar = work / "shar"
    shar.mkdir()
    for k, start in enumerate(range(0, n, shard_size)):
        write_jsonl(shar / f"cuts.{k:06d}.jsonl.gz",
                    (cut_entry(i, dur[i], shar=True) for i in range(start, min(n, start + shard_size))))
    return {"manifest": work / "cuts.jsonl.gz", "shar": shar, "work": work}


def sparse_npy(path: Path, shape: tuple) -> None:
    """An .npy of ``shape`` float32 whose data is a hole in the file (np.load(mmap_mode='r') reads zeros)."""
    header = np.lib.format.header_data_from_array_1_0(np.empty((0, shape[1]), np.float32))
    header["shape"] = shape
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + shape[0] * shape[1] * 4)


def measure(step: Callable[[], object]) -> tuple:
    """(CPU seconds, peak extra MiB) of one call.

    Process CPU time, not wall time: on a shared machine the wall clock measures the
    neighbours (the steps are single-threaded and read local files)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    base = _status("VmRSS")
    start = time.process_time()
    step()
    return time.process_time() - start, (_status("VmHWM") - base) / 1024


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def run_size(n: int, args: argparse.Namespace) -> Dict[str, tuple]:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        paths = build(Path(tmp), n, args.nshard, args.shard_size, args.seed)
        files = [ShardFiles(paths["work"] / "feats", r, args.nshard) for r in range(args.nshard)]
        parts = sorted(paths["work"].glob("cuts_*_*.jsonl.gz"))
        steps = {
            "lazy load": lambda: sum(c.duration for c in open_cuts(paths["manifest"])),
            "sampler start": lambda: next(iter(make_dataloader(
                paths["manifest"], max_duration=args.max_duration, shuffle=True, num_buckets=30).sampler)),
            "attach labels": lambda: merge_parts(list(open_cuts(paths["manifest"])), parts,
                                                 paths["work"] / "labelled.jsonl.gz"),
            "k-means sample": lambda: sample_utterances(files, args.percent, args.max_frames, args.seed),
            "Shar index": lambda: sum(1 for _ in open_cuts(paths["shar"])) + len(shar_shards(paths["shar"])),
        }
        return {name: measure(fn) for name, fn in steps.items()}


def label_rate(seconds: float, seed: int) -> float:
    """Seconds of audio labelled per CPU second: MFCC (+deltas) and nearest of 100 centroids, 1 thread."""
    from speechssl2.targets.features import MfccFeatures

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    wav = torch.randn(int(seconds * SAMPLE_RATE), generator=gen) * 0.1
    mfcc = MfccFeatures(sample_rate=SAMPLE_RATE)
    labeler = NearestCentroid(np.random.default_rng(seed).normal(size=(100, MFCC_DIM)).astype(np.float32))
    start = time.process_time()
    labeler(mfcc(wav).numpy())
    return seconds / (time.process_time() - start)


def extrapolate(rows: Dict[int, Dict[str, tuple]], measured: List[int], n: int) -> Dict[str, tuple]:
    """Each step's time and memory at ``n`` cuts on the power law through the two largest measured sizes.

    ``v(n) = v(n2) * (n / n2) ** b`` with ``b`` the growth exponent between them (0 when a value
    did not grow: a flat cost such as the k-means sample, capped by ``--max-frames``, stays flat).
    With one measured size, linear growth is assumed.
    """
    n2 = measured[-1]
    n1 = measured[-2] if len(measured) > 1 else None
    out = {}
    for step in STEPS:
        values = []
        for k in (0, 1):
            v2 = rows[n2][step][k]
            v1 = rows[n1][step][k] if n1 is not None else None
            b = 1.0 if v1 is None else (math.log(v2 / v1) / math.log(n2 / n1) if v1 > 0 and v2 > v1 else 0.0)
            values.append(v2 * (n / n2) ** b)
        out[step] = tuple(values)
    return out


def table(rows: Dict[int, Dict[str, tuple]], measured: List[int]) -> str:
    sizes = sorted(rows)
    head = "| step | " + " | ".join(f"{n:,} cuts" + ("" if n in measured else " (extrapolated)") for n in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]
    for step in STEPS:
        cells = [f"{rows[n][step][0]:.2f} CPU s, {rows[n][step][1]:.0f} MiB" for n in sizes]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flac_ratio(recordings: Path, files: int) -> Optional[float]:
    """FLAC bytes / 16-bit PCM bytes over the first ``files`` FSDD recordings (None without FSDD)."""
    import io

    import soundfile as sf

    paths = sorted(recordings.glob("*.wav"))[:files]
    if not paths:
        return None
    pcm = flac = 0
    for path in paths:
        audio, rate = sf.read(path, dtype="int16")
        buffer = io.BytesIO()
        sf.write(buffer, audio, rate, format="FLAC", subtype="PCM_16")
        pcm, flac = pcm + audio.size * 2, flac + len(buffer.getvalue())
    return flac / pcm


def needs(hours: float, rate: float, jobs: int, rows: Dict[str, tuple], source: str, ratio: Optional[float]) -> str:
    """What a run of ``hours`` of audio needs; RAM from ``rows`` (described by ``source``)."""
    seconds = hours * 3600
    frames = seconds * FRAME_RATE
    tb = 1e12
    kept = ratio if ratio is not None else 0.6
    how = f"FLAC/PCM {kept:.2f} measured on FSDD" if ratio is not None else "FLAC/PCM 0.6 assumed"
    lines = [
        f"| audio (16 kHz, 16-bit, FLAC; {how}) | {seconds * SAMPLE_RATE * 2 * kept / tb:.1f} TB |",
        f"| iteration-1 features (39-dim MFCC float32, 50 Hz, every frame dumped) | {frames * MFCC_DIM * 4 / tb:.2f} TB |",
        f"| iteration-2 features (768-dim layer, float16, 50 Hz) | {frames * 768 * 2 / tb:.1f} TB |",
        f"| labels (int32, 50 Hz) | {frames * 4 / 1e9:.0f} GB |",
        f"| RAM per data-loader process: lazy manifest + sampler ({source}) | "
        f"{rows['lazy load'][1] + rows['sampler start'][1]:.0f} MiB |",
        f"| RAM of the label merge ({source}) | {rows['attach labels'][1]:.0f} MiB |",
        f"| MFCC labelling rate (1 CPU thread, measured) | {rate:.0f} s of audio / CPU s |",
        f"| MFCC labelling, one CPU | {seconds / rate / 3600:.0f} h |",
        f"| MFCC labelling over {jobs} Slurm array jobs (1 CPU each) | {seconds / rate / 3600 / jobs:.1f} h |",
    ]
    return "| what | needs |\n|---|---|\n" + "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[int, Dict[str, tuple]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="cut counts to measure")
    p.add_argument("--extrapolate", default="", help="cut counts to extrapolate linearly from the largest measured")
    p.add_argument("--nshard", type=int, default=8, help="feature/label shards (dump jobs)")
    p.add_argument("--shard-size", type=int, default=1000, help="cuts per Shar shard")
    p.add_argument("--max-duration", type=float, default=1600.0, help="seconds of audio per batch")
    p.add_argument("--percent", type=float, default=0.1, help="k-means: fraction of utterances sampled")
    p.add_argument("--max-frames", type=int, default=1_000_000, help="k-means: frame cap of the sample")
    p.add_argument("--rate-seconds", type=float, default=60.0, help="seconds of audio for the labelling rate")
    p.add_argument("--hours", type=float, default=60000.0, help="corpus size for the needs table")
    p.add_argument("--jobs", type=int, default=100, help="Slurm array jobs for the needs table")
    p.add_argument("--fsdd", default=str(SHARED / "fsdd" / "recordings"), help="recordings for the FLAC ratio")
    p.add_argument("--flac-files", type=int, default=200, help="recordings the FLAC ratio is measured on")
    p.add_argument("--tmp", default=None, help="scratch directory (default: the system's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    measured = [int(s) for s in args.sizes.split(",") if s]
    rows = {}
    for n in measured:
        rows[n] = run_size(n, args)
        print(f"measured {n:,} cuts", file=sys.stderr, flush=True)
    for n in (int(s) for s in args.extrapolate.split(",") if s):
        rows[n] = extrapolate(rows, sorted(measured), n)
    print(table(rows, measured))
    largest, cuts = max(rows), math.ceil(args.hours * 3600 / MEAN_SECONDS)
    scaled = {step: (t, mib * cuts / largest) for step, (t, mib) in rows[largest].items()}
    source = f"{cuts:,} cuts" + ("" if largest == cuts else f", scaled linearly from the {largest:,}-cut row") + \
        ("" if largest in measured else ", extrapolated")
    print()
    print(needs(args.hours, label_rate(args.rate_seconds, args.seed), args.jobs, scaled, source,
                flac_ratio(Path(args.fsdd), args.flac_files)))
    return rows


if __name__ == "__main__":
    main()
