"""Convert an upstream checkpoint between formats.

    python -m speechssl2.bin.convert SRC DST --to speechssl2|hf [--from hf|fairseq|unispeech|speechssl2]

SRC may be an HF directory, a fairseq or UniSpeech .pt, or a speechssl2 upstream or
training checkpoint (detected unless ``--from`` says). ``--to hf`` writes a directory
that ``transformers.AutoModel.from_pretrained`` loads; ``--to speechssl2`` one .pt file.
"""
from __future__ import annotations

import argparse
import logging

from speechssl2.logging_utils import setup_logging
from speechssl2.models.io.detect import load_pretrained
from speechssl2.models.io.hf import save_hf
from speechssl2.models.io.native import save_upstream

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="checkpoint file or HF directory")
    parser.add_argument("dst", help="output .pt (--to speechssl2) or directory (--to hf)")
    parser.add_argument("--to", required=True, choices=["speechssl2", "hf"])
    parser.add_argument("--from", dest="source", choices=["hf", "fairseq", "unispeech", "speechssl2"])
    args = parser.parse_args(argv)
    setup_logging()
    upstream, spec = load_pretrained(args.src, source=args.source)
    out = save_hf(upstream, args.dst) if args.to == "hf" else save_upstream(upstream, args.dst)
    n_params = sum(p.numel() for p in upstream.parameters())
    log.info("converted %s (%s, %d parameters) -> %s (%s)", args.src, spec["name"], n_params, out, args.to)


if __name__ == "__main__":
    main()
