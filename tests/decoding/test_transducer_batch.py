"""Batched transducer beam search equals the one-utterance search (hypotheses and scores), LM fusion included."""
from __future__ import annotations

import pytest
import torch

from speechssl2.decoding.transducer import beam_search
from speechssl2.decoding.transducer_batch import batch_beam_search
from speechssl2.finetune.transducer import Joiner, PredictionNetwork


def transducer(vocab: int, seed: int, layers: int = 1):
    torch.manual_seed(seed)
    predictor = PredictionNetwork(vocab, embed_dim=8, hidden_dim=12, num_layers=layers, dropout=0.0).eval()
    joiner = Joiner(encoder_dim=6, predictor_dim=12, joint_dim=10, vocab_size=vocab).eval()
    with torch.no_grad():
        joiner.output.weight *= 4  # peaky, as a trained model: long hypotheses, repeated tokens
    return predictor, joiner


class RandomTokenLM:
    """A fixed random next-token distribution per (last token, prefix length): prefix-dependent, cheap."""

    def __init__(self, vocab: int, seed: int) -> None:
        self.vocab_size = vocab
        self.table = torch.randn(vocab + 1, 64, vocab, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)

    def next_log_probs(self, prefixes):
        return torch.stack([self.table[p[-1] if p else self.vocab_size, len(p) % 64] for p in prefixes])


def assert_same(batched, single):
    assert [h.tokens for h in batched] == [h.tokens for h in single]
    assert [h.score for h in batched] == pytest.approx([h.score for h in single], abs=1e-5)


CASES = [  # (vocab, beam, max_symbols, layers, scale): peaky encoders (scale 3) emit long hypotheses
    (5, 4, 4, 1, 3.0), (5, 8, 2, 2, 3.0), (12, 4, 4, 1, 1.0), (12, 8, 4, 1, 3.0), (30, 3, 2, 1, 6.0), (4, 2, 4, 1, 3.0),
]


@pytest.mark.parametrize("vocab,beam,max_symbols,layers,scale", CASES)
@pytest.mark.parametrize("fused", [False, True])
def test_batched_beam_equals_one_utterance_search(vocab, beam, max_symbols, layers, scale, fused):
    predictor, joiner = transducer(vocab, seed=vocab + beam, layers=layers)
    gen = torch.Generator().manual_seed(beam * 7 + max_symbols)
    enc = torch.randn(6, 15, 6, generator=gen) * scale  # (B, T, D)
    lengths = torch.tensor([15, 9, 1, 15, 0, 4])  # unsorted, one empty utterance
    lm = RandomTokenLM(vocab, seed=beam) if fused else None
    batched = batch_beam_search(predictor, joiner, enc, lengths, beam=beam, max_symbols=max_symbols, lm=lm,
                                lm_weight=0.7)
    for b in range(len(lengths)):
        single = beam_search(predictor, joiner, enc[b, : lengths[b]], beam=beam, max_symbols=max_symbols, lm=lm,
                             lm_weight=0.7)
        assert_same(batched[b], single)
    plain = batched if lm is None else batch_beam_search(predictor, joiner, enc, lengths, beam=beam,
                                                         max_symbols=max_symbols)
    assert max(len(h.tokens) for hyps in plain for h in hyps) >= 3  # multi-token hypotheses are exercised
    if lm is not None:
        assert plain != batched  # ... and so is the LM
    assert batched[4] == [h for h in batched[4] if h.tokens == ()] and len(batched[4]) == 1


def test_merged_alignments_are_summed_like_the_one_utterance_search():
    """Many emissions per frame and a wide beam make equal token sequences from different steps meet."""
    predictor, joiner = transducer(3, seed=5)
    enc = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(1)) * 0.3  # flat: every path is plausible
    lengths = torch.tensor([6, 5])
    batched = batch_beam_search(predictor, joiner, enc, lengths, beam=16, max_symbols=3)
    for b in range(2):
        assert_same(batched[b], beam_search(predictor, joiner, enc[b, : lengths[b]], beam=16, max_symbols=3))
    assert len(batched[0]) == 16
