"""Lhotse Shar directories as a cut-manifest kind: sequential tar reads for large corpora.

A Shar directory (``CutSet.to_shar``) holds shards ``cuts.NNNNNN.jsonl.gz`` plus one tar
per field and shard (``recording.NNNNNN.tar``, ``<label field>.NNNNNN.tar``): reading it
streams each shard front to back, instead of opening one audio file per cut, which is
what limits a cluster at LibriLight/GigaSpeech scale.

Shard shuffling and the DDP split are per shard: rank ``r`` of ``W`` reads shards
``r, r+W, ...`` (each rank reads only its own tars) in an order shuffled with ``seed``.
The shard order is the same every epoch (the sampler's buffer still reorders cuts by
``seed + epoch``): lhotse's per-epoch reshuffle counts epochs inside the reader, a count
the sampler's state dict does not hold, so a resumed run would read another order. lhotse's
``split_for_dataloading`` is not used: it takes the rank from an initialized
``torch.distributed`` and also splits across DataLoader workers, while our sampler runs
in the main process and is told its rank explicitly.
"""
from __future__ import annotations

import re
import shutil
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from lhotse import CutSet

AUDIO_FORMAT = "flac"  # lossless, about half of 16-bit WAV
SHARD_FILE = re.compile(r"(?P<field>[^.]+)\.(?P<index>\d{6})\.(jsonl|jsonl\.gz|tar)")


def is_shar_dir(path: str | Path) -> bool:
    """A directory with at least one ``cuts.NNNNNN.jsonl[.gz]`` shard."""
    path = Path(path)
    return path.is_dir() and any(path.glob("cuts.*.jsonl*"))


def shar_shards(path: str | Path) -> List[Dict[str, str]]:
    """Every shard of a Shar directory as ``{field: file}``; an error names a field missing shards.

    Only ``<field>.NNNNNN.{jsonl[.gz],tar}`` files count (lhotse's own ``in_dir`` listing
    would take any other file in the directory for a field).
    """
    if not is_shar_dir(path):
        raise FileNotFoundError(f"{path} is not a Lhotse Shar directory (no cuts.NNNNNN.jsonl.gz shards)")
    by_field: Dict[str, Dict[int, str]] = defaultdict(dict)
    for file in Path(path).iterdir():
        if match := SHARD_FILE.fullmatch(file.name):
            by_field[match["field"]][int(match["index"])] = str(file)
    indices = sorted(by_field["cuts"])
    for field, files in by_field.items():
        if sorted(files) != indices:
            missing = sorted(set(indices) - set(files)) or sorted(set(files) - set(indices))
            raise ValueError(f"{path}: field {field!r} and the cuts have different shards (e.g. {missing[:3]})")
    return [{field: by_field[field][i] for field in by_field} for i in indices]


def open_shar(path: str | Path, *, shuffle_shards: bool = False, seed: int = 0,
              world_size: int = 1, rank: int = 0) -> CutSet:
    """The cuts of rank ``rank``'s shards, lazily, with their audio and custom fields attached."""
    shards = shar_shards(path)
    if world_size > len(shards):
        raise ValueError(f"{path}: {len(shards)} Shar shard(s) cannot be split over {world_size} ranks; "
                         f"export with a smaller shard_size")
    mine = shards[rank::world_size]
    fields = {field: [shard[field] for shard in mine] for field in mine[0]}
    return CutSet.from_shar(fields=fields, shuffle_shards=shuffle_shards, stateful_shuffle=False, seed=seed)


def export_shar(cuts: CutSet, out_dir: Path, label_fields: List[str], shard_size: int) -> List[str]:
    """Write ``cuts`` with audio (FLAC) and the ``label_fields`` arrays as Shar shards into ``out_dir``.

    Written into a temporary sibling directory and renamed, so ``out_dir`` is either
    complete or absent. Returns the field names written.
    """
    fields = {"recording": AUDIO_FORMAT, **{name: "numpy" for name in label_fields}}
    tmp = out_dir.with_name(f".{out_dir.name}.partial.{uuid.uuid4().hex}")
    try:
        tmp.mkdir(parents=True)
        cuts.to_shar(tmp, fields=fields, shard_size=shard_size, warn_unused_fields=False)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list(fields)
