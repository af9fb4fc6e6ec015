"""Score a decode directory: WER/CER with S/D/I, alignments, top errors, result.json.

    python -m speechssl2.bin.score --set ref=data/en_test/text --set hyp=exp/ctc/decode_test/text \
        --set meta.upstream=hubert_tiny --set meta.finetune_set=en_train --set meta.decoder=greedy \
        --set meta.lm=none --set meta.test_set=en_test

``ref`` and ``hyp`` are Kaldi-style ``text`` files (``utt_id words...``). Both sides are
normalized with ``speechssl2.text.normalize_text`` unless ``normalize=false``. Outputs go
to ``out_dir`` (default: the hypothesis' directory): ``wer.txt``, ``result.json``,
``alignments.txt``, ``top_errors.txt``. ``meta`` describes the experiment for RESULTS.md.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.kaldi_text import read_text
from speechssl2.scoring.report import ExperimentMeta, ScoreReport, score_texts, write_report

log = logging.getLogger("speechssl2.score")


@dataclass
class ScoreConfig:
    ref: str  # Kaldi text file of references
    hyp: str  # Kaldi text file of hypotheses
    out_dir: str | None = None  # default: the directory of hyp
    normalize: bool = True  # normalize_text on both sides
    top_errors: int = 20  # most frequent errors listed in top_errors.txt
    meta: ExperimentMeta = field(default_factory=ExperimentMeta)


def score(cfg: ScoreConfig) -> ScoreReport:
    report = score_texts(read_text(cfg.ref), read_text(cfg.hyp), normalize=cfg.normalize)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.hyp).parent
    meta = {**dataclasses.asdict(cfg.meta), "ref": cfg.ref, "hyp": cfg.hyp, "normalized": cfg.normalize}
    path = write_report(report, out_dir, meta, n_top=cfg.top_errors)
    save_config(cfg, out_dir / "score.yaml")
    if report.missing:
        log.warning("%d reference utterance(s) have no hypothesis (scored as empty), e.g. %s",
                    len(report.missing), report.missing[:5])
    w = report.words
    log.info("%s: WER %.2f%% (S %d D %d I %d / %d words), CER %.2f%%; wrote %s", cfg.hyp, 100 * report.wer,
             w.substitutions, w.deletions, w.insertions, w.ref_len, 100 * report.cer, path)
    return report


def main(argv: List[str] | None = None) -> ScoreReport:
    cfg, _ = parse_stage(ScoreConfig, __doc__, argv, stage="score")
    setup_logging()
    return score(cfg)


if __name__ == "__main__":
    run_main(main)
