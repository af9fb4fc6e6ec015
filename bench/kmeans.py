"""K-means for HuBERT targets: faiss (``speechssl2.targets.kmeans.train_kmeans``, random or k-means++
seeding) vs alternatives.

Peers: a plain batched torch Lloyd k-means written here, seeded with k-means++ (random init
leaves it stuck above faiss's inertia), and scikit-learn's ``MiniBatchKMeans`` (k-means++,
in the ``dev`` extras; skipped when it does not import). The data is a seeded Gaussian
mixture shaped like the HuBERT iteration-1 input (39-dim MFCC frames).

"At equal inertia": every method is first run to its own budget (faiss ``--niter``
iterations, the others ``--max-iter`` Lloyd iterations / mini-batch epochs), recording the
inertia (sum of squared distances to the nearest centroid, computed the same way for all,
off the clock) of its centroids after each iteration together with the seconds a run
stopped there would take: faiss is rerun from scratch with 1, 2, ... iterations (its
iterations cannot be observed from outside), the Python loops pause the clock while
inertia is measured. The shared target is the worst of the methods' best inertias, so
every method reaches it; the table gives each method's time to that target, and whether
(and when) it came within ``--tolerance`` of the best inertia any method reached.

    python bench/kmeans.py --frames 50000 --dim 39 --clusters 100 --niter 20
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.targets.kmeans import train_kmeans  # noqa: E402


def mixture(frames: int, dim: int, components: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(components, dim))
    picks = rng.integers(components, size=frames)
    return (centers[picks] + rng.normal(size=(frames, dim))).astype(np.float32)


def assign(x: torch.Tensor, c: torch.Tensor, chunk: int = 16384) -> Tuple[torch.Tensor, float]:
    """Nearest centroid ids (n,) and the inertia, in chunks: ||x||^2 - 2 x.c + ||c||^2."""
    ids, total = [], 0.0
    c2 = (c * c).sum(1)
    for part in x.split(chunk):
        d = (part * part).sum(1, keepdim=True) - 2 * part @ c.T + c2[None]
        best, idx = d.min(1)
        ids.append(idx)
        total += float(best.clamp(min=0).sum())
    return torch.cat(ids), total


def kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centroid drawn with probability proportional to D(x)^2."""
    idx = [int(torch.randint(x.shape[0], (1,), generator=gen))]
    d2 = ((x - x[idx[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        idx.append(int(torch.multinomial(d2.clamp(min=0) + 1e-12, 1, generator=gen)))
        d2 = torch.minimum(d2, ((x - x[idx[-1]]) ** 2).sum(1))
    return x[idx].clone()


Trajectory = List[Tuple[float, float, int]]  # (seconds of a run stopped here, inertia, iterations)


class Stopwatch:
    """Elapsed wall time, less the time spent inside ``paused()`` (checkpoint measurements)."""

    def __init__(self) -> None:
        self.start, self.paused_for = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused_for

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        since = time.perf_counter()
        try:
            yield
        finally:
            self.paused_for += time.perf_counter() - since


def faiss_trajectory(x: np.ndarray, k: int, niter: int, seed: int, init: str) -> Trajectory:
    """``train_kmeans`` rerun from scratch with 1..niter iterations: (its seconds, inertia, iterations)."""
    points = []
    for n in range(1, niter + 1):
        start = time.perf_counter()
        result = train_kmeans(x, k, niter=n, nredo=1, seed=seed, init=init)
        seconds = time.perf_counter() - start
        points.append((seconds, assign(torch.from_numpy(x), torch.from_numpy(result.centroids))[1], n))
    return points


def torch_trajectory(x_np: np.ndarray, k: int, max_iter: int, seed: int) -> Trajectory:
    """k-means++ then Lloyd; the inertia of each centroid set is the next step's assignment (needed anyway)."""
    x = torch.from_numpy(x_np)
    gen = torch.Generator().manual_seed(seed)
    clock = Stopwatch()
    c = kmeans_pp(x, k, gen)
    points = []
    for it in range(max_iter + 1):
        made = clock.elapsed()  # c exists: a run stopped here would end now
        ids, inertia = assign(x, c)
        points.append((made, inertia, it))
        if it == max_iter:
            break
        sums = torch.zeros_like(c).index_add_(0, ids, x)
        counts = torch.bincount(ids, minlength=k).to(x.dtype)[:, None]
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)  # an empty cluster keeps its centroid
    return points


def sklearn_trajectory(x: np.ndarray, k: int, max_iter: int, seed: int, threads: int) -> Optional[Trajectory]:
    """MiniBatchKMeans.partial_fit over shuffled mini-batches, a checkpoint after each epoch."""
    try:
        from sklearn.cluster import MiniBatchKMeans
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=1024, n_init=1)
    points = []
    with threadpool_limits(threads):
        clock = Stopwatch()
        for epoch in range(1, max_iter + 1):
            for batch in np.array_split(x[rng.permutation(len(x))], max(1, len(x) // 1024)):
                km.partial_fit(batch)
            with clock.paused():
                inertia = assign(torch.from_numpy(x), torch.from_numpy(km.cluster_centers_))[1]
            points.append((clock.elapsed(), inertia, epoch))
    return points


def first_reaching(points: Trajectory, target: float) -> Optional[Tuple[float, float, int]]:
    return next((p for p in points if p[1] <= target), None)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=50000)
    p.add_argument("--dim", type=int, default=39)
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--niter", type=int, default=20, help="faiss Lloyd iterations")
    p.add_argument("--max-iter", type=int, default=20, help="torch Lloyd iterations and sklearn epochs")
    p.add_argument("--tolerance", type=float, default=0.01, help="'near best': within this fraction of the best")
    p.add_argument("--threads", type=int, default=1, help="torch, faiss and sklearn threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    x = mixture(args.frames, args.dim, args.clusters, args.seed)
    runs = {"faiss (train_kmeans, random init)": faiss_trajectory(x, args.clusters, args.niter, args.seed, "random"),
            "faiss (train_kmeans, k-means++)": faiss_trajectory(x, args.clusters, args.niter, args.seed, "k-means++"),
            "torch batched Lloyd, k-means++ (bench)": torch_trajectory(x, args.clusters, args.max_iter, args.seed)}
    sk = sklearn_trajectory(x, args.clusters, args.max_iter, args.seed, args.threads)
    if sk is not None:
        runs["sklearn MiniBatchKMeans, k-means++"] = sk
    best = {name: min(inertia for _, inertia, _ in points) for name, points in runs.items()}
    target, near = max(best.values()), min(best.values()) * (1 + args.tolerance)
    rows = []
    for name, points in runs.items():
        hit, close = first_reaching(points, target), first_reaching(points, near)
        rows.append(dict(impl=name, seconds=hit[0] if hit else float("nan"), iters=hit[2] if hit else None,
                         inertia=hit[1] if hit else float("nan"), reached=hit is not None, best_inertia=best[name],
                         near_best_seconds=close[0] if close else None, budget_seconds=points[-1][0]))
    faiss_s = rows[0]["seconds"]
    print(f"frames={args.frames} dim={args.dim} clusters={args.clusters} threads={args.threads}; target inertia "
          f"= the worst method's best ({target / args.frames:.4f} / frame); near best = within "
          f"{100 * args.tolerance:g} % of {min(best.values()) / args.frames:.4f} / frame"
          + ("" if sk else "; sklearn not installed: skipped"))
    print("| impl | seconds to target | iterations | inertia / frame there | x faiss time | "
          "best inertia / frame (budget s) | seconds to near best |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        near_s = f"{r['near_best_seconds']:.3f}" if r["near_best_seconds"] is not None else "not reached"
        print(f"| {r['impl']} | {r['seconds']:.3f} | {r['iters']} | {r['inertia'] / args.frames:.4f} | "
              f"{r['seconds'] / faiss_s:.2f} | {r['best_inertia'] / args.frames:.4f} ({r['budget_seconds']:.2f}) | "
              f"{near_s} |")
    return rows


if __name__ == "__main__":
    main()
