"""Mean ± std over seeds of every experiment scored under ``exp_dir`` (Markdown + PNG).

    python -m speechssl2.bin.seed_table --set exp_dir=exp/mini --set output=MINI_REPRO.md \
        --set plot=MINI_REPRO.png --set "notes=Fine-tuned on 5 min of FSDD ..."

The seed of each decode comes from its ``result.json`` (``bin.decode --set meta.seed=N``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.results import collect_results
from speechssl2.scoring.seeds import SeedSpread, group_seeds, plot_seeds, verdicts, write_seed_table

log = logging.getLogger("speechssl2.seed_table")


@dataclass
class SeedTableConfig:
    exp_dir: str  # searched recursively for result.json files
    output: str  # Markdown table to write
    title: str = "Seed spread"  # heading of the Markdown table
    notes: str = ""  # a paragraph above the table (budget, compute, what the numbers mean)
    plot: Optional[str] = None  # PNG path of the plot; no plot when None
    baseline: str = ""  # upstream the others must beat by more than the seed spread ("" = no such claim)
    chance: Optional[float] = None  # the task's chance WER %: claim that the best decode is at most half of it


def main(argv: Optional[List[str]] = None) -> List[SeedSpread]:
    cfg, _ = parse_stage(SeedTableConfig, __doc__, argv, stage="seed_table")
    setup_logging()
    groups = group_seeds(collect_results(cfg.exp_dir))
    if not groups:
        raise SystemExit(f"seed_table: no result.json under {cfg.exp_dir}")
    claims = verdicts(groups, cfg.baseline, cfg.chance)
    write_seed_table(groups, cfg.output, cfg.title, cfg.notes, claims)
    for line in claims:
        log.info("%s", line.lstrip("- ").replace("**", ""))
    if cfg.plot:
        plot_seeds(groups, cfg.plot)
    for g in groups:
        log.info("%s: WER %.2f ± %.2f over %d seed(s)", " / ".join(g.key), g.mean, g.std, len(g.wers))
    return groups


if __name__ == "__main__":
    run_main(main)
