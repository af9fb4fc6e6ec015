"""Char and SentencePiece tokenizers on real transcripts: round trips, blank, save/load, errors."""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from speechssl2.data.corpora.asterisk import DEFAULT_TRANSCRIPTS, read_transcripts, spoken_text
from speechssl2.data.corpora.fsdd import DIGIT_WORDS
from speechssl2.registry import TOKENIZERS
from speechssl2.text import normalize_text
from speechssl2.tokenizers import BLANK, CharTokenizer, SentencePieceTokenizer, load_tokenizer


@pytest.fixture(scope="module")
def asterisk_texts() -> List[str]:
    path = Path(DEFAULT_TRANSCRIPTS)
    if not path.is_file():
        pytest.fail(f"{path} missing: install asterisk-core-sounds-en (tools/install_debian_deps.sh)")
    texts = [t for t in (spoken_text(raw) for raw in read_transcripts(path).values()) if t]
    assert len(texts) > 400
    return texts


@pytest.fixture(scope="module")
def fsdd_texts(fsdd_dir: Path) -> List[str]:
    """The digit word of every FSDD recording, read from the file names."""
    return [DIGIT_WORDS[int(p.name.split("_")[0])] for p in sorted(fsdd_dir.glob("*.wav"))]


def test_char_round_trips_fsdd_words_with_boundaries(fsdd_texts):
    tok = CharTokenizer.train(fsdd_texts)
    assert tok.symbols[:2] == ["<blank>", "|"]
    assert tok.chars() == set("".join(DIGIT_WORDS))
    assert tok.encode("Seven!") == [tok.symbols.index(c) for c in "seven|"]
    for text in set(fsdd_texts):
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("one two")) == "one two"


def test_char_round_trips_asterisk_and_saves(asterisk_texts, tmp_path):
    tok = CharTokenizer.train(asterisk_texts)
    for text in asterisk_texts:
        ids = tok.encode(text)
        assert BLANK not in ids
        assert tok.decode(ids) == text
    tok.save(tmp_path / "lang_char")
    again = load_tokenizer(tmp_path / "lang_char")
    assert again.symbols == tok.symbols
    assert (tmp_path / "lang_char" / "chars.txt").read_text().strip() == "".join(sorted(tok.chars()))
    assert (tmp_path / "lang_char" / "tokens.txt").read_text().split("\n")[:2] == ["<blank>", "|"]


def test_char_errors_name_the_problem():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"characters 'xz' are not in the char tokenizer"):
        tok.encode("zax")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([99])
    with pytest.raises(ValueError, match="must not contain whitespace"):
        CharTokenizer("a b")


def test_char_builds_from_registry_spec():
    tok = TOKENIZERS.build({"name": "char", "letters": "onetw"})
    assert tok.decode(tok.encode("one two")) == "one two"


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_trained_on_asterisk_round_trips(asterisk_texts, model_type, tmp_path):
    tok = SentencePieceTokenizer.train(asterisk_texts, vocab_size=150, model_type=model_type)
    assert tok.symbols[:2] == ["<blank>", "<unk>"]
    assert 40 < tok.vocab_size <= 150
    n_ids = n_chars = 0
    for text in asterisk_texts:
        ids = tok.encode(text)
        assert BLANK not in ids and 1 not in ids  # neither blank nor <unk>
        assert tok.decode(ids) == text
        n_ids, n_chars = n_ids + len(ids), n_chars + len(text)
    assert n_ids < 0.6 * n_chars  # sub-word units, not characters
    tok.save(tmp_path / "sp")
    again = load_tokenizer(tmp_path / "sp")
    assert [again.encode(t) for t in asterisk_texts[:50]] == [tok.encode(t) for t in asterisk_texts[:50]]
    spec = TOKENIZERS.build({"name": "sentencepiece", "model_file": str(tmp_path / "sp" / "sentencepiece.model")})
    assert spec.symbols == tok.symbols


def test_sentencepiece_spells_words_and_reports_unknown_characters(asterisk_texts):
    tok = SentencePieceTokenizer.train(asterisk_texts, vocab_size=100)
    assert "".join(tok.spell("goodbye")).replace("\u2581", "") == "goodbye"
    assert tok.spell("goodbye")[0].startswith("\u2581")
    with pytest.raises(ValueError, match=r"characters 'ж' are not in the sentencepiece model"):
        tok.encode("goodbye ж")
    assert normalize_text("Good-bye.") == "good bye" and tok.decode(tok.encode("Good-bye.")) == "good bye"


def test_sentencepiece_rejects_a_model_without_the_blank(tmp_path):
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["hello world"] * 20), model_writer=model,
                                   vocab_size=12, hard_vocab_limit=False, minloglevel=2)
    (tmp_path / "plain.model").write_bytes(model.getvalue())
    with pytest.raises(ValueError, match="id 0 must be '<blank>'"):
        SentencePieceTokenizer(str(tmp_path / "plain.model"))
