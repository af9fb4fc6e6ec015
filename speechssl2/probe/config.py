"""Typed config of ``python -m speechssl2.bin.probe`` and the upstream entries it names.

YAML::

    upstreams:                        # rows of the results table
      - {name: wavlm_tiny}            # a preset, randomly initialised: the baseline row
      - exp/pretrain/checkpoint_*.pt  # checkpoints (glob: every intermediate one, in numeric order)
      - {path: hf/wavlm-base, tag: wavlm_base_hf, source: hf}
    extra_upstreams: []               # rows appended after ``upstreams`` (a recipe adds its checkpoints
                                      # here, so a --set on it never replaces the configured list)
    tasks:                            # columns: task name -> TaskConfig
      ks: {label: custom.digit, downstream: {name: utterance_classifier}, train: ..., test: ...}

Everything is checked here, before any audio is read, so a typo fails at start-up.
"""
from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Union

from speechssl2.config import ConfigError, from_dict
from speechssl2.registry import DOWNSTREAMS, PRESETS

UpstreamEntry = Union[str, Dict[str, Any]]
SOURCES = ("hf", "fairseq", "unispeech", "speechssl2")
FILLED_IN = {"input_dim", "labels"}  # downstream arguments the probe supplies


@dataclass
class TaskConfig:
    """One probing task: where its data is, which label field, which downstream, how long."""

    train: str  # cut manifest (cuts.jsonl.gz); relative paths are under ProbeConfig.data_dir
    test: str
    label: str  # supervision field: text, speaker, language, gender or custom.<key>
    downstream: Dict[str, Any]  # {"name": DOWNSTREAMS key, **kwargs}; input_dim/labels are filled in
    epochs: int = 10
    batch_size: int = 16  # utterances per update
    lr: float = 1e-3  # downstream learning rate (Adam)
    weights_lr: float = 1e-2  # featurizer layer-weight learning rate: a few epochs must be enough to move them
    max_train_utts: Optional[int] = None  # seeded random subset, to keep CPU runs short
    max_test_utts: Optional[int] = None


@dataclass
class ProbeConfig:
    upstreams: List[UpstreamEntry] = field(default_factory=list)  # rows: presets (random init) and checkpoints or globs
    extra_upstreams: List[UpstreamEntry] = field(default_factory=list)  # appended after ``upstreams``
    tasks: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # parsed by ``task_configs``
    data_dir: str = "."  # relative task manifests are found here (a recipe sets it to its data/)
    output_dir: str = "exp/probe"  # results.md, results.json, plots, logs
    layer_norm: bool = True  # normalize every hidden state before the weighted sum
    cache: Literal["memory", "disk", "none"] = "memory"  # see speechssl2.probe.features
    extract_batch_size: int = 16  # utterances per upstream forward when extracting
    device: str = "cpu"  # torch device for extraction and downstream training
    seed: int = 0  # seeds subsets, downstream initialisation and batch order


@dataclass
class UpstreamRef:
    """A resolved upstream entry: a preset spec (random init) or a checkpoint path, and its row name."""

    tag: str
    preset: Optional[Dict[str, Any]] = None  # {"name": preset, **overrides}
    path: Optional[str] = None
    source: Optional[str] = None  # force a checkpoint format; None = detect


def task_configs(cfg: ProbeConfig) -> Dict[str, TaskConfig]:
    """Every task as a validated ``TaskConfig`` with manifest paths under ``data_dir``; bad downstreams fail here."""
    if not cfg.tasks:
        raise ConfigError("tasks: no probing task configured")
    tasks = {name: from_dict(TaskConfig, spec, where=f"tasks.{name}") for name, spec in cfg.tasks.items()}
    for name, task in tasks.items():
        task.train, task.test = str(Path(cfg.data_dir) / task.train), str(Path(cfg.data_dir) / task.test)
        if task.downstream.get("name") not in DOWNSTREAMS:
            raise ConfigError(f"tasks.{name}.downstream: unknown name {task.downstream.get('name')!r}; "
                              f"valid: {', '.join(DOWNSTREAMS.keys())}")
        filled = sorted(FILLED_IN & set(task.downstream))
        if filled:
            raise ConfigError(f"tasks.{name}.downstream: {filled} are filled in from the upstream and the "
                              "training labels; remove them from the config")
    return tasks


def resolve_upstreams(entries: Sequence[UpstreamEntry], extra: Sequence[UpstreamEntry] = ()) -> List[UpstreamRef]:
    """``entries`` then ``extra`` (``ProbeConfig.extra_upstreams``): globs expanded, every entry
    checked, every row given a unique tag."""
    if not entries and not extra:
        raise ConfigError("upstreams: no upstream to probe")
    refs = [ref for key, group in (("upstreams", entries), ("extra_upstreams", extra))
            for i, entry in enumerate(group) for ref in _resolve(entry, f"{key}[{i}]")]
    tags = [r.tag for r in refs]
    dupes = sorted({t for t in tags if tags.count(t) > 1})
    if dupes:
        raise ConfigError(f"upstreams: duplicate tag(s) {dupes}; give entries distinct 'tag' values")
    return refs


def _resolve(entry: UpstreamEntry, where: str) -> List[UpstreamRef]:
    if isinstance(entry, str):
        entry = {"path": entry}
    spec = dict(entry)
    tag, path, source = spec.pop("tag", None), spec.pop("path", None), spec.pop("source", None)
    if (path is None) == ("name" not in spec):
        raise ConfigError(f"{where}: give either 'path' (a checkpoint) or 'name' (a preset), got {dict(entry)}")
    if path is None:
        if spec["name"] not in PRESETS:
            raise ConfigError(f"{where}: unknown preset {spec['name']!r}; valid: {', '.join(PRESETS.keys())}")
        return [UpstreamRef(tag or f"{spec['name']} (random init)", preset=spec)]
    if spec or (source is not None and source not in SOURCES):
        raise ConfigError(f"{where}: a checkpoint entry takes only path, tag and source ({', '.join(SOURCES)}); "
                          f"got {dict(entry)}")
    paths = sorted(glob.glob(path), key=_natural_key) if glob.has_magic(path) else [path]
    if not paths or not all(Path(p).exists() for p in paths):
        raise ConfigError(f"{where}: no checkpoint found at {path!r}")
    if tag is not None and len(paths) > 1:
        raise ConfigError(f"{where}: 'tag' names one row but {path!r} matches {len(paths)} checkpoints")
    return [UpstreamRef(tag or checkpoint_tag(p), path=p, source=source) for p in paths]


def checkpoint_tag(path: str) -> str:
    """Row name of a checkpoint: its folder and file stem (``pretrain/checkpoint_3000``)."""
    p = Path(path)
    return f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem


def _natural_key(text: str) -> List[Any]:
    """checkpoint_900 before checkpoint_1000."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
