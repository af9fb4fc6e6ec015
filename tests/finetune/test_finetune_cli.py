"""bin.finetune is the ordinary trainer with a fine-tuning model: freeze policy end to end."""
from __future__ import annotations

import pytest
import torch
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from finetune_helpers import CHARS, DIGITS
from speechssl2.bin import finetune
from speechssl2.config import ConfigError
from speechssl2.registry import MODELS
from speechssl2.train.build import seed_everything

NAMES = ["0_jackson_5", "1_nicolas_6", "2_theo_7", "3_george_8"]


def fsdd_cuts(fsdd_dir, out_path) -> str:
    recs = [Recording.from_file(fsdd_dir / f"{n}.wav", recording_id=n) for n in NAMES]
    sups = [SupervisionSegment(id=r.id, recording_id=r.id, start=0.0, duration=r.duration, text=DIGITS[int(r.id[0])])
            for r in recs]
    CutSet.from_manifests(recordings=RecordingSet.from_recordings(recs),
                          supervisions=SupervisionSet.from_segments(sups)).to_file(out_path)
    return str(out_path)


@pytest.mark.slow
def test_finetune_cli_trains_head_first_then_transformer(fsdd_dir, tmp_path):
    cuts = fsdd_cuts(fsdd_dir, tmp_path / "cuts.jsonl.gz")
    exp = tmp_path / "exp"
    sets = [
        f"data.train={cuts}", "data.features=wave", "data.max_duration=3.0", "data.num_workers=0",
        "model.tokenizer.name=char", f"model.tokenizer.letters={CHARS['letters']}",
        "model.encoder.upstream.name=wav2vec2_tiny", "model.encoder.freeze_updates=2",
        "trainer.max_updates=4", "trainer.log_every=1", "trainer.save_every=2", "trainer.keep_last=2",
        f"exp_dir={exp}", "optim.lr=1e-3", "optim.weight_decay=0.0",
    ]
    finetune.main([arg for s in sets for arg in ("--set", s)])
    state = torch.load(exp / "checkpoint_4.pt", map_location="cpu", weights_only=False)
    assert state["config"]["model"]["name"] == "ctc"  # the entry point's default
    seed_everything(1)  # the trainer's default seed, before it builds the model
    initial = MODELS.build(state["config"]["model"]).state_dict()
    after = {n: torch.load(exp / f"checkpoint_{n}.pt", map_location="cpu", weights_only=False)["model"] for n in (2, 4)}
    changed = {n: {key for key in initial if not torch.equal(initial[key], weights[key])} for n, weights in after.items()}
    upstream = {key for key in initial if key.startswith("encoder.upstream.")}
    frontend = {key for key in upstream if key.startswith("encoder.upstream.frontend.")}
    assert changed[2] == set(initial) - upstream  # first 2 updates: only the head (and layer weights) learn
    assert frontend and not changed[4] & frontend  # the conv feature encoder never moves
    assert upstream - frontend - changed[4] <= {k for k in upstream if k.endswith("mask_emb")}  # the rest trains


def test_finetune_cli_refuses_a_pretraining_model(tmp_path):
    with pytest.raises(ConfigError, match="model.name 'ssl' is not a fine-tuning model; choose one of ctc, transducer"):
        finetune.main(["--set", "model.name=ssl", "--set", f"exp_dir={tmp_path}"])
