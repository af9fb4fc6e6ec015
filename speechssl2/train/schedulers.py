"""Learning-rate schedules as pure functions of the update number.

Each schedule returns a *multiplier* of ``optim.lr`` for the ``u``-th update (1-based:
``u = num_updates + 1``), so ``scale(1)`` is the first update's and ``scale(total)`` the
last's. Being pure, a schedule carries no state: resuming needs only the update count.
The trainer builds one with ``SCHEDULERS.build(cfg.scheduler, total_updates=max_updates)``.
"""
from __future__ import annotations

import math

from speechssl2.registry import SCHEDULERS


def _check_warmup(name: str, warmup_updates: int, total_updates: int) -> None:
    if total_updates <= 0:
        raise ValueError(f"{name}: total_updates must be > 0, got {total_updates}")
    if not 0 <= warmup_updates <= total_updates:
        raise ValueError(
            f"{name}: warmup_updates must be in [0, total_updates={total_updates}], got {warmup_updates}"
        )


def _warmup(u: int, warmup_updates: int, init_scale: float) -> float:
    """Linear ramp from ``init_scale`` (u = 0) to 1 (u = warmup_updates)."""
    return init_scale + (1.0 - init_scale) * u / warmup_updates


@SCHEDULERS.register("constant")
class Constant:
    """Optional linear warm-up, then the peak rate."""

    def __init__(self, total_updates: int, warmup_updates: int = 0) -> None:
        _check_warmup("constant", warmup_updates, total_updates)
        self.warmup_updates = warmup_updates

    def __call__(self, u: int) -> float:
        if u < self.warmup_updates:
            return _warmup(u, self.warmup_updates, 0.0)
        return 1.0


@SCHEDULERS.register("poly")
class Poly:
    """Linear warm-up to the peak, then ``final + (1 - final) * (1 - progress) ** power``.

    The wav2vec 2.0 / HuBERT pre-training schedule (power 1: linear decay to 0).
    """

    def __init__(
        self, total_updates: int, warmup_updates: int = 0, power: float = 1.0, final_scale: float = 0.0
    ) -> None:
        _check_warmup("poly", warmup_updates, total_updates)
        if power <= 0 or not 0.0 <= final_scale <= 1.0:
            raise ValueError(f"poly: need power > 0 and final_scale in [0, 1], got {power}, {final_scale}")
        self.total_updates = total_updates
        self.warmup_updates = warmup_updates
        self.power = power
        self.final_scale = final_scale

    def __call__(self, u: int) -> float:
        if u < self.warmup_updates:
            return _warmup(u, self.warmup_updates, 0.0)
        if u >= self.total_updates:
            return self.final_scale
        progress = (u - self.warmup_updates) / (self.total_updates - self.warmup_updates)
        return self.final_scale + (1.0 - self.final_scale) * (1.0 - progress) ** self.power


@SCHEDULERS.register("linear")
def linear(total_updates: int, warmup_updates: int = 0, final_scale: float = 0.0) -> Poly:
    """Warm-up + linear decay: ``poly`` with power 1."""
    return Poly(total_updates, warmup_updates, power=1.0, final_scale=final_scale)


@SCHEDULERS.register("tri_stage")
class TriStage:
    """Warm-up from ``init_scale``, hold at the peak, exponential decay to ``final_scale``.

    Stage lengths are fractions of ``total_updates`` (default 10 % / 40 % / 50 %, the
    wav2vec 2.0 fine-tuning schedule); any remainder stays at ``final_scale``.
    """

    def __init__(
        self,
        total_updates: int,
        warmup: float = 0.1,
        hold: float = 0.4,
        decay: float = 0.5,
        init_scale: float = 0.01,
        final_scale: float = 0.05,
    ) -> None:
        fractions = (warmup, hold, decay)
        if total_updates <= 0 or min(fractions) < 0 or sum(fractions) > 1.0 + 1e-9:
            raise ValueError(
                f"tri_stage: need total_updates > 0 and fractions >= 0 summing to <= 1, "
                f"got total_updates={total_updates}, warmup={warmup}, hold={hold}, decay={decay}"
            )
        if not (0.0 < final_scale <= 1.0 and 0.0 <= init_scale <= 1.0):
            raise ValueError(
                f"tri_stage: need final_scale in (0, 1] and init_scale in [0, 1], "
                f"got final_scale={final_scale}, init_scale={init_scale}"
            )
        self.warmup_updates = round(warmup * total_updates)
        self.hold_end = self.warmup_updates + round(hold * total_updates)
        self.decay_updates = round(decay * total_updates)
        self.init_scale = init_scale
        self.final_scale = final_scale

    def __call__(self, u: int) -> float:
        if u < self.warmup_updates:
            return _warmup(u, self.warmup_updates, self.init_scale)
        if u <= self.hold_end:
            return 1.0
        into_decay = u - self.hold_end
        if into_decay >= self.decay_updates:
            return self.final_scale
        return math.exp(math.log(self.final_scale) * into_decay / self.decay_updates)


@SCHEDULERS.register("cosine")
class Cosine:
    """Linear warm-up from ``init_scale`` (fairseq's ``warmup_init_lr`` / lr), then half a cosine
    from the peak down to ``final_scale`` (wav2vec 2019)."""

    def __init__(self, total_updates: int, warmup_updates: int = 0, final_scale: float = 0.0,
                 init_scale: float = 0.0) -> None:
        _check_warmup("cosine", warmup_updates, total_updates)
        for name, value in (("final_scale", final_scale), ("init_scale", init_scale)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"cosine: {name} must be in [0, 1], got {value}")
        self.total_updates = total_updates
        self.warmup_updates = warmup_updates
        self.final_scale = final_scale
        self.init_scale = init_scale

    def __call__(self, u: int) -> float:
        if u < self.warmup_updates:
            return _warmup(u, self.warmup_updates, self.init_scale)
        progress = min((u - self.warmup_updates) / max(self.total_updates - self.warmup_updates, 1), 1.0)
        return self.final_scale + (1.0 - self.final_scale) * 0.5 * (1.0 + math.cos(math.pi * progress))


@SCHEDULERS.register("inverse_sqrt")
class InverseSqrt:
    """Linear warm-up, then ``sqrt(warmup / u)`` (Transformer / w2v-BERT); total_updates is unused
    by the formula but checked like every schedule's."""

    def __init__(self, total_updates: int, warmup_updates: int) -> None:
        _check_warmup("inverse_sqrt", warmup_updates, total_updates)
        if warmup_updates < 1:
            raise ValueError("inverse_sqrt: warmup_updates must be >= 1 (the decay is relative to it)")
        self.warmup_updates = warmup_updates

    def __call__(self, u: int) -> float:
        if u < self.warmup_updates:
            return _warmup(u, self.warmup_updates, 0.0)
        return math.sqrt(self.warmup_updates / u)
