"""Kaldi ark/scp features out and in, through ``kaldiio`` (what Kaldi and ESPnet read and write).

Out: :class:`ArkWriter` writes one shard's matrices as a binary ``.ark`` plus its ``.scp``
(``<cut_id> <ark path>:<byte offset>``), and :func:`merge_scp` joins the shards' ``.scp``
files into one ``feats.scp`` in manifest order. Matrices are stored as float32 (Kaldi has
no half-precision matrices) and the ark path in the ``.scp`` is absolute, so the list can
be read from any working directory.

In: :class:`ScpFeatures` serves an existing ``feats.scp`` (Kaldi MFCC/fbank, another
toolkit's features) to the HuBERT target steps as if it were an extractor: the matrix of
each cut, looked up by cut id, thinned to every ``subsample``-th frame (2 for Kaldi's
10 ms frames) and fitted to the model frame grid. More than one frame of difference is an
error: the features are at another frame rate or describe other audio.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

import kaldiio
import numpy as np
import torch
from lhotse.cut import Cut
from torch import Tensor

from speechssl2.config import atomic_write_text
from speechssl2.targets.audio import at_rate
from speechssl2.targets.frames import conv_frame_count


class ArkWriter:
    """Append matrices to ``ark`` (under a temporary name until :meth:`close`) and list them in ``scp``."""

    def __init__(self, ark: Path, scp: Path) -> None:
        self.ark, self.scp = Path(ark).absolute(), Path(scp)
        self.tmp = self.ark.with_name(f".{self.ark.name}.partial")
        self.fd = open(self.tmp, "wb")
        self.lines: List[str] = []

    def write(self, key: str, matrix: np.ndarray) -> None:
        """Store ``matrix`` (T, D) under ``key``; the scp offset points past ``"<key> "``, as Kaldi's does."""
        offset = self.fd.tell() + len(key.encode("utf-8")) + 1
        kaldiio.save_ark(self.fd, {key: np.ascontiguousarray(matrix, dtype=np.float32)})
        self.lines.append(f"{key} {self.ark}:{offset}\n")

    def close(self) -> None:
        """Move the complete ark into place, then write the scp that points into it."""
        self.fd.close()
        os.replace(self.tmp, self.ark)
        atomic_write_text(self.scp, "".join(self.lines))

    def abort(self) -> None:
        self.fd.close()
        self.tmp.unlink(missing_ok=True)


def merge_scp(parts: Sequence[Path], out: Path) -> None:
    """Concatenate the shard ``.scp`` files into ``out`` (rewritten only when it changes)."""
    text = "".join(Path(p).read_text(encoding="utf-8") for p in parts)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        atomic_write_text(out, text)


def scp_inputs(scp: str | os.PathLike) -> List[Path]:
    """The scp file and every ark file it points into (pipes aside): what a stage reading it depends on."""
    path = Path(scp)
    if not path.is_file():
        return [path]
    arks = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and not parts[1].rstrip().endswith("|"):
            target = parts[1].split("[")[0].strip()  # <ark>:<offset>[<slices>]
            ark, _, offset = target.rpartition(":")
            arks.add(ark if offset.isdigit() else target)
    return [path] + [Path(a) for a in sorted(arks)]


class ScpFeatures:
    """Frame features of each cut read from an existing Kaldi ``feats.scp`` keyed by cut id."""

    def __init__(self, scp: str, subsample: int = 1) -> None:
        if subsample < 1:
            raise ValueError(f"features.subsample must be >= 1, got {subsample}")
        if not Path(scp).is_file():
            raise FileNotFoundError(f"features.scp: {scp} does not exist")
        self.scp, self.subsample = scp, subsample
        self.table = kaldiio.load_scp(scp)  # lazy: reads the index only
        if len(self.table) == 0:
            raise ValueError(f"{scp} lists no features")
        self.dim = int(self._matrix(next(iter(self.table))).shape[1])

    def require(self, cut_ids: Sequence[str]) -> None:
        """Fail before any work when cuts of the manifest have no line in the scp."""
        missing = [c for c in cut_ids if c not in self.table]
        if missing:
            raise KeyError(f"{len(missing)} of {len(cut_ids)} cuts have no line in {self.scp} (e.g. {missing[:3]})")

    def num_frames(self, num_samples: int) -> int:
        return conv_frame_count(num_samples)

    def of_cut(self, cut: Cut, sample_rate: int) -> Tensor:
        """(T, D) float32 of ``cut`` on the model frame grid (one extra frame dropped, one missing repeated)."""
        feats = self._matrix(cut.id)[:: self.subsample]  # (T', D)
        grid = self.num_frames(at_rate(cut, sample_rate).num_samples)
        if abs(feats.shape[0] - grid) > 1:
            raise ValueError(
                f"{self.scp}: {cut.id!r} has {feats.shape[0]} frames after subsample={self.subsample}, the model "
                f"frame grid {grid} ({cut.duration:.2f} s): features at another frame rate (Kaldi's 10 ms frames "
                "need features.subsample=2) or of other audio?"
            )
        if feats.shape[0] < grid:
            feats = np.concatenate([feats, feats[-1:]])
        return torch.from_numpy(np.array(feats[:grid], dtype=np.float32))

    def describe(self) -> Dict[str, Any]:
        return {"kind": "scp", "scp": str(Path(self.scp).absolute()), "subsample": self.subsample, "dim": self.dim}

    def _matrix(self, key: str) -> np.ndarray:
        try:
            matrix = self.table[key]
        except Exception as err:  # kaldiio raises OSError, ValueError, ... for a bad ark entry
            raise ValueError(f"{self.scp}: cannot read the features of {key!r}: {err}") from err
        if matrix.ndim != 2:
            raise ValueError(f"{self.scp}: {key!r} is not a matrix (shape {matrix.shape})")
        return matrix
