"""Fine-tune (CTC or transducer) with the ordinary trainer: ``python -m speechssl2.bin.finetune --config X``.

The same loop, config and checkpoints as ``speechssl2.bin.train``; this entry point
only makes ``model.name`` default to ``ctc`` and refuses models that are not
fine-tuning models, so a recipe stage cannot start pre-training by mistake.
"""
from __future__ import annotations

from typing import List, Optional

from speechssl2.bin import train as train_cli
from speechssl2.cli import parse_stage, run_main
from speechssl2.config import ConfigError
from speechssl2.train.config import TrainConfig

FINETUNE_MODELS = ("ctc", "transducer")


def main(argv: Optional[List[str]] = None) -> None:
    cfg, args = parse_stage(TrainConfig, __doc__, argv, stage="finetune")
    name = cfg.model.get("name")
    overrides = list(args.overrides)
    if name is None:
        overrides.append(f"model.name={FINETUNE_MODELS[0]}")
    elif name not in FINETUNE_MODELS:
        raise ConfigError(f"model.name {name!r} is not a fine-tuning model; choose one of {', '.join(FINETUNE_MODELS)} "
                          "(use speechssl2.bin.train for other models)")
    config = ["--config", args.config] if args.config else []
    train_cli.main(config + [arg for item in overrides for arg in ("--set", item)])


if __name__ == "__main__":
    run_main(main)
