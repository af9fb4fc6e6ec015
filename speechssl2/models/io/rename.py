"""Explicit key-rename tables between speechssl2 state dicts and released checkpoints.

A table is an ordered list of ``(ours, theirs)`` key prefixes; ``{n}`` stands for a
layer index. The first entry whose prefix matches wins, in either direction, so more
specific entries come first. Loading is strict: every key must be mapped and used,
except keys matching an explicit ignore list.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor, nn

Table = Sequence[Tuple[str, str]]


class CheckpointError(ValueError):
    """A checkpoint does not fit the model: unknown format, missing/unexpected keys, shapes."""


def _compile(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix).replace(re.escape("{n}"), r"(?P<n>\d+)"))


def rename(state: Mapping[str, Tensor], table: Table, reverse: bool = False,
           ignore: Iterable[str] = (), where: str = "checkpoint") -> Dict[str, Tensor]:
    """Map ``theirs -> ours`` (or ``ours -> theirs`` with ``reverse``); unmapped keys raise unless they
    start with one of the ``ignore`` prefixes."""
    pairs = [(b, a) if reverse else (a, b) for a, b in table]
    rules = [(_compile(src), dst) for dst, src in pairs]
    skip = tuple(ignore)
    out: Dict[str, Tensor] = {}
    unmapped: List[str] = []
    for key, value in state.items():
        for pattern, dst in rules:
            m = pattern.match(key)
            if m:
                out[dst.replace("{n}", m.groupdict().get("n") or "") + key[m.end():]] = value
                break
        else:
            if not key.startswith(skip):
                unmapped.append(key)
    if unmapped:
        raise CheckpointError(f"{where}: {len(unmapped)} key(s) have no rename rule: {_short(unmapped)}")
    return out


def load_strict(module: nn.Module, state: Mapping[str, Tensor], where: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing/unexpected keys and shape mismatches."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {_short(shapes)}")
    if problems:
        raise CheckpointError(f"{where} does not match the model: " + "; ".join(problems))
    with torch.no_grad():
        module.load_state_dict(dict(state), strict=True)


def _short(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
