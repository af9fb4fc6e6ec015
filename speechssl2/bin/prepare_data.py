"""Prepare a corpus, validate every set, write clean manifests and a report per set.

    python -m speechssl2.bin.prepare_data --config conf/data.yaml [--set corpus.corpus_dir=...] [--force]

For each set the corpus function returns, ``<output_dir>/<set>/`` ends up with
``cuts_raw.jsonl.gz`` (everything prepared), ``cuts.jsonl.gz`` (what passed validation),
``recordings``/``supervisions`` manifests, ``excluded.tsv`` and ``report.txt``. The
resolved config goes to ``<output_dir>/prepare_data.<corpus>[.<set_name>].yaml``; a rerun with the
same config, the same corpus files and untouched outputs is skipped unless ``--force``.
"""
from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from lhotse import CutSet

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError, save_config
from speechssl2.data.manifest import read_excluded
from speechssl2.data.validate import ValidationReport, validate_cuts
from speechssl2.logging_utils import setup_logging
from speechssl2.registry import CORPORA
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.prepare_data")
# What preparation writes per set (later stages add their own files beside them).
SET_FILES = ("cuts.jsonl.gz", "cuts_raw.jsonl.gz", "recordings.jsonl.gz", "supervisions.jsonl.gz", "excluded.tsv",
             "report.txt")


@dataclass
class PrepareDataConfig:
    corpus: Dict[str, Any]  # {"name": <CORPORA key>, "corpus_dir": ..., corpus options}
    output_dir: str = "data"  # one folder of manifests and reports per set
    validate: bool = True  # load every cut and drop bad ones (reported in report.txt)
    min_samples: int = 400  # model receptive field in samples at sample_rate (wav2vec 2.0: 400)
    sample_rate: int = 16000  # rate the model consumes; min_samples is counted at this rate
    allowed_chars: str | None = None  # transcript characters allowed (a space always is); None: any


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="prepare again even if outputs are up to date")


def main(argv: List[str] | None = None) -> Dict[str, ValidationReport]:
    cfg, args = parse_stage(PrepareDataConfig, __doc__, argv, stage="prepare_data", add_arguments=_add_force)
    setup_logging()
    return prepare_data(cfg, force=args.force)


def prepare_data(cfg: PrepareDataConfig, force: bool = False) -> Dict[str, ValidationReport]:
    """Prepare, validate and report every set of ``cfg.corpus``; returns the reports by set
    (empty when the corpus, the config and the outputs are unchanged since the last run)."""
    if "name" not in cfg.corpus:
        raise ConfigError(f"corpus: no 'name'; valid corpora: {', '.join(CORPORA.keys())}")
    out = Path(cfg.output_dir)
    name = run_name(cfg)
    stage = Stage(name, cfg, stamp_path(out, name), [out], force=force)
    if stage.up_to_date():
        return {}
    cut_sets: Dict[str, CutSet] = CORPORA.build(cfg.corpus, output_dir=str(out))
    reports = {name: _finish_set(cfg, out / name, cuts) for name, cuts in cut_sets.items()}
    config = save_config(cfg, out / f"{name}.yaml")
    stage.done([config] + [out / name / f for name in reports for f in SET_FILES if (out / name / f).is_file()])
    return reports


def run_name(cfg: PrepareDataConfig) -> str:
    """``prepare_data.<corpus>[.<set_name>]``: a recipe that prepares one set per call keeps one stamp per set."""
    set_name = cfg.corpus.get("set_name")
    return f"prepare_data.{cfg.corpus['name']}" + (f".{set_name}" if set_name else "")


def _finish_set(cfg: PrepareDataConfig, set_dir: Path, cuts: CutSet) -> ValidationReport:
    """Keep the raw cuts, write the validated ones and ``report.txt``."""
    shutil.copyfile(set_dir / "cuts.jsonl.gz", set_dir / "cuts_raw.jsonl.gz")
    if cfg.validate:
        allowed = set(cfg.allowed_chars) if cfg.allowed_chars is not None else None
        clean, report = validate_cuts(
            cuts, min_samples=cfg.min_samples, sample_rate=cfg.sample_rate, allowed_chars=allowed,
            name=str(set_dir),
        )
        clean.to_file(set_dir / "cuts.jsonl.gz")
    else:
        report = ValidationReport(str(set_dir), settings="audio and transcripts NOT validated (validate: false)")
    report.excluded = read_excluded(set_dir)
    report.write(set_dir / "report.txt")
    log.info("%s: %d cuts kept of %d; %d excluded in preparation; report: %s", set_dir, report.kept,
             report.checked, len(report.excluded), set_dir / "report.txt")
    return report


if __name__ == "__main__":
    run_main(main)
