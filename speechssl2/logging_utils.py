"""One log format for every stage, tqdm progress that stays quiet in CI, tensorboard."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, TypeVar

from tqdm import tqdm

T = TypeVar("T")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def setup_logging(log_file: Optional[str | os.PathLike] = None, level: int = logging.INFO) -> None:
    """Configure the root logger once: stderr, plus ``log_file`` when given."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU-feature probing chatter


def progress(iterable: Iterable[T], desc: str, total: Optional[int] = None, **kw: Any) -> Iterable[T]:
    """tqdm with our defaults; disabled when stderr is not a terminal unless forced."""
    disable = kw.pop("disable", None)
    if disable is None:
        disable = not sys.stderr.isatty() and os.environ.get("SPEECHSSL2_PROGRESS") != "1"
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kw)


class TensorBoard:
    """Thin wrapper: only rank 0 writes, everyone may call ``scalars``."""

    def __init__(self, log_dir: str | os.PathLike, enabled: bool = True) -> None:
        self._writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir))

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"{prefix}{key}", float(value), step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
