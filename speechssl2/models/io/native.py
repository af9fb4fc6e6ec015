"""speechssl2's own formats: an upstream checkpoint and the trainer's experiment checkpoint.

Upstream: ``{"format": "speechssl2-upstream", "version": 1, "spec": <resolved spec>, "state_dict": ...}``.
Training: ``{"model": <whole trainable's state_dict, upstream under "upstream.">, "config":
<resolved experiment config, upstream spec at config["model"]["upstream"]>, ...}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import torch

from speechssl2.models.io.rename import CheckpointError, load_strict
from speechssl2.models.upstream import Upstream, build_upstream

FORMAT = "speechssl2-upstream"
PREFIX = "upstream."


def save_upstream(upstream: Upstream, path: str | Path) -> Path:
    """Write an upstream checkpoint (atomically: a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": 1, "spec": upstream.spec, "state_dict": upstream.state_dict()}, tmp)
    tmp.replace(path)
    return path


def is_training_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    cfg = ckpt.get("config")
    return "model" in ckpt and isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping) \
        and "upstream" in cfg["model"]


def load_native(ckpt: Mapping[str, Any], where: str) -> Tuple[Upstream, Dict[str, Any]]:
    upstream = build_upstream(ckpt["spec"])
    load_strict(upstream, ckpt["state_dict"], where=where)
    return upstream, upstream.spec


def load_training(ckpt: Mapping[str, Any], where: str) -> Tuple[Upstream, Dict[str, Any]]:
    """Pull the upstream out of a trainer checkpoint; the rest of the trainable is left behind."""
    spec = ckpt["config"]["model"]["upstream"]
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"{where}: config.model.upstream is {spec!r}, not an upstream spec mapping")
    state = {k[len(PREFIX):]: v for k, v in ckpt["model"].items() if k.startswith(PREFIX)}
    if not state:
        raise CheckpointError(f"{where}: no weights under the prefix {PREFIX!r} in checkpoint['model']")
    upstream = build_upstream(spec)
    load_strict(upstream, state, where=where)
    return upstream, upstream.spec
