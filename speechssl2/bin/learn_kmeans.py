"""Train k-means (faiss) on a random sample of the dumped features of one HuBERT iteration.

``python -m speechssl2.bin.learn_kmeans --config conf/targets_iter1.yaml``
writes ``<exp_dir>/kmeans_iter<k>/km.npy`` (centroids) and ``km.json`` (n_clusters, inertia,
features used). A finished run with the same settings on the same feature shards is
skipped (``speechssl2.targets.bookkeeping``); otherwise k-means is trained again, and the
labels that depend on it follow.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import List, Optional

from speechssl2.cli import run_main
from speechssl2.targets.bookkeeping import kmeans_stage
from speechssl2.targets.config import load_stage_config
from speechssl2.targets.kmeans import sample_frames, train_kmeans
from speechssl2.targets.shards import require_complete

logger = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> None:
    cfg = load_stage_config("learn_kmeans", __doc__, argv)
    stage = kmeans_stage(cfg)
    if stage.up_to_date():
        return
    shards = cfg.shard_files()
    for files in shards:
        require_complete(files)
    features = json.loads(shards[0].marker.read_text(encoding="utf-8"))["settings"]
    info = {"features": features, "feat_dir": str(cfg.feat_dir), "nshard": cfg.shard.nshard,
            "kmeans": asdict(cfg.kmeans)}
    k = cfg.kmeans
    x = sample_frames(shards, k.max_frames, k.percent, k.seed)  # (n, D)
    result = train_kmeans(x, k.n_clusters, k.niter, k.nredo, k.seed)
    result.save(cfg.kmeans_dir, info)
    stage.done([cfg.kmeans_dir / "km.npy", cfg.kmeans_dir / "km.json"])
    logger.info("k-means %d on %d frames: inertia/frame %.4f -> %s", k.n_clusters, result.num_frames,
                result.inertia / result.num_frames, cfg.kmeans_dir)


if __name__ == "__main__":
    run_main(main)
