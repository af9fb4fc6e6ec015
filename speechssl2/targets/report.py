"""PNMI reports as Markdown + json, per k-means run and compared across HuBERT iterations."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

from speechssl2.config import atomic_write_text

COLUMNS = ("pnmi", "phone_purity", "cluster_purity", "cluster_perplexity", "num_clusters_used", "num_frames")


def write_report(result: Dict[str, Any], out_dir: Path, stem: str = "pnmi") -> None:
    """``<stem>.json`` (everything) and ``<stem>.md`` (one table) in ``out_dir``."""
    atomic_write_text(out_dir / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Cluster quality: {result['labels']}",
        "",
        f"Reference: `{result['reference']}` ({result['reference_note']}).",
        f"Cuts: `{result['cuts']}`; label field `{result['field']}`.",
        *_kmeans_line(result.get("kmeans")),
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {_fmt(result['metrics'][key])} |" for key in result["metrics"]),
        "",
    ]
    atomic_write_text(out_dir / f"{stem}.md", "\n".join(lines))


def write_comparison(exp_dir: Path, stem: str = "pnmi") -> List[Dict[str, Any]]:
    """``exp_dir/<stem>.md``: one row per ``kmeans_iter<k>/<stem>.json``, ordered by k."""
    found = []
    for path in exp_dir.glob(f"kmeans_iter*/{stem}.json"):
        match = re.fullmatch(r"kmeans_iter(\d+)", path.parent.name)
        if match:
            found.append((int(match.group(1)), json.loads(path.read_text(encoding="utf-8"))))
    found.sort(key=lambda item: item[0])
    lines = [
        "# K-means targets across HuBERT iterations",
        "",
        "| iteration | features | clusters | reference | " + " | ".join(COLUMNS) + " |",
        "|---" * (4 + len(COLUMNS)) + "|",
    ]
    for iteration, result in found:
        cells = [str(iteration), result["features"], str(result["n_clusters"]), result["reference"]]
        cells += [_fmt(result["metrics"][key]) for key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    atomic_write_text(exp_dir / f"{stem}.md", "\n".join(lines) + "\n")
    return [result for _, result in found]


def _kmeans_line(km: Any) -> List[str]:
    """The k-means fit the labels come from: inertia per frame of the kept restart (and of all)."""
    if not km or "inertia_per_frame" not in km:
        return []
    restarts = km.get("restart_inertias_per_frame") or []
    line = f"K-means inertia / frame: {km['inertia_per_frame']:.5f} on {km.get('num_frames')} frames"
    if "sample" in km:
        line += f" of {km['sample']['utterances']} / {km['sample']['of_utterances']} utterances"
    if len(restarts) > 1:
        line += f"; best of {len(restarts)} restarts ({', '.join(f'{r:.5f}' for r in restarts)})"
    return [line + "."]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
