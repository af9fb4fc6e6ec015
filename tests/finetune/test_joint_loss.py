"""Chunked joiner + RNN-T loss: the same loss and gradients as the whole-batch joint tensor."""
from __future__ import annotations

import pytest
import torch

from finetune_helpers import CHARS, NO_MASKS
from speechssl2.finetune.heads import RNNTLoss
from speechssl2.finetune.joint_loss import joint_rnnt_loss
from speechssl2.finetune.transducer import Joiner
from speechssl2.registry import MODELS


def problem(seed: int = 0):
    """5 utterances with unsorted frame and label counts (padding on both axes)."""
    torch.manual_seed(seed)
    joiner = Joiner(encoder_dim=6, predictor_dim=5, joint_dim=8, vocab_size=7)
    lengths, target_lens = torch.tensor([9, 4, 12, 7, 12]), torch.tensor([3, 1, 5, 0, 2])
    enc = torch.randn(5, 12, 6, requires_grad=True)  # (B, T, D)
    pred = torch.randn(5, 6, 5, requires_grad=True)  # (B, U + 1, H)
    targets = torch.randint(1, 7, (5, 5)) * (torch.arange(5)[None] < target_lens[:, None])
    return joiner, enc, pred, lengths, targets, target_lens


def loss_and_grads(chunk: int):
    joiner, enc, pred, lengths, targets, target_lens = problem()
    loss = joint_rnnt_loss(joiner, enc, pred, lengths, targets, target_lens, RNNTLoss(), chunk=chunk)
    (2.5 * loss).backward()  # a scaled loss (as with grad scaling) scales every gradient
    return loss.detach(), [enc.grad, pred.grad] + [p.grad for p in joiner.parameters()]


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_loss_has_the_unchunked_value_and_gradients(chunk):
    ref_loss, ref_grads = loss_and_grads(0)
    loss, grads = loss_and_grads(chunk)
    assert ref_loss.item() > 0
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
    assert len(grads) == 8 and all(g is not None and g.abs().sum() > 0 for g in ref_grads)
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-6)


def test_chunked_loss_without_grad_is_the_same_value():
    joiner, enc, pred, lengths, targets, target_lens = problem(1)
    with torch.no_grad():
        whole = joint_rnnt_loss(joiner, enc, pred, lengths, targets, target_lens, RNNTLoss())
        chunked = joint_rnnt_loss(joiner, enc, pred, lengths, targets, target_lens, RNNTLoss(), chunk=2)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


def test_transducer_model_loss_chunk_gives_the_same_parameter_gradients():
    spec = {"name": "transducer", "tokenizer": CHARS, "joint_dim": 16, "projection": False, "ctc_weight": 0.3,
            "encoder": {"upstream": {"name": "wav2vec2_tiny"}, **NO_MASKS}, "predictor": {"embed_dim": 8, "hidden_dim": 16}}
    batch = {"audio": 0.1 * torch.randn(3, 3200), "audio_lens": torch.tensor([3200, 2400, 2800]),
             "text": ["three", "one", "eight"], "ids": ["a", "b", "c"]}
    grads = []
    for chunk in (0, 2):
        torch.manual_seed(0)
        model = MODELS.build({**spec, "loss_chunk": chunk}).eval()
        out = model(batch)
        out.loss.backward()
        grads.append((out.loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (ref_loss, ref), (loss, chunked) = grads
    torch.testing.assert_close(loss, ref_loss)
    assert set(chunked) == set(ref) and any(n.startswith("joiner.") for n in ref)
    for name in ref:
        torch.testing.assert_close(chunked[name], ref[name], rtol=1e-5, atol=1e-6, msg=name)
