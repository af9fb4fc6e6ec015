"""Transformer LM: perplexity on held-out real text falls with training, scores are consistent."""
from __future__ import annotations

import pytest
import torch

from lm_helpers import TINY_LM, asterisk_sentences, char_spec, perplexity, train_lm
from speechssl2.registry import MODELS


@pytest.fixture(scope="module")
def text():
    sentences = asterisk_sentences()
    return sentences, char_spec(sentences["train"] + sentences["heldout"])


@pytest.mark.slow
def test_heldout_perplexity_falls_on_asterisk_prompts(text):
    sentences, spec = text
    untrained = perplexity(train_lm(sentences["train"], 0, spec), sentences["heldout"])
    trained = perplexity(train_lm(sentences["train"], 100, spec, batch_size=16), sentences["heldout"])
    assert untrained > 30  # at least the vocabulary size (37): a random LM is no better than uniform
    assert trained < 15 and trained < untrained / 5, (untrained, trained)


def test_next_token_log_probs_add_up_to_the_sequence_score(text):
    _, spec = text
    torch.manual_seed(0)
    lm = MODELS.build({"name": "transformer_lm", "tokenizer": spec, **TINY_LM}).eval()
    ids = lm.tokenizer.encode("press one")
    step_sum = sum(float(lm.next_log_probs([ids[:i]])[0, tok]) for i, tok in enumerate(ids + [0]))
    assert step_sum == pytest.approx(float(lm.score(["press one"])[0]), abs=1e-4)
    batched = lm.next_log_probs([ids[:3], ids[:1], []])  # ragged prefixes in one batch
    for row, prefix in zip(batched, [ids[:3], ids[:1], []]):
        torch.testing.assert_close(row, lm.next_log_probs([prefix])[0], atol=1e-5, rtol=0)


def test_lm_is_causal(text):
    _, spec = text
    torch.manual_seed(0)
    lm = MODELS.build({"name": "transformer_lm", "tokenizer": spec, **TINY_LM}).eval()
    a, b = lm.tokenizer.encode("press one"), lm.tokenizer.encode("press two")
    inputs = torch.tensor([[0] + a, [0] + b])
    logits = lm.logits(inputs, torch.zeros_like(inputs, dtype=torch.bool))
    same = 1 + 6  # "<s> press |" is shared
    torch.testing.assert_close(logits[0, :same], logits[1, :same], atol=1e-5, rtol=0)
    assert not torch.allclose(logits[0, same:], logits[1, same:])


def test_sentence_outside_the_tokenizer_is_named(text):
    _, spec = text
    lm = MODELS.build({"name": "transformer_lm", "tokenizer": spec, **TINY_LM})
    with pytest.raises(ValueError, match="utt7.*cannot tokenize"):
        lm({"text": ["press one", "prëss €"], "ids": ["utt6", "utt7"]})
