"""K-means as HuBERT's targets were made: a sample of whole utterances, k-means++, restarts (faiss).

fairseq's ``examples/hubert/simple_kmeans/learn_kmeans.py`` (what the HuBERT paper's labels
came from) samples ``--percent`` of the *utterances* of each shard (``load_feature_shard``)
and fits scikit-learn's ``MiniBatchKMeans`` with ``init="k-means++"``, the best of ``n_init=20``
seedings drawn on ``init_size = 3 * batch_size`` frames, and reports the inertia per
frame. Here: the same utterance sample and seeding (``seed_centroids``), full-batch Lloyd
iterations in faiss (at least as good an optimiser as mini-batches), and ``nredo`` whole
restarts from independent seedings, keeping the lowest inertia. Only the sample
is held in memory: the shards are read through memory maps.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import faiss
import numpy as np

from speechssl2.config import atomic_write_text
from speechssl2.targets.shards import ShardFiles, require_complete

logger = logging.getLogger(__name__)


@dataclass
class Sample:
    """The frames of the sampled utterances and how many were taken of how many."""

    frames: np.ndarray  # (n, D) float32
    utterances: int
    total_utterances: int
    total_frames: int


def sample_utterances(shards: List[ShardFiles], percent: float, max_frames: int, seed: int) -> Sample:
    """The frames of ``ceil(percent * utterances)`` whole utterances drawn without replacement.

    ``max_frames`` caps memory: when the drawn utterances hold more frames, utterances are
    dropped (in the random draw order, so the kept ones are still a uniform sample) until
    the rest fit; an utterance is never cut.
    """
    if not 0.0 < percent <= 1.0:
        raise ValueError(f"percent must be in (0, 1], got {percent}")
    arrays, spans = [], []  # spans: (shard index, start frame, frames) per utterance, in dump order
    for index, files in enumerate(shards):
        require_complete(files)
        arrays.append(np.load(files.feats, mmap_mode="r"))  # (N_s, D)
        start = 0
        for _, frames in files.read_lengths():
            spans.append((index, start, frames))
            start += frames
    if not spans or sum(n for _, _, n in spans) == 0:
        raise ValueError(f"no frames in {[str(s.feats) for s in shards]}")
    order = np.random.default_rng(seed).permutation(len(spans))[:math.ceil(percent * len(spans))]
    kept = np.cumsum([spans[i][2] for i in order]) <= max_frames
    kept[0] = True  # at least one utterance, even one longer than the cap
    picked = sorted(int(i) for i in order[kept])  # dump order: reads each memory map forwards
    frames = np.concatenate([arrays[s][start:start + n] for s, start, n in (spans[i] for i in picked)])
    total = sum(n for _, _, n in spans)
    if len(picked) < len(order):
        logger.info("max_frames=%d kept %d of the %d sampled utterances", max_frames, len(picked), len(order))
    logger.info("sampled %d of %d utterances, %d of %d frames (%.1f %%)", len(picked), len(spans), len(frames),
                total, 100.0 * len(frames) / total)
    return Sample(frames.astype(np.float32), len(picked), len(spans), total)


@dataclass
class KMeansResult:
    """Trained centroids and how well they fit the sample."""

    centroids: np.ndarray  # (K, D) float32
    inertia: float  # sum of squared distances of the sample to its nearest centroid (the kept restart)
    num_frames: int  # sample size
    restarts: List[float] = field(default_factory=list)  # every restart's inertia, in seed order

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
            "restart_inertias_per_frame": [r / max(self.num_frames, 1) for r in self.restarts],
            "num_frames": self.num_frames,
            **info,
        }
        atomic_write_text(out_dir / "km.json", json.dumps(meta, indent=2) + "\n")


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, D) centroids seeded by greedy k-means++ (Arthur & Vassilvitskii, 2007, as scikit-learn's
    default): each next centroid is the best, by the resulting inertia, of ``2 + ln k`` frames of
    ``x`` (n, D) drawn with probability proportional to their squared distance to the nearest one so far."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    norms = (x * x).sum(1)  # (n,)
    trials = 2 + int(np.log(k))
    picks = [int(rng.integers(len(x)))]
    nearest = np.maximum(norms - 2 * x @ x[picks[0]] + norms[picks[0]], 0.0)  # (n,)
    for _ in range(k - 1):
        total = nearest.sum()
        probs = nearest / total if total > 0 else None
        candidates = rng.choice(len(x), size=trials, p=probs)  # (trials,)
        dist = np.maximum(norms[:, None] - 2 * x @ x[candidates].T + norms[candidates][None], 0.0)  # (n, trials)
        merged = np.minimum(nearest[:, None], dist)
        best = int(merged.sum(0).argmin())
        picks.append(int(candidates[best]))
        nearest = merged[:, best]
    return x[picks].astype(np.float32)


def inertia_of(x: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances of ``x`` (n, D) to its nearest centroid, exactly (not faiss's last-iteration objective)."""
    distances, _ = NearestCentroid(centroids).search(x)
    return float(distances.sum())


def seed_centroids(x: np.ndarray, n_clusters: int, init_size: int, n_init: int, rng: np.random.Generator) -> np.ndarray:
    """As MiniBatchKMeans seeds one fit: ``n_init`` k-means++ seedings on one pool of ``init_size``
    frames of ``x``, the one with the lowest inertia on that pool kept."""
    pool = x[rng.choice(len(x), size=min(len(x), max(init_size, 3 * n_clusters)), replace=False)]
    seeds = [kmeans_plus_plus(pool, n_clusters, rng) for _ in range(n_init)]
    return min(seeds, key=lambda c: inertia_of(pool, c))


def train_kmeans(x: np.ndarray, n_clusters: int, niter: int, nredo: int, seed: int,
                 init: str = "k-means++", init_size: int = 30000, n_init: int = 1) -> KMeansResult:
    """Lloyd k-means on ``x`` (n, D) with faiss; the best of ``nredo`` seeded restarts.

    ``init``: ``k-means++`` (the best of ``n_init`` seedings on ``init_size`` frames drawn from
    ``x``, as fairseq's MiniBatchKMeans: 20 seedings on 3 x its batch of 10,000) or ``random``
    (faiss's own: ``n_clusters`` random frames).
    """
    if x.shape[0] < n_clusters:
        raise ValueError(f"{x.shape[0]} frames cannot make {n_clusters} clusters: dump more data or lower n_clusters")
    if init not in ("k-means++", "random"):
        raise ValueError(f"k-means init must be 'k-means++' or 'random', got {init!r}")
    if nredo < 1 or n_init < 1:
        raise ValueError(f"nredo and n_init must be >= 1, got {nredo} and {n_init}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    best, restarts = None, []
    for redo in range(nredo):
        km = faiss.Kmeans(x.shape[1], n_clusters, niter=niter, seed=seed + redo, verbose=False,
                          max_points_per_centroid=x.shape[0])  # we sampled already: do not let faiss subsample
        if init == "k-means++":
            rng = np.random.default_rng([seed, redo])
            km.train(x, init_centroids=seed_centroids(x, n_clusters, init_size, n_init, rng))
        else:
            km.train(x)
        centroids = km.centroids.astype(np.float32)
        restarts.append(inertia_of(x, centroids))
        logger.info("k-means restart %d/%d (%s): inertia/frame %.5f", redo + 1, nredo, init, restarts[-1] / len(x))
        if best is None or restarts[-1] < restarts[best[0]]:
            best = (redo, centroids)
    assert best is not None
    return KMeansResult(centroids=best[1], inertia=restarts[best[0]], num_frames=int(x.shape[0]), restarts=restarts)


def given_centroids(path: str | Path, x: np.ndarray, n_clusters: int) -> KMeansResult:
    """Centroids from a (K, D) ``.npy`` file (e.g. sklearn's ``cluster_centers_`` of fairseq's HuBERT
    k-means, saved with ``np.save``), with their inertia on the sample ``x`` (n, D)."""
    centroids = np.load(path, allow_pickle=False)
    if centroids.ndim != 2 or centroids.shape[0] != n_clusters or centroids.shape[1] != x.shape[1]:
        raise ValueError(f"{path}: centroids of shape {centroids.shape}, expected (n_clusters={n_clusters}, "
                         f"feature dim={x.shape[1]})")
    centroids = centroids.astype(np.float32)
    inertia = inertia_of(x, centroids)
    return KMeansResult(centroids=centroids, inertia=inertia, num_frames=int(x.shape[0]), restarts=[inertia])


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

    def search(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, D) -> squared distances (T,) and ids (T,) of the nearest centroid."""
        if feats.shape[1] != self.index.d:
            raise ValueError(f"features have {feats.shape[1]} dims, the centroids {self.index.d}")
        distances, ids = self.index.search(np.ascontiguousarray(feats, dtype=np.float32), 1)
        return distances[:, 0], ids[:, 0]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """(T, D) -> (T,) int64 cluster ids."""
        if feats.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return self.search(feats)[1].astype(np.int64)
