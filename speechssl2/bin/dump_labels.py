"""Store nearest-centroid labels on the cuts: ``cuts_<name>.jsonl.gz`` with a TemporalArray field.

``python -m speechssl2.bin.dump_labels --config conf/targets_iter1.yaml [--set cuts=data/valid/cuts.jsonl.gz]``
Labels every feature shard of ``cuts`` (or only ``shard.rank``), skipping shards already
labelled; whichever process finds all shards done writes the merged manifest.
"""
from __future__ import annotations

import logging
from typing import List, Optional

from lhotse import CutSet

from speechssl2.cli import run_main
from speechssl2.targets.config import load_stage_config
from speechssl2.targets.kmeans import NearestCentroid
from speechssl2.targets.labels import label_shard, merge_parts, part_path

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    cfg = load_stage_config("dump_labels", __doc__, argv)
    cuts = list(CutSet.from_file(cfg.cuts))
    labeler = NearestCentroid.load(cfg.kmeans_dir)
    shards = cfg.shard_files()
    for rank in cfg.my_ranks():
        label_shard(cuts, shards[rank], labeler, cfg.labels_dir, cfg.labels.field, cfg.features.sample_rate)
    parts = [part_path(cfg.labels_dir, files) for files in shards]
    if all(p.exists() for p in parts):
        merge_parts(cuts, parts, cfg.label_manifest)
        logger.info("wrote %s (field %r)", cfg.label_manifest, cfg.labels.field)
    else:
        logger.info("%d of %d shards labelled; the last one writes %s",
                    sum(p.exists() for p in parts), len(parts), cfg.label_manifest)


if __name__ == "__main__":
    run_main(main)
