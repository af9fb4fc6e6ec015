"""K-means for HuBERT targets: faiss (``speechssl2.targets.kmeans.train_kmeans``) vs alternatives.

scikit-learn is not installed in this project's environment, so ``MiniBatchKMeans`` is
compared only when it imports; the other peer is a plain batched torch Lloyd k-means
written here, seeded with k-means++ (random init leaves it stuck above faiss's inertia). The data
is a seeded Gaussian mixture shaped like the HuBERT iteration-1 input (39-dim MFCC frames).

"At equal inertia": each peer runs Lloyd iterations until its inertia (sum of squared
distances to the nearest centroid) is within ``--tolerance`` of faiss's final one, or
``--max-iter``; the table gives the time to get there and whether it did.

    python bench/kmeans.py --frames 50000 --dim 39 --clusters 100 --niter 20
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def torch_kmeans(x_np: np.ndarray, k: int, target: float, max_iter: int, seed: int) -> Dict[str, float]:
    x = torch.from_numpy(x_np)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    c = kmeans_pp(x, k, gen)
    inertia, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        ids, inertia = assign(x, c)
        if inertia <= target:
            break
        sums = torch.zeros_like(c).index_add_(0, ids, x)
        counts = torch.bincount(ids, minlength=k).to(x.dtype)[:, None]
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)  # an empty cluster keeps its centroid
    return dict(seconds=time.perf_counter() - start, inertia=inertia, iters=it)


def sklearn_kmeans(x: np.ndarray, k: int, target: float, max_iter: int, seed: int) -> Optional[Dict[str, float]]:
    try:
        from sklearn.cluster import MiniBatchKMeans
    except ImportError:
        return None
    km = MiniBatchKMeans(n_clusters=k, init="random", random_state=seed, batch_size=10000, n_init=1)
    start = time.perf_counter()
    inertia, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        km.partial_fit(x)
        inertia = float(-km.score(x))
        if inertia <= target:
            break
    return dict(seconds=time.perf_counter() - start, inertia=inertia, iters=it)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=50000)
    p.add_argument("--dim", type=int, default=39)
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--niter", type=int, default=20, help="faiss Lloyd iterations")
    p.add_argument("--tolerance", type=float, default=0.01, help="peers stop within this fraction of faiss's inertia")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch and faiss threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    x = mixture(args.frames, args.dim, args.clusters, args.seed)
    start = time.perf_counter()
    ref = train_kmeans(x, args.clusters, niter=args.niter, nredo=1, seed=args.seed)
    faiss_s = time.perf_counter() - start
    target = ref.inertia * (1 + args.tolerance)
    rows = [dict(impl=f"faiss ({args.niter} iters)", seconds=faiss_s, inertia=ref.inertia, iters=args.niter,
                 reached=True)]
    lloyd = torch_kmeans(x, args.clusters, target, args.max_iter, args.seed)
    peers = [("torch batched Lloyd, k-means++ (bench)", lloyd)]
    sk = sklearn_kmeans(x, args.clusters, target, args.max_iter, args.seed)
    if sk is not None:
        peers.append(("sklearn MiniBatchKMeans", sk))
    for name, r in peers:
        rows.append(dict(impl=name, **r, reached=r["inertia"] <= target))
    print(f"frames={args.frames} dim={args.dim} clusters={args.clusters} threads={args.threads} "
          f"target inertia = faiss x {1 + args.tolerance}" + ("" if sk else "; sklearn not installed: skipped"))
    print("| impl | seconds | iterations | inertia / frame | reached target | x faiss time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['seconds']:.3f} | {r['iters']} | {r['inertia'] / args.frames:.4f} | "
              f"{'yes' if r['reached'] else 'no'} | {r['seconds'] / faiss_s:.2f} |")
    return rows


if __name__ == "__main__":
    main()
