"""bin.train_tokenizer and bin.train_ngram on a Kaldi text of the asterisk prompts."""
from __future__ import annotations

from pathlib import Path

import pytest

from speechssl2.bin import train_ngram as ngram_bin
from speechssl2.bin import train_tokenizer as tok_bin
from speechssl2.data.corpora.asterisk import DEFAULT_TRANSCRIPTS, read_transcripts, spoken_text
from speechssl2.lm.ngram import find_kenlm
from speechssl2.registry import RegistryError
from speechssl2.scoring.kaldi_text import write_text
from speechssl2.tokenizers import load_tokenizer


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    labels = read_transcripts(Path(DEFAULT_TRANSCRIPTS))
    path = tmp_path_factory.mktemp("data") / "text"
    write_text(path, {rel.replace("/", "_"): spoken_text(raw) for rel, raw in labels.items()})
    return path


def test_train_tokenizer_cli_writes_a_loadable_directory(text_file, tmp_path):
    out = tmp_path / "lang_bpe"
    tok_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={out}", "--set", "tokenizer.name=sentencepiece",
                  "--set", "tokenizer.vocab_size=80", "--set", "tokenizer.model_type=bpe"])
    tok = load_tokenizer(out)
    assert tok.vocab_size <= 80 and tok.decode(tok.encode("please hold")) == "please hold"
    assert "vocab_size: 80" in (out / "train_tokenizer.yaml").read_text()  # the resolved config


def test_train_tokenizer_cli_rejects_options_the_tokenizer_lacks(text_file, tmp_path):
    with pytest.raises(RegistryError, match="tokenizers.char.train: unknown argument 'vocab_size'"):
        tok_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={tmp_path}", "--set", "tokenizer.name=char",
                      "--set", "tokenizer.vocab_size=3"])
    with pytest.raises(RegistryError, match="tokenizer spec .* has no 'name'; valid keys: char, sentencepiece"):
        tok_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={tmp_path}", "--set", "tokenizer.vocab_size=3"])


@pytest.mark.skipif(find_kenlm() is None, reason="KenLM binaries absent: run tools/install_kenlm.sh")
def test_train_ngram_cli_writes_lm_and_lexicon(text_file, tmp_path):
    tok_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={tmp_path / 'lang'}"])
    lm = ngram_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={tmp_path / 'lm'}",
                         "--set", f"tokenizer={tmp_path / 'lang'}", "--set", "order=3"])
    assert lm == tmp_path / "lm" / "lm.bin" and lm.stat().st_size > 0
    arpa = (tmp_path / "lm" / "lm.arpa").read_text()
    assert "ngram 3=" in arpa and "\tplease\t" in arpa
    lexicon = dict(line.split(" ", 1) for line in (tmp_path / "lm" / "lexicon.txt").read_text().splitlines())
    assert lexicon["please"] == "p l e a s e |"
    assert "order: 3" in (tmp_path / "lm" / "train_ngram.yaml").read_text()  # the resolved config


def test_train_ngram_skips_with_a_message_without_kenlm(text_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ngram_bin, "find_kenlm", lambda: None)
    assert ngram_bin.main(["--set", f"texts=[{text_file}]", "--set", f"out_dir={tmp_path / 'lm'}"]) is None
    assert "KenLM binaries not found" in capsys.readouterr().err  # bin.main logs to stderr
    assert not (tmp_path / "lm").exists()
