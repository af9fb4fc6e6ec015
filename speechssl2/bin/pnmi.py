"""PNMI / phone purity / cluster purity of the dumped labels against the cuts' references.

``python -m speechssl2.bin.pnmi --config conf/targets_iter1.yaml [--set pnmi.min_pnmi=0.1]``
writes ``<exp_dir>/kmeans_iter<k>/pnmi_<tag>.{md,json}`` and the across-iteration table
``<exp_dir>/pnmi_<tag>.md``. With ``pnmi.min_pnmi`` set it is a quality gate: the stage
fails when the labels carry less information than that.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from lhotse import CutSet

from speechssl2.cli import run_main
from speechssl2.targets.bookkeeping import pnmi_stage
from speechssl2.targets.config import TargetsConfig, load_stage_config
from speechssl2.targets.pnmi import measure_cuts
from speechssl2.targets.report import write_comparison, write_report

logger = logging.getLogger(__name__)

REFERENCE_NOTES = {
    "text": "every frame inside a supervision carries that supervision's text: an utterance-level reference",
}


def evaluate(cfg: TargetsConfig) -> Dict[str, Any]:
    """Measure the labels of ``cfg`` against the reference and write the report."""
    stem = f"pnmi_{cfg.set_tag}"
    manifest = str(cfg.label_manifest)
    km = json.loads((cfg.kmeans_dir / "km.json").read_text(encoding="utf-8"))
    result = {
        "labels": manifest,
        "cuts": cfg.cuts,
        "field": cfg.labels.field,
        "reference": cfg.pnmi.reference,
        "reference_note": REFERENCE_NOTES.get(cfg.pnmi.reference, "frame-level alignment from the supervisions"),
        "features": _describe(km["features"]),
        "n_clusters": km["n_clusters"],
        "kmeans": {key: km[key] for key in ("inertia_per_frame", "restart_inertias_per_frame", "num_frames", "sample")
                   if key in km},
        "metrics": measure_cuts(CutSet.from_file(manifest), cfg.labels.field, cfg.pnmi.reference),
    }
    write_report(result, cfg.kmeans_dir, stem)
    return result


def _describe(features: Dict[str, Any]) -> str:
    if features["kind"] == "mfcc":
        return f"mfcc{3 * features['num_ceps']}"
    return f"layer{features['layer']}:{features['source']}"


def main(argv: Optional[List[str]] = None) -> None:
    cfg = load_stage_config("pnmi", __doc__, argv)
    stage = pnmi_stage(cfg)
    if stage.up_to_date():
        return
    result = evaluate(cfg)
    write_comparison(Path(cfg.exp_dir), f"pnmi_{cfg.set_tag}")
    pnmi = result["metrics"]["pnmi"]
    logger.info("PNMI %.4f, phone purity %.4f, cluster purity %.4f", pnmi,
                result["metrics"]["phone_purity"], result["metrics"]["cluster_purity"])
    if cfg.pnmi.min_pnmi is not None and pnmi < cfg.pnmi.min_pnmi:
        raise SystemExit(f"quality gate failed: PNMI {pnmi:.4f} < pnmi.min_pnmi {cfg.pnmi.min_pnmi} for {result['labels']}")
    stage.done(cfg.kmeans_dir / f"pnmi_{cfg.set_tag}.{ext}" for ext in ("json", "md"))


if __name__ == "__main__":
    run_main(main)
