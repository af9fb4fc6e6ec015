"""Typed experiment config of ``python -m speechssl2.bin.train``.

Components (model, scheduler) stay ``{"name": key, ...}`` dicts that their registry
validates when it builds them; everything the loop itself reads is a typed field here,
checked once at start-up (``validate``) so a bad value fails before any data is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional

from speechssl2.config import ConfigError


@dataclass
class DataConfig:
    """Where the cuts are and how batches are formed (per GPU)."""

    train: str = ""  # lhotse CutSet manifest (jsonl[.gz]) for training
    valid: Optional[str] = None  # manifest for validation; None = no validation
    max_duration: float = 200.0  # seconds of audio per GPU per micro-batch
    features: str = "wave"  # frontend input the loader produces (see speechssl2.data.loader)
    sample_rate: int = 16000  # audio is resampled to this rate on loading
    num_buckets: int = 10  # duration buckets of the sampler (similar lengths batched together)
    num_workers: int = 2  # DataLoader worker processes per GPU
    label_field: Optional[str] = None  # custom cut field holding frame/token targets
    mixing: Optional[Dict[str, Any]] = None  # batch transform spec (WavLM denoising), passed through
    crop: Optional[Dict[str, Any]] = None  # fairseq pre-training batches (speechssl2.data.crop): crop, drop short


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw"] = "adamw"  # optimizer; adamw decouples the weight decay
    lr: float = 5e-4  # peak learning rate; the scheduler gives a multiplier of it
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])  # Adam moment decay rates
    eps: float = 1e-6  # Adam denominator epsilon
    weight_decay: float = 0.01  # weight decay factor


@dataclass
class TrainerConfig:
    """What the loop does per update; no model or data knobs live here."""

    max_updates: int = 1000  # optimizer updates to train for
    target_batch_seconds: Optional[float] = None  # audio seconds per update; None = no accumulation
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16 / fp16: mixed-precision autocast
    fp16_init_scale: float = 128.0  # first loss scale of the fp16 grad scaler (fairseq's default)
    clip_norm: float = 0.0  # 0 = no clipping (the norm is still measured and logged)
    log_every: int = 50  # updates between training log lines
    valid_every: int = 1000  # updates between validations
    save_every: int = 1000  # writes checkpoint_<updates>.pt and refreshes checkpoint_last.pt
    keep_last: Optional[int] = None  # numbered checkpoints to keep; None = keep all
    max_bad_steps: int = 10  # stop after this many consecutive non-finite steps
    seed: int = 1  # seeds the initial weights, batch order and masking
    best_metric: str = "loss"  # a validation loss, term or metric name
    best_mode: Literal["min", "max"] = "min"  # whether a lower or a higher best_metric is better (checkpoint_best.pt)
    find_unused_parameters: bool = False  # DDP: set when some parameters get no gradient (freezing)
    resume: Literal["auto", "never"] = "auto"  # auto: continue checkpoint_last.pt if it is this run's; never: replace it


@dataclass
class TrainConfig:
    model: Dict[str, Any] = field(default_factory=dict)  # MODELS spec: {"name": key, ...}
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: Dict[str, Any] = field(default_factory=lambda: {"name": "constant"})  # SCHEDULERS spec: lr multiplier
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    exp_dir: str = "exp/train"  # checkpoints, train.log, config.yaml and tensorboard/ go here
    # Continued pre-training (speechssl2.models.io.pretraining): fresh optimizer, update 0; not a resume.
    init_from: Optional[str] = None  # checkpoint whose weights (upstream and heads) start the run


def validate(cfg: TrainConfig) -> None:
    """Raise ``ConfigError`` naming the field for values the type hints cannot rule out."""
    t, d, o = cfg.trainer, cfg.data, cfg.optim
    problems: List[str] = []
    _positive(problems, "trainer.max_updates", t.max_updates)
    _positive(problems, "trainer.log_every", t.log_every)
    _positive(problems, "trainer.valid_every", t.valid_every)
    _positive(problems, "trainer.save_every", t.save_every)
    _positive(problems, "trainer.max_bad_steps", t.max_bad_steps)
    _positive(problems, "trainer.fp16_init_scale", t.fp16_init_scale)
    _positive(problems, "data.max_duration", d.max_duration)
    _positive(problems, "optim.lr", o.lr)
    if t.target_batch_seconds is not None:
        _positive(problems, "trainer.target_batch_seconds", t.target_batch_seconds)
    if t.keep_last is not None:
        _positive(problems, "trainer.keep_last", t.keep_last)
    if t.clip_norm < 0:
        problems.append(f"trainer.clip_norm must be >= 0 (0 = off), got {t.clip_norm}")
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        problems.append(f"optim.betas must be two values in [0, 1), got {o.betas}")
    if "name" not in cfg.scheduler:
        problems.append(f"scheduler needs a 'name' (a SCHEDULERS key), got {cfg.scheduler}")
    if not cfg.exp_dir:
        problems.append("exp_dir must not be empty")
    if problems:
        raise ConfigError("invalid training config:\n  " + "\n  ".join(problems))


def _positive(problems: List[str], name: str, value: float) -> None:
    if not value > 0:
        problems.append(f"{name} must be > 0, got {value}")
