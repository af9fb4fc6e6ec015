"""N-gram sentence scores for n-best rescoring: exact log-probabilities of a hand-written ARPA model."""
from __future__ import annotations

import math

import pytest

from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.decoding.rescore import rescore_nbest
from speechssl2.lm.ngram_score import NgramSentenceLM, lexicon_words

UNIGRAMS = [("-99", "<s>", "-0.30103"), ("-0.60206", "</s>"), ("-0.60206", "one", "-0.30103"),
            ("-0.60206", "two", "-0.30103"), ("-1.0", "<unk>")]
BIGRAMS = [("-0.1", "<s> one"), ("-0.2", "one two"), ("-0.3", "two </s>"), ("-0.4", "<s> two")]
ARPA = "\n".join(["\\data\\", "ngram 1=5", "ngram 2=4", "", "\\1-grams:", *("\t".join(u) for u in UNIGRAMS), "",
                   "\\2-grams:", *("\t".join(b) for b in BIGRAMS), "", "\\end\\", ""])


@pytest.fixture
def lm(tmp_path):
    (tmp_path / "lm.arpa").write_text(ARPA)
    return NgramSentenceLM(tmp_path / "lm.arpa", ["one", "two"])


def test_sentence_scores_follow_the_bigrams_and_backoffs(lm):
    ln10 = math.log(10.0)
    scores = lm.score(["one two", "two one", "three"]).tolist()
    assert scores[0] == pytest.approx((-0.1 - 0.2 - 0.3) * ln10, abs=1e-5)  # every bigram seen
    # two one </s>: P(two|<s>), then backoff(two) + P(one), backoff(one) + P(</s>)
    assert scores[1] == pytest.approx((-0.4 - 0.30103 - 0.60206 - 0.30103 - 0.60206) * ln10, abs=1e-5)
    # an unknown word is <unk>: backoff(<s>) + P(<unk>), then P(</s>) (no <unk> backoff)
    assert scores[2] == pytest.approx((-0.30103 - 1.0 - 0.60206) * ln10, abs=1e-5)


def test_rescoring_with_the_ngram_reranks_an_nbest_list(lm):
    nbest = [Hypothesis((1,), -1.0, "two one"), Hypothesis((2,), -1.5, "one two")]
    (ranked,) = rescore_nbest([nbest], lm, lm_weight=1.0)
    assert ranked[0].text == "one two"  # 1.5 worse acoustically, 3.7 nats better under the LM
    assert rescore_nbest([nbest], lm, lm_weight=0.0)[0][0].text == "two one"


def test_missing_lm_file_is_named_and_lexicon_words_are_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="no LM file .*lm.bin"):
        NgramSentenceLM(tmp_path / "lm.bin", ["one"])
    (tmp_path / "lexicon.txt").write_text("one o n e |\ntwo t w o |\n")
    assert lexicon_words(tmp_path / "lexicon.txt") == ["one", "two"]
