"""Decode and score a cut manifest with a fine-tuned checkpoint (a recipe stage).

    python -m speechssl2.bin.decode --config conf/decode_beam_lm.yaml \
        --set checkpoint=exp/finetune_ctc/checkpoint_best.pt --set cuts=data/test/cuts.jsonl.gz \
        --set out_dir=exp/finetune_ctc/decode_beam_lm_test --set lm_dir=exp/lm_word3 \
        --set meta.upstream=hubert_tiny --set meta.finetune_set=train --set meta.test_set=test

Decoders (``speechssl2.decoding.pipeline``): CTC greedy / beam (+ KenLM fusion, lexicon
or lexicon-free), transducer greedy / beam (+ Transformer LM fusion), any beam +
Transformer LM n-best rescoring. Writes ``text``, ``ref``, ``wer.txt``,
``alignments.txt``, ``top_errors.txt`` and ``result.json`` (with the RTF) to ``out_dir``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.decoding.pipeline import DecodeConfig, decode
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.report import ScoreReport
from speechssl2.stage import Stage, stamp_path


def main(argv: Optional[List[str]] = None) -> Optional[ScoreReport]:
    """The score report, or None when the stage was up to date."""
    cfg, _ = parse_stage(DecodeConfig, __doc__, argv, stage="decode")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir / "decode.log")
    unused = [] if cfg.ngram or cfg.rescore_ngram else ["lm_dir"]  # only the n-gram users depend on it
    stage = Stage("decode", cfg, stamp_path(out_dir, "decode"), [out_dir], unused=unused)
    if stage.up_to_date():
        return None
    save_config(cfg, out_dir / "decode.yaml")
    report = decode(cfg)[1]
    stage.done(out_dir / name for name in ("text", "ref", "result.json", "decode.yaml"))
    return report


if __name__ == "__main__":
    run_main(main)
