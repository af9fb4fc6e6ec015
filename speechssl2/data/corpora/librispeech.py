"""LibriSpeech through ``lhotse.recipes``, written in our ``<output_dir>/<part>/`` layout.

``corpus_dir`` holds ``LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` and
``<spk>-<chapter>.trans.txt`` (or is that ``LibriSpeech`` folder itself). Nothing is
downloaded unless ``download=True``. Transcripts stay as released (upper case);
``normalize_text`` is applied where text is used. A transcript line whose audio is
missing is reported as ``missing_audio`` (lhotse only logs it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List

from lhotse import CutSet, RecordingSet
from lhotse.recipes.librispeech import download_librispeech
from lhotse.recipes.librispeech import prepare_librispeech as lhotse_prepare_librispeech

from speechssl2.data.manifest import Problem, write_set
from speechssl2.registry import CORPORA


@CORPORA.register("librispeech")
def prepare_librispeech(
    corpus_dir: str, output_dir: str, parts: List[str] | None = None, download: bool = False,
    num_jobs: int = 1,
) -> Dict[str, CutSet]:
    """Write one set per LibriSpeech part (``dev-clean``, ``train-clean-100``, ...).

    ``parts=None`` takes every part found (or, with ``download``, Mini LibriSpeech).
    """
    root = Path(corpus_dir)
    if download:
        download_librispeech(root, dataset_parts=parts if parts is not None else "mini_librispeech")
    ls_dir = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    if not ls_dir.is_dir():
        raise FileNotFoundError(f"librispeech: {ls_dir} does not exist (set download: true to fetch it)")
    manifests = lhotse_prepare_librispeech(ls_dir, dataset_parts=parts or "auto", num_jobs=num_jobs)
    out = Path(output_dir)
    sets = {}
    for part, m in sorted(manifests.items()):
        missing = missing_audio(transcript_ids((ls_dir / part).rglob("*.trans.txt")), m["recordings"])
        sets[part] = write_set(out / part, m["recordings"], m["supervisions"], missing)
    return sets


def transcript_ids(trans_files: Iterable[Path]) -> Dict[str, Path]:
    """``utt_id -> transcript file`` for every line of LibriSpeech ``*.trans.txt`` files."""
    ids = {}
    for path in trans_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ids[line.split(maxsplit=1)[0]] = path
    return ids


def missing_audio(ids: Dict[str, Path], recordings: RecordingSet) -> List[Problem]:
    """A ``missing_audio`` problem for each transcript id that has no recording."""
    have = set(recordings.ids)
    return [
        Problem(utt, "missing_audio", f"{path}: no {utt}.flac beside it")
        for utt, path in sorted(ids.items()) if utt not in have
    ]
