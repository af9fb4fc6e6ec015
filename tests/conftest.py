"""Shared fixtures: paths to the real data beside the repository (never copied into it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPEECHSSL2_SHARED_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(int(os.environ.get("SPEECHSSL2_TEST_THREADS", "2")))


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """FSDD recordings directory (``{digit}_{speaker}_{index}.wav``, 8 kHz)."""
    path = SHARED_DATA / "fsdd" / "recordings"
    if not path.is_dir():
        pytest.fail(f"FSDD not found at {path}: set SPEECHSSL2_SHARED_DATA to the shared/data folder")
    return path


@pytest.fixture(scope="session")
def noise_dir() -> Path:
    path = SHARED_DATA / "noise"
    if not path.is_dir():
        pytest.fail(f"noise folder not found at {path}")
    return path
