"""When a run may continue from the checkpoint already in its experiment directory.

Resuming is only right when the checkpoint was trained by the same experiment: the same
model, data, optimizer, scheduler and trainer settings, and the same contents of every
file the config names (cuts, upstream checkpoint, tokenizer). A different config, or
inputs rewritten since (new targets, a re-trained upstream), would leave weights that no
config describes: that is refused, naming what differs and how to start fresh. Fields
that only say how long to train or how often to log and save may change; a larger
``trainer.max_updates`` continues the run.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from speechssl2.config import ConfigError
from speechssl2.stage import dict_diff
from speechssl2.train.checkpoint import all_checkpoints

log = logging.getLogger(__name__)

# Dotted config fields that do not change the weights a run produces.
MAY_CHANGE = frozenset({
    "exp_dir", "data.num_workers", "trainer.max_updates", "trainer.log_every", "trainer.valid_every",
    "trainer.save_every", "trainer.keep_last", "trainer.max_bad_steps", "trainer.find_unused_parameters",
    "trainer.resume",
})


def resume_conflicts(stored: Mapping[str, Any], new: Mapping[str, Any],
                     stored_inputs: Optional[Mapping[str, str]], new_inputs: Optional[Mapping[str, str]]) -> List[str]:
    """What forbids continuing ``stored`` as ``new``: config fields (``a.b: old -> new``) and changed inputs."""
    fields = [d for d in dict_diff(dict(stored), dict(new)) if d.split(":", 1)[0] not in MAY_CHANGE]
    changed = []
    if stored_inputs is not None and new_inputs is not None:
        changed = [f"input {path} has other contents"
                   for path in sorted(stored_inputs.keys() & new_inputs.keys())
                   if stored_inputs[path] != new_inputs[path]]
    return fields + changed


def start_fresh(exp_dir: Path) -> None:
    """``trainer.resume=never``: remove every checkpoint of the earlier run, so none outlives it."""
    for old in all_checkpoints(exp_dir):
        log.info("trainer.resume=never: removing %s", old)
        old.unlink()


def check_resume(path: Any, state: Dict[str, Any], new_config: Mapping[str, Any],
                 new_inputs: Optional[Mapping[str, str]]) -> None:
    """Raise ``ConfigError`` when ``state`` (a loaded checkpoint) was trained otherwise than ``new_config``."""
    stored = state.get("config")
    if stored is None:
        raise ConfigError(f"{path} holds no config: it cannot be shown to belong to this run; "
                          "start fresh with --set trainer.resume=never or another exp_dir")
    conflicts = resume_conflicts(stored, new_config, state.get("inputs"), new_inputs)
    if conflicts:
        raise ConfigError(
            f"{path} was trained with another config or other inputs, so this run cannot continue it:\n  "
            + "\n  ".join(conflicts)
            + "\nstart fresh with --set trainer.resume=never (its checkpoints are replaced) or choose another exp_dir"
        )
