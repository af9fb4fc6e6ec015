"""Folder, LibriSpeech and Libri-Light-limited corpora on tiny directories built from FSDD audio."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from speechssl2.data.manifest import read_excluded
from speechssl2.data.corpora.folder import prepare_folder
from speechssl2.data.corpora.librilight_limited import prepare_librilight_limited
from speechssl2.data.corpora.librispeech import prepare_librispeech


def _copy_audio(src: Path, dst: Path) -> None:
    """Re-encode an FSDD wav as ``dst`` (flac or wav by suffix)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(src, dtype="int16")
    sf.write(dst, audio, rate)


def _chapter(fsdd: list[Path], part_dir: Path, spk: str, chapter: str, n: int, missing: int = 0) -> list[str]:
    """LibriSpeech naming: <spk>/<chapter>/<spk>-<chapter>-<utt>.flac + <spk>-<chapter>.trans.txt."""
    folder = part_dir / spk / chapter
    ids = [f"{spk}-{chapter}-{u:04d}" for u in range(n + missing)]
    for utt, src in zip(ids[:n], fsdd):
        _copy_audio(src, folder / f"{utt}.flac")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(f"{u} WORD NUMBER {u[-1]}\n" for u in ids))
    return ids[:n]


def test_folder_with_and_without_transcripts(fsdd_dir, tmp_path):
    srcs = sorted(fsdd_dir.glob("*_theo_1.wav"))[:3]
    for src in srcs:
        _copy_audio(src, tmp_path / "audio" / "sub" / src.name)
    ids = [s.stem for s in srcs]
    (tmp_path / "text").write_text(f"{ids[0]} Hello there\n{ids[1]} two words\nghost never recorded\n")
    sets = prepare_folder(str(tmp_path / "audio"), str(tmp_path / "out"), transcripts=str(tmp_path / "text"),
                          set_name="labeled")
    cuts = sets["labeled"]
    assert sorted(cuts.ids) == ids[:2]
    assert cuts[ids[0]].supervisions[0].text == "Hello there"
    excluded = {p.id: p.reason for p in read_excluded(tmp_path / "out" / "labeled")}
    assert excluded == {ids[2]: "no_transcript", "ghost": "missing_audio"}
    unlabeled = prepare_folder(str(tmp_path / "audio"), str(tmp_path / "out"))["all"]
    assert sorted(unlabeled.ids) == ids and all(c.supervisions[0].text is None for c in unlabeled)


def test_folder_rejects_duplicate_ids(fsdd_dir, tmp_path):
    src = next(fsdd_dir.glob("*.wav"))
    _copy_audio(src, tmp_path / "a" / "x.wav")
    _copy_audio(src, tmp_path / "b" / "x.flac")
    with pytest.raises(ValueError, match="'x' used by both"):
        prepare_folder(str(tmp_path), str(tmp_path / "out"))


def test_librispeech_layout_without_download(fsdd_dir, tmp_path):
    fsdd = sorted(fsdd_dir.glob("*_jackson_*.wav"))
    part = tmp_path / "LibriSpeech" / "dev-clean"
    ids = _chapter(fsdd[:2], part, "84", "121123", 2, missing=1) + _chapter(fsdd[2:5], part, "1272", "128104", 3)
    sets = prepare_librispeech(str(tmp_path), str(tmp_path / "data"))
    assert list(sets) == ["dev-clean"]
    cuts = sets["dev-clean"]
    assert sorted(cuts.ids) == sorted(ids)
    sup = cuts["1272-128104-0001"].supervisions[0]
    assert (sup.text, sup.speaker, sup.language) == ("WORD NUMBER 1", "1272", "English")
    assert cuts["84-121123-0000"].duration == pytest.approx(sf.info(fsdd[0]).duration)
    assert [(p.id, p.reason) for p in read_excluded(tmp_path / "data" / "dev-clean")] == [
        ("84-121123-0002", "missing_audio")
    ]
    assert (tmp_path / "data" / "dev-clean" / "cuts.jsonl.gz").is_file()


def test_librilight_limited_subsets(fsdd_dir, tmp_path):
    fsdd = sorted(fsdd_dir.glob("*_nicolas_*.wav"))
    ft = tmp_path / "librispeech_finetuning"
    ten_min = _chapter(fsdd[0:2], ft / "1h" / "0" / "clean", "100", "200", 2)
    one_h = ten_min + _chapter(fsdd[2:4], ft / "1h" / "3" / "other", "101", "201", 2)
    ten_h = one_h + _chapter(fsdd[4:6], ft / "9h" / "clean", "102", "202", 2)
    sets = prepare_librilight_limited(str(tmp_path), str(tmp_path / "data"))
    assert sorted(sets["train_10m"].ids) == sorted(ten_min)
    assert sorted(sets["train_1h"].ids) == sorted(one_h)
    assert sorted(sets["train_10h"].ids) == sorted(ten_h)
    with pytest.raises(ValueError, match="unknown subsets"):
        prepare_librilight_limited(str(tmp_path), str(tmp_path / "data"), subsets=["5h"])
