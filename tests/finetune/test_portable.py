"""Fine-tuned checkpoints rebuild with neither the upstream checkpoint nor the tokenizer directory."""
from __future__ import annotations

import shutil

import pytest
import torch

from finetune_helpers import DIGITS
from speechssl2.bin import finetune
from speechssl2.models import build_upstream
from speechssl2.models.io.native import save_upstream
from speechssl2.registry import TOKENIZERS
from speechssl2.tokenizers import CharTokenizer
from speechssl2.tokenizers.sentencepiece import SentencePieceTokenizer
from speechssl2.train.checkpoint import load_trained_model
from test_finetune_cli import fsdd_cuts


@pytest.mark.parametrize("tokenizer", [CharTokenizer, SentencePieceTokenizer])
def test_tokenizer_spec_rebuilds_it_without_files(tokenizer):
    texts = DIGITS * 20
    tok = tokenizer.train(texts) if tokenizer is CharTokenizer else tokenizer.train(texts, vocab_size=30)
    again = TOKENIZERS.build(tok.to_spec())
    assert again.symbols == tok.symbols
    assert again.encode("seven three") == tok.encode("seven three")


def test_sentencepiece_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one of model_file and model_base64"):
        SentencePieceTokenizer()


def test_finetuned_checkpoint_decodes_after_its_inputs_are_gone(fsdd_dir, tmp_path):
    torch.manual_seed(0)
    save_upstream(build_upstream({"name": "wav2vec2_tiny"}), tmp_path / "upstream.pt")
    CharTokenizer.train(DIGITS).save(tmp_path / "lang")
    cuts = fsdd_cuts(fsdd_dir, tmp_path / "cuts.jsonl.gz")
    exp = tmp_path / "exp"
    sets = [f"data.train={cuts}", "data.max_duration=3.0", "data.num_workers=0", "trainer.max_updates=1",
            f"model.encoder.upstream={tmp_path / 'upstream.pt'}", f"model.tokenizer={tmp_path / 'lang'}",
            "model.encoder.freeze_updates=0", f"exp_dir={exp}"]
    finetune.main([arg for s in sets for arg in ("--set", s)])
    wav, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    before, _ = load_trained_model(exp / "checkpoint_last.pt", names=("ctc",))
    expected = before.log_probs(wav, lengths)[0]
    (tmp_path / "upstream.pt").unlink()
    shutil.rmtree(tmp_path / "lang")
    after, state = load_trained_model(exp / "checkpoint_last.pt", names=("ctc",))
    torch.testing.assert_close(after.log_probs(wav, lengths)[0], expected, rtol=0, atol=0)
    assert state["config"]["model"]["tokenizer"] == {"name": "char", "letters": "".join(sorted(set("".join(DIGITS))))}
    assert "upstream.pt" in (exp / "config.yaml").read_text()  # the run's own config keeps what was asked
