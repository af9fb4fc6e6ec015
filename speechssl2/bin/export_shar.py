"""Export a cut manifest (audio, and HuBERT labels as custom fields) to Lhotse Shar shards.

    python -m speechssl2.bin.export_shar --set cuts=exp/targets_iter1/labels/cuts.jsonl.gz \\
        --set output=data/train_shar --set label_fields='[hubert_labels]' --set shard_size=1000

The output directory then stands wherever a cut manifest does (``data.train``, the target
stages' ``cuts``, the probe's sets): see ``speechssl2.data.shar``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.data.loader import open_cuts
from speechssl2.data.shar import export_shar, shar_shards
from speechssl2.logging_utils import setup_logging
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.export_shar")


@dataclass
class ExportSharConfig:
    cuts: str  # cut manifest to export (a labelled one to carry the HuBERT targets)
    output: str  # Shar directory to write (replaced whole)
    label_fields: List[str] = field(default_factory=list)  # custom array fields of the cuts to export with them
    shard_size: int = 1000  # cuts per shard: one tar per field and shard


def main(argv: Optional[List[str]] = None) -> Path:
    cfg, _ = parse_stage(ExportSharConfig, __doc__, argv, stage="export_shar")
    setup_logging()
    out = Path(cfg.output)
    stage = Stage("export_shar", cfg, stamp_path(out.parent, f"export_shar.{out.name}"), [out])
    if stage.up_to_date():
        return out
    if cfg.shard_size < 1:
        raise ValueError(f"export_shar: shard_size must be >= 1, got {cfg.shard_size}")
    cuts = open_cuts(cfg.cuts)
    for cut in cuts:
        missing = [name for name in cfg.label_fields if not cut.has_custom(name)]
        if missing or not cut.has_recording:
            what = f"custom field(s) {missing}" if missing else "a recording"
            raise ValueError(f"{cfg.cuts}: cut {cut.id!r} has no {what}; every exported cut needs it")
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = export_shar(cuts, out, list(cfg.label_fields), cfg.shard_size)
    stage.done([out])
    log.info("%s: %d shard(s) of %s from %s", out, len(shar_shards(out)), ", ".join(fields), cfg.cuts)
    return out


if __name__ == "__main__":
    run_main(main)
