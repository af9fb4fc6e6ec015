"""Train a tokenizer on the training transcripts and save it (a recipe stage).

    python -m speechssl2.bin.train_tokenizer --set texts=[data/en_train/cuts.jsonl.gz] \
        --set out_dir=data/lang_bpe100 --set tokenizer.name=sentencepiece \
        --set tokenizer.vocab_size=100 --set tokenizer.model_type=unigram

``texts`` are Kaldi ``text`` files or Lhotse cut manifests. ``tokenizer`` names a
TOKENIZERS key plus the arguments of that class's ``train`` (``char``: none;
``sentencepiece``: ``vocab_size``, ``model_type``). The directory it writes is what
fine-tuning configs name as their tokenizer (``load_tokenizer(out_dir)``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.logging_utils import setup_logging
from speechssl2.registry import TOKENIZERS, RegistryError, check_arguments
from speechssl2.scoring.kaldi_text import read_transcripts
from speechssl2.stage import Stage, stamp_path
from speechssl2.tokenizers.base import TokenizerBase, load_tokenizer

log = logging.getLogger("speechssl2.train_tokenizer")


@dataclass
class TrainTokenizerConfig:
    texts: List[str]  # Kaldi text files or cut manifests with the training transcripts
    out_dir: str  # tokenizer directory (what load_tokenizer reads)
    tokenizer: Dict[str, Any] = field(default_factory=lambda: {"name": "char"})  # TOKENIZERS key + its train() args


def train_tokenizer(cfg: TrainTokenizerConfig) -> TokenizerBase:
    texts = [t for path in cfg.texts for t in read_transcripts(path).values()]
    if not texts:
        raise ValueError(f"no transcripts in {cfg.texts}")
    if "name" not in cfg.tokenizer:
        raise RegistryError(f"tokenizer spec {cfg.tokenizer!r} has no 'name'; valid keys: {', '.join(TOKENIZERS.keys())}")
    name = cfg.tokenizer["name"]
    cls = TOKENIZERS.get(name)
    options = {k: v for k, v in cfg.tokenizer.items() if k != "name"}
    check_arguments(cls.train, {"texts": texts, **options}, where=f"tokenizers.{name}.train")
    tok = cls.train(texts, **options)
    tok.save(cfg.out_dir)
    save_config(cfg, Path(cfg.out_dir) / "train_tokenizer.yaml")
    log.info("%s tokenizer: %d tokens from %d transcripts -> %s", name, tok.vocab_size, len(texts), cfg.out_dir)
    return tok


def main(argv: List[str] | None = None) -> TokenizerBase:
    cfg, _ = parse_stage(TrainTokenizerConfig, __doc__, argv, stage="train_tokenizer")
    setup_logging()
    stage = Stage("train_tokenizer", cfg, stamp_path(cfg.out_dir, "train_tokenizer"), [cfg.out_dir])
    if stage.up_to_date():
        return load_tokenizer(cfg.out_dir)
    tok = train_tokenizer(cfg)
    stage.done([cfg.out_dir])
    return tok


if __name__ == "__main__":
    run_main(main)
