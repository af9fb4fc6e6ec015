"""Smoke test: every bench script runs end to end with its tiniest flags (so they do not rot)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SHARED = Path(os.environ.get("SPEECHSSL2_SHARED_DATA", BENCH.parents[1] / "shared" / "data"))


def run(script: str, *argv: str):
    spec = importlib.util.spec_from_file_location(f"bench_{script}", BENCH / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(argv))


def test_bench_encoder(capsys):
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    rows = run("encoder", "--tiny", "--models", "wavlm", "--batch", "2", "--seconds", "0.2", "--repeats", "1",
               "--impls", "speechssl2,speechssl2-plain,transformers,torchaudio", "--threads", "1")
    assert {r["impl"] for r in rows} == {"speechssl2", "speechssl2-plain", "transformers", "torchaudio"}
    assert all(r["audio_per_s"] > 0 and r["mem_mb"] >= 0 for r in rows)
    assert "| wavlm | speechssl2 |" in capsys.readouterr().out


def test_bench_masking():
    rows = run("masking", "--batch", "2", "--frames", "50", "--repeats", "1")
    assert len(rows) == 2 and 0 < rows[0]["fraction"] < 1


def test_bench_data():
    if not (SHARED / "fsdd" / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {SHARED}")
    rows = run("data", "--files", "8", "--max-duration", "2")
    assert len(rows) == 3 and all(r["per_core"] > 0 for r in rows)


def test_bench_kmeans():
    rows = run("kmeans", "--frames", "400", "--dim", "4", "--clusters", "4", "--niter", "2", "--max-iter", "5")
    assert rows[0]["impl"].startswith("faiss") and len(rows) >= 2


def test_bench_decode():
    rows = run("decode", "--batch", "1", "--seconds", "0.4", "--repeats", "1", "--rnnt-utts", "1", "--lm-lines", "30",
               "--beam", "4")
    assert {"CTC greedy", "transducer greedy (batched)"} <= {r["search"] for r in rows}
