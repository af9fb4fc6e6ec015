"""bin.probe end to end on FSDD: presets and checkpoints (glob) -> results.md/json, plot, config, cache."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest
import torch
import yaml

from speechssl2.bin import probe
from speechssl2.models import build_upstream
from speechssl2.models.io.hf import save_hf
from speechssl2.models.io.native import save_upstream
from speechssl2.probe import features


RECIPE_CONFIG = Path(__file__).resolve().parents[2] / "egs" / "fsdd" / "ssl1" / "conf" / "probe.yaml"
TASKS = ("ks", "sid", "asr")


def arguments(fsdd_manifests, out, upstreams: str, cache: str = "disk", extra: str = "[]") -> List[str]:
    """The recipe's probe.yaml, shrunk to a few utterances and epochs per task."""
    sets = [f"data_dir={Path(fsdd_manifests['train']).parents[1]}", f"output_dir={out}", f"upstreams={upstreams}",
            f"extra_upstreams={extra}", f"cache={cache}"]
    for task in TASKS:
        sets += [f"tasks.{task}.epochs=2", f"tasks.{task}.max_train_utts=60", f"tasks.{task}.max_test_utts=30"]
    return ["--config", str(RECIPE_CONFIG), *(arg for item in sets for arg in ("--set", item))]


def test_probe_cli_writes_table_plot_json_config_and_reuses_its_cache(fsdd_manifests, tmp_path, monkeypatch):
    for step, seed in ((10, 1), (2, 2)):  # two "intermediate pre-training checkpoints"
        torch.manual_seed(seed)
        save_upstream(build_upstream({"name": "w2v_bert_tiny"}), tmp_path / "pretrain" / f"checkpoint_{step}.pt")
    torch.manual_seed(0)  # the seed bin.probe builds presets with: the same weights as the preset row
    save_hf(build_upstream({"name": "wavlm_tiny"}), tmp_path / "hf")
    out = tmp_path / "probe"
    upstreams = f"[{{name: wavlm_tiny}}, {tmp_path / 'pretrain' / 'checkpoint_*.pt'}]"
    extra = f"[{{path: {tmp_path / 'hf'}, tag: wavlm_tiny (HF)}}]"  # appended, as run.sh adds its checkpoints
    doc = probe.main(arguments(fsdd_manifests, out, upstreams, extra=extra))

    rows = ["wavlm_tiny (random init)", "pretrain/checkpoint_2", "pretrain/checkpoint_10", "wavlm_tiny (HF)"]
    assert list(doc["results"]) == rows
    assert doc["results"]["wavlm_tiny (HF)"] == doc["results"]["wavlm_tiny (random init)"]  # same weights
    table = (out / "results.md").read_text(encoding="utf-8").splitlines()
    assert "| upstream | ks accuracy % ↑ | sid accuracy % ↑ | asr WER % ↓ |" in table
    chance = " | ".join(f"{doc['tasks'][t]['chance']:.2f}" for t in TASKS)
    assert f"| chance (majority label) | {chance} |" in table
    for tag in rows:
        values = doc["results"][tag]
        assert f"| {tag} | " + " | ".join(f"{values[t]['value']:.2f}" for t in TASKS) + " |" in table
        for task in TASKS:  # both tiny presets: 2 encoder layers + the projected input
            assert len(values[task]["layer_weights"]) == 3
            assert sum(values[task]["layer_weights"]) == pytest.approx(1.0)
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == doc
    assert (out / "layer_weights.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    saved = yaml.safe_load((out / "probe.yaml").read_text(encoding="utf-8"))
    assert saved["tasks"]["asr"]["max_train_utts"] == 60 and saved["cache"] == "disk"
    # per distinct weights (the HF copy shares the preset's): train and test cuts, shared by the tasks
    assert len(list((out / "cache").glob("*.pt"))) == 3 * 2

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again although they are cached")

    monkeypatch.setattr(features, "extract_all", no_extraction)
    again = probe.main(arguments(fsdd_manifests, out, upstreams, extra=extra))
    assert again["results"] == doc["results"]  # same seeds, same cached features: same numbers


def test_probe_cli_fails_before_any_work_on_a_bad_upstream(fsdd_manifests, tmp_path):
    from speechssl2.config import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint found"):
        probe.main(arguments(fsdd_manifests, tmp_path / "probe", f"[{tmp_path / 'missing.pt'}]"))
    assert not (tmp_path / "probe").exists()
