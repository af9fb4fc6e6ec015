"""Transducer fine-tuning: RNN-T loss and gradient against a float64 reference, overfit on FSDD."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchaudio.functional import rnnt_loss

from finetune_helpers import CHARS, NO_MASKS, fsdd_batch, overfit
from speechssl2.finetune.tokenizer import BLANK, encode_batch
from speechssl2.finetune.transducer import Joiner, ProjectionBlock
from speechssl2.registry import LOSSES, MODELS


def reference_rnnt_nll(logits: torch.Tensor, targets: list, frames: int) -> torch.Tensor:
    """-log P(targets) by the forward algorithm over the (T, U + 1) lattice, any dtype, autograd-able.

    alpha[t, u] = logaddexp(alpha[t-1, u] + blank[t-1, u], alpha[t, u-1] + label[t, u-1]);
    P = alpha[T-1, U] + blank[T-1, U]. ``logits`` is (T, U + 1, V).
    """
    logp = logits.log_softmax(-1)
    num_labels = len(targets)
    alpha = [[None] * (num_labels + 1) for _ in range(frames)]
    for t in range(frames):
        for u in range(num_labels + 1):
            paths = []
            if t == 0 and u == 0:
                paths.append(logits.new_zeros(()))
            if t > 0:
                paths.append(alpha[t - 1][u] + logp[t - 1, u, 0])
            if u > 0:
                paths.append(alpha[t][u - 1] + logp[t, u - 1, targets[u - 1]])
            alpha[t][u] = torch.logsumexp(torch.stack(paths), dim=0)
    return -(alpha[frames - 1][num_labels] + logp[frames - 1, num_labels, 0])


def test_rnnt_loss_and_gradient_match_a_float64_reference():
    torch.manual_seed(0)
    frames, targets, vocab = [5, 3], [[1, 2, 2], [3]], 4
    logits = torch.randn(2, 5, 4, vocab, dtype=torch.float64, requires_grad=True)  # (B, T, U + 1, V)
    padded = torch.tensor([[1, 2, 2], [3, 0, 0]], dtype=torch.int32)
    ours = rnnt_loss(logits.float(), padded, torch.tensor(frames, dtype=torch.int32),
                     torch.tensor([3, 1], dtype=torch.int32), blank=0, reduction="sum")
    (grad,) = torch.autograd.grad(ours, logits)
    ref = sum(reference_rnnt_nll(logits[b, : frames[b], : len(targets[b]) + 1], targets[b], frames[b])
              for b in range(2))
    (ref_grad,) = torch.autograd.grad(ref, logits)
    assert abs(float(ours.detach()) - float(ref.detach())) < 1e-4
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-4)


def test_registered_rnnt_loss_is_the_reference_mean_over_utterances():
    """Our criterion (not torchaudio called directly): B=2, T=3, U=2, V=4 with padding in both axes."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 3, 4)  # (B, T, U + 1, V) float32, as the model passes them
    frames, targets = [3, 2], [[1, 3], [2]]
    loss = LOSSES.build({"name": "rnnt"})(logits, torch.tensor(frames), torch.tensor([[1, 3], [2, 0]]),
                                          torch.tensor([2, 1]))
    ref = sum(reference_rnnt_nll(logits[b, : frames[b], : len(targets[b]) + 1].double(), targets[b], frames[b])
              for b in range(2)) / 2
    assert abs(loss.item() - ref.item()) < 1e-5, (loss.item(), ref.item())


def test_transducer_model_loss_is_the_reference_on_its_own_logits():
    """TransducerModel.forward: rnnt term = reference on the joiner's logits, ctc term = F.ctc_loss on
    the CTC head's logits, loss = rnnt + ctc_weight * ctc (eval mode: no dropout, no masks)."""
    torch.manual_seed(0)
    model = MODELS.build({
        "name": "transducer", "tokenizer": CHARS, "joint_dim": 16, "projection": True, "ctc_weight": 0.3,
        "encoder": {"upstream": {"name": "wav2vec2_tiny"}, **NO_MASKS},
        "predictor": {"embed_dim": 8, "hidden_dim": 16},
    }).eval()
    audio, audio_lens = 0.1 * torch.randn(2, 3200), torch.tensor([3200, 2400])  # 0.2 s and 0.15 s
    batch = {"audio": audio, "audio_lens": audio_lens, "text": ["three", "one"], "ids": ["a", "b"]}
    with torch.no_grad():
        out = model(batch)
        x, lengths = model.encode(audio, audio_lens)  # (B, T, D), (B,)
        targets, target_lens = encode_batch(model.tokenizer, batch["text"], batch["ids"])
        sos = torch.full((2, 1), BLANK, dtype=torch.long)
        pred, _ = model.predictor(torch.cat([sos, targets], dim=1))  # (B, U + 1, H)
        rnnt_ref = ctc_ref = 0.0
        for b in range(2):
            t, u = int(lengths[b]), int(target_lens[b])
            seq = targets[b, :u].tolist()
            logits = model.joiner(x[b : b + 1, :t], pred[b : b + 1, : u + 1])[0].double()  # (T, U + 1, V)
            rnnt_ref += reference_rnnt_nll(logits, seq, t).item() / 2
            head = model.ctc_head.proj
            log_probs = F.linear(x[b, :t], head.weight, head.bias).double().log_softmax(-1)  # (T, V)
            ctc_ref += F.ctc_loss(log_probs, torch.tensor(seq), [t], [u], reduction="sum").item() / 2
    assert lengths.tolist() == [9, 7] and target_lens[1] < target_lens[0]  # both padded axes exercised
    assert out.terms["rnnt"].item() == pytest.approx(rnnt_ref, rel=1e-5)
    assert out.terms["ctc"].item() == pytest.approx(ctc_ref, rel=1e-5)
    assert out.loss.item() == pytest.approx(rnnt_ref + 0.3 * ctc_ref, rel=1e-5)


def test_joiner_and_reference_loss_pass_gradcheck_in_float64():
    torch.manual_seed(0)
    joiner = Joiner(encoder_dim=3, predictor_dim=2, joint_dim=4, vocab_size=3).double()
    enc = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    pred = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)

    def nll(enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return reference_rnnt_nll(joiner(enc, pred)[0], [1, 2], frames=3)

    assert torch.autograd.gradcheck(nll, (enc, pred), eps=1e-6, atol=1e-6)


def test_projection_block_ignores_padding_frames():
    torch.manual_seed(0)
    block = ProjectionBlock(4).train()
    x = torch.randn(2, 5, 4)
    pad = torch.tensor([[False] * 5, [False, False, True, True, True]])
    garbage = x.clone()
    garbage[pad] = 1e3
    torch.testing.assert_close(block(x, pad), block(garbage, pad))
    assert (block(x, pad)[pad] == 0).all()


@pytest.mark.slow
def test_transducer_overfits_fsdd_and_greedy_search_recovers_the_words(fsdd_dir):
    batch = fsdd_batch(fsdd_dir, ["0_jackson_5", "1_nicolas_6", "2_theo_7", "3_george_8"])
    torch.manual_seed(0)
    model = MODELS.build({
        "name": "transducer", "tokenizer": CHARS, "joint_dim": 64, "projection": True, "ctc_weight": 0.3,
        "encoder": {"upstream": {"name": "wav2vec2_tiny", "feature_dropout": 0.0}, **NO_MASKS},
        "predictor": {"embed_dim": 32, "hidden_dim": 64, "dropout": 0.0},
    })
    losses = overfit(model, batch, steps=300)
    out = model(batch)
    assert set(out.terms) == {"rnnt", "ctc"}
    assert losses[-1] < 0.05 * losses[0], losses[::20]
    assert model.greedy_search(batch["audio"], batch["audio_lens"]) == ["zero", "one", "two", "three"]
    nbests = model.beam_search(batch["audio"], batch["audio_lens"], beam=3)
    assert [nbest[0].text for nbest in nbests] == ["zero", "one", "two", "three"]
