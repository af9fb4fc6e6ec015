"""``load_pretrained(path)``: recognise a checkpoint's format and load it as an eval-mode upstream."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Literal, Mapping, Optional, Tuple

import torch

from speechssl2.models.io.fairseq import load_fairseq
from speechssl2.models.io.hf import load_hf
from speechssl2.models.io.native import FORMAT, is_training_checkpoint, load_native, load_training
from speechssl2.models.io.rename import CheckpointError
from speechssl2.models.io.unispeech import is_unispeech, load_unispeech
from speechssl2.models.upstream import Upstream

Source = Literal["hf", "fairseq", "unispeech", "speechssl2"]


def read_checkpoint(path: Path) -> Mapping[str, Any]:
    """torch.load with weights_only (no arbitrary code); old fairseq files hold an argparse Namespace."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors come in many types; say which file failed and why
            raise CheckpointError(f"{path}: cannot be read as a torch checkpoint: {err}") from err
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


def detect(ckpt: Mapping[str, Any]) -> Optional[str]:
    """Name the format of a checkpoint dict, or None."""
    if ckpt.get("format") == FORMAT:
        return "speechssl2"
    if is_training_checkpoint(ckpt):
        return "speechssl2-training"
    if "model" in ckpt and ("cfg" in ckpt or "args" in ckpt):
        return "unispeech" if is_unispeech(ckpt) else "fairseq"
    return None


def load_pretrained(path: str | Path, source: Optional[Source] = None) -> Tuple[Upstream, Dict[str, Any]]:
    """Any supported checkpoint -> (upstream in eval mode, resolved upstream spec).

    Formats: HF directory, fairseq .pt, UniSpeech WavLM .pt, speechssl2 upstream or
    training checkpoint. ``source`` forces one instead of detecting it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if source == "hf" or (source is None and path.is_dir()):
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path}: a directory but not an HF model (no config.json)")
        upstream, spec = load_hf(path)
        return upstream.eval(), spec
    ckpt = read_checkpoint(path)
    found = detect(ckpt)
    kind = found if source is None or (source == "speechssl2" and found == "speechssl2-training") else source
    loaders = {"speechssl2": load_native, "speechssl2-training": load_training, "fairseq": load_fairseq,
               "unispeech": load_unispeech}
    if kind not in loaders:
        raise CheckpointError(
            f"{path}: unknown checkpoint format (top-level keys: {sorted(map(str, ckpt))[:10]}); expected an HF "
            f"directory, a fairseq/UniSpeech dict with 'cfg' or 'args' and 'model', a speechssl2 upstream "
            f"(format={FORMAT!r}) or a training checkpoint with 'model' and config.model.upstream"
        )
    upstream, spec = loaders[kind](ckpt, str(path))
    return upstream.eval(), spec
