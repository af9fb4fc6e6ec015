"""Contrastive task: distractor sampling and logits against a direct loop reference."""
import torch
import torch.nn.functional as F

from speechssl2.objectives.contrastive import contrastive_accuracy, contrastive_logits, sample_negatives


def _mask(rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_negatives_are_other_masked_steps_of_the_same_utterance():
    mask = _mask([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    utt = mask.nonzero(as_tuple=True)[0]  # (N,)
    index, valid = sample_negatives(mask, 400, torch.Generator().manual_seed(0))
    assert index.shape == valid.shape == (7, 400)
    steps = torch.arange(7)[:, None]
    assert not ((index == steps) & valid).any()  # never the positive itself
    assert torch.equal(utt[index][valid], utt[:, None].expand(-1, 400)[valid])  # same utterance
    assert not valid[6].any() and valid[:6].all()  # the lone masked step of utterance 2 has none
    # uniform over the others: each of the 3 other steps of utterance 0 drawn ~1/3 of the time
    counts = torch.bincount(index[0], minlength=7)[:4].float() / 400
    assert counts[0] == 0 and ((counts[1:] - 1 / 3).abs() < 0.08).all()


def _loop_reference(context, positives, negatives, valid, kappa):
    rows = []
    for i in range(context.shape[0]):
        row = [torch.dot(context[i], positives[i]) / (context[i].norm() * positives[i].norm()) / kappa]
        for k in range(negatives.shape[1]):
            if not valid[i, k] or torch.equal(negatives[i, k], positives[i]):
                row.append(torch.tensor(float("-inf")))
            else:
                cos = torch.dot(context[i], negatives[i, k]) / (context[i].norm() * negatives[i, k].norm())
                row.append(cos / kappa)
        rows.append(torch.stack(row))
    return torch.stack(rows)


def test_contrastive_logits_and_loss_match_direct_loop():
    gen = torch.Generator().manual_seed(1)
    mask = _mask([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0]])
    n, feat = int(mask.sum()), 4
    context = torch.randn(n, feat, generator=gen)
    positives = torch.randn(n, feat, generator=gen)
    positives[3] = positives[1]  # a distractor that equals a positive must be masked out
    index, valid = sample_negatives(mask, 6, gen)
    logits = contrastive_logits(context, positives, index, valid, 0.1)
    reference = _loop_reference(context, positives, positives[index], valid, 0.1)
    torch.testing.assert_close(logits, reference)
    assert torch.isinf(logits[1:4]).any()  # the duplicate was drawn (seeded) and masked
    loss = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))
    ref_loss = torch.stack([-torch.log_softmax(r, 0)[0] for r in reference]).mean()
    torch.testing.assert_close(loss, ref_loss)


def test_accuracy_counts_strict_wins():
    logits = torch.tensor([[2.0, 1.0, float("-inf")], [1.0, 1.0, 0.0], [0.0, 3.0, -1.0]])
    assert abs(contrastive_accuracy(logits) - 1 / 3) < 1e-6
