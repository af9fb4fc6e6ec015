"""Checkpoint files: atomic writes, the numbered/last/best layout, pruning, averaging, RNG.

A checkpoint is a plain dict (see ``speechssl2.train.trainer``) saved with ``torch.save``
and read back with ``weights_only=True``: everything in it is tensors, numbers, strings
and containers, so loading never executes pickled code.
"""
from __future__ import annotations

import io
import logging
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

log = logging.getLogger(__name__)

LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.pt"
_NUMBERED = re.compile(r"^checkpoint_(\d+)\.pt$")


def numbered_name(num_updates: int) -> str:
    return f"checkpoint_{num_updates}.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: Dict[str, Any], paths: Sequence[Path]) -> None:
    """Serialize ``state`` once and write it atomically to every path (last, numbered, best)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike) -> Dict[str, Any]:
    """Read a checkpoint onto the CPU; a missing or corrupt file is named in the error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, ...
        raise RuntimeError(f"checkpoint {path} cannot be read: {err}") from err
    if not isinstance(state, dict) or "model" not in state:
        raise RuntimeError(f"checkpoint {path} is not a speechssl2 checkpoint (no 'model' entry)")
    return state


def load_trained_model(path: str | os.PathLike, names: Sequence[str] = ()) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """Rebuild the model a training checkpoint describes (``config.model``), load its weights, eval mode.

    ``names`` restricts the model kinds a caller accepts (e.g. a decoder wants ``ctc`` or
    ``transducer``), so a wrong checkpoint fails here with its name, not deep in a search.
    """
    from speechssl2.registry import MODELS

    state = load_checkpoint(path)
    spec = (state.get("config") or {}).get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise RuntimeError(f"checkpoint {path} has no config.model spec; was it written by the speechssl2 trainer?")
    if names and spec["name"] not in names:
        raise ValueError(f"checkpoint {path} holds a {spec['name']!r} model; expected one of {', '.join(names)}")
    model = MODELS.build(spec)
    model.load_state_dict(state["model"])
    return model.eval(), state


def numbered_checkpoints(exp_dir: str | os.PathLike) -> List[Tuple[int, Path]]:
    """``[(num_updates, path), ...]`` of ``checkpoint_<updates>.pt`` files, oldest first."""
    found = []
    for path in Path(exp_dir).iterdir():
        match = _NUMBERED.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def all_checkpoints(exp_dir: str | os.PathLike) -> List[Path]:
    """Every checkpoint a run wrote into ``exp_dir``: last, best and numbered (none if it is absent)."""
    exp = Path(exp_dir)
    if not exp.is_dir():
        return []
    named = [exp / LAST, exp / BEST]
    return [p for p in named if p.is_file()] + [p for _, p in numbered_checkpoints(exp)]


def prune_checkpoints(exp_dir: str | os.PathLike, keep_last: int) -> List[Path]:
    """Delete all but the newest ``keep_last`` numbered checkpoints; return what was deleted."""
    doomed = [path for _, path in numbered_checkpoints(exp_dir)[:-keep_last]]
    for path in doomed:
        path.unlink()
    return doomed


def average_models(paths: Sequence[str | os.PathLike]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of the checkpoints' model weights.

    Floating tensors are averaged in float64 and cast back; integer buffers (counters
    such as BatchNorm's ``num_batches_tracked``) are taken from the last checkpoint.
    """
    if not paths:
        raise ValueError("average_models: no checkpoints given")
    last = load_checkpoint(paths[-1])["model"]
    sums = {k: v.double() for k, v in last.items() if v.is_floating_point()}
    for path in paths[:-1]:
        model = load_checkpoint(path)["model"]
        if model.keys() != last.keys():
            diff = sorted(set(model) ^ set(last))
            raise ValueError(f"{path}: parameter names differ from {paths[-1]}: {diff[:5]}")
        for key, total in sums.items():
            if model[key].shape != total.shape:
                raise ValueError(
                    f"{path}: {key} has shape {tuple(model[key].shape)}, {paths[-1]} has {tuple(total.shape)}"
                )
            total += model[key].double()
    return {k: (sums[k] / len(paths)).to(v.dtype) if k in sums else v for k, v in last.items()}


def rng_state() -> Dict[str, Any]:
    """Every generator that training draws from, in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "rest": list(np_state[2:])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def rank_rng_state(saved: Dict[str, Any] | List[Dict[str, Any]], rank: int, world_size: int) -> Dict[str, Any]:
    """This rank's generator states from a checkpoint's per-rank list.

    With another number of ranks than the checkpoint's, every rank takes rank 0's (and
    the run is no longer an exact continuation). Checkpoints older than per-rank states
    hold one dict.
    """
    states = [saved] if isinstance(saved, dict) else saved
    if len(states) == world_size:
        return states[rank]
    log.warning(
        "the checkpoint holds the RNG states of %d rank(s) but this run has %d: every rank restores "
        "rank 0's, so the resumed run is not an exact continuation", len(states), world_size,
    )
    return states[0]


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, *state["numpy"]["rest"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants the nested tuples that a round trip may turn into lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value
