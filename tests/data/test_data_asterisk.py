"""Asterisk prompts (Debian packages): labeled English sets, unlabeled pool, reported exclusions."""
from __future__ import annotations

from pathlib import Path

import pytest

from speechssl2.data.corpora import asterisk
from speechssl2.data.manifest import read_excluded

ROOT = Path(asterisk.DEFAULT_ROOT)
pytestmark = pytest.mark.skipif(
    not (ROOT / "en").is_dir() or not Path(asterisk.DEFAULT_TRANSCRIPTS).is_file(),
    reason=f"Debian packages not installed: {asterisk.DEBIAN_PACKAGES}",
)
EN_SETS = ("en_train", "en_dev", "en_test")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("asterisk")
    return out, asterisk.prepare_asterisk(output_dir=str(out))


def test_every_english_prompt_is_a_cut_or_reported(prepared):
    out, sets = prepared
    labels = asterisk.read_transcripts(Path(asterisk.DEFAULT_TRANSCRIPTS))
    files = {p.relative_to(ROOT / "en").with_suffix("").as_posix() for p in (ROOT / "en").rglob("*.wav")}
    cut_ids = [c.id for name in EN_SETS for c in sets[name]]
    excluded = [p for name in EN_SETS for p in read_excluded(out / name)]
    assert len(cut_ids) + len(excluded) == len(files | set(labels))
    assert len(cut_ids) > 500
    reasons = {p.id: p.reason for p in excluded}
    assert reasons["en_ascending-2tone"] == "non_speech" and reasons["en_silence-1"] == "non_speech"
    assert all(r in {"non_speech", "missing_audio", "no_transcript"} for r in reasons.values())


def test_english_split_is_hashed_and_near_80_10_10(prepared):
    _, sets = prepared
    sizes = {name: len(sets[name]) for name in EN_SETS}
    total = sum(sizes.values())
    assert 0.7 < sizes["en_train"] / total < 0.9
    assert 0.05 < sizes["en_dev"] / total < 0.15 and 0.05 < sizes["en_test"] / total < 0.15
    for name in EN_SETS:
        for cut in sets[name]:
            assert asterisk.split_of(cut.supervisions[0].custom["prompt"]) == name


def test_english_text_is_the_spoken_words(prepared):
    _, sets = prepared
    text = {c.supervisions[0].custom["prompt"]: c.supervisions[0].text for n in EN_SETS for c in sets[n]}
    assert text["digits/1"] == "one"
    assert text["letters/at"] == "at"  # "[@]" is a remark, not speech
    assert text["vm-intro"].endswith("press the pound key")  # "(simple tone sound plays)" removed
    assert text["dictate/forhelp"] == "press zero for help"  # IVR key spoken as a word
    sup = sets["en_train"][0].supervisions[0]
    assert sup.language == "English" and sup.speaker == "Allison"


def test_pool_is_unlabeled_other_languages_without_tones(prepared):
    out, sets = prepared
    pool = sets["pool"]
    files = [p for lang in asterisk.POOL_LANGUAGES for p in (ROOT / lang).rglob("*.wav")]
    excluded = read_excluded(out / "pool")
    assert len(pool) + len(excluded) == len(files)
    assert {p.reason for p in excluded} == {"non_speech"}
    assert {c.supervisions[0].language for c in pool} == {"Spanish", "French", "Italian", "Russian"}
    assert all(c.supervisions[0].text is None for c in pool)
    assert not any(c.id.endswith("beep") for c in pool)


def test_missing_root_names_the_debian_packages(tmp_path):
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-en-wav"):
        asterisk.prepare_asterisk(str(tmp_path / "nowhere"), str(tmp_path / "out"))
