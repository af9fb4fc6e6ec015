"""Import a released ARPA word LM (e.g. LibriSpeech's official 4-gram) for CTC beam search.

    python -m speechssl2.bin.import_ngram --set arpa=corpora/lm/4-gram.arpa.gz \\
        --set words=corpora/lm/librispeech-lexicon.txt --set tokenizer=data/lang_char --set out_dir=exp/lm_4gram

Writes the same pair as ``bin.train_ngram`` (``lm.bin`` + ``lexicon.txt``) into ``out_dir``:
the ARPA file lower-cased (our transcripts go through ``normalize_text``; the released
LibriSpeech LM is upper case) and binarized with KenLM ``build_binary``, and a lexicon
spelling every word of ``words`` (first column) with the tokenizer. Without the KenLM
binaries it logs why and exits 0, like ``bin.train_ngram``.
"""
from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.decoding.ctc_beam import write_lexicon
from speechssl2.lm.ngram import run_logged, find_kenlm
from speechssl2.logging_utils import setup_logging
from speechssl2.stage import Stage, stamp_path
from speechssl2.text import normalize_text
from speechssl2.tokenizers.base import load_tokenizer

log = logging.getLogger("speechssl2.import_ngram")


@dataclass
class ImportNgramConfig:
    arpa: str  # ARPA file (.arpa or .arpa.gz)
    words: str  # word list or lexicon (word in the first column of each line)
    tokenizer: str  # saved tokenizer directory that spells the lexicon
    out_dir: str  # lm.bin and lexicon.txt go here
    lowercase: bool = True  # lower-case the ARPA n-grams (transcripts are normalized to lower case)


def import_ngram(cfg: ImportNgramConfig, bin_dir: Path) -> Path:
    """Binarize the ARPA file with ``bin_dir/build_binary``, write the lexicon; the ``lm.bin`` path."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arpa = Path(cfg.arpa)
    if cfg.lowercase or arpa.suffix == ".gz":
        plain = out / "lm.arpa"
        opener = gzip.open if arpa.suffix == ".gz" else open
        with opener(arpa, "rt", encoding="utf-8") as src, open(plain, "w", encoding="utf-8") as dst:
            for line in src:
                dst.write(line.lower() if cfg.lowercase else line)
        arpa = plain
    lm_bin = out / "lm.bin"
    run_logged([str(bin_dir / "build_binary"), str(arpa), str(lm_bin)], out / "build_binary.log")
    words = {normalize_text(line.split(maxsplit=1)[0]) for line in _lines(Path(cfg.words)) if line.strip()}
    n = write_lexicon((w for w in words if w), load_tokenizer(cfg.tokenizer), out / "lexicon.txt")
    log.info("imported %s -> %s; lexicon: %d words", cfg.arpa, lm_bin, n)
    return lm_bin


def _lines(path: Path) -> List[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main(argv: List[str] | None = None) -> Optional[Path]:
    cfg, _ = parse_stage(ImportNgramConfig, __doc__, argv, stage="import_ngram")
    setup_logging()
    bin_dir = find_kenlm()
    if bin_dir is None:
        log.warning("KenLM binaries not found (run tools/install_kenlm.sh or set KENLM_BIN): skipping %s", cfg.arpa)
        return None
    stage = Stage("import_ngram", cfg, stamp_path(cfg.out_dir, "import_ngram"), [cfg.out_dir])
    lm_bin = Path(cfg.out_dir) / "lm.bin"
    if not stage.up_to_date():
        import_ngram(cfg, bin_dir)
        stage.done([lm_bin, Path(cfg.out_dir) / "lexicon.txt"])
    return lm_bin


if __name__ == "__main__":
    run_main(main)
