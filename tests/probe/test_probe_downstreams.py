"""Downstream models: padding invariance, registry build, metrics on hand-checked examples, bad labels."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from speechssl2.probe.downstreams import CTCRecognizer, UtteranceClassifier, masked_mean
from speechssl2.registry import DOWNSTREAMS, RegistryError

DIGITS = ["zero", "one", "two", "three"]


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [1e6]], [[2.0], [4.0], [6.0]]])  # (B=2, T=3, D=1)
    assert masked_mean(x, torch.tensor([2, 3])).flatten().tolist() == [2.0, 4.0]


@pytest.mark.parametrize("spec", [{"name": "utterance_classifier", "hidden_dim": 16},
                                  {"name": "ctc_asr", "hidden_dim": 8, "num_layers": 2}])
def test_an_utterance_alone_equals_it_in_a_padded_batch(spec):
    torch.manual_seed(0)
    model = DOWNSTREAMS.build(spec, input_dim=6, labels=DIGITS).eval()
    x = torch.randn(2, 9, 6)  # (B, T, D)
    lengths = torch.tensor([5, 9])
    x[0, 5:] = 100.0  # garbage in the padding must not leak into the first utterance
    out = model.logits if isinstance(model, UtteranceClassifier) else model.log_probs
    batched = out(x, lengths)
    alone = out(x[:1, :5], lengths[:1])
    torch.testing.assert_close(batched[:1, :5] if batched.dim() == 3 else batched[:1], alone, rtol=1e-5, atol=1e-5)


def test_vocabularies_come_from_the_training_labels():
    clf = DOWNSTREAMS.build({"name": "utterance_classifier"}, input_dim=4, labels=["b", "a", "b", "c"])
    assert clf.classes == ["a", "b", "c"] and clf.out.out_features == 3
    asr = DOWNSTREAMS.build({"name": "ctc_asr"}, input_dim=4, labels=DIGITS)
    assert asr.tokenizer.symbols == ["<blank>", "|", *sorted(set("zeroonetwothree"))]
    with pytest.raises(ValueError, match="at least 2 classes"):
        UtteranceClassifier(4, ["a", "a"])
    with pytest.raises(RegistryError, match="unknown argument 'pooling'"):
        DOWNSTREAMS.build({"name": "utterance_classifier", "pooling": "max"}, input_dim=4, labels=DIGITS)


def test_scores_on_hand_checked_examples():
    assert UtteranceClassifier.score(["a", "b", "c", "a"], ["a", "c", "c", "b"]) == 50.0
    # "one two" -> "one": 1 deletion; "three" -> "three four": 1 insertion; 2 errors / 3 words
    assert CTCRecognizer.score(["one two", "three"], ["one", "three four"]) == pytest.approx(200 / 3)
    assert CTCRecognizer.score(["one"], ["two"]) == 100.0


def test_losses_are_finite_and_unknown_classes_are_named():
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 7, 4), torch.tensor([7, 4])
    clf = UtteranceClassifier(4, ["a", "b"])
    assert torch.isfinite(clf.loss(x, lengths, ["a", "b"], ["u1", "u2"]))
    with pytest.raises(ValueError, match=r"u2 \('z'\)"):
        clf.loss(x, lengths, ["a", "z"], ["u1", "u2"])
    asr = CTCRecognizer(4, DIGITS, hidden_dim=8)
    assert torch.isfinite(asr.loss(x, lengths, ["one", "two"], ["u1", "u2"]))
    with pytest.raises(ValueError, match="utterance 'u2': cannot tokenize"):
        asr.loss(x, lengths, ["one", "nine"], ["u1", "u2"])


def test_classifier_loss_is_cross_entropy_of_hand_computed_logits():
    torch.manual_seed(0)
    clf = UtteranceClassifier(4, ["a", "b", "c"], hidden_dim=5).eval()  # eval: no dropout
    x, lengths = torch.randn(2, 7, 4), torch.tensor([7, 4])
    proj, out = clf.frame_proj[0], clf.out
    logits = []
    for i in range(2):
        pooled = torch.relu(x[i, : lengths[i]] @ proj.weight.T + proj.bias).mean(0)  # (H,) over valid frames
        logits.append(pooled @ out.weight.T + out.bias)  # (C,)
    expected = F.cross_entropy(torch.stack(logits), torch.tensor([2, 0]))  # "c", "a"
    loss = clf.loss(x, lengths, ["c", "a"], ["u1", "u2"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ctc_recognizer_loss_is_f_ctc_loss_of_hand_computed_log_probs():
    """Each utterance through the BiLSTM alone (no packing), the head's Linear by hand, F.ctc_loss
    summed over utterances and divided by B."""
    torch.manual_seed(0)
    asr = CTCRecognizer(4, DIGITS, hidden_dim=6).eval()  # eval: no dropout
    x, lengths = torch.randn(2, 9, 4), torch.tensor([9, 6])
    labels = ["three", "one"]
    proj = asr.out.proj
    total = 0.0
    for i, label in enumerate(labels):
        h, _ = asr.lstm(x[i : i + 1, : lengths[i]])  # (1, T_i, 2H)
        log_probs = (h[0] @ proj.weight.T + proj.bias).log_softmax(-1)  # (T_i, V)
        target = torch.tensor([asr.tokenizer.symbols.index(c) for c in [*label, "|"]])  # word, then boundary
        total += F.ctc_loss(log_probs, target, [int(lengths[i])], [len(target)], reduction="sum")
    loss = asr.loss(x, lengths, labels, ["u1", "u2"])
    assert loss.item() == pytest.approx(total.item() / 2, rel=1e-5)
