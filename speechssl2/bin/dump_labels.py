"""Store nearest-centroid labels on the cuts: ``cuts_<name>.jsonl.gz`` with a TemporalArray field.

``python -m speechssl2.bin.dump_labels --config conf/targets_iter1.yaml [--set cuts=data/valid/cuts.jsonl.gz]``
Labels every feature shard of ``cuts`` (or only ``shard.rank``), skipping shards labelled
from the same features and k-means; the run without ``shard.rank`` (after the parallel
jobs, or alone) writes the merged manifest.
"""
from __future__ import annotations

import logging
from typing import List, Optional

from lhotse import CutSet

from speechssl2.cli import run_main
from speechssl2.targets.bookkeeping import label_shard_stage, merge_stage, remove
from speechssl2.targets.config import load_stage_config
from speechssl2.targets.kmeans import NearestCentroid
from speechssl2.targets.labels import label_shard, merge_parts, part_path, shard_dir

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    cfg = load_stage_config("dump_labels", __doc__, argv)
    cuts = list(CutSet.from_file(cfg.cuts))
    labeler = NearestCentroid.load(cfg.kmeans_dir)
    shards = cfg.shard_files()
    for rank in cfg.my_ranks():
        stage = label_shard_stage(cfg, rank)
        if stage.up_to_date():
            continue
        part, arrays = part_path(cfg.labels_dir, shards[rank]), shard_dir(cfg.labels_dir, shards[rank])
        if not stage.resumable:  # labels of another codebook or other features
            remove([part, arrays])
        label_shard(cuts, shards[rank], labeler, cfg.labels_dir, cfg.labels.field, cfg.features.sample_rate)
        stage.done([part, arrays])
    if cfg.shard.rank is not None:
        logger.info("shard %d of %d labelled; a run without shard.rank merges %s",
                    cfg.shard.rank, cfg.shard.nshard, cfg.label_manifest)
        return
    stage = merge_stage(cfg)
    if not stage.up_to_date():
        merge_parts(cuts, [part_path(cfg.labels_dir, files) for files in shards], cfg.label_manifest)
        stage.done([cfg.label_manifest])
        logger.info("wrote %s (field %r)", cfg.label_manifest, cfg.labels.field)


if __name__ == "__main__":
    run_main(main)
