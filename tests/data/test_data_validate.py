"""A bad-audio set made here: every problem reported by id with its reason, good cuts kept."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from speechssl2.bin import prepare_data, validate_data
from speechssl2.data.loader import make_dataloader
from speechssl2.data.validate import validate_cuts

EXPECTED = {
    "truncated": "unreadable",  # WAV cut inside its header
    "truncated_body": "truncated",  # WAV cut inside its audio data: the header is intact
    "zero_bytes": "empty",  # 0-byte file
    "clip_5ms": "too_short",  # 40 samples at 8 kHz = 80 at 16 kHz < 400
    "nan_samples": "non_finite",
    "no_words": "empty_transcript",  # a transcript line with the id only
    "stereo_48k": "multi_channel",  # reported, kept (channel 0)
}


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, n).astype(np.float32)


@pytest.fixture
def bad_corpus(tmp_path: Path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "good_16k.wav", _noise(16000, 0), 16000, subtype="PCM_16")
    sf.write(audio / "good_8k.wav", _noise(8000, 1), 8000, subtype="PCM_16")
    sf.write(audio / "no_words.wav", _noise(8000, 2), 8000, subtype="PCM_16")
    sf.write(audio / "clip_5ms.wav", _noise(40, 3), 8000, subtype="PCM_16")
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(48000) / 48000).astype(np.float32)
    sf.write(audio / "stereo_48k.wav", np.stack([tone, _noise(48000, 5)], 1), 48000)  # (S, 2)
    nan = _noise(16000, 6)
    nan[100:110] = np.nan
    sf.write(audio / "nan_samples.wav", nan, 16000, subtype="FLOAT")
    (audio / "zero_bytes.wav").write_bytes(b"")
    (audio / "truncated.wav").write_bytes((audio / "good_16k.wav").read_bytes()[:20])
    (audio / "truncated_body.wav").write_bytes((audio / "good_16k.wav").read_bytes()[:44 + 8000])
    words = {"good_16k": "HELLO, world!", "good_8k": "it's fine", "no_words": ""}
    lines = [f"{p.stem} {words.get(p.stem, 'some words')}".rstrip() for p in sorted(audio.glob("*.wav"))]
    (tmp_path / "text").write_text("\n".join(lines) + "\n")
    return tmp_path


def _run_prepare(corpus: Path, *extra: str) -> dict:
    return prepare_data.main([
        "--set", "corpus.name=folder", "--set", f"corpus.corpus_dir={corpus / 'audio'}",
        "--set", f"corpus.transcripts={corpus / 'text'}", "--set", f"output_dir={corpus / 'data'}", *extra,
    ])


def test_every_bad_file_is_reported_by_id_with_its_reason(bad_corpus):
    report = _run_prepare(bad_corpus)["all"]
    for utt, reason in EXPECTED.items():
        assert report.reasons_of(utt) == [reason], utt
    assert report.reasons_of("good_16k") == [] and report.reasons_of("good_8k") == []
    set_dir = bad_corpus / "data" / "all"
    clean = CutSet.from_file(set_dir / "cuts.jsonl.gz")
    assert sorted(clean.ids) == ["good_16k", "good_8k", "stereo_48k"]
    raw = CutSet.from_file(set_dir / "cuts_raw.jsonl.gz")  # unreadable files never became cuts
    assert sorted(raw.ids) == sorted(set(EXPECTED) - {"truncated", "truncated_body", "zero_bytes"} | {"good_16k", "good_8k"})
    text = (set_dir / "report.txt").read_text()
    for utt, reason in EXPECTED.items():
        assert f"{utt}\t{reason}\t" in text
    assert "too_short" in text.split("Problems by utterance id:")[0]  # the summary table


def test_rerun_notices_a_file_rewritten_in_place(bad_corpus):
    _run_prepare(bad_corpus)
    assert _run_prepare(bad_corpus) == {}  # unchanged inputs: skipped
    good = bad_corpus / "audio" / "good_8k.wav"
    good.write_bytes(good.read_bytes()[:44 + 100])  # the directory's own mtime does not change
    report = _run_prepare(bad_corpus)["all"]
    assert report.reasons_of("good_8k") == ["truncated"]


def test_kept_stereo_cut_loads_as_channel_0_at_16k(bad_corpus):
    _run_prepare(bad_corpus)
    cuts = CutSet.from_file(bad_corpus / "data" / "all" / "cuts.jsonl.gz").subset(cut_ids=["stereo_48k"])
    batch = next(iter(make_dataloader(cuts, max_duration=10.0, shuffle=False)))
    assert batch["audio"].shape == (1, 16000)  # 1 s at 48 kHz -> 16000 samples, one channel
    left = torch.from_numpy(sf.read(bad_corpus / "audio" / "stereo_48k.wav", dtype="float32")[0][::3, 0])
    assert torch.corrcoef(torch.stack([batch["audio"][0], left]))[0, 1] > 0.99  # the tone: channel 0


def test_characters_outside_the_tokenizer_are_reported(bad_corpus):
    report = _run_prepare(bad_corpus, "--set", "allowed_chars=abcdefghijklmnopqrstuvwxyz")["all"]
    assert report.reasons_of("good_8k") == ["bad_chars"]  # the apostrophe in "it's"
    assert report.reasons_of("good_16k") == []  # punctuation is gone after normalize_text
    chars = bad_corpus / "chars.txt"
    chars.write_text("abcdefghijklmnopqrstuvwxyz'\n")
    cuts = str(bad_corpus / "data" / "all" / "cuts_raw.jsonl.gz")
    out = bad_corpus / "data" / "all" / "cuts_checked.jsonl.gz"
    again = validate_data.main(["--set", f"cuts={cuts}", "--set", f"chars_file={chars}", "--set", f"output={out}"])
    assert again.reasons_of("good_8k") == []
    dropped = {p.id for p in again.problems if p.reason != "multi_channel"}
    assert dropped and set(CutSet.from_file(out).ids) == set(CutSet.from_file(cuts).ids) - dropped  # as reported
    assert (bad_corpus / "data" / "all" / "report_validate.txt").is_file()
    assert f"chars_file: {chars}" in (bad_corpus / "data" / "all" / "report_validate.yaml").read_text()


def test_audio_broken_after_preparation_is_unreadable(bad_corpus):
    _run_prepare(bad_corpus)
    cuts = CutSet.from_file(bad_corpus / "data" / "all" / "cuts.jsonl.gz")
    (bad_corpus / "audio" / "good_8k.wav").write_bytes(b"RIFF garbage")
    clean, report = validate_cuts(cuts)
    assert report.reasons_of("good_8k") == ["unreadable"]
    assert "good_8k" not in clean.ids and "good_16k" in clean.ids


def test_min_samples_follows_the_target_rate(bad_corpus):
    _run_prepare(bad_corpus)
    cuts = CutSet.from_file(bad_corpus / "data" / "all" / "cuts.jsonl.gz").subset(cut_ids=["good_8k"])
    _, report = validate_cuts(cuts, min_samples=16001, sample_rate=16000)  # 8000 at 8 kHz = 16000
    assert report.reasons_of("good_8k") == ["too_short"]
    _, report = validate_cuts(cuts, min_samples=16000, sample_rate=16000)
    assert report.reasons_of("good_8k") == []


def test_rerun_is_skipped_unless_forced(bad_corpus):
    assert _run_prepare(bad_corpus)
    assert (bad_corpus / "data" / "prepare_data.folder.yaml").is_file()
    assert _run_prepare(bad_corpus) == {}  # up to date
    assert "all" in _run_prepare(bad_corpus, "--force")
    assert "all" in _run_prepare(bad_corpus, "--set", "min_samples=800")  # config changed
