"""bin.train_lm: the ordinary trainer on text; validation loss falls, the checkpoint rebuilds the LM."""
from __future__ import annotations

import pytest
import torch

from lm_helpers import TINY_LM, asterisk_sentences, char_spec
from speechssl2.bin import train_lm
from speechssl2.registry import MODELS


def test_train_lm_cli_learns_and_writes_a_usable_checkpoint(tmp_path):
    sentences = asterisk_sentences()
    (tmp_path / "train.txt").write_text("\n".join(sentences["train"]) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(sentences["heldout"]) + "\n\n", encoding="utf-8")
    spec = char_spec(sentences["train"] + sentences["heldout"])
    exp = tmp_path / "exp"
    sets = [f"text.train={tmp_path / 'train.txt'}", f"text.valid={tmp_path / 'valid.txt'}", "text.batch_size=32",
            "model.tokenizer.name=char", f"model.tokenizer.letters={spec['letters']}",
            *(f"model.{k}={v}" for k, v in TINY_LM.items()),
            "trainer.max_updates=40", "trainer.valid_every=20", "trainer.save_every=20", "trainer.log_every=20",
            "optim.lr=3e-3", f"exp_dir={exp}"]
    train_lm.main([arg for s in sets for arg in ("--set", s)])
    assert (exp / "train_lm.yaml").is_file()
    first = torch.load(exp / "checkpoint_20.pt", map_location="cpu", weights_only=False)
    last = torch.load(exp / "checkpoint_40.pt", map_location="cpu", weights_only=False)
    lm = MODELS.build(last["config"]["model"])
    lm.load_state_dict(last["model"])
    lm.eval()
    with torch.no_grad():
        nll = float(lm({"text": sentences["heldout"]}).loss)
    first_lm = MODELS.build(first["config"]["model"])
    first_lm.load_state_dict(first["model"])
    first_lm.eval()
    with torch.no_grad():
        first_nll = float(first_lm({"text": sentences["heldout"]}).loss)
    assert nll < first_nll < 3.6  # ln(37) = 3.6: both beat a uniform guess, and training continued to help


def test_train_lm_cli_rejects_empty_text(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt: no non-empty sentences"):
        train_lm.main(["--set", f"text.train={tmp_path / 'empty.txt'}", "--set", "model.tokenizer.name=char",
                       "--set", "model.tokenizer.letters=ab", "--set", f"exp_dir={tmp_path / 'exp'}"])
