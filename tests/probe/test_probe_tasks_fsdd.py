"""Every task trains on real FSDD audio in a short CPU run and beats its chance level.

The upstream is a randomly initialised ``w2v_bert_tiny`` (log-mel frontend): random, yet
informative enough that a few epochs separate a working probe from a broken one. All
tasks read the same seeded 300/100-utterance train/test subsets, so their hidden states
are extracted once per module (``cache: disk``) and every test after the first only
trains its downstream.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import torch
from lhotse import CutSet

from speechssl2.probe.config import ProbeConfig, TaskConfig, UpstreamRef
from speechssl2.probe.labels import load_labelled_set
from speechssl2.probe.run import chance_level, load_task_data, probe_upstream

UPSTREAM = UpstreamRef("w2v_bert_tiny", preset={"name": "w2v_bert_tiny"})
CLASSIFIER = {"name": "utterance_classifier", "hidden_dim": 128}
MAX_TRAIN, MAX_TEST = 300, 100


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The downstreams are tiny (a BiLSTM step over ~20 frames): intra-op threads only add
    synchronisation, which on shared cores costs far more than it saves (an LSTM step took
    13 ms on 1 thread, 570 ms on 2, on a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One disk cache for the module: the upstream runs once per distinct set of cuts."""
    return tmp_path_factory.mktemp("probe_features")


def run_task(manifests: Dict[str, str], cache: Path, label: str, downstream: Dict[str, Any], epochs: int,
             margin: float) -> Dict[str, Any]:
    task = TaskConfig(train=manifests["train"], test=manifests["test"], label=label, downstream=downstream,
                      epochs=epochs, lr=3e-3, weights_lr=5e-2, max_train_utts=MAX_TRAIN, max_test_utts=MAX_TEST)
    cfg = ProbeConfig(upstreams=[], cache="disk", output_dir=str(cache))
    data = load_task_data({"t": task}, cfg.seed)
    chance = chance_level(task, *data["t"])
    result = probe_upstream(UPSTREAM, {"t": task}, data, cfg)["t"]
    losses = result["epoch_losses"]
    assert losses[-1] < 0.7 * losses[0], losses
    better = result["value"] - chance if downstream["name"] != "ctc_asr" else chance - result["value"]
    assert better > margin, (result["value"], chance)
    assert len(result["layer_weights"]) == 3 and sum(result["layer_weights"]) == pytest.approx(1.0)
    return result


def test_keyword_spotting_beats_chance(fsdd_manifests, feature_cache):
    run_task(fsdd_manifests, feature_cache, "custom.digit", CLASSIFIER, epochs=12, margin=25.0)  # chance ~11 %


def test_speaker_id_beats_chance(fsdd_manifests, feature_cache):
    run_task(fsdd_manifests, feature_cache, "speaker", CLASSIFIER, epochs=8, margin=30.0)  # chance ~18 %


@pytest.mark.slow
def test_ctc_asr_beats_chance_wer(fsdd_manifests, feature_cache):
    run_task(fsdd_manifests, feature_cache, "text", {"name": "ctc_asr", "hidden_dim": 96, "num_layers": 1},
             epochs=15, margin=20.0)  # chance: the most frequent transcript everywhere, ~89 % WER


def test_any_labelled_manifest_fills_the_classification_slot(fsdd_manifests, feature_cache, tmp_path):
    """The ER slot: a manifest whose supervisions carry their own label field (here: odd/even digit)."""
    manifests = {}
    for split, max_utts in (("train", MAX_TRAIN), ("test", MAX_TEST)):
        cuts = list(load_labelled_set(fsdd_manifests[split], "text", max_utts=max_utts).cuts)
        for cut in cuts:
            sup = cut.supervisions[0]
            sup.custom = {**sup.custom, "parity": "odd" if int(sup.custom["digit"]) % 2 else "even"}
        manifests[split] = str(tmp_path / f"{split}.jsonl.gz")
        CutSet.from_cuts(cuts).to_file(manifests[split])
    run_task(manifests, feature_cache, "custom.parity", CLASSIFIER, epochs=8, margin=10.0)  # chance ~50 %
