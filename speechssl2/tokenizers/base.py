"""What every tokenizer offers, and the on-disk format that ``load_tokenizer`` reads.

A saved tokenizer is a directory with ``tokenizer.json`` = ``{"name": <TOKENIZERS key>,
"args": {...}}`` plus whatever files the tokenizer needs (``args`` name them relative
to the directory). Loading is ``TOKENIZERS.build({"name": ..., **args})``, so a saved
tokenizer and a YAML spec go through the same validated constructor.

Id 0 is always the CTC blank ``<blank>``: no transcript ever encodes to it.
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence

from speechssl2.config import atomic_write_text
from speechssl2.registry import TOKENIZERS

BLANK = 0
BLANK_SYMBOL = "<blank>"
META_FILE = "tokenizer.json"


class TokenizerBase(ABC):
    """Text <-> token ids. Subclasses define the symbol table and the spelling rules."""

    registry_key: str = ""

    @property
    @abstractmethod
    def symbols(self) -> List[str]:
        """Every token's symbol by id (``symbols[0] == "<blank>"``)."""

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    @abstractmethod
    def encode(self, text: str) -> List[int]:
        """Token ids of a (normalized) transcript; never contains the blank."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; blanks are skipped."""

    @abstractmethod
    def spell(self, word: str) -> List[str]:
        """Token symbols of one word, as a decoding lexicon lists them."""

    @abstractmethod
    def chars(self) -> FrozenSet[str]:
        """Characters a transcript may contain besides the space (for data validation)."""

    @property
    @abstractmethod
    def separator(self) -> Optional[str]:
        """The token spelled after every word (``|`` for characters), None if words have none."""

    @abstractmethod
    def to_spec(self) -> Dict[str, Any]:
        """A TOKENIZERS spec that rebuilds this tokenizer with no file: what a checkpoint carries."""

    @abstractmethod
    def _save_args(self, out_dir: Path) -> Dict[str, Any]:
        """Write own files into ``out_dir``; return constructor args (paths relative to it)."""

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write the tokenizer into ``out_dir`` so that ``load_tokenizer(out_dir)`` rebuilds it."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.registry_key, "args": self._save_args(out)}
        atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        # The symbol table in id order, for people and for decoders that want a token file.
        atomic_write_text(out / "tokens.txt", "".join(f"{s}\n" for s in self.symbols))
        # The spellable characters on one line: what ``bin.validate_data --set chars_file=`` reads.
        atomic_write_text(out / "chars.txt", "".join(sorted(self.chars())) + "\n")
        return out


def load_tokenizer(path: str | os.PathLike) -> TokenizerBase:
    """Rebuild a tokenizer from a directory written by ``save``."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: {path} is not a saved tokenizer directory")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if "name" not in meta:
        raise ValueError(f"{meta_path}: no 'name' field")
    args = {k: _resolve(path, k, v) for k, v in meta.get("args", {}).items()}
    return TOKENIZERS.build({"name": meta["name"], **args})


def _resolve(root: Path, key: str, value: Any) -> Any:
    """Arguments ending in ``_file`` are paths relative to the tokenizer directory."""
    return str(root / value) if key.endswith("_file") and isinstance(value, str) else value
