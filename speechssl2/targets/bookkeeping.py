"""The stamps of the HuBERT target steps (``speechssl2.stage`` applied to one iteration).

The four steps share one config and one ``exp_dir``, and each reads what the step before
wrote under it, at paths derived from the config: those files are declared as extra
inputs, and so are the ark files an input ``feats.scp`` points into. Feature and label
dumps are stamped per shard (the config with ``shard.rank`` set), so a parallel job and
a later all-shards run agree on which shards are done. Each step leaves out the config
sections it does not read, so a new ``kmeans.n_clusters`` re-clusters without dumping the
features again.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import List

from speechssl2.stage import Stage, stamp_path
from speechssl2.targets.ark import scp_inputs
from speechssl2.targets.config import TargetsConfig
from speechssl2.targets.shards import ShardFiles


def _for_rank(cfg: TargetsConfig, rank: int) -> TargetsConfig:
    return dataclasses.replace(cfg, shard=dataclasses.replace(cfg.shard, rank=rank))


def _name(step: str, cfg: TargetsConfig) -> str:
    return f"{step}.iter{cfg.iteration}.{cfg.set_tag}"


def feature_shard_stage(cfg: TargetsConfig, rank: int) -> Stage:
    name = f"{_name('dump_features', cfg)}.{rank}of{cfg.shard.nshard}"
    scp = scp_inputs(cfg.features.scp) if cfg.features.kind == "scp" and cfg.features.scp else []
    return Stage(name, _for_rank(cfg, rank), stamp_path(cfg.feat_dir, name), [cfg.exp_dir],
                 unused=["kmeans", "labels", "pnmi"], extra_inputs=scp)


def kmeans_stage(cfg: TargetsConfig) -> Stage:
    name = _name("learn_kmeans", cfg)
    return Stage(name, cfg, stamp_path(cfg.kmeans_dir, name), [cfg.exp_dir],
                 unused=["shard.rank", "labels", "pnmi"], extra_inputs=shard_paths(cfg))


def label_shard_stage(cfg: TargetsConfig, rank: int) -> Stage:
    files = ShardFiles(cfg.feat_dir, rank, cfg.shard.nshard)
    name = f"{_name('dump_labels', cfg)}.{rank}of{cfg.shard.nshard}"
    km = [cfg.kmeans_dir / "km.npy", cfg.kmeans_dir / "km.json"]
    return Stage(name, _for_rank(cfg, rank), stamp_path(cfg.labels_dir, name), [cfg.exp_dir, cfg.label_manifest],
                 unused=["pnmi"], extra_inputs=km + [files.feats, files.lengths, files.marker])


def merge_stage(cfg: TargetsConfig) -> Stage:
    name = _name("merge_labels", cfg)
    return Stage(name, cfg, stamp_path(cfg.labels_dir, name), [cfg.exp_dir, cfg.label_manifest],
                 unused=["shard.rank", "pnmi"], extra_inputs=[cfg.labels_dir])


def pnmi_stage(cfg: TargetsConfig) -> Stage:
    name = _name("pnmi", cfg)
    return Stage(name, cfg, stamp_path(cfg.kmeans_dir, name), [cfg.exp_dir],
                 unused=["shard.rank"], extra_inputs=[cfg.label_manifest, cfg.kmeans_dir / "km.json"])


def shard_paths(cfg: TargetsConfig) -> List[Path]:
    """The three files of every feature shard."""
    return [p for f in cfg.shard_files() for p in (f.feats, f.lengths, f.marker)]


def remove(paths: List[Path]) -> None:
    """Clear a step's partial outputs that came from other inputs (``Stage.resumable`` is False)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
