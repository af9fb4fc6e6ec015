"""Download LibriSpeech parts (openslr.org SLR12) and Libri-Light limited supervision for users.

    python -m speechssl2.bin.download_librispeech --set target_dir=/data \\
        [--set "parts=[dev-clean,test-clean]"] [--set limited=false]

Writes ``<target_dir>/LibriSpeech/<part>/`` and ``<target_dir>/librispeech_finetuning/`` and ``<target_dir>/lm/`` (4-gram ARPA, lexicon, LM text)
(through ``lhotse.recipes``; finished parts are skipped). About 60 GB for all of 960 h.
Never run by tests or CI: the recipe's data stage reads an existing copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from speechssl2.cli import parse_stage, run_main
from speechssl2.data.corpora.librispeech_ssl import DEFAULT_SETS, download_librispeech_ssl
from speechssl2.logging_utils import setup_logging


@dataclass
class DownloadConfig:
    target_dir: str = "corpora"  # LibriSpeech/, librispeech_finetuning/ and lm/ are written here
    parts: List[str] = field(default_factory=lambda: sorted({p for ps in DEFAULT_SETS.values() for p in ps}))  # parts to fetch
    limited: bool = True  # also librispeech_finetuning.tgz (10 min / 1 h / 10 h)
    lm: bool = True  # also the official LM resources (openslr.org SLR11) into <target_dir>/lm


def main(argv: List[str] | None = None) -> None:
    cfg, _ = parse_stage(DownloadConfig, __doc__, argv, stage="download_librispeech")
    setup_logging()
    download_librispeech_ssl(cfg.target_dir, cfg.parts, limited=cfg.limited, lm=cfg.lm)


if __name__ == "__main__":
    run_main(main)
