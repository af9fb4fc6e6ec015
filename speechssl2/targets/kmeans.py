"""K-means on a random sample of dumped frames (faiss), and nearest-centroid labelling.

Only the sample is held in memory: frames are drawn uniformly from all shards and read
through memory maps, so the feature dump may be far larger than RAM.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import faiss
import numpy as np

from speechssl2.config import atomic_write_text
from speechssl2.targets.shards import ShardFiles, require_complete

logger = logging.getLogger(__name__)


def sample_frames(shards: List[ShardFiles], max_frames: int, percent: float, seed: int) -> np.ndarray:
    """(n, D) float32 frames drawn without replacement from all ``shards``.

    ``n = min(max_frames, round(percent * total))``: ``percent`` scales with the corpus,
    ``max_frames`` caps memory and k-means time.
    """
    if not 0.0 < percent <= 1.0:
        raise ValueError(f"percent must be in (0, 1], got {percent}")
    arrays = []
    for files in shards:
        require_complete(files)
        arrays.append(np.load(files.feats, mmap_mode="r"))  # (N_s, D)
    sizes = np.array([a.shape[0] for a in arrays])
    total = int(sizes.sum())
    if total == 0:
        raise ValueError(f"no frames in {[str(s.feats) for s in shards]}")
    n = min(max_frames, max(1, round(percent * total)))
    picks = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    parts = [
        array[picks[(picks >= lo) & (picks < hi)] - lo]  # reads only the picked rows
        for array, lo, hi in zip(arrays, bounds[:-1], bounds[1:])
    ]
    logger.info("sampled %d of %d frames (%.1f %%)", n, total, 100.0 * n / total)
    return np.concatenate(parts).astype(np.float32)  # (n, D)


@dataclass
class KMeansResult:
    """Trained centroids and how well they fit the sample."""

    centroids: np.ndarray  # (K, D) float32
    inertia: float  # sum of squared distances of the sample to its nearest centroid
    num_frames: int  # sample size

    def save(self, out_dir: Path, info: Dict[str, Any]) -> None:
        """``km.npy`` + ``km.json``; the json, written last, marks the run complete."""
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / ".km.partial.npy"
        np.save(tmp, self.centroids)
        tmp.replace(out_dir / "km.npy")
        meta = {
            "n_clusters": int(self.centroids.shape[0]),
            "dim": int(self.centroids.shape[1]),
            "inertia": self.inertia,
            "inertia_per_frame": self.inertia / max(self.num_frames, 1),
            "num_frames": self.num_frames,
            **info,
        }
        atomic_write_text(out_dir / "km.json", json.dumps(meta, indent=2) + "\n")


def train_kmeans(x: np.ndarray, n_clusters: int, niter: int, nredo: int, seed: int) -> KMeansResult:
    """Lloyd k-means on ``x`` (n, D) with faiss; best of ``nredo`` seeded restarts."""
    if x.shape[0] < n_clusters:
        raise ValueError(f"{x.shape[0]} frames cannot make {n_clusters} clusters: dump more data or lower n_clusters")
    km = faiss.Kmeans(
        x.shape[1], n_clusters, niter=niter, nredo=nredo, seed=seed, verbose=False,
        max_points_per_centroid=x.shape[0],  # we sampled already: do not let faiss subsample again
    )
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    inertia = float(km.obj[-1]) if len(km.obj) else float("nan")
    return KMeansResult(centroids=km.centroids.astype(np.float32), inertia=inertia, num_frames=int(x.shape[0]))


class NearestCentroid:
    """Assigns each frame the id of its nearest centroid (squared L2)."""

    def __init__(self, centroids: np.ndarray) -> None:
        self.index = faiss.IndexFlatL2(centroids.shape[1])
        self.index.add(np.ascontiguousarray(centroids, dtype=np.float32))

    @classmethod
    def load(cls, km_dir: Path) -> "NearestCentroid":
        path = Path(km_dir) / "km.npy"
        if not (Path(km_dir) / "km.json").exists():
            raise FileNotFoundError(f"no finished k-means in {km_dir} (km.json missing): run learn_kmeans first")
        return cls(np.load(path))

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """(T, D) -> (T,) int64 cluster ids."""
        if feats.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if feats.shape[1] != self.index.d:
            raise ValueError(f"features have {feats.shape[1]} dims, the centroids {self.index.d}")
        _, ids = self.index.search(np.ascontiguousarray(feats, dtype=np.float32), 1)
        return ids[:, 0].astype(np.int64)
