"""Write a labeled-budget subset of a cut manifest (seeded; by seconds or by count).

    python -m speechssl2.bin.subset_cuts --set cuts=data/train/cuts.jsonl.gz \
        --set output=data/train_5min/cuts.jsonl.gz --set seconds=300 --set seed=0
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from lhotse import CutSet

from speechssl2.config import add_config_args, load_config, save_config
from speechssl2.data.loader import open_cuts
from speechssl2.data.subset import budget_subset
from speechssl2.logging_utils import setup_logging

log = logging.getLogger("speechssl2.subset_cuts")


@dataclass
class SubsetConfig:
    cuts: str
    output: str
    seconds: Optional[float] = None  # total audio to keep
    num_cuts: Optional[int] = None  # or a number of cuts
    seed: int = 0


def main(argv: Optional[List[str]] = None) -> CutSet:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(SubsetConfig, args.config, args.overrides)
    subset = budget_subset(open_cuts(cfg.cuts), cfg.seconds, cfg.num_cuts, cfg.seed)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.jsonl.gz")
    subset.to_file(tmp)
    tmp.replace(out)
    save_config(cfg, out.parent / "subset_cuts.yaml")
    log.info("%s: %d cuts, %.1f s (seed %d) from %s", out, len(subset), sum(c.duration for c in subset), cfg.seed,
             cfg.cuts)
    return subset


if __name__ == "__main__":
    main()
