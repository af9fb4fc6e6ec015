"""Regenerate a recipe's RESULTS.md from every ``exp/**/result.json``.

    python -m speechssl2.bin.results --set exp_dir=exp --set output=RESULTS.md [--set plot=exp/results.png]

One table row per scored decode directory: upstream, fine-tune set, decoder, LM, test
set, #utts, WER, CER, S/D/I. ``plot`` adds a PNG bar chart of the WERs.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any, Dict, List

from speechssl2.config import add_config_args, load_config
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.results import plot_results, write_results

log = logging.getLogger("speechssl2.results")


@dataclass
class ResultsConfig:
    exp_dir: str = "exp"
    output: str = "RESULTS.md"
    title: str = "Results"
    plot: str | None = None  # PNG path; no plot when None


def main(argv: List[str] | None = None) -> List[Dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(ResultsConfig, args.config, args.overrides)
    rows = write_results(cfg.exp_dir, cfg.output, cfg.title)
    if cfg.plot and rows:
        plot_results(rows, cfg.plot)
    log.info("%s: %d experiment(s) from %s", cfg.output, len(rows), cfg.exp_dir)
    return rows


if __name__ == "__main__":
    main()
