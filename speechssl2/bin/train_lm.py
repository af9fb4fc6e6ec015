"""Train the Transformer LM on text: ``python -m speechssl2.bin.train_lm --config conf/lm.yaml``.

Text comes from a plain file (one sentence per line) or from the transcripts of a cut
manifest (``*.jsonl`` / ``*.jsonl.gz``); every sentence goes through ``normalize_text``.
The loop is the ordinary trainer (``speechssl2.train.trainer.train``) with the
``transformer_lm`` model; only the data section differs (sentences per batch instead
of seconds of audio). Config::

    model: {name: transformer_lm, tokenizer: data/lang_char, embed_dim: 256, num_layers: 4}
    text: {train: data/lm_train.txt, valid: data/en_dev/cuts.jsonl.gz, batch_size: 64}
    optim: {lr: 1.0e-3}
    trainer: {max_updates: 20000}
    exp_dir: exp/lm_transformer

The resolved config is written to ``<exp_dir>/train_lm.yaml``; the trainer's own
``config.yaml`` and checkpoints carry the model spec as for any other model.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError, save_config
from speechssl2.logging_utils import setup_logging
from speechssl2.registry import MODELS
from speechssl2.stage import Stage, stamp_path
from speechssl2.train import checkpoint as ckpt
from speechssl2.text import normalize_text
from speechssl2.train.config import OptimConfig, TrainConfig, TrainerConfig, validate
from speechssl2.train.build import seed_everything
from speechssl2.train.trainer import train

log = logging.getLogger(__name__)


@dataclass
class TextDataConfig:
    train: str = ""  # text file (one sentence per line) or cut manifest
    valid: Optional[str] = None  # validation text or cut manifest; None: no validation
    batch_size: int = 64  # sentences per batch


@dataclass
class TrainLMConfig:
    model: Dict[str, Any] = field(default_factory=dict)  # MODELS spec; name defaults to transformer_lm
    text: TextDataConfig = field(default_factory=TextDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: Dict[str, Any] = field(default_factory=lambda: {"name": "constant"})  # SCHEDULERS spec: lr multiplier
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    exp_dir: str = "exp/lm"  # checkpoints, train.log and train_lm.yaml go here

    def trainer_config(self) -> TrainConfig:
        return TrainConfig(model=self.model, optim=self.optim, scheduler=self.scheduler, trainer=self.trainer,
                           exp_dir=self.exp_dir)


def read_sentences(path: str) -> List[str]:
    """Normalized, non-empty sentences of a text file or of a cut manifest's supervisions."""
    if path.endswith((".jsonl", ".jsonl.gz")):
        from lhotse import CutSet

        raw = [s.text or "" for cut in CutSet.from_file(path) for s in cut.supervisions]
    else:
        raw = Path(path).read_text(encoding="utf-8").splitlines()
    sentences = [t for t in map(normalize_text, raw) if t]
    if not sentences:
        raise ValueError(f"{path}: no non-empty sentences to train the LM on")
    return sentences


class TextBatches:
    """Batches ``{"text": [...], "ids": [...]}``; reshuffled per epoch (the trainer calls ``set_epoch``)."""

    def __init__(self, sentences: List[str], batch_size: int, shuffle: bool, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"text.batch_size must be >= 1, got {batch_size}")
        self.sentences, self.batch_size, self.shuffle, self.seed = sentences, batch_size, shuffle, seed
        self.epoch = 0
        self.sampler = self  # where the trainer looks for ``set_epoch``

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.sentences) // self.batch_size)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        order = list(range(len(self.sentences)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        for start in range(0, len(order), self.batch_size):
            picked = order[start : start + self.batch_size]
            yield {"text": [self.sentences[i] for i in picked], "ids": [f"line{i + 1}" for i in picked]}


def main(argv: Optional[List[str]] = None) -> None:
    cfg, _ = parse_stage(TrainLMConfig, __doc__, argv, stage="train_lm")
    if not cfg.text.train:
        raise ConfigError("text.train (a text file or cut manifest) is required")
    cfg.model.setdefault("name", "transformer_lm")
    if cfg.model["name"] != "transformer_lm":
        raise ConfigError(f"model.name must be transformer_lm, got {cfg.model.get('name')!r}")
    train_cfg = cfg.trainer_config()
    validate(train_cfg)
    exp = Path(cfg.exp_dir)
    setup_logging(exp / "train.log")
    stage = Stage("train_lm", cfg, stamp_path(exp, "train_lm"), [exp])
    if stage.up_to_date():
        return
    save_config(cfg, exp / "train_lm.yaml")
    seed_everything(cfg.trainer.seed)
    model = MODELS.build(cfg.model)
    train_loader = TextBatches(read_sentences(cfg.text.train), cfg.text.batch_size, True, cfg.trainer.seed)
    valid_loader = TextBatches(read_sentences(cfg.text.valid), cfg.text.batch_size, False, 0) if cfg.text.valid else None
    log.info("LM on %d training sentences, %.2fM parameters", len(train_loader.sentences),
             sum(p.numel() for p in model.parameters()) / 1e6)
    train(train_cfg, model, train_loader, valid_loader, inputs=stage.input_digests())
    stage.done(p for p in (exp / ckpt.LAST, exp / ckpt.BEST, exp / "config.yaml", exp / "train_lm.yaml") if p.is_file())


if __name__ == "__main__":
    run_main(main)
