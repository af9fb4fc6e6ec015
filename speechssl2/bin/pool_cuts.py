"""Pool several cut manifests into one pre-training set, cut into windows, transcripts dropped.

    python -m speechssl2.bin.pool_cuts --set "inputs=[data/pool/cuts.jsonl.gz,data/train/cuts.jsonl.gz]" \
        --set output=data/ptpool/cuts.jsonl.gz --set window=4.0

Pre-training reads unlabeled audio from wherever a recipe has it (another language's
prompts, the labeled set's own audio without its labels, as in every low-resource SSL
setup). Long recordings (asterisk has 85 s prompts) are cut into ``window``-second
pieces so that a batch is not one utterance padded to the longest: fairseq crops to
``max_sample_size`` for the same reason. Pieces shorter than ``min_seconds`` are dropped
and counted in the log.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from lhotse import CutSet

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError, save_config
from speechssl2.data.loader import open_cuts
from speechssl2.data.manifest import write_manifest_atomic
from speechssl2.logging_utils import setup_logging
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.pool_cuts")


@dataclass
class PoolConfig:
    inputs: List[str] = field(default_factory=list)  # cut manifests to pool
    output: str = ""  # cut manifest to write
    window: Optional[float] = 4.0  # seconds per piece; None keeps whole cuts
    min_seconds: float = 0.2  # pieces shorter than this are dropped (and counted)
    drop_text: bool = True  # remove transcripts: pre-training must not see labels


def main(argv: Optional[List[str]] = None) -> CutSet:
    cfg, _ = parse_stage(PoolConfig, __doc__, argv, stage="pool_cuts")
    setup_logging()
    if not cfg.inputs or not cfg.output:
        raise ConfigError("pool_cuts: set inputs (a list of cut manifests) and output")
    out = Path(cfg.output)
    stage = Stage("pool_cuts", cfg, stamp_path(out.parent, "pool_cuts"), [out])
    if stage.up_to_date():
        return CutSet.from_file(out)
    pooled = pool(cfg)
    write_manifest_atomic(pooled, out)
    save_config(cfg, out.parent / "pool_cuts.yaml")
    stage.done([out])
    return pooled


def pool(cfg: PoolConfig) -> CutSet:
    """The union of ``cfg.inputs``, windowed and stripped as configured; logs what each input gave."""
    pieces: List = []
    for path in cfg.inputs:
        cuts = open_cuts(path)
        if cfg.window is not None:
            cuts = cuts.cut_into_windows(duration=cfg.window)
        kept = dropped = 0
        for cut in cuts:
            if cut.duration < cfg.min_seconds:
                dropped += 1
                continue
            if cfg.drop_text:
                for sup in cut.supervisions:
                    sup.text = None
            pieces.append(cut)
            kept += 1
        log.info("%s: %d pieces kept, %d shorter than %.2f s dropped", path, kept, dropped, cfg.min_seconds)
    if not pieces:
        raise ValueError(f"pool_cuts: no piece of at least {cfg.min_seconds} s in {cfg.inputs}")
    pooled = CutSet.from_cuts(pieces)
    log.info("%s: %d pieces, %.1f min of audio", cfg.output, len(pooled), sum(c.duration for c in pooled) / 60)
    return pooled


if __name__ == "__main__":
    run_main(main)
