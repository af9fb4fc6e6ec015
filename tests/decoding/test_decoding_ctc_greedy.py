"""CTC greedy decoding of known toy alignments, and its consistency with the CTC loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from decoding_helpers import frames_to_log_probs, spell_frames
from speechssl2.decoding.ctc import collapse, ctc_greedy, ctc_greedy_ids
from speechssl2.tokenizers import CharTokenizer

SYMS = CharTokenizer("abn").symbols  # <blank> | a b n


@pytest.mark.parametrize(
    "path, labels",
    [
        ([1, 1, 0, 1, 2, 2, 0], [1, 1, 2]),  # a blank separates a repeated label
        ([0, 0, 0], []),
        ([3, 3, 3, 3], [3]),  # repeats merge
        ([0, 2, 0, 2, 2, 0, 3], [2, 2, 3]),
        ([], []),
    ],
)
def test_collapse(path, labels):
    assert collapse(path) == labels


def test_greedy_reads_repeats_and_blanks():
    path = "b b a n n a a n - a | a n - n n a |".split()  # repeats merge; "-" keeps "n n" apart
    frames = [{sym: 0.9} for sym in path]
    lp = frames_to_log_probs(SYMS, frames)
    tok = CharTokenizer("abn")
    (hyp,) = ctc_greedy(lp, torch.tensor([lp.shape[1]]), tok.decode)
    assert hyp.text == "banana anna"
    assert list(hyp.tokens) == tok.encode("banana anna")
    assert hyp.score == pytest.approx(float(lp[0].max(dim=-1).values.sum()), abs=1e-5)


def test_greedy_ignores_frames_beyond_each_length():
    a = frames_to_log_probs(SYMS, spell_frames(["a", "b"]))  # (1, 4, V): a - b -
    b = frames_to_log_probs(SYMS, spell_frames(["n"]) + [{"a": .9}, {"b": .9}])  # valid: n -, then padding
    lp = torch.cat([a, b])  # (2, 4, V)
    lengths = torch.tensor([4, 2])
    assert ctc_greedy_ids(lp, lengths) == [[2, 3], [4]]
    assert ctc_greedy_ids(lp, torch.tensor([4, 4]))[1] == [4, 2, 3]
    scores = [h.score for h in ctc_greedy(lp, lengths)]
    assert scores[1] == pytest.approx(float(lp[1, :2].max(dim=-1).values.sum()), abs=1e-5)


def test_ctc_loss_agrees_with_the_greedy_path():
    """The greedy labels have the lowest CTC loss, bounded by minus the best path's log-prob."""
    frames = [{"a": .7}, {"a": .6}, {"-": .8}, {"b": .7}, {"n": .3, "b": .5}, {"-": .9}]
    lp = frames_to_log_probs(SYMS, frames)
    lengths = torch.tensor([lp.shape[1]])
    (hyp,) = ctc_greedy(lp, lengths)
    assert list(hyp.tokens) == [2, 3]

    def loss(labels):
        return float(F.ctc_loss(lp.transpose(0, 1), torch.tensor([labels]), lengths, torch.tensor([len(labels)]),
                                blank=0, reduction="sum"))

    best = loss(list(hyp.tokens))
    assert best <= -hyp.score + 1e-5  # loss sums over every path, greedy is one of them
    for other in ([2], [3], [2, 2, 3], [2, 4], [4, 3], [2, 3, 3]):
        assert loss(other) > best + 0.5


def test_bad_shapes_are_errors():
    lp = torch.zeros(2, 5, 4)
    with pytest.raises(ValueError, match=r"log-probs \(B, T, V\)"):
        ctc_greedy_ids(lp[0], torch.tensor([5]))
    with pytest.raises(ValueError, match="do not match batch size 2"):
        ctc_greedy_ids(lp, torch.tensor([5]))
    with pytest.raises(ValueError, match=r"outside \[0, T=5\]"):
        ctc_greedy_ids(lp, torch.tensor([5, 6]))
