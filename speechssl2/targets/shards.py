"""Sharded, resumable feature dumps (``--nshard/--rank``), read back out-of-core.

Layout of one shard in ``feat_dir`` (cuts ``[rank * N // nshard, (rank + 1) * N // nshard)``
of the manifest, in manifest order):

- ``feats_<rank>_<nshard>.npy``  (frames, D) float16/32, all cuts' frames concatenated
- ``feats_<rank>_<nshard>.len``  one ``<cut_id>\\t<frames>`` line per cut, in the same order
- ``feats_<rank>_<nshard>.json`` settings, frame count and dim; written last, it marks the
  shard complete
- with ``format: kaldi`` (instead of the ``.npy``) or ``both``: ``feats_<rank>_<nshard>.ark``
  and ``.scp``, Kaldi matrices for Kaldi and ESPnet (``speechssl2.targets.ark``); k-means
  and labelling read the ``.npy``

Each file is written under a temporary name and renamed, so a killed job leaves either a
complete shard or one without its ``.json``, which the next run recomputes.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Sequence, Tuple

import numpy as np
from lhotse.cut import Cut
from torch import Tensor

from speechssl2.config import atomic_write_text
from speechssl2.logging_utils import progress
from speechssl2.targets.ark import ArkWriter
from speechssl2.targets.audio import at_rate
from speechssl2.targets.features import FrameFeatures

logger = logging.getLogger(__name__)
FeatDtype = Literal["float16", "float32"]
FeatFormat = Literal["npy", "kaldi", "both"]


def shard_bounds(num_items: int, nshard: int, rank: int) -> Tuple[int, int]:
    """``[start, end)`` of shard ``rank``: contiguous, sizes differ by at most one."""
    if nshard < 1 or not 0 <= rank < nshard:
        raise ValueError(f"need 0 <= rank < nshard, got rank={rank}, nshard={nshard}")
    return rank * num_items // nshard, (rank + 1) * num_items // nshard


@dataclass(frozen=True)
class ShardFiles:
    """The three files of one shard."""

    feat_dir: Path
    rank: int
    nshard: int

    def _path(self, suffix: str) -> Path:
        return Path(self.feat_dir) / f"feats_{self.rank}_{self.nshard}.{suffix}"

    @property
    def feats(self) -> Path:
        return self._path("npy")

    @property
    def lengths(self) -> Path:
        return self._path("len")

    @property
    def marker(self) -> Path:
        return self._path("json")

    @property
    def ark(self) -> Path:
        return self._path("ark")

    @property
    def scp(self) -> Path:
        return self._path("scp")

    def outputs(self, fmt: FeatFormat) -> List[Path]:
        """The files a dump in format ``fmt`` writes (the marker last)."""
        feats = {"npy": [self.feats], "kaldi": [self.ark, self.scp], "both": [self.feats, self.ark, self.scp]}[fmt]
        return feats + [self.lengths, self.marker]

    def read_lengths(self) -> List[Tuple[str, int]]:
        """``[(cut_id, frames), ...]`` in storage order."""
        with open(self.lengths, encoding="utf-8") as f:
            return [(cid, int(n)) for cid, n in (line.rstrip("\n").split("\t") for line in f)]

    def is_complete(self, cut_ids: Sequence[str], settings: Dict[str, Any]) -> bool:
        """True if this shard holds exactly ``cut_ids`` dumped with ``settings``."""
        fmt = settings.get("format", "npy")
        if not all(p.exists() for p in self.outputs(fmt)):
            return False
        info = json.loads(self.marker.read_text(encoding="utf-8"))
        if info.get("settings") != settings:
            logger.warning("%s: dumped with %s, now %s: recomputing", self.feats, info.get("settings"), settings)
            return False
        lengths = self.read_lengths()
        rows = info["num_frames"] if fmt == "kaldi" else np.load(self.feats, mmap_mode="r").shape[0]
        return [cid for cid, _ in lengths] == list(cut_ids) and rows == sum(n for _, n in lengths)


def dump_shard(
    cuts: Sequence[Cut],
    extractor: FrameFeatures,
    files: ShardFiles,
    sample_rate: int,
    dtype: FeatDtype = "float32",
    fmt: FeatFormat = "npy",
) -> bool:
    """Extract features of shard ``files.rank`` of ``cuts``; False if it was already complete."""
    start, end = shard_bounds(len(cuts), files.nshard, files.rank)
    shard = list(cuts[start:end])
    settings = {**extractor.describe(), "dtype": dtype, "sample_rate": sample_rate, "format": fmt}
    if files.is_complete([c.id for c in shard], settings):
        logger.info("%s is complete: skipping", files.feats)
        return False
    counts = [extractor.num_frames(at_rate(c, sample_rate).num_samples) for c in shard]
    files.feat_dir.mkdir(parents=True, exist_ok=True)
    for stale in reversed(files.outputs("both")):  # never leave a mixed old/new shard
        stale.unlink(missing_ok=True)
    offset = _write_features(shard, counts, extractor, files, sample_rate, dtype, fmt)
    atomic_write_text(files.lengths, "".join(f"{c.id}\t{n}\n" for c, n in zip(shard, counts)))
    info = {"settings": settings, "num_cuts": len(shard), "num_frames": offset, "dim": extractor.dim}
    atomic_write_text(files.marker, json.dumps(info, indent=2) + "\n")
    logger.info("wrote %s: %d cuts, %d frames", files.ark if fmt == "kaldi" else files.feats, len(shard), offset)
    return True


def _write_features(
    shard: List[Cut], counts: List[int], extractor: FrameFeatures, files: ShardFiles, sample_rate: int,
    dtype: FeatDtype, fmt: FeatFormat,
) -> int:
    """Write the shard's ``.npy`` and/or ``.ark``/``.scp`` (each under a temporary name until complete)."""
    tmp = files.feats.with_name(f".{files.feats.name}.partial.npy")
    out = None if fmt == "kaldi" else np.lib.format.open_memmap(
        tmp, mode="w+", dtype=dtype, shape=(sum(counts), extractor.dim))
    ark = ArkWriter(files.ark, files.scp) if fmt != "npy" else None
    offset = 0
    try:
        desc = f"features {files.rank}/{files.nshard}"
        for cut, count in progress(zip(shard, counts), desc=desc, total=len(shard)):
            feats = _extract(extractor, cut, sample_rate).numpy()  # (T, D)
            if feats.shape[0] != count:
                raise ValueError(
                    f"cut {cut.id!r}: extractor gave {feats.shape[0]} frames, the model frame grid has "
                    f"{count} for {at_rate(cut, sample_rate).num_samples} samples at {sample_rate} Hz"
                )
            if out is not None:
                out[offset : offset + count] = feats
            if ark is not None:
                ark.write(cut.id, feats)
            offset += count
    except BaseException:
        if ark is not None:
            ark.abort()
        raise
    if out is not None:
        out.flush()
        del out
        os.replace(tmp, files.feats)
    if ark is not None:
        ark.close()
    return offset


def _extract(extractor: FrameFeatures, cut: Cut, sample_rate: int) -> Tensor:
    """Features of one cut; a failure (unreadable audio, too short, ...) names the cut."""
    try:
        return extractor.of_cut(cut, sample_rate)  # (T, D)
    except Exception as err:
        raise RuntimeError(f"cut {cut.id!r}: {err}") from err


def require_complete(files: ShardFiles) -> None:
    """Raise naming the missing shard, so k-means never trains on a half-dumped set."""
    if not files.marker.exists():
        raise FileNotFoundError(
            f"feature shard {files.feats} is missing or incomplete (no {files.marker.name}); "
            f"run dump_features with shard.nshard={files.nshard} shard.rank={files.rank}"
        )
    if not files.feats.exists():
        raise FileNotFoundError(
            f"feature shard {files.feats} is missing: it was dumped in Kaldi format only (features.format=kaldi); "
            "k-means and labelling read the .npy shards: dump with features.format=both"
        )


def iter_shard(files: ShardFiles) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield ``(cut_id, feats (T, D))`` of one complete shard, memory-mapped."""
    require_complete(files)
    feats = np.load(files.feats, mmap_mode="r")  # (N, D)
    offset = 0
    for cut_id, count in files.read_lengths():
        yield cut_id, feats[offset : offset + count]
        offset += count
