"""Regenerate a recipe's RESULTS.md from every ``exp/**/result.json``.

    python -m speechssl2.bin.results --set exp_dir=exp --set output=RESULTS.md [--set plot=exp/results.png]

One table row per scored decode directory: upstream, fine-tune set, decoder, LM, test
set, #utts, WER, CER, S/D/I. ``plot`` adds a PNG bar chart of the WERs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List

from speechssl2.cli import parse_stage, run_main
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.results import plot_results, write_results

log = logging.getLogger("speechssl2.results")


@dataclass
class ResultsConfig:
    exp_dir: str = "exp"  # searched recursively for result.json files
    output: str = "RESULTS.md"  # Markdown table to write
    title: str = "Results"  # heading of the Markdown table
    plot: str | None = None  # PNG path; no plot when None


def main(argv: List[str] | None = None) -> List[Dict[str, Any]]:
    cfg, _ = parse_stage(ResultsConfig, __doc__, argv, stage="results")
    setup_logging()
    rows = write_results(cfg.exp_dir, cfg.output, cfg.title)
    if cfg.plot and rows:
        plot_results(rows, cfg.plot)
    log.info("%s: %d experiment(s) from %s", cfg.output, len(rows), cfg.exp_dir)
    return rows


if __name__ == "__main__":
    run_main(main)
