"""bin.probe end to end on FSDD: presets and checkpoints (glob) -> results.md/json, plot, config, cache."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from speechssl2.bin import probe
from speechssl2.models import build_upstream
from speechssl2.models.io.native import save_upstream
from speechssl2.probe import features


def overrides(fsdd_manifests, out, upstreams: str, cache: str = "disk"):
    sets = [f"output_dir={out}", f"upstreams={upstreams}", f"cache={cache}"]
    for task in ("ks", "sid"):
        sets += [f"tasks.{task}.train={fsdd_manifests['train']}", f"tasks.{task}.test={fsdd_manifests['test']}",
                 f"tasks.{task}.epochs=2", f"tasks.{task}.max_train_utts=60", f"tasks.{task}.max_test_utts=30"]
    sets += ["tasks.ks.label=custom.digit", "tasks.sid.label=speaker",
             "tasks.ks.downstream={name: utterance_classifier, hidden_dim: 32}",
             "tasks.sid.downstream={name: utterance_classifier, hidden_dim: 32}"]
    return [arg for item in sets for arg in ("--set", item)]


def test_probe_cli_writes_table_plot_json_config_and_reuses_its_cache(fsdd_manifests, tmp_path, monkeypatch):
    for step, seed in ((10, 1), (2, 2)):  # two "intermediate pre-training checkpoints"
        torch.manual_seed(seed)
        save_upstream(build_upstream({"name": "w2v_bert_tiny"}), tmp_path / "pretrain" / f"checkpoint_{step}.pt")
    out = tmp_path / "probe"
    upstreams = f"[{{name: wavlm_tiny}}, {tmp_path / 'pretrain' / 'checkpoint_*.pt'}]"
    doc = probe.main(overrides(fsdd_manifests, out, upstreams))

    rows = ["wavlm_tiny (random init)", "pretrain/checkpoint_2", "pretrain/checkpoint_10"]
    assert list(doc["results"]) == rows
    table = (out / "results.md").read_text(encoding="utf-8").splitlines()
    assert "| upstream | ks accuracy % ↑ | sid accuracy % ↑ |" in table
    chance = doc["tasks"]
    assert f"| chance (majority label) | {chance['ks']['chance']:.2f} | {chance['sid']['chance']:.2f} |" in table
    for tag in rows:
        values = doc["results"][tag]
        assert f"| {tag} | {values['ks']['value']:.2f} | {values['sid']['value']:.2f} |" in table
        for task in ("ks", "sid"):  # both tiny presets: 2 encoder layers + the projected input
            assert len(values[task]["layer_weights"]) == 3
            assert sum(values[task]["layer_weights"]) == pytest.approx(1.0)
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == doc
    assert (out / "layer_weights.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    saved = yaml.safe_load((out / "probe.yaml").read_text(encoding="utf-8"))
    assert saved["tasks"]["ks"]["max_train_utts"] == 60 and saved["cache"] == "disk"
    assert len(list((out / "cache").glob("*.pt"))) == 3 * 2  # per upstream: train and test cuts (shared by tasks)

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again although they are cached")

    monkeypatch.setattr(features, "extract_all", no_extraction)
    again = probe.main(overrides(fsdd_manifests, out, upstreams))
    assert again["results"] == doc["results"]  # same seeds, same cached features: same numbers


def test_probe_cli_fails_before_any_work_on_a_bad_upstream(fsdd_manifests, tmp_path):
    from speechssl2.config import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint found"):
        probe.main(overrides(fsdd_manifests, tmp_path / "probe", f"[{tmp_path / 'missing.pt'}]"))
    assert not (tmp_path / "probe").exists()
