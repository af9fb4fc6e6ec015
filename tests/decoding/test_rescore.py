"""N-best rescoring with the Transformer LM trained on real text (asterisk prompts)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lm"))
from lm_helpers import asterisk_sentences, char_spec, train_lm  # noqa: E402

from speechssl2.decoding.hypothesis import Hypothesis  # noqa: E402
from speechssl2.decoding.rescore import rescore_nbest  # noqa: E402

RIGHT = "please enter your password followed by the pound key"
WRONG = "please entar your passwerd fullowed by the pound kay"  # what a weak acoustic model might prefer


@pytest.mark.slow
def test_rescoring_prefers_the_lm_favoured_hypothesis():
    sentences = asterisk_sentences()
    lm = train_lm(sentences["train"], 100, char_spec(sentences["train"] + sentences["heldout"]), batch_size=16)
    right_lm, wrong_lm = lm.score([RIGHT, WRONG]).tolist()
    assert right_lm > wrong_lm + 3.0  # the trained LM knows the prompt's spelling
    nbests = [
        [Hypothesis((), -10.0, WRONG), Hypothesis((), -12.0, RIGHT)],
        [Hypothesis((), -3.0, "goodbye")],
    ]
    plain = rescore_nbest(nbests, lm, lm_weight=0.0)
    assert [r.text for r in plain[0]] == [WRONG, RIGHT]
    fused = rescore_nbest(nbests, lm, lm_weight=1.0, word_bonus=0.5, batch_size=2)  # batches span utterances
    best = fused[0][0]
    assert best.text == RIGHT
    assert best.lm == pytest.approx(right_lm, abs=1e-4)
    assert best.total == pytest.approx(-12.0 + right_lm + 0.5 * len(RIGHT.split()), abs=1e-4)
    assert [r.text for r in fused[1]] == ["goodbye"]
