"""Train k-means (faiss) on the dumped features of a random sample of utterances of one HuBERT iteration.

``python -m speechssl2.bin.learn_kmeans --config conf/targets_iter1.yaml``
writes ``<exp_dir>/kmeans_iter<k>/km.npy`` (centroids) and ``km.json`` (n_clusters, inertia
of the kept restart and of every restart, sample size, features used). With
``kmeans.centroids=<K x D .npy>`` the given centroids (the k-means a released HuBERT was
trained on, for continued pre-training) are written instead, with their inertia. A finished run with the same settings on the same feature shards is
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
from speechssl2.targets.kmeans import given_centroids, sample_utterances, train_kmeans
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
    sample = sample_utterances(shards, k.percent, k.max_frames, k.seed)
    info["sample"] = {"utterances": sample.utterances, "of_utterances": sample.total_utterances,
                      "of_frames": sample.total_frames}
    if k.centroids:  # given (a released model's k-means): measured on the sample, not trained
        result = given_centroids(k.centroids, sample.frames, k.n_clusters)
    else:
        result = train_kmeans(sample.frames, k.n_clusters, k.niter, k.nredo, k.seed, k.init, k.init_size,
                              k.n_init)
    result.save(cfg.kmeans_dir, info)
    stage.done([cfg.kmeans_dir / "km.npy", cfg.kmeans_dir / "km.json"])
    logger.info("k-means %d on %d frames of %d utterances: inertia/frame %.5f (best of %d restarts) -> %s",
                k.n_clusters, result.num_frames, sample.utterances, result.inertia / result.num_frames,
                len(result.restarts), cfg.kmeans_dir)


if __name__ == "__main__":
    run_main(main)
