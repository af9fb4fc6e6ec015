"""Cluster labels stored on the cuts as a lhotse ``TemporalArray`` custom field.

Per shard: nearest-centroid ids of every dumped frame, fitted to the model frame grid
(:func:`align_labels`), saved with ``NumpyFilesWriter`` under ``labels_dir/shard_<r>_<n>/``
and listed in a partial manifest ``labels_dir/cuts_<r>_<n>.jsonl.gz`` (written last, by
rename: it marks the shard done). The merged manifest keeps the input order. A data
loader reads the labels back with ``cut.load_custom(field)`` -> (T,) int32.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
from lhotse import CutSet, NumpyFilesWriter
from lhotse.cut import Cut

from speechssl2.data.manifest import write_manifest_atomic
from speechssl2.targets.audio import at_rate
from speechssl2.targets.frames import FRAME_SHIFT_S, align_labels, conv_frame_count
from speechssl2.targets.shards import ShardFiles, iter_shard, require_complete, shard_bounds

logger = logging.getLogger(__name__)
Labeler = Callable[[np.ndarray], np.ndarray]  # (T, D) features -> (T,) ids


def label_shard(
    cuts: Sequence[Cut],
    files: ShardFiles,
    labeler: Labeler,
    labels_dir: Path,
    field: str,
    sample_rate: int,
) -> Path:
    """Label shard ``files.rank`` of ``cuts``; return its partial manifest (skip if done)."""
    part = part_path(labels_dir, files)
    if part.exists():
        logger.info("%s exists: skipping", part)
        return part
    start, end = shard_bounds(len(cuts), files.nshard, files.rank)
    shard = list(cuts[start:end])
    require_complete(files)
    stored_ids = [cid for cid, _ in files.read_lengths()]
    if stored_ids != [c.id for c in shard]:
        raise ValueError(
            f"{files.feats} does not hold the cuts {start}..{end - 1} of this manifest "
            f"(first stored id {stored_ids[:1]}, expected {shard[0].id if shard else None!r}): "
            "re-run dump_features for this manifest"
        )
    labelled = []
    with NumpyFilesWriter(shard_dir(labels_dir, files)) as writer:
        for cut, (_, feats) in zip(shard, iter_shard(files)):
            num_frames = conv_frame_count(at_rate(cut, sample_rate).num_samples)
            labels = align_labels(labeler(feats), num_frames, cut.id).astype(np.int32)  # (T,)
            array = writer.store_array(cut.id, labels, frame_shift=FRAME_SHIFT_S, temporal_dim=0, start=cut.start)
            labelled.append(cut.with_custom(field, array))
    write_manifest_atomic(CutSet.from_cuts(labelled), part)
    return part


def shard_dir(labels_dir: Path, files: ShardFiles) -> Path:
    """Where the label arrays of one shard are stored."""
    return labels_dir / f"shard_{files.rank}_{files.nshard}"


def part_path(labels_dir: Path, files: ShardFiles) -> Path:
    """The partial manifest of one shard; it exists only once the shard is fully labelled."""
    return labels_dir / f"cuts_{files.rank}_{files.nshard}.jsonl.gz"


def merge_parts(cuts: Sequence[Cut], parts: List[Path], out: Path) -> CutSet:
    """Write the labelled cuts of all ``parts`` in the order of ``cuts`` to ``out``."""
    by_id: Dict[str, Cut] = {}
    for part in parts:
        by_id.update((c.id, c) for c in CutSet.from_file(part))
    missing = [c.id for c in cuts if c.id not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} cuts have no labels (e.g. {missing[:3]}): a shard was not labelled")
    merged = CutSet.from_cuts(by_id[c.id] for c in cuts)
    write_manifest_atomic(merged, out)
    return merged
