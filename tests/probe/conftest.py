"""FSDD manifests prepared once per session for the probe tests (from the shared recordings)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from speechssl2.registry import CORPORA


@pytest.fixture(scope="session")
def fsdd_manifests(fsdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    """``{"train": .../train/cuts.jsonl.gz, "test": ...}`` for the official FSDD split."""
    out = tmp_path_factory.mktemp("fsdd_manifests")
    CORPORA.build({"name": "fsdd", "corpus_dir": str(fsdd_dir)}, output_dir=str(out))
    return {name: str(out / name / "cuts.jsonl.gz") for name in ("train", "test")}
