"""Build a KenLM n-gram (and a decoding lexicon) from training text (a recipe stage).

    python -m speechssl2.bin.train_ngram --set texts=[data/en_train/cuts.jsonl.gz] \
        --set out_dir=exp/lm/word3 --set order=3 --set unit=word --set tokenizer=data/lang_char

``unit=word`` writes ``lm.bin`` (word n-gram) and, when ``tokenizer`` is given,
``lexicon.txt`` spelling every training word with it: the pair lexicon search needs.
``unit=token`` writes a token n-gram for lexicon-free search (``tokenizer`` required).
When the KenLM binaries are absent (``tools/install_kenlm.sh`` not run) the stage logs
why and exits 75 without output: ``utils/run_stage.sh`` carries on with LM-free decoding
and does not mark the stage done, so it builds the LM once KenLM is there.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.decoding.ctc_beam import write_lexicon
from speechssl2.lm.ngram import build_ngram, find_kenlm, lm_corpus_lines
from speechssl2.logging_utils import setup_logging
from speechssl2.scoring.kaldi_text import read_transcripts
from speechssl2.stage import Stage, stamp_path
from speechssl2.text import normalize_text
from speechssl2.tokenizers.base import load_tokenizer

log = logging.getLogger("speechssl2.train_ngram")
SKIPPED = 75  # exit status utils/run_stage.sh reads as "skipped, not done" (BSD EX_TEMPFAIL)


@dataclass
class TrainNgramConfig:
    texts: List[str]  # Kaldi text files or cut manifests
    out_dir: str  # lm.bin (or lm.arpa), lexicon.txt and train_ngram.yaml go here
    order: int = 3  # n-gram order
    unit: Literal["word", "token"] = "word"  # word: word LM (+ lexicon); token: token LM for lexicon-free search
    tokenizer: Optional[str] = None  # saved tokenizer directory (lexicon / token spelling)
    binary: bool = True  # also write lm.bin with build_binary
    prune: Optional[List[int]] = None  # lmplz --prune thresholds per order


def train_ngram(cfg: TrainNgramConfig) -> Path:
    """Build the LM (and lexicon); return the LM path."""
    texts = [t for path in cfg.texts for t in read_transcripts(path).values()]
    tok = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else None
    lm = build_ngram(lm_corpus_lines(texts, cfg.unit, tok), cfg.out_dir, cfg.order, cfg.binary, cfg.prune)
    if cfg.unit == "word" and tok is not None:
        words = {w for t in texts for w in normalize_text(t).split()}
        n = write_lexicon(words, tok, Path(cfg.out_dir) / "lexicon.txt")
        log.info("lexicon: %d words", n)
    save_config(cfg, Path(cfg.out_dir) / "train_ngram.yaml")
    log.info("%d-gram %s LM on %d transcripts -> %s", cfg.order, cfg.unit, len(texts), lm)
    return lm


def main(argv: List[str] | None = None) -> Optional[Path]:
    cfg, _ = parse_stage(TrainNgramConfig, __doc__, argv, stage="train_ngram")
    setup_logging()
    if find_kenlm() is None:  # before the stage writes anything: the LM stage is simply not there yet
        log.warning("KenLM binaries not found (run tools/install_kenlm.sh or set KENLM_BIN): "
                    "skipping the n-gram LM; decode without an LM")
        return None
    stage = Stage("train_ngram", cfg, stamp_path(cfg.out_dir, "train_ngram"), [cfg.out_dir])
    if stage.up_to_date():
        return Path(cfg.out_dir) / ("lm.bin" if cfg.binary else "lm.arpa")
    lm = train_ngram(cfg)
    stage.done([cfg.out_dir])
    return lm


def exit_status(argv: List[str] | None = None) -> int:
    """The process exit status: 0 when the LM was built, ``SKIPPED`` without KenLM."""
    return SKIPPED if main(argv) is None else 0


if __name__ == "__main__":
    sys.exit(run_main(exit_status))
