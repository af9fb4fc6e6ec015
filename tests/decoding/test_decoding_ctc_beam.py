"""CTC beam search: n-gram fusion moves hypotheses toward the LM, lexicon and lexicon-free."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from decoding_helpers import frames_to_log_probs, spell_frames, write_arpa
from speechssl2.data.corpora.asterisk import DEFAULT_TRANSCRIPTS, read_transcripts, spoken_text
from speechssl2.decoding.ctc import ctc_greedy
from speechssl2.decoding.ctc_beam import CTCBeamSearch, write_lexicon
from speechssl2.lm.ngram import build_ngram, find_kenlm, lm_corpus_lines
from speechssl2.tokenizers import CharTokenizer, SentencePieceTokenizer

TOK = CharTokenizer("eimn")
# "mine" by a nose: the first letter is m (0.55) or n (0.45), the rest is certain.
AMBIGUOUS = [{"m": 0.55, "n": 0.45}, {"-": .9}] + spell_frames(list("ine|"))


def _decode(decoder: CTCBeamSearch, frames) -> str:
    lp = frames_to_log_probs(TOK.symbols, frames)
    return decoder(lp, torch.tensor([lp.shape[1]]))[0][0].text


@pytest.fixture()
def lexicon(tmp_path: Path) -> str:
    write_lexicon(["nine", "mine"], TOK, tmp_path / "lexicon.txt")
    return str(tmp_path / "lexicon.txt")


def test_greedy_and_lm_free_beam_follow_the_acoustics(lexicon):
    lp = frames_to_log_probs(TOK.symbols, AMBIGUOUS)
    assert ctc_greedy(lp, torch.tensor([lp.shape[1]]), TOK.decode)[0].text == "mine"
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon), AMBIGUOUS) == "mine"
    assert _decode(CTCBeamSearch(TOK), AMBIGUOUS) == "mine"


def test_word_lm_fusion_picks_the_lm_favoured_word(lexicon, tmp_path):
    lm = str(write_arpa(tmp_path / "word.arpa", {"nine": -0.1, "mine": -2.0}))
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, lm=lm, lm_weight=1.0), AMBIGUOUS) == "nine"
    # the LM weight scales the fusion: a tiny weight leaves the acoustics in charge
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, lm=lm, lm_weight=0.01), AMBIGUOUS) == "mine"
    reverse = str(write_arpa(tmp_path / "reverse.arpa", {"nine": -2.0, "mine": -0.1}))
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, lm=reverse, lm_weight=1.0), AMBIGUOUS) == "mine"


def test_lexicon_free_token_lm_fusion(tmp_path):
    probs = {s: -0.3 for s in TOK.symbols[1:]}
    lm = str(write_arpa(tmp_path / "char.arpa", {**probs, "m": -3.0}))
    beam = CTCBeamSearch(TOK, lm=lm, lm_weight=1.0)
    assert _decode(beam, AMBIGUOUS) == "nine"
    # ids are the tokenizer's own encoding of the text (no flashlight silences left over)
    lp = frames_to_log_probs(TOK.symbols, AMBIGUOUS)
    assert list(beam(lp, torch.tensor([lp.shape[1]]))[0][0].tokens) == TOK.encode("nine")


def test_word_score_controls_insertions(lexicon):
    """A faint second word: dropped without bonus, kept with a word-insertion bonus."""
    faint = [{sym: 0.45, "-": 0.55} for sym in "nine|"]
    frames = spell_frames(list("nine|")) + faint
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, word_score=0.0), frames) == "nine"
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, word_score=3.0), frames) == "nine nine"
    assert _decode(CTCBeamSearch(TOK, lexicon=lexicon, word_score=-3.0), frames) == "nine"


def test_batch_with_padding_equals_one_by_one(lexicon, tmp_path):
    lm = str(write_arpa(tmp_path / "word.arpa", {"nine": -0.1, "mine": -2.0}))
    beam = CTCBeamSearch(TOK, lexicon=lexicon, lm=lm, lm_weight=1.0, nbest=2)
    long = frames_to_log_probs(TOK.symbols, spell_frames(list("mine|mine|")))
    short = frames_to_log_probs(TOK.symbols, AMBIGUOUS)
    padded = torch.cat([long, torch.nn.functional.pad(short, (0, 0, 0, long.shape[1] - short.shape[1]))])
    batch = beam(padded, torch.tensor([long.shape[1], short.shape[1]]))
    assert [h.text for h in batch[0]][0] == "mine mine"
    assert batch[1] == beam(short, torch.tensor([short.shape[1]]))[0]
    assert len(batch[1]) == 2 and batch[1][0].score >= batch[1][1].score


def test_sentencepiece_lexicon_search_reads_back_a_sentence(tmp_path):
    texts = [spoken_text(t) for t in read_transcripts(Path(DEFAULT_TRANSCRIPTS)).values()]
    sp = SentencePieceTokenizer.train(texts, vocab_size=120)
    sentence = "please enter your agent number"
    write_lexicon({w for t in texts for w in t.split()}, sp, tmp_path / "lexicon.txt")
    lp = frames_to_log_probs(sp.symbols, spell_frames([sp.symbols[i] for i in sp.encode(sentence)]))
    (hyp,) = CTCBeamSearch(sp, lexicon=str(tmp_path / "lexicon.txt"))(lp, torch.tensor([lp.shape[1]]))[0]
    assert hyp.text == sentence
    assert list(hyp.tokens) == sp.encode(sentence)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="lexicon file .*nope.txt does not exist"):
        CTCBeamSearch(TOK, lexicon=str(tmp_path / "nope.txt"))


@pytest.mark.skipif(find_kenlm() is None, reason="KenLM binaries absent: run tools/install_kenlm.sh")
def test_lmplz_char_lm_on_asterisk_fixes_an_ambiguous_letter(tmp_path):
    """A 5-gram over characters of the asterisk prompts turns 'pound mey' into 'pound key'."""
    texts = [spoken_text(t) for t in read_transcripts(Path(DEFAULT_TRANSCRIPTS)).values()]
    tok = CharTokenizer.train(texts)
    lm = build_ngram(lm_corpus_lines(texts, "token", tok), tmp_path / "lm", order=5)
    assert lm.name == "lm.bin" and (tmp_path / "lm" / "lm.arpa").read_text().startswith("\\data\\")
    frames = spell_frames(list("the|pound|")) + [{"m": 0.55, "k": 0.45}, {"-": 0.9}] + spell_frames(list("ey|"))
    lp = frames_to_log_probs(tok.symbols, frames)
    lengths = torch.tensor([lp.shape[1]])
    assert ctc_greedy(lp, lengths, tok.decode)[0].text == "the pound mey"
    assert CTCBeamSearch(tok, lm=str(lm), lm_weight=0.5)(lp, lengths)[0][0].text == "the pound key"
