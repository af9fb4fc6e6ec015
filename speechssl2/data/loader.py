"""``make_dataloader``: cut manifest -> DataLoader of padded batches, bucketed by duration.

Lhotse's ``DynamicBucketingSampler`` groups cuts of similar duration into batches of at
most ``max_duration`` seconds (less padding, steadier memory); its
``state_dict()``/``load_state_dict()`` let a training run resume mid-epoch exactly.
"""
from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Callable, List, Literal, Sequence

import torch
from lhotse import CutSet, load_manifest_lazy
from lhotse.dataset import DynamicBucketingSampler

from speechssl2.data.dataset import Batch, CutBatchDataset
from speechssl2.data.shar import is_shar_dir, open_shar


def make_dataloader(
    cuts: CutSet | str, *, max_duration: float, shuffle: bool,
    features: Literal["wave", "fbank"] = "wave", sample_rate: int = 16000, num_buckets: int = 10,
    seed: int = 0, world_size: int = 1, rank: int = 0, num_workers: int = 0,
    label_field: str | None = None, batch_transforms: Sequence[Callable[[Batch], Batch]] = (),
    drop_last: bool = False, select: Callable[[CutSet], CutSet] | None = None,
) -> torch.utils.data.DataLoader:
    """Batches (see ``speechssl2.data.dataset``) of at most ``max_duration`` seconds of audio.

    A Shar directory is split between ranks by shard (see ``speechssl2.data.shar``), so the
    sampler then sees only this rank's cuts; a JSONL manifest is split by the sampler.
    ``select`` filters the opened cuts lazily (e.g. dropping those too short to crop).
    """
    if isinstance(cuts, (str, Path)) and is_shar_dir(cuts):
        cuts = open_shar(cuts, shuffle_shards=shuffle, seed=seed, world_size=world_size, rank=rank)
        world_size, rank = 1, 0
    elif isinstance(cuts, (str, Path)):
        cuts = open_cuts(cuts)
    if select is not None:
        cuts = select(cuts)
    sampler = DynamicBucketingSampler(
        cuts, max_duration=max_duration, shuffle=shuffle, num_buckets=num_buckets, seed=seed,
        world_size=world_size, rank=rank, drop_last=drop_last, duration_bins=_bins_for_tiny_sets(cuts, num_buckets),
    )
    dataset = CutBatchDataset(sample_rate, features, label_field, batch_transforms)
    return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers)


def _bins_for_tiny_sets(cuts: CutSet, num_buckets: int) -> List[float] | None:
    """A single bin edge when there are fewer cuts than buckets (lhotse's bin estimation
    fails there); None lets lhotse estimate the bins from the data."""
    first = [cut.duration for cut in islice(cuts, num_buckets)]
    if not first:
        raise ValueError("cannot make a data loader from an empty cut set")
    return [max(first)] if len(first) < num_buckets else None


def open_cuts(path: str | Path) -> CutSet:
    """A cut manifest (JSONL file or Shar directory) opened lazily; a clear error when missing or not cuts."""
    if is_shar_dir(path):
        return open_shar(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"cut manifest {path} does not exist (run the prepare_data stage)")
    manifest = load_manifest_lazy(path)
    if not isinstance(manifest, CutSet):
        raise ValueError(f"{path} holds a {type(manifest).__name__}, not a CutSet (use cuts.jsonl.gz)")
    return manifest
