"""docs/adding_a_corpus.md followed literally: its marked blocks build a new recipe from
egs/TEMPLATE and run stages 0-1 on a small real corpus in the folder layout (FSDD
recordings in pool/train/dev/test folders with Kaldi `text` files).

A block is tested when the line before its fence is ``<!-- test: NAME -->``. The recipe
must sit at egs/<corpus>/ssl1 for its relative links, so the test gives it a unique
name there and removes it afterwards; the corpus and everything else live in tmp_path.
"""
from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "adding_a_corpus.md"
WORDS = "zero one two three four five six seven eight nine".split()
# set -> FSDD recordings (<digit>_<speaker>_<index>); 20 in all
SETS = {
    "pool": ["8_lucas_20", "9_theo_21", "0_nicolas_22", "1_yweweler_23", "2_george_24", "3_jackson_25"],
    "train": ["0_george_10", "1_jackson_11", "2_lucas_12", "3_nicolas_13", "4_theo_14", "5_yweweler_15",
              "6_george_16", "7_jackson_17"],
    "dev": ["4_lucas_5", "5_theo_6", "6_nicolas_7"],
    "test": ["7_george_0", "8_jackson_1", "9_yweweler_2"],
}
BAD_TRANSCRIPT = ("dev", "3_lucas_8", "3")  # a digit where the tokenizer has letters: dropped in stage 1
GHOST = ("test", "9_ghost_3")  # a `text` line without audio: excluded in stage 0


def doc_block(name: str) -> str:
    """The fenced block right after ``<!-- test: name -->`` in the doc, dedented."""
    match = re.search(rf"<!-- test: {re.escape(name)} -->\n[ \t]*```\w*\n(.*?)\n[ \t]*```", DOC.read_text(), re.S)
    assert match, f"{DOC} has no block marked <!-- test: {name} -->"
    return textwrap.dedent(match.group(1)) + "\n"


def substitute(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is not in the doc's block any more:\n{text}"
    return text.replace(old, new)


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, capture_output=True, text=True)


def read_cuts(manifest: Path) -> List[dict]:
    with gzip.open(manifest, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def texts(manifest: Path) -> Dict[str, str | None]:
    return {c["id"]: c["supervisions"][0].get("text") for c in read_cuts(manifest)}


def make_corpus(root: Path, fsdd_dir: Path) -> Path:
    """The doc's section-1 layout: audio links per set, a Kaldi `text` in the labeled ones."""
    extra = {BAD_TRANSCRIPT[0]: [BAD_TRANSCRIPT[1]]}
    for name, ids in SETS.items():
        (root / name).mkdir(parents=True)
        lines = []
        for utt in ids + extra.get(name, []):
            (root / name / f"{utt}.wav").symlink_to(fsdd_dir / f"{utt}.wav")
            lines.append(f"{utt} {BAD_TRANSCRIPT[2] if utt == BAD_TRANSCRIPT[1] else WORDS[int(utt[0])]}")
        if name == GHOST[0]:
            lines.append(f"{GHOST[1]} nine")
        if name != "pool":  # unlabeled: pre-training only
            (root / name / "text").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def recipe_name():
    """A recipe name no one uses; its egs/<name> folder is removed however the test ends."""
    name = f"zz_test_corpus_{uuid.uuid4().hex[:8]}"
    assert not (REPO / "egs" / name).exists()
    yield name
    shutil.rmtree(REPO / "egs" / name, ignore_errors=True)


def test_new_recipe_from_the_doc_prepares_data_and_tokenizer(tmp_path, fsdd_dir, recipe_name):
    corpus = make_corpus(tmp_path / "mycorpus", fsdd_dir)
    script = substitute(doc_block("new-recipe"), "corpus=mycorpus\n", f"corpus={recipe_name}\n")
    script += substitute(doc_block("run-data-stages"), "/data/mycorpus", str(corpus))
    res = bash(script, REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    recipe = REPO / "egs" / recipe_name / "ssl1"
    template = REPO / "egs" / "TEMPLATE" / "ssl1"
    for link, target in (("ssl.sh", template / "ssl.sh"), ("path.sh", template / "path.sh"), ("utils", REPO / "utils")):
        assert (recipe / link).is_symlink() and (recipe / link).resolve() == target.resolve()
    assert not (recipe / "conf" / "probe.yaml").exists()

    # Stage 0: manifests and a report per set, unlabeled pool included; audio stays at 8 kHz.
    data = recipe / "data"
    for name, ids in SETS.items():
        assert (data / name / "report.txt").is_file()
        kept = texts(data / name / "cuts.jsonl.gz")
        labeled = ids + ([BAD_TRANSCRIPT[1]] if name == BAD_TRANSCRIPT[0] else [])
        assert sorted(kept) == sorted(labeled), name
        if name == "pool":
            assert set(kept.values()) == {None}
        else:
            assert all(kept[u] == WORDS[int(u[0])] for u in ids), kept
    assert {c["recording"]["sampling_rate"] for c in read_cuts(data / "train" / "cuts.jsonl.gz")} == {8000}
    report = (data / "test" / "report.txt").read_text()
    assert "validated 3 cuts: 3 kept, 0 dropped; 1 entries excluded during preparation" in report
    assert f"{GHOST[1]}\tmissing_audio\t" in report

    # The doc's example report is this one, with the reader's paths.
    example = doc_block("report-example")
    for old, new in (("/home/me/speechssl2", str(REPO)), ("egs/mycorpus/", f"egs/{recipe_name}/"),
                     ("/data/mycorpus", str(corpus))):
        example = substitute(example, old, new)
    assert example == report

    # Stage 1: tokenizer on train, labeled sets validated against it; the digit transcript dropped.
    tokens = (data / "lang_char" / "tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "|"] and set("zeroonetwothreefourfivesixseveneightnine") <= set(tokens)
    dev_report = (data / "dev" / "report_char.txt").read_text()
    assert "validated 4 cuts: 3 kept, 1 dropped" in dev_report
    assert f"{BAD_TRANSCRIPT[1]}\tbad_chars\t" in dev_report
    assert sorted(texts(data / "dev" / "cuts_char.jsonl.gz")) == sorted(SETS["dev"])
    for name in ("train", "test"):
        assert "0 dropped" in (data / name / "report_char.txt").read_text()
        assert sorted(texts(data / name / "cuts_char.jsonl.gz")) == sorted(SETS[name])
    assert not (data / "pool" / "report_char.txt").exists()  # unlabeled: not a labeled set

    # Section 7: the copied noise_dir, read from the recipe directory, is shared/data/noise.
    mixing = yaml.safe_load((recipe / "conf" / "pretrain_wavlm.yaml").read_text())["data"]["mixing"]
    assert (recipe / mixing["noise_dir"]).resolve() == (REPO.parent / "shared" / "data" / "noise").resolve()

    # A labeled set without `text` stops stage 0 with a message instead of giving unlabeled cuts.
    (corpus / "test" / "text").unlink()
    res = bash(f"./run.sh --corpus_dir {corpus} --stage 0 --stop_stage 0", recipe)
    assert res.returncode != 0 and f"labeled set test has no {corpus}/test/text" in res.stderr


def test_local_prepare_example_writes_the_folder_layout(tmp_path, fsdd_dir):
    """Section 8's local/prepare.py on a flat folder of digit recordings, run twice."""
    script = tmp_path / "prepare.py"
    script.write_text(doc_block("local-prepare"))
    flat = tmp_path / "flat"
    flat.mkdir()
    names = ["3_theo_0", "7_george_4", "0_lucas_5", "9_jackson_49"]
    for name in names:
        (flat / f"{name}.wav").symlink_to(fsdd_dir / f"{name}.wav")
    out = tmp_path / "corpus"
    for _ in range(2):  # a rerun changes nothing
        res = subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(script), str(flat), str(out)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    assert (out / "test" / "text").read_text() == "3_theo_0 three\n7_george_4 seven\n"
    assert (out / "train" / "text").read_text() == "0_lucas_5 zero\n9_jackson_49 nine\n"
    assert (out / "train" / "0_lucas_5.wav").resolve() == (fsdd_dir / "0_lucas_5.wav").resolve()
    assert sorted(p.name for p in (out / "test").iterdir()) == ["3_theo_0.wav", "7_george_4.wav", "text"]
