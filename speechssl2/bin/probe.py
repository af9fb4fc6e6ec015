"""SUPERB-style probing of frozen upstreams: ``python -m speechssl2.bin.probe --config conf/probe.yaml``.

    python -m speechssl2.bin.probe --config conf/probe.yaml \\
        --set output_dir=exp/probe --set 'upstreams=[{name: wavlm_tiny}, exp/pretrain/checkpoint_*.pt]'

``--set 'extra_upstreams=[...]'`` appends rows to the configured ``upstreams`` instead of
replacing them (how a recipe adds the checkpoints it found).

Every upstream (preset = random init, or any checkpoint ``load_pretrained`` reads,
globs expanded in numeric order) is probed on every task: the upstream frozen, a
learned softmax-weighted sum of its hidden layers feeding a small downstream model.
Writes to ``output_dir``: ``results.md`` (upstream x task, with a chance row),
``results.json``, ``layer_weights.png``, ``tensorboard/``, ``probe.yaml`` (resolved
config) and ``probe.log``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from speechssl2.cli import parse_stage, run_main
from speechssl2.config import save_config
from speechssl2.logging_utils import setup_logging
from speechssl2.probe.config import ProbeConfig, resolve_upstreams, task_configs
from speechssl2.probe.report import write_reports
from speechssl2.probe.run import run_probe
from speechssl2.stage import Stage, stamp_path

log = logging.getLogger("speechssl2.probe")


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """The results document (read back from ``results.json`` when the stage was up to date)."""
    cfg, _ = parse_stage(ProbeConfig, __doc__, argv, stage="probe")
    tasks, upstreams = task_configs(cfg), resolve_upstreams(cfg.upstreams, cfg.extra_upstreams)  # fail before any file
    out = Path(cfg.output_dir)
    setup_logging(out / "probe.log")
    stage = Stage("probe", cfg, stamp_path(out, "probe"), [out])
    if stage.up_to_date():
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    save_config(cfg, out / "probe.yaml")
    log.info("probing %d upstream(s) on %d task(s): %s x %s", len(upstreams), len(tasks),
             [u.tag for u in upstreams], list(tasks))
    doc = run_probe(cfg, tasks, upstreams)
    paths = write_reports(doc, out)
    stage.done([*paths.values(), out / "probe.yaml"])
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return doc


if __name__ == "__main__":
    run_main(main)
