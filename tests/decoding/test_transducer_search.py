"""Transducer search: exact marginals with an unpruned beam, batching invariance, LM fusion."""
from __future__ import annotations

import math

import pytest
import torch
from torchaudio.functional import rnnt_loss

from speechssl2.decoding.transducer import beam_search, greedy_search
from speechssl2.finetune.transducer import Joiner, PredictionNetwork

VOCAB = 4


def tiny_transducer(seed: int = 0):
    torch.manual_seed(seed)
    predictor = PredictionNetwork(VOCAB, embed_dim=8, hidden_dim=8, num_layers=1, dropout=0.0).eval()
    return predictor, Joiner(encoder_dim=6, predictor_dim=8, joint_dim=8, vocab_size=VOCAB).eval()


def sequence_log_prob(predictor, joiner, enc: torch.Tensor, tokens) -> float:
    """log P(tokens | enc) summed over all alignments, by torchaudio's RNN-T loss."""
    targets = torch.tensor([list(tokens)], dtype=torch.long).reshape(1, len(tokens))
    pred, _ = predictor(torch.cat([torch.zeros(1, 1, dtype=torch.long), targets], dim=1))
    logits = joiner(enc[None], pred)
    nll = rnnt_loss(logits, targets.int(), torch.tensor([len(enc)], dtype=torch.int32),
                    torch.tensor([len(tokens)], dtype=torch.int32), blank=0, reduction="sum")
    return -float(nll.detach())


def test_unpruned_beam_scores_are_exact_sequence_probabilities():
    predictor, joiner = tiny_transducer()
    enc = torch.randn(3, 6) * 2  # (T, D)
    hyps = beam_search(predictor, joiner, enc, beam=10_000, max_symbols=6)
    assert len(hyps) > 20
    for hyp in hyps[:10]:
        assert hyp.score == pytest.approx(sequence_log_prob(predictor, joiner, enc, hyp.tokens), abs=1e-4)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_batched_greedy_equals_one_utterance_at_a_time():
    predictor, joiner = tiny_transducer(1)
    enc = torch.randn(3, 7, 6) * 2  # (B, T, D)
    lengths = torch.tensor([7, 4, 2])
    batched = greedy_search(predictor, joiner, enc, lengths)
    single = [greedy_search(predictor, joiner, enc[i : i + 1, : lengths[i]], lengths[i : i + 1])[0] for i in range(3)]
    assert batched == single
    assert any(len(h) > 0 for h in batched)


class PrefersThree:
    """A token LM that puts nearly all its mass on token 3 (and the sentence end)."""

    vocab_size = VOCAB

    def next_log_probs(self, prefixes):
        probs = torch.tensor([0.3, 0.001, 0.001, 0.698])
        return probs.log().expand(len(prefixes), VOCAB)


def test_lm_fusion_moves_the_best_hypothesis_towards_the_lm():
    predictor, joiner = tiny_transducer(2)
    enc = torch.randn(4, 6) * 2
    plain = beam_search(predictor, joiner, enc, beam=8)
    assert any(t in (1, 2) for t in plain[0].tokens)  # the case is only informative if this holds
    fused = beam_search(predictor, joiner, enc, beam=8, lm=PrefersThree(), lm_weight=2.0)
    assert all(t == 3 for t in fused[0].tokens)
    lm_part = 2.0 * (len(fused[0].tokens) * math.log(0.698) + math.log(0.3))
    am_part = sequence_log_prob(predictor, joiner, enc, fused[0].tokens)
    assert fused[0].score <= am_part + lm_part + 1e-4  # a beam sums a subset of the alignments


def test_lm_with_another_vocabulary_is_rejected():
    predictor, joiner = tiny_transducer()
    lm = PrefersThree()
    lm.vocab_size = 7
    with pytest.raises(ValueError, match="LM vocabulary"):
        beam_search(predictor, joiner, torch.randn(2, 6), lm=lm, lm_weight=0.5)
