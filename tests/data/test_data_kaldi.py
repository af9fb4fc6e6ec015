"""The ``kaldi`` corpus on real Kaldi data directories built from FSDD recordings."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from speechssl2.bin.prepare_data import PrepareDataConfig, prepare_data
from speechssl2.data.corpora.kaldi import prepare_kaldi
from speechssl2.data.manifest import read_excluded

REPO = Path(__file__).resolve().parents[2]
needs_sox = pytest.mark.skipif(
    shutil.which("sox") is None, reason="sox not installed (tools/install_debian_deps.sh installs it)"
)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _excluded(set_dir: Path) -> dict[str, str]:
    return {p.id: p.reason for p in read_excluded(set_dir)}


@needs_sox
def test_wav_scp_paths_and_pipes(fsdd_dir, tmp_path):
    wavs = sorted(fsdd_dir.glob("*_jackson_1*.wav"))[:4]
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    ids = ["a_plain", "b_sox", "c_cat", "d_sox16k"]
    _write(kaldi / "wav.scp", [
        f"a_plain {wavs[0]}",
        f"b_sox sox {wavs[1]} -t wav - |",
        f"c_cat cat {wavs[2]} |",
        f"d_sox16k sox {wavs[3]} -r 16000 -t wav - |",
        f"e_missing {tmp_path / 'nowhere.wav'}",
        f"f_failing sox {tmp_path / 'nowhere.wav'} -t wav - |",
        "g_not_audio echo hello |",
        "h_empty cat /dev/null |",
    ])
    _write(kaldi / "text", [f"{i} word {n}" for n, i in enumerate(ids)] + ["z_ghost never recorded"])
    _write(kaldi / "utt2spk", [f"{i} jackson" for i in ids])
    _write(kaldi / "spk2gender", ["jackson m"])
    cuts = prepare_kaldi(str(kaldi), str(tmp_path / "data"), set_name="dev", num_jobs=3)["dev"]

    assert sorted(cuts.ids) == ids
    for cut_id, wav in zip(ids[:3], wavs):
        audio, rate = sf.read(wav, dtype="float32")
        cut = cuts[cut_id]
        assert (cut.sampling_rate, cut.num_samples) == (rate, len(audio))
        np.testing.assert_array_equal(cut.load_audio()[0], audio)  # pipes decoded sample-exact
    resampled = cuts["d_sox16k"]
    assert resampled.sampling_rate == 16000  # each recording keeps its own rate
    assert abs(resampled.num_samples - 2 * sf.info(wavs[3]).frames) <= 2
    assert resampled.recording.sources[0].type == "command"
    sup = cuts["b_sox"].supervisions[0]
    assert (sup.text, sup.speaker, sup.gender) == ("word 1", "jackson", "m")
    excluded = [(p.id, p.reason) for p in read_excluded(tmp_path / "data" / "dev")]
    assert excluded == [("e_missing", "missing_audio"), ("f_failing", "unreadable"), ("g_not_audio", "unreadable"),
                        ("h_empty", "unreadable"), ("z_ghost", "missing_audio")]  # in file order, 3 jobs or not
    detail = {p.id: p.detail for p in read_excluded(tmp_path / "data" / "dev")}
    assert "exit status 2" in detail["f_failing"] and "can't open input file" in detail["f_failing"]


def _long_recording(fsdd_dir: Path, path: Path) -> tuple[np.ndarray, list[int]]:
    """Five FSDD digits back to back in one wav; returns the samples and the digit boundaries."""
    parts = [sf.read(w, dtype="int16")[0] for w in sorted(fsdd_dir.glob("*_theo_2*.wav"))[:5]]
    audio = np.concatenate(parts)
    sf.write(path, audio, 8000, subtype="PCM_16")
    return audio.astype(np.float32) / 32768, np.cumsum([0] + [len(p) for p in parts]).tolist()


def test_segments_become_cuts_and_bad_ones_are_reported(fsdd_dir, tmp_path):
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    audio, bounds = _long_recording(fsdd_dir, tmp_path / "long.wav")
    total = len(audio) / 8000
    _write(kaldi / "wav.scp", [f"rec1 cat {tmp_path / 'long.wav'} |", f"rec2 {tmp_path / 'long.wav'}"])
    segments = [f"utt{i} rec1 {bounds[i] / 8000} {bounds[i + 1] / 8000}" for i in range(4)]
    segments += [
        f"utt4 rec2 {bounds[4] / 8000} -1",  # to the end
        f"utt5 rec2 {bounds[4] / 8000} {total + 0.2}",  # small overshoot: clipped
        f"utt6 rec2 {total - 0.1} {total + 0.9}",  # ends 0.9 s past the recording
        f"utt7 rec2 {total + 1} {total + 2}",  # starts after the end
        "utt8 rec2 0.5 0.5",  # empty
        "utt9 rec3 0.0 0.3",  # recording not in wav.scp
        "utt10 rec2 0.0 0.3",  # no transcript
    ]
    _write(kaldi / "segments", segments)
    _write(kaldi / "text", [f"utt{i} digit" for i in range(10)])
    cuts = prepare_kaldi(str(kaldi), str(tmp_path / "data"))["all"]

    assert sorted(cuts.ids) == sorted(f"utt{i}" for i in range(6))
    for i in range(5):
        cut = cuts[f"utt{i}"]
        expected = audio[bounds[i]:bounds[i + 1]]
        assert cut.num_samples == len(expected) and cut.supervisions[0].start == 0
        np.testing.assert_array_equal(cut.load_audio()[0], expected)
    assert cuts["utt5"].end == pytest.approx(total)
    assert _excluded(tmp_path / "data" / "all") == {
        "utt6": "segment_outside", "utt7": "segment_outside", "utt8": "bad_segment", "utt9": "missing_audio",
        "utt10": "no_transcript",
    }


def test_malformed_files_name_the_line(tmp_path):
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    with pytest.raises(FileNotFoundError, match="wav.scp not found"):
        prepare_kaldi(str(kaldi), str(tmp_path / "data"))
    _write(kaldi / "wav.scp", ["r1 cat /dev/null |", "r1 cat /dev/null |"])
    with pytest.raises(ValueError, match=r"wav.scp:2: utterance id 'r1' appears twice"):
        prepare_kaldi(str(kaldi), str(tmp_path / "data"))
    _write(kaldi / "wav.scp", ["r1 cat /dev/null |"])
    _write(kaldi / "segments", ["u1 r1 0.0"])
    with pytest.raises(ValueError, match=r"segments: line of 'u1' is not"):
        prepare_kaldi(str(kaldi), str(tmp_path / "data"))


def test_prepare_data_reports_a_kaldi_dir(fsdd_dir, tmp_path):
    wavs = sorted(fsdd_dir.glob("*_nicolas_1*.wav"))[:3]
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    _write(kaldi / "wav.scp", [f"{w.stem} cat {w} |" for w in wavs] + [f"broken {tmp_path / 'gone.wav'}"])
    _write(kaldi / "text", [f"{w.stem} nicolas" for w in wavs] + [f"{wavs[0].stem}x ghost"])
    cfg = PrepareDataConfig(corpus={"name": "kaldi", "corpus_dir": str(kaldi), "set_name": "train"},
                            output_dir=str(tmp_path / "data"))
    report = prepare_data(cfg)["train"]
    assert (report.checked, report.kept) == (3, 3)
    text = (tmp_path / "data" / "train" / "report.txt").read_text()
    assert "broken\tmissing_audio" in text and f"{wavs[0].stem}x\tmissing_audio" in text
    assert prepare_data(cfg) == {}  # unchanged: skipped
    _write(kaldi / "text", [f"{w.stem} nicolas" for w in wavs[:2]])
    assert set(prepare_data(cfg)) == {"train"}  # an edited text reruns it


def _run_stage0(recipe: str, kaldi_dir: Path, work_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "egs" / recipe / "ssl1" / "run.sh"), "--kaldi_dir", str(kaldi_dir),
         "--work_dir", str(work_dir), "--stage", "0", "--stop_stage", "0"],
        capture_output=True, text=True, timeout=300,
    )


def test_fsdd_recipe_stage0_from_kaldi_dirs(fsdd_dir, tmp_path):
    wavs = sorted(fsdd_dir.glob("*_yweweler_2*.wav"))
    kaldi = tmp_path / "kaldi"
    (kaldi / "train").mkdir(parents=True)
    run = _run_stage0("fsdd", kaldi, tmp_path / "work")
    assert run.returncode != 0 and f"no {kaldi / 'train' / 'wav.scp'}" in run.stderr
    expected = {"train": sorted(w.stem for w in wavs[:3]), "test": sorted(w.stem for w in wavs[3:5])}
    for s, ids in expected.items():
        (kaldi / s).mkdir(exist_ok=True)
        _write(kaldi / s / "wav.scp", [f"{i} {fsdd_dir / i}.wav" for i in ids])
        _write(kaldi / s / "text", [f"{i} digit" for i in ids])
    run = _run_stage0("fsdd", kaldi, tmp_path / "work")
    assert run.returncode == 0, run.stdout + run.stderr
    for s, ids in expected.items():
        cuts = CutSet.from_file(tmp_path / "work" / "data" / s / "cuts.jsonl.gz")
        assert sorted(cuts.ids) == ids and cuts[0].supervisions[0].text == "digit"


def test_asterisk_recipe_reads_its_four_sets_from_kaldi_dirs(tmp_path):
    for s in ("en_train", "en_dev", "en_test"):
        (tmp_path / s).mkdir()
        (tmp_path / s / "wav.scp").touch()
    run = _run_stage0("asterisk", tmp_path, tmp_path / "work")
    assert run.returncode != 0 and f"no {tmp_path / 'pool' / 'wav.scp'}" in run.stderr
