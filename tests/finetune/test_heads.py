"""Registered heads and losses: the CTC and RNN-T criteria against direct computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from speechssl2.registry import HEADS, LOSSES


def test_ctc_loss_is_the_per_utterance_sum_averaged_over_utterances():
    torch.manual_seed(0)
    log_probs = torch.randn(2, 6, 4).log_softmax(-1)  # (B, T, V)
    lengths, targets, target_lens = torch.tensor([6, 4]), torch.tensor([[1, 2, 3], [2, 2, 0]]), torch.tensor([3, 2])
    ours = LOSSES.build({"name": "ctc"})(log_probs, lengths, targets, target_lens)
    each = [F.ctc_loss(log_probs[i, : lengths[i], None], targets[i : i + 1, : target_lens[i]], lengths[i : i + 1],
                       target_lens[i : i + 1], reduction="sum") for i in range(2)]
    assert torch.allclose(ours, (each[0] + each[1]) / 2, atol=1e-6)


def test_ctc_loss_gives_zero_for_an_infeasible_utterance():
    log_probs = torch.randn(1, 2, 4).log_softmax(-1)  # 2 frames cannot emit 3 tokens
    loss = LOSSES.build({"name": "ctc"})(log_probs, torch.tensor([2]), torch.tensor([[1, 2, 3]]), torch.tensor([3]))
    assert loss.item() == 0.0


def test_rnnt_loss_of_a_one_frame_one_token_case_is_its_single_path():
    # T = 1, U = 1: the only path emits the token at t = 0, then blank at (t = 0, u = 1).
    logits = torch.randn(1, 1, 2, 3)
    lp = logits.log_softmax(-1)
    expected = -(lp[0, 0, 0, 2] + lp[0, 0, 1, 0])
    loss = LOSSES.build({"name": "rnnt"})(logits, torch.tensor([1]), torch.tensor([[2]]), torch.tensor([1]))
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-5)


def test_linear_head_is_x_times_w_plus_b_and_its_ctc_loss_is_f_ctc_loss_on_those_logits():
    torch.manual_seed(0)
    head = HEADS.build({"name": "linear", "dropout": 0.5}, in_dim=8, out_dim=5).eval()  # eval: no dropout
    x = torch.randn(2, 6, 8)  # (B, T, D)
    w, b = head.proj.weight, head.proj.bias  # (V, D), (V,)
    by_hand = torch.einsum("btd,vd->btv", x, w) + b  # (B, T, V)
    logits = head(x)
    assert logits.shape == (2, 6, 5)
    torch.testing.assert_close(logits, by_hand)
    lengths, targets, target_lens = torch.tensor([6, 4]), torch.tensor([[1, 2, 3], [4, 4, 0]]), torch.tensor([3, 2])
    loss = LOSSES.build({"name": "ctc"})(logits.log_softmax(-1), lengths, targets, target_lens)
    expected = F.ctc_loss(by_hand.log_softmax(-1).transpose(0, 1), targets, lengths, target_lens, reduction="sum") / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    head.train()
    torch.manual_seed(1)
    dropped = head(x)
    torch.manual_seed(1)  # the same draw: dropout 0.5 on the input, then the projection
    torch.testing.assert_close(dropped, F.linear(F.dropout(x, 0.5, training=True), w, b))
