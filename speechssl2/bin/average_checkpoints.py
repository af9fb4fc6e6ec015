"""Average model weights of checkpoints into a new checkpoint file.

``python -m speechssl2.bin.average_checkpoints --exp-dir exp/x --last 5 --out exp/x/checkpoint_avg5.pt``
averages the 5 newest ``checkpoint_<updates>.pt``; ``--inputs a.pt b.pt`` names them.
The output keeps the newest input's ``config`` and ``num_updates`` so that
``load_pretrained`` and decoding read it like any other checkpoint.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from speechssl2.logging_utils import setup_logging
from speechssl2.train import checkpoint as ckpt

log = logging.getLogger(__name__)


def select(exp_dir: Optional[str], last: Optional[int], inputs: List[str]) -> List[Path]:
    """The checkpoints to average, oldest first."""
    if inputs:
        return [Path(p) for p in inputs]
    found = ckpt.numbered_checkpoints(exp_dir)
    if last is None or len(found) < last:
        raise ValueError(f"{exp_dir}: asked for the last {last} numbered checkpoints, found {len(found)}")
    return [path for _, path in found[-last:]]


def average(paths: List[Path], out: Path) -> None:
    newest = ckpt.load_checkpoint(paths[-1])
    state = {
        "model": ckpt.average_models(paths),
        "config": newest.get("config"),
        "num_updates": newest.get("num_updates"),
        "averaged_from": [str(p) for p in paths],
    }
    ckpt.save_checkpoint(state, [out])
    log.info("averaged %d checkpoints (%s) into %s", len(paths), ", ".join(p.name for p in paths), out)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", help="directory holding checkpoint_<updates>.pt files")
    parser.add_argument("--last", type=int, help="average the newest N numbered checkpoints of --exp-dir")
    parser.add_argument("--inputs", nargs="+", default=[], help="explicit checkpoint files (instead of --last)")
    parser.add_argument("--out", required=True, help="output checkpoint path")
    args = parser.parse_args(argv)
    if bool(args.inputs) == (args.last is not None) or (args.last is not None and not args.exp_dir):
        parser.error("give either --inputs FILES or --exp-dir DIR --last N")
    setup_logging()
    average(select(args.exp_dir, args.last, args.inputs), Path(args.out))


if __name__ == "__main__":
    main()
