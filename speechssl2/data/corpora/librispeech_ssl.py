"""The LibriSpeech SSL benchmark sets: LibriSpeech parts merged into named sets, plus Libri-Light limited.

The recipe ``egs/librispeech/ssl1`` pre-trains on ``train_960`` (the three training
parts), fine-tunes on ``train_10m``/``train_1h``/``train_10h`` (Libri-Light limited,
``librilight_limited``), ``train_100`` (``train-clean-100``) or ``train_960``, and scores on
``dev_clean``/``dev_other``/``test_clean``/``test_other``. Each output set lists the
LibriSpeech parts it is made of::

    corpus:
      name: librispeech_ssl
      corpus_dir: /data/LibriSpeech          # or its parent
      librilight_dir: /data/librispeech_finetuning   # or its parent; null: no limited sets
      sets: {train_960: [train-clean-100, train-clean-360, train-other-500], dev_clean: [dev-clean]}
      limited: [10m, 1h, 10h]

Parts are parsed once by ``lhotse.recipes.librispeech.prepare_librispeech`` (in memory) and
written per set by ``speechssl2.data.manifest.write_set``; a transcript line whose audio is
missing goes to ``excluded.tsv`` as ``missing_audio``. ``download_librispeech_ssl`` fetches
both corpora for users (never called by tests or CI).
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Dict, List, Optional

from lhotse import CutSet
from lhotse.recipes.librispeech import download_librispeech
from lhotse.recipes.librispeech import prepare_librispeech as lhotse_prepare_librispeech
from lhotse.utils import resumable_download, safe_extract

from speechssl2.data.corpora.librilight_limited import URL as LIMITED_URL
from speechssl2.data.corpora.librilight_limited import prepare_librilight_limited
from speechssl2.data.corpora.librispeech import missing_audio, transcript_ids
from speechssl2.data.manifest import write_set
from speechssl2.registry import CORPORA

LM_URL = "https://www.openslr.org/resources/11"
LM_FILES = ("4-gram.arpa.gz", "librispeech-lexicon.txt", "librispeech-lm-norm.txt.gz")
TRAIN_960 = ["train-clean-100", "train-clean-360", "train-other-500"]
DEFAULT_SETS: Dict[str, List[str]] = {
    "train_960": TRAIN_960,
    "train_100": ["train-clean-100"],
    "dev_clean": ["dev-clean"],
    "dev_other": ["dev-other"],
    "test_clean": ["test-clean"],
    "test_other": ["test-other"],
}


@CORPORA.register("librispeech_ssl")
def prepare_librispeech_ssl(
    corpus_dir: str,
    output_dir: str,
    sets: Optional[Dict[str, List[str]]] = None,
    librilight_dir: Optional[str] = None,
    limited: Optional[List[str]] = None,
    num_jobs: int = 1,
) -> Dict[str, CutSet]:
    """Write every set of ``sets`` (default ``DEFAULT_SETS``) and ``train_<s>`` for ``s`` in ``limited``.

    Every LibriSpeech part a set names must exist under ``corpus_dir``; ``limited`` needs
    ``librilight_dir`` (default: ``[10m, 1h, 10h]`` when ``librilight_dir`` is set, else none).
    """
    ls_dir = librispeech_root(Path(corpus_dir))
    sets = DEFAULT_SETS if sets is None else sets
    parts = sorted({p for members in sets.values() for p in members})
    absent = [p for p in parts if not (ls_dir / p).is_dir()]
    if absent:
        raise FileNotFoundError(
            f"librispeech_ssl: parts {absent} not found in {ls_dir} (run.sh --stage -1 downloads them, "
            "or list only the parts you have under corpus.sets)"
        )
    manifests = lhotse_prepare_librispeech(ls_dir, dataset_parts=parts, num_jobs=num_jobs) if parts else {}
    out = Path(output_dir)
    result: Dict[str, CutSet] = {}
    for name, members in sorted(sets.items()):
        recs = [r for p in members for r in manifests[p]["recordings"]]
        sups = [s for p in members for s in manifests[p]["supervisions"]]
        problems = [pr for p in members for pr in missing_audio(
            transcript_ids((ls_dir / p).rglob("*.trans.txt")), manifests[p]["recordings"])]
        result[name] = write_set(out / name, recs, sups, problems)
    if limited is None:
        limited = ["10m", "1h", "10h"] if librilight_dir else []
    if limited:
        if not librilight_dir:
            raise ValueError(f"librispeech_ssl: limited sets {limited} need librilight_dir")
        result.update(prepare_librilight_limited(librilight_dir, output_dir, subsets=list(limited)))
    return result


def librispeech_root(root: Path) -> Path:
    """``root/LibriSpeech`` when it exists, else ``root`` (must be a directory)."""
    ls_dir = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    if not ls_dir.is_dir():
        raise FileNotFoundError(f"librispeech_ssl: {ls_dir} does not exist")
    return ls_dir


def download_librispeech_ssl(target_dir: str, parts: List[str], limited: bool = True, lm: bool = True) -> None:
    """Fetch LibriSpeech ``parts`` (openslr.org SLR12) into ``target_dir/LibriSpeech``; with
    ``limited``, Libri-Light ``librispeech_finetuning.tgz`` into ``target_dir/librispeech_finetuning``;
    with ``lm``, the official LM resources (SLR11: 4-gram, lexicon, LM text) into ``target_dir/lm``."""
    root = Path(target_dir)
    download_librispeech(root, dataset_parts=parts)
    if lm:
        (root / "lm").mkdir(parents=True, exist_ok=True)
        for name in LM_FILES:
            resumable_download(f"{LM_URL}/{name}", filename=root / "lm" / name)
    if limited and not (root / "librispeech_finetuning").is_dir():
        archive = root / "librispeech_finetuning.tgz"
        resumable_download(LIMITED_URL, filename=archive)
        with tarfile.open(archive) as tar:
            safe_extract(tar, path=root)
