"""Prepare a corpus, validate every set, write clean manifests and a report per set.

    python -m speechssl2.bin.prepare_data --config conf/data.yaml [--set corpus.corpus_dir=...] [--force]

For each set the corpus function returns, ``<output_dir>/<set>/`` ends up with
``cuts_raw.jsonl.gz`` (everything prepared), ``cuts.jsonl.gz`` (what passed validation),
``recordings``/``supervisions`` manifests, ``excluded.tsv`` and ``report.txt``. The
resolved config goes to ``<output_dir>/prepare_data.<corpus>.yaml``; a rerun with the
same config and unchanged inputs is skipped unless ``--force``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from lhotse import CutSet

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError, atomic_write_text, save_config, to_dict
from speechssl2.data.manifest import read_excluded
from speechssl2.data.validate import ValidationReport, validate_cuts
from speechssl2.logging_utils import setup_logging
from speechssl2.registry import CORPORA

log = logging.getLogger("speechssl2.prepare_data")


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
    """Prepare, validate and report every set of ``cfg.corpus``; returns the reports by set."""
    if "name" not in cfg.corpus:
        raise ConfigError(f"corpus: no 'name'; valid corpora: {', '.join(CORPORA.keys())}")
    out = Path(cfg.output_dir)
    stamp = out / f".prepare_data.{cfg.corpus['name']}.done"
    if not force and _up_to_date(cfg, stamp):
        log.info("%s: outputs are newer than inputs and config; skipping (use --force)", stamp.parent)
        return {}
    cut_sets: Dict[str, CutSet] = CORPORA.build(cfg.corpus, output_dir=str(out))
    reports = {name: _finish_set(cfg, out / name, cuts) for name, cuts in cut_sets.items()}
    save_config(cfg, out / f"prepare_data.{cfg.corpus['name']}.yaml")
    atomic_write_text(stamp, json.dumps({"config": to_dict(cfg), "sets": sorted(reports)}))
    return reports


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


def _up_to_date(cfg: PrepareDataConfig, stamp: Path) -> bool:
    """True when ``stamp`` records this exact config and is newer than every input file."""
    if not stamp.is_file():
        return False
    done = json.loads(stamp.read_text(encoding="utf-8"))
    if done.get("config") != to_dict(cfg):
        return False
    outputs = [Path(cfg.output_dir) / s / f for s in done["sets"] for f in ("cuts.jsonl.gz", "report.txt")]
    if not all(p.is_file() for p in outputs):
        return False
    inputs = [Path(v) for k, v in cfg.corpus.items() if k != "name" and isinstance(v, str) and Path(v).exists()]
    return all(_newest_mtime(p) < stamp.stat().st_mtime for p in inputs)


def _newest_mtime(path: Path) -> float:
    """Newest modification time of ``path`` and, for a directory, of everything under it.

    A file rewritten in place changes its own mtime, not its directory's.
    """
    if not path.is_dir():
        return path.stat().st_mtime
    newest = path.stat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:  # a dangling link
                continue
    return newest


if __name__ == "__main__":
    run_main(main)
