"""Learning curves and health vs chance: scalars read back from TensorBoard, the label prior, verdicts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from lhotse import CutSet, NumpyFilesWriter
from lhotse.testing.dummies import dummy_cut

from speechssl2.bin import curves
from speechssl2.logging_utils import TensorBoard
from speechssl2.scoring.curves import label_prior, read_scalars


def log_run(exp_dir, values):
    tb = TensorBoard(exp_dir / "tensorboard")
    for step, (ce, acc) in enumerate(values, start=1):
        tb.scalars({"hubert/masked_ce": ce, "hubert/acc_masked": acc}, step * 10, prefix="train/")
    tb.close()


def labels_manifest(tmp_path, frames):
    with NumpyFilesWriter(tmp_path / "arrays") as writer:
        cuts = [dummy_cut(i).with_custom("hubert_labels", writer.store_array(
            f"c{i}", np.asarray(f, dtype=np.int32), frame_shift=0.02, temporal_dim=0)) for i, f in enumerate(frames)]
    CutSet.from_cuts(cuts).to_file(tmp_path / "labels.jsonl.gz")
    return tmp_path / "labels.jsonl.gz"


def test_label_prior_is_the_entropy_and_majority_of_all_frames(tmp_path):
    path = labels_manifest(tmp_path, [[0, 0, 1], [0, 2, 2, 0]])  # 0: 4/7, 1: 1/7, 2: 2/7
    prior = label_prior(path)
    probs = [4 / 7, 1 / 7, 2 / 7]
    assert prior.entropy == pytest.approx(-sum(p * math.log(p) for p in probs))
    assert prior.majority == pytest.approx(4 / 7) and prior.num_labels == 3
    with pytest.raises(ValueError, match="has no 'other' labels"):
        label_prior(path, field="other")


def test_health_table_and_plot_against_the_prior(tmp_path):
    log_run(tmp_path / "good", [(1.2, 0.3), (0.5, 0.8)])   # ends below the prior entropy, above majority
    log_run(tmp_path / "bad", [(1.2, 0.3), (1.0, 0.5)])    # ends above the entropy (0.956) and below 4/7
    assert read_scalars(tmp_path / "good" / "tensorboard")["train/hubert/masked_ce"] == [
        (10, pytest.approx(1.2)), (20, pytest.approx(0.5))]
    path = labels_manifest(tmp_path, [[0, 0, 1], [0, 2, 2, 0]])
    rows = curves.main(["--set", f"runs={{good: {tmp_path / 'good'}, bad: {tmp_path / 'bad'}}}",
                        "--set", "metrics=[train/*masked_ce*, train/*acc_masked*]", "--set", f"labels={path}",
                        "--set", f"output={tmp_path / 'H.md'}", "--set", f"plot={tmp_path / 'H.png'}"])
    verdicts = {(r[0], r[1].split("/")[-1]): r[5] for r in rows}
    assert verdicts == {("good", "masked_ce"): "yes", ("good", "acc_masked"): "yes",
                        ("bad", "masked_ce"): "**no**", ("bad", "acc_masked"): "**no**"}
    text = (tmp_path / "H.md").read_text()
    assert "entropy 0.956 nats" in text and "| good | train/hubert/masked_ce | 1.2 (update 10) | 0.5 (update 20) |" in text
    assert (tmp_path / "H.png").stat().st_size > 1000


def test_a_run_that_never_started_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard directory"):
        curves.main(["--set", f"runs={{x: {tmp_path / 'nothing'}}}", "--set", f"output={tmp_path / 'H.md'}"])


def test_a_contrastive_loss_above_its_chance_does_not_beat_it(tmp_path):
    tb = TensorBoard(tmp_path / "w" / "tensorboard")
    tb.scalars({"wav2vec2/contrastive": 4.617, "wav2vec2/acc_masked": 0.02}, 10, prefix="train/")
    tb.close()
    rows = curves.main(["--set", f"runs={{w: {tmp_path / 'w'}}}", "--set", "metrics=[train/*]", "--set", "plot=null",
                        "--set", "chance={'*contrastive': 4.615, '*acc_masked': 0.0099}",
                        "--set", f"output={tmp_path / 'H.md'}"])
    assert {r[1]: r[5] for r in rows} == {"train/wav2vec2/contrastive": "**no**", "train/wav2vec2/acc_masked": "yes"}
