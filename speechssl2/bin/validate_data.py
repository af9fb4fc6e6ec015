"""Re-validate an existing cut manifest, e.g. against a tokenizer's character set.

    python -m speechssl2.bin.validate_data --set cuts=data/en_train/cuts.jsonl.gz \
        --set chars_file=data/lang_char/chars.txt --set output=data/en_train/cuts_char.jsonl.gz

Writes the report (default ``<manifest dir>/report_validate.txt``) and the cuts that passed
to ``output``: what the report calls dropped is not in it. Exits with status 1 when any cut was dropped and
``fail_on_drop`` is set, so a recipe stage can stop on bad data.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.data.loader import open_cuts
from speechssl2.data.validate import ValidationReport, load_allowed_chars, validate_cuts
from speechssl2.logging_utils import setup_logging
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.validate_data")


@dataclass
class ValidateDataConfig:
    cuts: str  # cut manifest to check
    output: str  # the cuts that passed: train and decode on this manifest
    chars_file: str | None = None  # file whose characters are the allowed transcript characters
    min_samples: int = 400  # model receptive field in samples at sample_rate
    sample_rate: int = 16000  # rate the model consumes; min_samples is counted at this rate
    report: str | None = None  # default: <manifest dir>/report_validate.txt
    fail_on_drop: bool = False  # exit with status 1 when any cut is dropped


def main(argv: List[str] | None = None) -> Optional[ValidationReport]:
    """The report, or None when the stage was up to date."""
    cfg, _ = parse_stage(ValidateDataConfig, __doc__, argv, stage="validate_data")
    setup_logging()
    out = Path(cfg.output)
    stage = Stage("validate_data", cfg, stamp_path(out.parent, f"validate_data.{out.name}"), [out, report_path(cfg)])
    if stage.up_to_date():
        return None
    report = validate_data(cfg)
    stage.done([out, report_path(cfg)])
    if cfg.fail_on_drop and report.kept < report.checked:
        sys.exit(1)
    return report


def validate_data(cfg: ValidateDataConfig) -> ValidationReport:
    allowed = load_allowed_chars(cfg.chars_file) if cfg.chars_file is not None else None
    clean, report = validate_cuts(
        open_cuts(cfg.cuts), min_samples=cfg.min_samples, sample_rate=cfg.sample_rate,
        allowed_chars=allowed, name=cfg.cuts,
    )
    path = report.write(report_path(cfg))
    save_config(cfg, path.with_suffix(".yaml"))
    clean.to_file(cfg.output)
    log.info("%s: %d of %d cuts pass; report: %s", cfg.cuts, report.kept, report.checked, path)
    return report


def report_path(cfg: ValidateDataConfig) -> Path:
    return Path(cfg.report or Path(cfg.cuts).parent / "report_validate.txt")


if __name__ == "__main__":
    run_main(main)
