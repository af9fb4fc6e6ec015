"""Write a labeled-budget subset of a cut manifest (seeded; by seconds, by count, or by count per transcript).

    python -m speechssl2.bin.subset_cuts --set cuts=data/train/cuts.jsonl.gz \
        --set output=data/train_5min/cuts.jsonl.gz --set seconds=300 --set seed=0
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from lhotse import CutSet

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.data.loader import open_cuts
from speechssl2.data.manifest import write_manifest_atomic
from speechssl2.data.subset import budget_subset
from speechssl2.logging_utils import setup_logging
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.subset_cuts")


@dataclass
class SubsetConfig:
    cuts: str  # cut manifest to draw from
    output: str  # cut manifest to write
    seconds: Optional[float] = None  # total audio to keep
    num_cuts: Optional[int] = None  # or a number of cuts
    per_label: Optional[int] = None  # or this many cuts of every distinct transcript (e.g. 5 per digit)
    seed: int = 0  # seeds the random draw


def main(argv: Optional[List[str]] = None) -> CutSet:
    cfg, _ = parse_stage(SubsetConfig, __doc__, argv, stage="subset_cuts")
    setup_logging()
    stage = Stage("subset_cuts", cfg, stamp_path(Path(cfg.output).parent, "subset_cuts"), [cfg.output])
    if stage.up_to_date():
        return CutSet.from_file(cfg.output)
    subset = budget_subset(open_cuts(cfg.cuts), cfg.seconds, cfg.num_cuts, cfg.seed, cfg.per_label)
    out = Path(cfg.output)
    write_manifest_atomic(subset, out)
    save_config(cfg, out.parent / "subset_cuts.yaml")
    stage.done([out])
    log.info("%s: %d cuts, %.1f s (seed %d) from %s", out, len(subset), sum(c.duration for c in subset), cfg.seed,
             cfg.cuts)
    return subset


if __name__ == "__main__":
    run_main(main)
