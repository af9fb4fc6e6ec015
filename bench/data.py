"""Data-loader throughput: seconds of audio per second per core, FSDD with on-the-fly resampling.

FSDD (8 kHz wav, ``shared/data/fsdd``) goes through ``speechssl2.data.make_dataloader``
(lhotse bucketing sampler + ``CutBatchDataset``) in three configurations:

* ``8 kHz, no resampling``: read and pad only (the reference cost);
* ``16 kHz resampled``: lhotse resamples every cut on load;
* ``16 kHz + WavLM mixing``: plus ``UtteranceMixer`` (utterance mixing and the noise
  folder ``shared/data/noise``, resampled once and cached), at ``--mix-prob``.

One torch thread and ``num_workers=0`` by default, so the figure is per core; with
``--workers N`` the throughput is divided by N (plus the main process is idle-waiting).

    python bench/data.py --files 300 --max-duration 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.data.loader import make_dataloader  # noqa: E402
from speechssl2.data.mixing import UtteranceMixer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHSSL2_SHARED_DATA", REPO.parent / "shared" / "data"))


def fsdd_cuts(recordings: Path, files: int):
    from lhotse import CutSet, Recording, RecordingSet

    paths = sorted(recordings.glob("*.wav"))[:files]
    if not paths:
        raise FileNotFoundError(f"no FSDD wav files in {recordings}")
    recs = RecordingSet.from_recordings(Recording.from_file(p) for p in paths)
    return CutSet.from_manifests(recordings=recs).to_eager()


def throughput(cuts, sample_rate: int, transforms, max_duration: float, workers: int, epochs: int) -> Dict[str, float]:
    seconds = 0.0
    batches = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        loader = make_dataloader(cuts, max_duration=max_duration, shuffle=True, seed=epoch, sample_rate=sample_rate,
                                 num_workers=workers, batch_transforms=transforms)
        for batch in loader:
            seconds += float(batch["audio_lens"].sum()) / sample_rate
            batches += 1
    elapsed = time.perf_counter() - start
    return dict(audio_s=seconds, wall_s=elapsed, batches=batches,
                per_core=seconds / elapsed / max(workers, 1))


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fsdd", type=Path, default=SHARED / "fsdd" / "recordings")
    p.add_argument("--noise", type=Path, default=SHARED / "noise")
    p.add_argument("--files", type=int, default=300, help="first N FSDD files (3000 in all)")
    p.add_argument("--max-duration", type=float, default=20.0, help="seconds of audio per batch")
    p.add_argument("--mix-prob", type=float, default=0.2, help="WavLM: fraction of utterances mixed")
    p.add_argument("--noise-prob", type=float, default=0.5, help="of the mixed ones, noise rather than speech")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuts = fsdd_cuts(args.fsdd, args.files)
    mixer = UtteranceMixer(prob=args.mix_prob, noise_dir=str(args.noise), noise_prob=args.noise_prob, seed=0)
    configs = [("8 kHz, no resampling", 8000, []), ("16 kHz resampled", 16000, []),
               (f"16 kHz + WavLM mixing (p={args.mix_prob}, noise {args.noise_prob})", 16000, [mixer])]
    rows = []
    for name, rate, transforms in configs:
        r = throughput(cuts, rate, transforms, args.max_duration, args.workers, args.epochs)
        rows.append(dict(config=name, **r))
    print(f"FSDD files={len(cuts)} ({sum(c.duration for c in cuts):.0f} s of audio) max_duration={args.max_duration} "
          f"workers={args.workers} threads={torch.get_num_threads()} epochs={args.epochs}")
    print("| configuration | batches | audio (s) | wall (s) | audio s / s / core | x no-resampling |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['batches']} | {r['audio_s']:.0f} | {r['wall_s']:.2f} | {r['per_core']:.0f} | "
              f"{r['per_core'] / rows[0]['per_core']:.2f} |")
    return rows


if __name__ == "__main__":
    main()
