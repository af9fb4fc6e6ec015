"""Stage bookkeeping: a stage reruns exactly when its config, an input or an output changed."""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import pytest

from speechssl2.stage import Stage, config_inputs, dict_diff, stamp_path


@dataclass
class ToyConfig:
    texts: List[str]
    out_dir: str
    model: Dict[str, Any] = field(default_factory=dict)
    order: int = 3
    name: str = "no/such/dir is still an input"  # a '/' makes it a path; absent is recorded


def run(cfg: ToyConfig) -> bool:
    """One stage run: True when the work ran. The work writes one output file."""
    stage = Stage("toy", cfg, stamp_path(cfg.out_dir, "toy"), [cfg.out_dir])
    if stage.up_to_date():
        return False
    out = Path(cfg.out_dir) / "out.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"".join(Path(t).read_bytes() for t in cfg.texts))
    stage.done([out])
    return True


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "lm.bin").write_bytes(b"\x00\x01")
    return ToyConfig(texts=[str(tmp_path / "a.txt")], out_dir=str(tmp_path / "exp"),
                     model={"tokenizer": str(tmp_path / "lm"), "deep": [{"x": str(tmp_path / "a.txt")}]})


def test_second_run_skips(toy):
    assert run(toy) and not run(toy)


def test_changed_config_value_reruns(toy):
    run(toy)
    toy.order = 4
    assert run(toy)
    assert not run(toy)


def test_changed_input_content_reruns_but_touch_does_not(toy):
    run(toy)
    a = Path(toy.texts[0])
    os.utime(a, (1, 1))  # same content, other mtime: hashed and found equal
    assert not run(toy)
    a.write_text("beta\n")
    assert run(toy)


def test_file_inside_input_directory_nested_in_a_component_spec(toy):
    run(toy)
    (Path(toy.model["tokenizer"]) / "lm.bin").write_bytes(b"\x00\x02")  # same size, other bytes
    assert run(toy)


def test_deleted_or_edited_output_reruns(toy):
    run(toy)
    out = Path(toy.out_dir) / "out.txt"
    out.unlink()
    assert run(toy)
    out.write_text("tampered")
    assert run(toy)
    assert out.read_text() == "alpha\n"


def test_deleted_output_directory_reruns(toy, tmp_path):
    run(toy)
    for p in sorted(Path(toy.out_dir).iterdir()):
        p.unlink()
    Path(toy.out_dir).rmdir()
    assert run(toy)


def test_absent_input_appearing_reruns(toy, tmp_path):
    toy.name = str(tmp_path / "later.txt")
    run(toy)
    assert not run(toy)
    Path(toy.name).write_text("now here")
    assert run(toy)


def test_killed_work_is_not_done(toy):
    run(toy)
    toy.order = 5
    stage = Stage("toy", toy, stamp_path(toy.out_dir, "toy"), [toy.out_dir])
    assert not stage.up_to_date()  # the stamp goes before the work starts; the work dies here
    assert not stamp_path(toy.out_dir, "toy").exists()
    toy.order = 3
    assert run(toy)


def test_declared_output_missing_is_an_error(toy):
    stage = Stage("toy", toy, stamp_path(toy.out_dir, "toy"), [toy.out_dir])
    assert not stage.up_to_date()
    with pytest.raises(FileNotFoundError, match=r"\[toy\] declared output\(s\) not written: .*nothing\.txt"):
        stage.done([Path(toy.out_dir) / "nothing.txt"])


def test_manifest_input_covers_the_files_its_cuts_point_to(tmp_path):
    labels = tmp_path / "labels" / "shard_0_1"
    labels.mkdir(parents=True)
    (labels / "u1.npy").write_bytes(b"labels v1")
    audio = tmp_path / "u1.wav"
    audio.write_bytes(b"RIFF....")
    cut = {"id": "u1", "recording": {"sources": [{"type": "file", "source": str(audio)}]},
           "custom": {"hubert": {"storage_type": "numpy_files", "storage_path": str(labels.parent / "shard_0_1"),
                                 "storage_key": "u1.npy"}}}
    manifest = tmp_path / "cuts.jsonl.gz"
    with gzip.open(manifest, "wt") as f:
        f.write(json.dumps(cut) + "\n")
    cfg = ToyConfig(texts=[str(manifest)], out_dir=str(tmp_path / "exp"))
    stage = Stage("toy", cfg, stamp_path(cfg.out_dir, "toy"), [cfg.out_dir])
    assert not stage.up_to_date()
    (tmp_path / "exp" / "o").write_text("x")
    stage.done([tmp_path / "exp" / "o"])
    assert Stage("toy", cfg, stamp_path(cfg.out_dir, "toy"), [cfg.out_dir]).up_to_date()
    (labels / "u1.npy").write_bytes(b"labels v2")  # new labels, same manifest bytes
    assert not Stage("toy", cfg, stamp_path(cfg.out_dir, "toy"), [cfg.out_dir]).up_to_date()


def test_inputs_are_path_values_outside_the_outputs(tmp_path):
    out = tmp_path / "exp"
    config = {"a": str(tmp_path / "x"), "b": [str(out / "sub" / "y")], "c": "plain words", "d": "http://host/x",
              "e": {"f": str(tmp_path / "z")}, "n": 3}
    assert config_inputs(config, [out]) == [str(tmp_path / "x"), str(tmp_path / "z")]


def test_dict_diff_names_the_dotted_fields():
    old = {"optim": {"lr": 1e-3, "betas": [0.9, 0.98]}, "exp_dir": "a"}
    new = {"optim": {"lr": 2e-3, "betas": [0.9, 0.98]}, "exp_dir": "a", "extra": 1}
    assert dict_diff(old, new) == ["extra: \"<unset>\" -> 1", "optim.lr: 0.001 -> 0.002"]


def test_unfinished_run_is_resumable_only_on_the_same_inputs(toy):
    def stage():
        return Stage("toy", toy, stamp_path(toy.out_dir, "toy"), [toy.out_dir])

    first = stage()
    assert not first.up_to_date() and not first.resumable  # nothing started before
    again = stage()  # killed: no stamp, but the same config and inputs
    assert not again.up_to_date() and again.resumable
    Path(toy.texts[0]).write_text("changed\n")
    changed = stage()
    assert not changed.up_to_date() and not changed.resumable  # partial outputs are from other inputs
    toy.order = 9
    assert not stage().up_to_date()
    other = stage()
    assert not other.up_to_date() and other.resumable
    toy.order = 3
    back = stage()
    assert not back.up_to_date() and not back.resumable  # the unfinished run had order 9


def test_gzip_rewritten_with_the_same_content_is_unchanged(tmp_path):
    manifest = tmp_path / "cuts.jsonl.gz"
    with gzip.GzipFile(manifest, "wb", mtime=1) as f:
        f.write(b'{"id": "u1"}\n')
    cfg = ToyConfig(texts=[str(manifest)], out_dir=str(tmp_path / "exp"))
    assert run(cfg) is True
    with gzip.GzipFile(manifest, "wb", mtime=2) as f:  # other header bytes, same content
        f.write(b'{"id": "u1"}\n')
    assert run(cfg) is False
    with gzip.GzipFile(manifest, "wb", mtime=2) as f:
        f.write(b'{"id": "u2"}\n')
    assert run(cfg) is True
