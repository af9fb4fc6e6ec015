"""Libri-Light limited supervision (``librispeech_finetuning``): the 10 min / 1 h / 10 h sets.

Layout: ``librispeech_finetuning/1h/{0..5}/{clean,other}/<spk>/<chapter>/`` and
``librispeech_finetuning/9h/{clean,other}/...``, LibriSpeech naming inside. The 10 min
set is ``1h/0``, 1 h is all of ``1h``, 10 h is ``1h`` + ``9h``. Utterances are parsed by
``lhotse.recipes.librispeech.parse_utterance``; lhotse has no recipe for this subset.
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Dict, List

from lhotse import CutSet, RecordingSet
from lhotse.recipes.librispeech import parse_utterance
from lhotse.utils import resumable_download, safe_extract

from speechssl2.data.corpora.librispeech import missing_audio, transcript_ids
from speechssl2.data.manifest import write_set
from speechssl2.registry import CORPORA

URL = "https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz"
SUBSETS = {"10m": ("1h/0",), "1h": ("1h",), "10h": ("1h", "9h")}


@CORPORA.register("librilight_limited")
def prepare_librilight_limited(
    corpus_dir: str, output_dir: str, subsets: List[str] = list(SUBSETS), download: bool = False,
) -> Dict[str, CutSet]:
    """Write ``train_10m``, ``train_1h``, ``train_10h`` (those named in ``subsets``)."""
    root = Path(corpus_dir)
    if download:
        _download(root)
    ft_dir = root / "librispeech_finetuning" if (root / "librispeech_finetuning").is_dir() else root
    unknown = sorted(set(subsets) - set(SUBSETS))
    if unknown:
        raise ValueError(f"librilight_limited: unknown subsets {unknown}; valid: {', '.join(SUBSETS)}")
    sets = {}
    for subset in subsets:
        folders = [ft_dir / rel for rel in SUBSETS[subset]]
        absent = [str(f) for f in folders if not f.is_dir()]
        if absent:
            raise FileNotFoundError(f"librilight_limited {subset}: missing {', '.join(absent)} (download: true fetches it)")
        trans = sorted(p for f in folders for p in f.rglob("*.trans.txt"))
        recs, sups = [], []
        for path in trans:
            for line in path.read_text(encoding="utf-8").splitlines():
                parsed = parse_utterance(path.parents[2], line, {}) if line.strip() else None
                if parsed is not None:
                    recs.append(parsed[0])
                    sups.append(parsed[1])
        problems = missing_audio(transcript_ids(trans), RecordingSet.from_recordings(recs))
        sets[f"train_{subset}"] = write_set(Path(output_dir) / f"train_{subset}", recs, sups, problems)
    return sets


def _download(root: Path) -> None:
    archive = root / "librispeech_finetuning.tgz"
    root.mkdir(parents=True, exist_ok=True)
    resumable_download(URL, filename=archive)
    with tarfile.open(archive) as tar:
        safe_extract(tar, path=root)
