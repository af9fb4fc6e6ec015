"""Every task trains on real FSDD audio in a short CPU run and beats its chance level.

The upstream is a randomly initialised ``w2v_bert_tiny`` (log-mel frontend): random, yet
informative enough that a few epochs separate a working probe from a broken one.
"""
from __future__ import annotations

from typing import Any, Dict

import pytest
from lhotse import CutSet

from speechssl2.probe.config import ProbeConfig, TaskConfig, UpstreamRef
from speechssl2.probe.labels import load_labelled_set
from speechssl2.probe.run import chance_level, load_task_data, probe_upstream

UPSTREAM = UpstreamRef("w2v_bert_tiny", preset={"name": "w2v_bert_tiny"})
CLASSIFIER = {"name": "utterance_classifier", "hidden_dim": 256}


def run_task(manifests: Dict[str, str], label: str, downstream: Dict[str, Any], epochs: int, margin: float,
             max_train: int = 300) -> Dict[str, Any]:
    task = TaskConfig(train=manifests["train"], test=manifests["test"], label=label, downstream=downstream,
                      epochs=epochs, lr=3e-3, weights_lr=5e-2, max_train_utts=max_train, max_test_utts=100)
    cfg = ProbeConfig(upstreams=[], cache="memory")
    data = load_task_data({"t": task}, cfg.seed)
    chance = chance_level(task, *data["t"])
    result = probe_upstream(UPSTREAM, {"t": task}, data, cfg)["t"]
    losses = result["epoch_losses"]
    assert losses[-1] < 0.7 * losses[0], losses
    better = result["value"] - chance if downstream["name"] != "ctc_asr" else chance - result["value"]
    assert better > margin, (result["value"], chance)
    assert len(result["layer_weights"]) == 3 and sum(result["layer_weights"]) == pytest.approx(1.0)
    return result


def test_keyword_spotting_beats_chance(fsdd_manifests):
    run_task(fsdd_manifests, "custom.digit", CLASSIFIER, epochs=15, margin=20.0)  # chance 10 %


def test_speaker_id_beats_chance(fsdd_manifests):
    run_task(fsdd_manifests, "speaker", CLASSIFIER, epochs=10, margin=30.0)  # chance ~17 %


def test_ctc_asr_beats_chance_wer(fsdd_manifests):
    run_task(fsdd_manifests, "text", {"name": "ctc_asr", "hidden_dim": 96, "num_layers": 1},
             epochs=20, margin=20.0)  # chance: the most frequent transcript everywhere, ~90 % WER


def test_any_labelled_manifest_fills_the_classification_slot(fsdd_manifests, tmp_path):
    """The ER slot: a manifest whose supervisions carry their own label field (here: odd/even digit)."""
    manifests = {}
    for split in ("train", "test"):
        cuts = list(load_labelled_set(fsdd_manifests[split], "text", max_utts=300 if split == "train" else 100).cuts)
        for cut in cuts:
            sup = cut.supervisions[0]
            sup.custom = {**sup.custom, "parity": "odd" if int(sup.custom["digit"]) % 2 else "even"}
        manifests[split] = str(tmp_path / f"{split}.jsonl.gz")
        CutSet.from_cuts(cuts).to_file(manifests[split])
    run_task(manifests, "custom.parity", CLASSIFIER, epochs=10, margin=10.0)  # chance ~50 %
