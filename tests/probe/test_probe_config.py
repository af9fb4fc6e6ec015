"""Probe config checks: upstream entries, globs in numeric order, tags, task validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from speechssl2.config import ConfigError, load_config
from speechssl2.probe.config import ProbeConfig, resolve_upstreams, task_configs
from speechssl2.typecheck import ConfigTypeError

TASK = {"train": "tr.jsonl.gz", "test": "te.jsonl.gz", "label": "speaker",
        "downstream": {"name": "utterance_classifier"}}


def test_presets_paths_and_globs_resolve_to_tagged_rows_in_numeric_order(tmp_path):
    for step in (1000, 200, 30):
        (tmp_path / "pretrain").mkdir(exist_ok=True)
        (tmp_path / "pretrain" / f"checkpoint_{step}.pt").write_bytes(b"")
    hf = tmp_path / "wavlm-hf"
    hf.mkdir()
    refs = resolve_upstreams([{"name": "hubert_tiny"}, str(tmp_path / "pretrain" / "checkpoint_*.pt"),
                              {"path": str(hf), "tag": "wavlm (HF)", "source": "hf"}])
    assert [r.tag for r in refs] == ["hubert_tiny (random init)", "pretrain/checkpoint_30", "pretrain/checkpoint_200",
                                     "pretrain/checkpoint_1000", "wavlm (HF)"]
    assert refs[0].preset == {"name": "hubert_tiny"} and refs[0].path is None
    assert refs[4].path == str(hf) and refs[4].source == "hf"


def test_extra_upstreams_are_appended_to_the_configured_list(tmp_path):
    """What a recipe does: ``--set extra_upstreams=[...]`` adds its checkpoints, the YAML's rows stay."""
    recipe = Path(__file__).resolve().parents[2] / "egs" / "fsdd" / "ssl1" / "conf" / "probe.yaml"
    ckpt = tmp_path / "pretrain_hubert" / "checkpoint_100.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    configured = [r.tag for r in resolve_upstreams(load_config(ProbeConfig, recipe).upstreams)]
    cfg = load_config(ProbeConfig, recipe, [f"extra_upstreams=[{ckpt}]"])
    assert [r.tag for r in resolve_upstreams(cfg.upstreams, cfg.extra_upstreams)] == [
        *configured, "pretrain_hubert/checkpoint_100"]
    cfg = load_config(ProbeConfig, recipe, ["upstreams=[{name: hubert_tiny}]", f"extra_upstreams=[{ckpt}]"])
    assert [r.tag for r in resolve_upstreams(cfg.upstreams, cfg.extra_upstreams)] == [
        "hubert_tiny (random init)", "pretrain_hubert/checkpoint_100"]
    assert [r.tag for r in resolve_upstreams([], cfg.extra_upstreams)] == ["pretrain_hubert/checkpoint_100"]
    with pytest.raises(ConfigError, match=r"extra_upstreams\[1\]: no checkpoint found"):
        resolve_upstreams(cfg.upstreams, [str(ckpt), str(tmp_path / "missing.pt")])
    with pytest.raises(ConfigError, match="duplicate tag"):
        resolve_upstreams([str(ckpt)], [str(ckpt)])


@pytest.mark.parametrize("entries, message", [
    ([], "no upstream"),
    ([{"name": "hubert_tiny"}, {"name": "hubert_tiny"}], "duplicate tag"),
    ([{"name": "no_such_preset"}], "unknown preset 'no_such_preset'"),
    ([{"name": "hubert_tiny", "path": "x.pt"}], "either 'path'"),
    ([{"tag": "x"}], "either 'path'"),
    (["/nonexistent/checkpoint.pt"], "no checkpoint found"),
    ([{"path": "/nonexistent/*.pt"}], "no checkpoint found"),
])
def test_bad_upstream_entries_fail_at_start_up(entries, message):
    with pytest.raises(ConfigError, match=message):
        resolve_upstreams(entries)


def test_checkpoint_entries_reject_unknown_keys_and_sources(tmp_path):
    ckpt = tmp_path / "a.pt"
    ckpt.write_bytes(b"")
    with pytest.raises(ConfigError, match="takes only path, tag and source"):
        resolve_upstreams([{"path": str(ckpt), "layers": 3}])
    with pytest.raises(ConfigError, match="takes only path, tag and source"):
        resolve_upstreams([{"path": str(ckpt), "source": "onnx"}])


def test_task_configs_are_typed_and_checked():
    tasks = task_configs(ProbeConfig(tasks={"sid": {**TASK, "epochs": 3, "test": "/abs/te.jsonl.gz"}}, data_dir="d"))
    assert tasks["sid"].epochs == 3 and tasks["sid"].label == "speaker"
    assert (tasks["sid"].train, tasks["sid"].test) == ("d/tr.jsonl.gz", "/abs/te.jsonl.gz")  # under data_dir
    with pytest.raises(ConfigError, match="no probing task"):
        task_configs(ProbeConfig())
    with pytest.raises(ConfigError, match="tasks.sid.label: required field missing"):
        task_configs(ProbeConfig(tasks={"sid": {k: v for k, v in TASK.items() if k != "label"}}))
    with pytest.raises(ConfigTypeError, match="tasks.sid.epochs"):
        task_configs(ProbeConfig(tasks={"sid": {**TASK, "epochs": "many"}}))
    with pytest.raises(ConfigError, match="unknown name 'lstm'.*ctc_asr"):
        task_configs(ProbeConfig(tasks={"sid": {**TASK, "downstream": {"name": "lstm"}}}))
    with pytest.raises(ConfigError, match=r"\['input_dim'\] are filled in"):
        task_configs(ProbeConfig(tasks={"sid": {**TASK, "downstream": {"name": "ctc_asr", "input_dim": 3}}}))
