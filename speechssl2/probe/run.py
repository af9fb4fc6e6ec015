"""Probe every upstream on every task: the work behind ``speechssl2.bin.probe``.

Per upstream: load it frozen, extract (or reuse) the hidden states of each task's data,
train a fresh featurizer + downstream per task, score it on the test set. Per task the
chance level is the score of always predicting the most frequent training label.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from speechssl2.logging_utils import TensorBoard
from speechssl2.models import build_upstream
from speechssl2.probe.config import ProbeConfig, TaskConfig, UpstreamRef
from speechssl2.probe.featurizer import Featurizer, FrozenUpstream
from speechssl2.probe.features import fingerprint, make_store
from speechssl2.probe.labels import LabelledSet, load_labelled_set
from speechssl2.probe.loop import Features, ProbeModel, predict_set, train_probe
from speechssl2.registry import DOWNSTREAMS
from speechssl2.train.build import seed_everything

log = logging.getLogger("speechssl2.probe")
TaskData = Dict[str, Tuple[LabelledSet, LabelledSet]]  # task -> (train, test)


def load_task_data(tasks: Dict[str, TaskConfig], seed: int) -> TaskData:
    """Cuts and labels of every task's train and test sets (fails on a bad label before any training)."""
    return {
        name: (load_labelled_set(t.train, t.label, t.max_train_utts, seed),
               load_labelled_set(t.test, t.label, t.max_test_utts, seed))
        for name, t in tasks.items()
    }


def chance_level(task: TaskConfig, train: LabelledSet, test: LabelledSet) -> float:
    """Score of predicting the most frequent training label (ties: alphabetically first) everywhere."""
    counts = Counter(train.labels)
    majority = min(counts, key=lambda label: (-counts[label], label))
    return DOWNSTREAMS.get(task.downstream["name"]).score(test.labels, [majority] * len(test.labels))


def load_frozen(ref: UpstreamRef, seed: int) -> FrozenUpstream:
    """A preset is built with seeded random weights (reproducible baseline); a path is loaded."""
    if ref.preset is not None:
        torch.manual_seed(seed)
        return FrozenUpstream(build_upstream(ref.preset))
    from speechssl2 import load_pretrained

    upstream, _ = load_pretrained(ref.path, source=ref.source)
    return FrozenUpstream(upstream)


def probe_upstream(ref: UpstreamRef, tasks: Dict[str, TaskConfig], data: TaskData, cfg: ProbeConfig,
                   tensorboard: Optional[TensorBoard] = None) -> Dict[str, Dict[str, Any]]:
    """Train and score one probe per task on ``ref``; returns task -> result record."""
    device = torch.device(cfg.device)
    frozen = load_frozen(ref, cfg.seed).to(device)
    key = fingerprint(frozen) if cfg.cache == "disk" else ""
    stores: Dict[Tuple[str, Tuple[str, ...]], Features] = {}

    def features(split: LabelledSet, desc: str) -> Features:
        """One store per distinct set of cuts: tasks sharing a manifest share its features."""
        ident = (split.manifest, tuple(sorted(split.ids)))
        if ident not in stores:
            stores[ident] = make_store(cfg.cache, frozen, split.cuts, batch_size=cfg.extract_batch_size,
                                       device=device, cache_dir=Path(cfg.output_dir) / "cache",
                                       upstream_key=key, desc=desc)
        return stores[ident]

    results: Dict[str, Dict[str, Any]] = {}
    for name, task in tasks.items():
        train, test = data[name]
        seed_everything(cfg.seed)
        downstream = DOWNSTREAMS.build(task.downstream, input_dim=frozen.embed_dim, labels=train.labels)
        model = ProbeModel(Featurizer(frozen.num_layers, cfg.layer_norm), downstream)
        losses = train_probe(model, features(train, f"{ref.tag} {name} train"), train, epochs=task.epochs,
                             batch_size=task.batch_size, lr=task.lr, weights_lr=task.weights_lr, device=device,
                             seed=cfg.seed, tensorboard=tensorboard, prefix=f"{ref.tag}/{name}/")
        hyps = predict_set(model, features(test, f"{ref.tag} {name} test"), test, task.batch_size, device)
        value = downstream.score(test.labels, hyps)
        log.info("%s %s: %s %.2f %% (train loss %.3f -> %.3f)", ref.tag, name, downstream.metric, value,
                 losses[0], losses[-1])
        results[name] = {"value": value, "layer_weights": model.featurizer.layer_weights(), "epoch_losses": losses}
        if tensorboard is not None:
            tensorboard.scalars({downstream.metric: value}, 0, prefix=f"{ref.tag}/{name}/test/")
    return results


def task_summary(tasks: Dict[str, TaskConfig], data: TaskData) -> Dict[str, Dict[str, Any]]:
    """What the report needs to know about each task, independent of the upstream."""
    summary = {}
    for name, task in tasks.items():
        train, test = data[name]
        cls = DOWNSTREAMS.get(task.downstream["name"])
        summary[name] = {
            "metric": cls.metric, "higher_is_better": cls.higher_is_better, "label": task.label,
            "downstream": task.downstream["name"], "chance": chance_level(task, train, test),
            "train_utts": len(train.cuts), "test_utts": len(test.cuts), "epochs": task.epochs,
        }
    return summary


def run_probe(cfg: ProbeConfig, tasks: Dict[str, TaskConfig], upstreams: List[UpstreamRef]) -> Dict[str, Any]:
    """All upstreams x all tasks; returns the ``results.json`` document."""
    data = load_task_data(tasks, cfg.seed)
    tensorboard = TensorBoard(Path(cfg.output_dir) / "tensorboard")
    try:
        results = {ref.tag: probe_upstream(ref, tasks, data, cfg, tensorboard) for ref in upstreams}
    finally:
        tensorboard.close()
    return {
        "tasks": task_summary(tasks, data),
        "upstreams": [{"tag": r.tag, "path": r.path, "preset": r.preset} for r in upstreams],
        "results": results,
    }
