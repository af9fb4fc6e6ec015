"""Train a model from a YAML config: ``python -m speechssl2.bin.train --config conf/x.yaml``.

Single process: run it directly. Several GPUs or nodes: launch it with ``torchrun``
(``torchrun --nproc_per_node 4 -m speechssl2.bin.train ...``, or one torchrun per node
under Slurm); ranks come from torchrun's environment. Rerunning a killed stage resumes
from ``<exp_dir>/checkpoint_last.pt``, provided it was trained with the same config and inputs
(``speechssl2.train.resume``); a finished run whose config, inputs (cuts, labels, upstream,
tokenizer, ``init_from``) and checkpoints are unchanged is skipped (``speechssl2.stage``).

Continued pre-training: ``--set init_from=<checkpoint>`` loads the whole SSL model (upstream
and objective heads) from an HF ``Wav2Vec2ForPreTraining`` directory, a fairseq wav2vec 2.0 /
HuBERT checkpoint, a torchaudio ``HuBERTPretrainModel`` state dict or a speechssl2 training
checkpoint, then trains from update 0 with a fresh optimizer (``speechssl2.models.io.pretraining``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError
from speechssl2.data.crop import BatchCrop
from speechssl2.data.loader import make_dataloader, open_cuts
from speechssl2.data.validate import require_encodable
from speechssl2.data.mixing import UtteranceMixer
from speechssl2.logging_utils import setup_logging
from speechssl2.registry import MODELS
from speechssl2.stage import Stage, stamp_path
from speechssl2.train import checkpoint as ckpt
from speechssl2.train.config import DataConfig, TrainConfig, validate
from speechssl2.train.distributed import DistInfo, cleanup, init_distributed
from speechssl2.train.build import seed_everything
from speechssl2.train.trainer import train


def build_loader(data: DataConfig, cuts: str, train_split: bool, info: DistInfo, seed: int) -> Any:
    """One rank's loader; only training batches are shuffled and mixed (WavLM denoising); both are cropped
    (``data.crop``), as fairseq's pre-training datasets are."""
    transforms = [UtteranceMixer.from_config(data.mixing)] if train_split and data.mixing else []
    crop = BatchCrop.from_config(data.crop, data.sample_rate) if data.crop else None
    if crop is not None:
        transforms = [crop, *transforms]
    return make_dataloader(
        cuts, max_duration=data.max_duration, shuffle=train_split, features=data.features,
        sample_rate=data.sample_rate, num_buckets=data.num_buckets, seed=seed,
        world_size=info.world_size, rank=info.rank, num_workers=data.num_workers,
        label_field=data.label_field, batch_transforms=transforms,
        drop_last=train_split and info.world_size > 1,  # ranks must see equally many batches
        select=crop.keep_long_enough if crop is not None else None,
    )


def main(argv: Optional[List[str]] = None) -> None:
    cfg, _ = parse_stage(TrainConfig, __doc__, argv, stage="train")
    validate(cfg)
    if not cfg.data.train:
        raise ConfigError("data.train (a cut manifest) is required")
    info = init_distributed()
    log_file = Path(cfg.exp_dir) / "train.log" if info.is_main else None
    setup_logging(log_file, level=logging.INFO if info.is_main else logging.WARNING)
    stage = Stage("train", cfg, stamp_path(cfg.exp_dir, "train"), [cfg.exp_dir],
                  extra_inputs=[cfg.init_from] if cfg.init_from else [])  # also a bare file name
    try:
        if stage.up_to_date():
            return
        seed_everything(cfg.trainer.seed)  # the same initial weights on every rank
        model = MODELS.build(cfg.model)
        if cfg.init_from:  # before the trainer: a resumed run's checkpoint_last.pt still wins
            from speechssl2.models.io.pretraining import init_from_checkpoint

            init_from_checkpoint(model, cfg.init_from)
        check_transcripts(model, cfg.data)
        train_loader = build_loader(cfg.data, cfg.data.train, True, info, cfg.trainer.seed)
        valid_loader = build_loader(cfg.data, cfg.data.valid, False, info, cfg.trainer.seed) if cfg.data.valid else None
        logging.getLogger(__name__).info(
            "model %s: %.2fM parameters", cfg.model.get("name"), sum(p.numel() for p in model.parameters()) / 1e6
        )
        train(cfg, model, train_loader, valid_loader, info, inputs=stage.input_digests())
        exp = Path(cfg.exp_dir)
        stage.done(p for p in (exp / ckpt.LAST, exp / ckpt.BEST, exp / "config.yaml") if p.is_file())
    finally:
        cleanup()


def check_transcripts(model: Any, data: DataConfig) -> None:
    """A model with a tokenizer (fine-tuning) must be able to spell every training and
    validation transcript: said now, by utterance, not at the first validation."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return
    chars = set(tokenizer.chars())
    for manifest in filter(None, (data.train, data.valid)):
        require_encodable(open_cuts(manifest), chars, manifest)


if __name__ == "__main__":
    run_main(main)
