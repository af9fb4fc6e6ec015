"""The training loop: read it top to bottom in ``Trainer.fit`` and ``Trainer._update``.

One update = ``accum`` micro-batches (gradients summed locally under DDP ``no_sync``,
synchronised on the last) -> unscale (fp16) -> divide by the global sample size ->
clip -> NaN/inf guard -> optimizer step at the scheduled learning rate. Micro-batch
losses are back-propagated weighted by their sample size, so accumulating 2 x B, or
running on 2 ranks with B each, gives the gradient of one batch of 2B.

fp16 overflows that the grad scaler handles (a finite loss, non-finite gradients: it
skips the step and halves its scale) are logged as ``loss_scale_overflows``; only other
non-finite steps, or overflows once the scale is below ``MIN_LOSS_SCALE``, count toward
``max_bad_steps``.

A checkpoint is a plain dict: ``model, optimizer, scheduler, scaler, sampler, rng (one
entry per rank), num_updates, epoch, batches_in_epoch, best, config``. A run whose
``exp_dir`` holds ``checkpoint_last.pt`` resumes from it exactly (the same parameters as
a run that was never interrupted, on the same hardware and number of ranks).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from speechssl2.config import ConfigError, save_config, to_dict
from speechssl2.interfaces import StepOutput
from speechssl2.logging_utils import TensorBoard, progress
from speechssl2.registry import SCHEDULERS
from speechssl2.train import checkpoint as ckpt
from speechssl2.train.build import build_optimizer, grad_accum_steps, seed_everything
from speechssl2.train.config import TrainConfig, validate
from speechssl2.train.resume import check_resume, start_fresh
from speechssl2.train.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_sum,
    barrier,
    device_for,
    env_info,
    is_distributed,
)
from speechssl2.train.metrics import WeightedMeans

log = logging.getLogger(__name__)

MIN_LOSS_SCALE = 1e-4  # fairseq's min_loss_scale: overflows below it are divergence, not bad luck


class TrainingDiverged(RuntimeError):
    """``max_bad_steps`` consecutive updates had a non-finite loss or gradient."""


@dataclass
class TrainResult:
    num_updates: int
    epoch: int
    best: Optional[float]
    last_valid: Dict[str, float]


def to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def audio_seconds(batch: Dict[str, Any]) -> float:
    """Seconds of audio in a batch (0 for batches without ``audio_lens``, e.g. text-only)."""
    if "audio_lens" not in batch:
        return 0.0
    return float(batch["audio_lens"].sum()) / float(batch["sample_rate"])


class Trainer:
    """Owns the model, optimizer, scaler and progress counters of one run."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        train_loader: Iterable[Dict[str, Any]],
        valid_loader: Optional[Iterable[Dict[str, Any]]] = None,
        dist_info: Optional[DistInfo] = None,
        inputs: Optional[Dict[str, str]] = None,
    ) -> None:
        validate(cfg)
        self.inputs = inputs  # content digest per input path (speechssl2.stage): a resume must see the same
        self.cfg, self.t = cfg, cfg.trainer
        self.info = dist_info or env_info()
        self.device = device_for(self.info)
        self.exp_dir = Path(cfg.exp_dir)
        self.train_loader, self.valid_loader = train_loader, valid_loader
        self.raw_model = model.to(self.device)
        self.model: nn.Module = self.raw_model
        if is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=self.t.find_unused_parameters
            )
        self.params = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, cfg.optim)
        self.schedule = SCHEDULERS.build(cfg.scheduler, total_updates=self.t.max_updates)
        self.scaler = torch.amp.GradScaler(
            self.device.type, init_scale=self.t.fp16_init_scale, enabled=self.t.precision == "fp16"
        )
        self.accum = grad_accum_steps(self.t.target_batch_seconds, cfg.data.max_duration, self.info.world_size)
        self.num_updates = self.epoch = self.batches_in_epoch = self.bad_steps = 0
        self.best: Optional[float] = None
        self.last_valid: Dict[str, float] = {}
        self.pending, self.pending_audio = WeightedMeans(), 0.0  # the micro-batches of this update
        self.resumed_rng: Optional[Dict[str, Any]] = None
        self.window, self.window_start, self.window_audio = WeightedMeans(), time.monotonic(), 0.0
        self.window_grad: List[float] = []  # grad norms of the updates since the last log line
        self.window_overflows = 0  # fp16 steps the scaler skipped since the last log line

    # ------------------------------------------------------------------ main loop
    def fit(self) -> TrainResult:
        """Train until ``max_updates`` (resuming from ``checkpoint_last.pt`` if present)."""
        seed_everything(self.t.seed + self.info.rank)
        done, sampler_resumed = self._resume()
        if self.info.is_main:
            save_config(self.cfg, self.exp_dir / "config.yaml")
        log.info(
            "training %d/%d updates, %d micro-batch(es) per update (target %s s, %.1f s x %d rank(s)), %s",
            self.num_updates, self.t.max_updates, self.accum, self.t.target_batch_seconds,
            self.cfg.data.max_duration, self.info.world_size, self.t.precision,
        )
        self.tb = TensorBoard(self.exp_dir / "tensorboard", enabled=self.info.is_main)
        self._set_model_updates()
        self.model.train()
        micro = 0
        while self.num_updates < self.t.max_updates:
            _set_epoch(self.train_loader, self.epoch)
            for batch in self._epoch_batches(done, sampler_resumed):
                micro += 1
                self._forward_backward(batch, sync=micro == self.accum)
                if micro < self.accum:
                    continue
                micro = 0
                if self._update():
                    self._after_update()
                if self.num_updates >= self.t.max_updates:
                    break
            else:  # the epoch ran out: the next one starts from its first batch
                if self.batches_in_epoch == 0:
                    raise RuntimeError(f"the training loader yielded no batches in epoch {self.epoch}")
                self.epoch, self.batches_in_epoch, done = self.epoch + 1, 0, 0
        self._finish()
        return TrainResult(self.num_updates, self.epoch, self.best, self.last_valid)

    def _epoch_batches(self, done: int, sampler_resumed: bool) -> Iterable[Dict[str, Any]]:
        """This epoch's batches after the ``done`` ones consumed before a resume.

        A sampler that restored its own position starts at batch ``done``; any other
        loader replays the epoch from its start and the consumed batches are dropped.
        """
        batches = iter(self.train_loader)
        if self.resumed_rng is not None:  # only now: a torch DataLoader draws a base seed in iter()
            ckpt.set_rng_state(self.resumed_rng)
            self.resumed_rng = None
        bar = progress(batches, desc=f"epoch {self.epoch}", disable=True if not self.info.is_main else None)
        for i, batch in enumerate(bar, start=done if sampler_resumed else 0):
            if i < done:
                continue
            self.batches_in_epoch = i + 1
            yield batch

    def _autocast(self) -> ContextManager[Any]:
        if self.t.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.t.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _forward_backward(self, batch: Dict[str, Any], sync: bool) -> None:
        """Add one micro-batch's gradient (weighted by its sample size) to ``.grad``."""
        no_sync = self.model.no_sync() if isinstance(self.model, DistributedDataParallel) and not sync else nullcontext()
        with no_sync:
            with self._autocast():
                out: StepOutput = self.model(to_device(batch, self.device))
            self.scaler.scale(out.loss.float() * out.sample_size).backward()
        self.pending.add(out)
        self.pending_audio += audio_seconds(batch)

    # ------------------------------------------------------------------ one update
    def _update(self) -> bool:
        """Normalise, clip, guard and step; False when a non-finite step was skipped."""
        totals = torch.tensor([self.pending.weight, self.pending.sums["loss"]], dtype=torch.float64)
        sample_size, loss_sum = all_reduce_sum(totals.to(self.device)).tolist()
        self.scaler.unscale_(self.optimizer)
        # DDP averaged the gradients over ranks; we want the sum over all samples / their number.
        factor = self.info.world_size / max(sample_size, 1.0)
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(factor)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.t.clip_norm or math.inf))
        finite = math.isfinite(loss_sum) and math.isfinite(grad_norm)
        if finite:
            lr = self.cfg.optim.lr * self.schedule(self.num_updates + 1)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.scaler.step(self.optimizer)
            self.num_updates += 1
            self.bad_steps = 0
            self.window.merge(self.pending)
            self.window_audio += self.pending_audio
            self.window_grad.append(grad_norm)
            self._set_model_updates()
        self.pending, self.pending_audio = WeightedMeans(), 0.0
        scale = self.scaler.get_scale()
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if not finite:
            self._skipped_step(loss_sum / max(sample_size, 1.0), grad_norm, scale)
        return finite

    def _skipped_step(self, loss: float, grad_norm: float, old_scale: float) -> None:
        """A finite loss whose gradients made the scaler lower its scale is an fp16 overflow, not a bad step."""
        new_scale = self.scaler.get_scale()
        if math.isfinite(loss) and MIN_LOSS_SCALE <= new_scale < old_scale:
            self.window_overflows += 1
            log.info(
                "fp16 gradient overflow at update %d: step skipped, loss scale %g -> %g",
                self.num_updates, old_scale, new_scale,
            )
            return
        self._bad_step(loss, grad_norm)

    def _bad_step(self, loss: float, grad_norm: float) -> None:
        """Count a skipped non-finite step; ``max_bad_steps`` of them in a row stop training."""
        self.bad_steps += 1
        scale = f", loss scale now {self.scaler.get_scale():g}" if self.scaler.is_enabled() else ""
        log.warning(
            "non-finite step skipped at update %d (epoch %d, batch %d): loss %s, grad norm %s%s "
            "[%d in a row, limit %d]",
            self.num_updates, self.epoch, self.batches_in_epoch, loss, grad_norm, scale,
            self.bad_steps, self.t.max_bad_steps,
        )
        if self.bad_steps >= self.t.max_bad_steps:
            raise TrainingDiverged(
                f"{self.bad_steps} consecutive non-finite steps at update {self.num_updates} "
                f"(epoch {self.epoch}, batch {self.batches_in_epoch}); last good state: "
                f"{self.exp_dir / ckpt.LAST}"
            )

    def _set_model_updates(self) -> None:
        """Let the model anneal with training (quantizer temperature, freezing schedules)."""
        setter = getattr(self.raw_model, "set_num_updates", None)
        if setter is not None:
            setter(self.num_updates)

    def _after_update(self) -> None:
        n = self.num_updates
        if n % self.t.log_every == 0 and self.window_grad:
            self._log_window()
        paths: List[Path] = []
        if n % self.t.valid_every == 0 and self._validate():
            paths.append(self.exp_dir / ckpt.BEST)
        if n % self.t.save_every == 0:
            paths += [self.exp_dir / ckpt.numbered_name(n), self.exp_dir / ckpt.LAST]
        self._save(paths)

    def _finish(self) -> None:
        if self.window_grad:
            self._log_window()
        saved = self.num_updates % self.t.save_every == 0  # _after_update wrote checkpoint_last
        paths = [] if saved else [self.exp_dir / ckpt.LAST]
        if self.num_updates % self.t.valid_every != 0 and self._validate():
            paths.append(self.exp_dir / ckpt.BEST)
        self._save(paths)
        self.tb.close()

    # ------------------------------------------------------------------ logging, validation
    def _log_window(self) -> None:
        """Log the means since the last log line: model metrics + grad norm, lr, scale, audio, speed."""
        values = self.window.reduce(self.device)
        audio = all_reduce_sum(torch.tensor([self.window_audio], device=self.device)).item()
        elapsed = max(time.monotonic() - self.window_start, 1e-9)
        values.update(
            grad_norm=sum(self.window_grad) / len(self.window_grad),
            lr=self.optimizer.param_groups[0]["lr"],
            loss_scale=self.scaler.get_scale() if self.scaler.is_enabled() else 1.0,
            loss_scale_overflows=self.window_overflows,
            audio_sec_per_update=audio / len(self.window_grad),  # all ranks; below target with short batches
            audio_sec_per_sec=audio / elapsed,
        )
        if self.info.is_main:
            log.info("update %d epoch %d | %s", self.num_updates, self.epoch, _fmt(values))
            self.tb.scalars(values, self.num_updates, prefix="train/")
        self.window, self.window_start, self.window_audio, self.window_grad = WeightedMeans(), time.monotonic(), 0.0, []
        self.window_overflows = 0

    def _validate(self) -> bool:
        """Run the validation set; True when ``best_metric`` improved."""
        if self.valid_loader is None:
            return False
        self.model.eval()
        means = WeightedMeans()
        with torch.no_grad(), self._autocast():
            for batch in self.valid_loader:
                means.add(self.raw_model(to_device(batch, self.device)))
        self.model.train()
        self.last_valid = means.reduce(self.device)
        if self.t.best_metric not in self.last_valid:
            raise ConfigError(
                f"trainer.best_metric {self.t.best_metric!r} is not among the validation values: "
                f"{', '.join(sorted(self.last_valid))}"
            )
        value = self.last_valid[self.t.best_metric]
        improved = self.best is None or (value < self.best if self.t.best_mode == "min" else value > self.best)
        if improved:
            self.best = value
        if self.info.is_main:
            log.info("valid at update %d | %s%s", self.num_updates, _fmt(self.last_valid), " (best)" if improved else "")
            self.tb.scalars(self.last_valid, self.num_updates, prefix="valid/")
        return improved

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, rng: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The checkpoint dict; ``rng``: every rank's generator states, indexed by rank."""
        sampler = getattr(self.train_loader, "sampler", None)
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"spec": dict(self.cfg.scheduler), "lr_scale": self.schedule(self.num_updates)},
            "scaler": self.scaler.state_dict(),
            "sampler": sampler.state_dict() if hasattr(sampler, "state_dict") else None,
            "rng": rng,
            "num_updates": self.num_updates,
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "best": self.best,
            "config": self._checkpoint_config(),
            "inputs": self.inputs,
        }

    def _checkpoint_config(self) -> Dict[str, Any]:
        """The run's config, with the model spec made self-contained where the model can (fine-tuning)."""
        config = to_dict(self.cfg)
        if hasattr(self.raw_model, "self_contained_spec"):
            config["model"] = self.raw_model.self_contained_spec(config["model"])
        return config

    def _save(self, paths: List[Path]) -> None:
        if not paths:
            return
        rng = all_gather_object(ckpt.rng_state())  # on every rank, so that each resumes its own
        if not self.info.is_main:
            return
        ckpt.save_checkpoint(self.state_dict(rng), paths)
        log.info("saved %s", ", ".join(p.name for p in paths))
        if self.t.keep_last is not None:
            for path in ckpt.prune_checkpoints(self.exp_dir, self.t.keep_last):
                log.info("removed %s (keep_last=%d)", path.name, self.t.keep_last)

    def _resume(self) -> Tuple[int, bool]:
        """Load ``checkpoint_last.pt`` if present.

        Returns the batches of the current epoch already consumed, and whether the
        loader's sampler restored that position itself (else they are skipped).
        """
        path = self.exp_dir / ckpt.LAST
        if self.t.resume == "never":
            if self.info.is_main:
                start_fresh(self.exp_dir)
            barrier()
            return 0, False
        if not path.is_file():
            return 0, False
        state = ckpt.load_checkpoint(path)
        check_resume(path, state, self._checkpoint_config(), self.inputs)
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.num_updates, self.epoch, self.best = state["num_updates"], state["epoch"], state["best"]
        self.batches_in_epoch = state["batches_in_epoch"]
        # restored once the epoch's iterator exists
        self.resumed_rng = ckpt.rank_rng_state(state["rng"], self.info.rank, self.info.world_size)
        log.info("resumed from %s at update %d (epoch %d, batch %d)", path, self.num_updates, self.epoch, self.batches_in_epoch)
        sampler = getattr(self.train_loader, "sampler", None)
        restored = state["sampler"] is not None and hasattr(sampler, "load_state_dict")
        if restored:  # lhotse samplers consume (mutate) the dict and fast-forward themselves
            sampler.load_state_dict(copy.deepcopy(state["sampler"]))
            workers = getattr(self.train_loader, "num_workers", 0)
            if workers:
                log.warning(
                    "the saved sampler position counts batches that %d loader worker(s) had prefetched "
                    "but not trained on; up to %d batches of epoch %d are skipped (num_workers=0 resumes exactly)",
                    workers, workers * (getattr(self.train_loader, "prefetch_factor", None) or 2), self.epoch,
                )
        return self.batches_in_epoch, restored


def train(
    cfg: TrainConfig,
    model: nn.Module,
    train_loader: Iterable[Dict[str, Any]],
    valid_loader: Optional[Iterable[Dict[str, Any]]] = None,
    dist_info: Optional[DistInfo] = None,
    inputs: Optional[Dict[str, str]] = None,
) -> TrainResult:
    """Train ``model`` (``forward(batch) -> StepOutput``) as ``cfg`` says; see ``Trainer``.

    ``inputs`` (path -> content digest) is stored in checkpoints; resuming with other
    contents is refused like a changed config (``speechssl2.train.resume``)."""
    return Trainer(cfg, model, train_loader, valid_loader, dist_info, inputs).fit()


def _set_epoch(loader: Any, epoch: int) -> None:
    """Reshuffle per epoch: lhotse samplers (and torch's DistributedSampler) key their order on it."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _fmt(values: Dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())
