"""Hidden states of a frozen upstream per cut: computed once and cached, or on the fly.

The upstream never changes during probing, so its hidden states can be computed once
per utterance; after that a probe epoch costs only the featurizer and the downstream.
Three modes, one interface (``load(ids) -> [(L, T_i, D), ...]``):

* ``memory``: extract every cut once, keep the tensors in RAM;
* ``disk``: the same, and also save them to a file keyed by a fingerprint of the
  upstream weights and the cut ids, so a later run (other tasks, more epochs) skips
  extraction;
* ``none``: run the frozen upstream on every batch (for upstreams too large to cache).
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence

import torch
from lhotse.cut import Cut
from torch import Tensor, nn

from speechssl2.data.collate import load_wave, pad
from speechssl2.logging_utils import progress
from speechssl2.probe.featurizer import FrozenUpstream

log = logging.getLogger(__name__)
CacheMode = Literal["memory", "disk", "none"]


def extract_batch(frozen: FrozenUpstream, cuts: Sequence[Cut], device: torch.device,
                  sample_rate: int = 16000) -> List[Tensor]:
    """Hidden states of each cut without padding: a list of (L, T_i, D) float32 CPU tensors."""
    waves = [load_wave(cut, sample_rate) for cut in cuts]  # (S_i,) each
    short = [f"{cut.id} ({len(w)} samples)" for cut, w in zip(cuts, waves) if len(w) < frozen.upstream.min_samples]
    if short:
        raise ValueError(f"cut(s) shorter than the upstream's receptive field ({frozen.upstream.min_samples} "
                         f"samples at {sample_rate} Hz): {', '.join(short)}")
    audio, lengths, _ = pad(waves, 0.0)  # (B, S), (B,)
    hidden, frames = frozen(audio.to(device), lengths.to(device))  # (B, L, T, D), (B,)
    hidden = hidden.float().cpu()
    return [hidden[i, :, : int(n)].clone() for i, n in enumerate(frames.cpu())]


class FeatureStore:
    """Cached hidden states by cut id."""

    def __init__(self, features: Dict[str, Tensor]) -> None:
        self.features = features

    def load(self, ids: Sequence[str]) -> List[Tensor]:
        return [self.features[i] for i in ids]


class OnTheFlyFeatures:
    """Runs the frozen upstream on each requested batch (nothing kept between calls)."""

    def __init__(self, frozen: FrozenUpstream, cuts: Sequence[Cut], device: torch.device) -> None:
        self.frozen, self.device = frozen, device
        self.cuts = {cut.id: cut for cut in cuts}

    def load(self, ids: Sequence[str]) -> List[Tensor]:
        return extract_batch(self.frozen, [self.cuts[i] for i in ids], self.device)


def extract_all(frozen: FrozenUpstream, cuts: Sequence[Cut], batch_size: int, device: torch.device,
                desc: str = "extract") -> Dict[str, Tensor]:
    """Hidden states of every cut, batched by similar duration (less padding)."""
    order = sorted(cuts, key=lambda c: c.duration)
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    features: Dict[str, Tensor] = {}
    for batch in progress(batches, desc=desc):
        features.update(zip((c.id for c in batch), extract_batch(frozen, batch, device)))
    return features


def fingerprint(module: nn.Module) -> str:
    """SHA-1 of every tensor in the state dict: names a cache entry by the weights themselves."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def make_store(mode: CacheMode, frozen: FrozenUpstream, cuts: Sequence[Cut], *, batch_size: int,
               device: torch.device, cache_dir: Optional[Path] = None, upstream_key: str = "",
               desc: str = "extract") -> FeatureStore | OnTheFlyFeatures:
    """The feature source for ``cuts`` in ``mode`` (``disk`` needs ``cache_dir`` and ``upstream_key``)."""
    if mode == "none":
        return OnTheFlyFeatures(frozen, cuts, device)
    if mode == "memory":
        return FeatureStore(extract_all(frozen, cuts, batch_size, device, desc))
    if mode != "disk":
        raise ValueError(f"cache mode must be one of memory, disk, none; got {mode!r}")
    if cache_dir is None or not upstream_key:
        raise ValueError("cache mode 'disk' needs a cache_dir and an upstream_key")
    path = cache_file(cache_dir, upstream_key, cuts)
    if path.is_file():
        log.info("features: reusing %s", path)
        return FeatureStore(torch.load(path, map_location="cpu", weights_only=True))
    features = extract_all(frozen, cuts, batch_size, device, desc)
    _atomic_save(features, path)
    log.info("features: cached %d utterances in %s", len(features), path)
    return FeatureStore(features)


def cache_file(cache_dir: Path, upstream_key: str, cuts: Sequence[Cut]) -> Path:
    """``<cache_dir>/<hash>.pt``: the hash covers the upstream fingerprint and, for every cut in id
    order, its id, span and audio source(s), so re-prepared audio is never served stale features."""
    digest = hashlib.sha1(upstream_key.encode())
    for cut in sorted(cuts, key=lambda c: c.id):
        sources = [src.source for src in cut.recording.sources] if cut.has_recording else []
        digest.update(f"{cut.id}\0{cut.start}\0{cut.duration}\0{sources}\0".encode())
    return Path(cache_dir) / f"{digest.hexdigest()[:20]}.pt"


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)
