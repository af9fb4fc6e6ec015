"""wav2vec 2.0 objective: terms against a reference assembled from the pure pieces."""
import math

import pytest
import torch
import torch.nn.functional as F

from speechssl2.interfaces import UpstreamOutput
from speechssl2.objectives.contrastive import contrastive_logits, sample_negatives
from speechssl2.registry import OBJECTIVES


def _setup():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([20, 14, 3])
    padding = torch.arange(20)[None, :] >= lengths[:, None]
    mask = (torch.rand(3, 20, generator=gen) < 0.5) & ~padding
    hidden = [torch.randn(3, 20, 8, generator=gen, requires_grad=True) for _ in range(3)]
    features = torch.randn(3, 20, 12, generator=gen, requires_grad=True)
    out = UpstreamOutput(hidden, lengths, padding, features, features.pow(2).mean())
    torch.manual_seed(0)
    obj = OBJECTIVES.build(
        {"name": "wav2vec2", "final_dim": 6, "num_negatives": 7, "quantizer": {"num_vars": 10, "codebook_dim": 4}},
        embed_dim=8,
        feature_dim=12,
    )
    return obj, out, mask


def test_terms_match_reference():
    obj, out, mask = _setup()
    obj.eval()  # deterministic quantizer (argmax) so the reference can replay it
    torch.manual_seed(5)
    result = obj(out, mask, {})
    quantized = obj.quantizer(out.features[mask])
    positives = obj.project_q(quantized.q)
    torch.manual_seed(5)
    index, valid = sample_negatives(mask, 7)
    logits = contrastive_logits(obj.final_proj(out.hidden_states[-1][mask]), positives, index, valid, 0.1)
    torch.testing.assert_close(result.terms["contrastive"], F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long)))
    torch.testing.assert_close(result.terms["diversity"], (20 - quantized.prob_perplexity) / 20)
    torch.testing.assert_close(result.terms["feature_pen"], out.features.pow(2).mean())
    assert result.weights == {"contrastive": 1.0, "diversity": 0.1, "feature_pen": 10.0}
    assert result.sample_size == int(mask.sum())
    assert set(result.metrics) == {"acc_masked", "code_ppl", "prob_ppl", "temperature"}


def _perplexity_by_hand(dist: torch.Tensor) -> float:
    """sum_g exp(-sum_v p log p) of a (G, V) table of code probabilities averaged over frames."""
    return sum(math.exp(-sum(p * math.log(p) for p in row if p > 0)) for row in dist.tolist())


def test_code_and_prob_perplexity_metrics_match_a_hand_computation():
    """G=2, V=10 over the 22 masked frames of ``_setup``: hard code counts and mean softmax, by hand."""
    obj, out, mask = _setup()
    obj.eval()  # argmax codes
    result = obj(out, mask, {})
    with torch.no_grad():
        logits = obj.quantizer.weight_proj(out.features[mask]).view(-1, 2, 10)  # (N, G, V)
    n = logits.shape[0]
    counts = torch.stack([torch.bincount(logits[:, g].argmax(-1), minlength=10) for g in range(2)])  # (G, V)
    hard = _perplexity_by_hand(counts.double() / n)
    soft = _perplexity_by_hand(logits.double().softmax(-1).mean(0))
    assert n == int(mask.sum()) == 22 and int((counts > 0).sum()) >= 4  # several codes in use, not 1 or 2
    assert result.metrics["code_ppl"] == pytest.approx(hard, rel=1e-5)
    assert result.metrics["prob_ppl"] == pytest.approx(soft, rel=1e-5)


def test_gradients_reach_context_features_and_quantizer():
    obj, out, mask = _setup()
    obj.train()
    obj.set_num_updates(100)
    result = obj(out, mask, {})
    assert result.metrics["temperature"] == pytest.approx(2.0 * 0.999995**100)
    result.weighted_loss().backward()
    assert out.hidden_states[-1].grad.abs().sum() > 0
    assert out.features.grad.abs().sum() > 0
    assert obj.quantizer.weight_proj.weight.grad.abs().sum() > 0


def test_empty_mask_gives_zero_loss_not_nan():
    obj, out, mask = _setup()
    result = obj(out, torch.zeros_like(mask), {})
    assert result.terms["contrastive"].item() == 0.0 and result.terms["diversity"].item() == 0.0
    assert result.sample_size == 1


def test_missing_features_or_wrong_mask_raise():
    obj, out, mask = _setup()
    with pytest.raises(ValueError, match="shape"):
        obj(out, mask[:, :5], {})
    with pytest.raises(ValueError, match="padding"):
        obj(out, out.padding_mask.clone(), {})
    out.features = None
    with pytest.raises(ValueError, match="no features"):
        obj(out, mask, {})


def test_contrastive_objective_learns_predictable_targets():
    """Context that can see the quantizer's input: loss falls far below chance, accuracy rises."""
    torch.manual_seed(0)
    feats = F.layer_norm(torch.randn(8, 30, 32), (32,))  # (B, T, C)
    context_net = torch.nn.Linear(32, 24)
    obj = OBJECTIVES.build({"name": "wav2vec2", "final_dim": 16, "num_negatives": 10, "feature_pen_weight": 0,
                            "quantizer": {"num_vars": 16, "codebook_dim": 16}}, embed_dim=24, feature_dim=32)
    optimizer = torch.optim.Adam([*obj.parameters(), *context_net.parameters()], lr=2e-3)
    padding = torch.zeros(8, 30, dtype=torch.bool)
    history = []
    for _ in range(60):
        out = UpstreamOutput([context_net(feats)], torch.full((8,), 30), padding, feats, None)
        result = obj(out, torch.rand(8, 30) < 0.4, {})
        optimizer.zero_grad()
        result.weighted_loss().backward()
        optimizer.step()
        history.append((result.terms["contrastive"].item(), result.metrics["acc_masked"]))
    first, last = history[:5], history[-5:]
    chance = torch.log(torch.tensor(11.0)).item()
    assert sum(l for l, _ in first) / 5 > 0.9 * chance
    assert sum(l for l, _ in last) / 5 < 0.5 * chance
    assert sum(a for _, a in last) / 5 > sum(a for _, a in first) / 5 + 0.3


def test_given_negatives_are_the_ones_used():
    """``negatives=`` replaces the objective's own draw (the parity tests feed HF's negatives through it)."""
    obj, out, mask = _setup()
    obj.eval()
    torch.manual_seed(5)
    drawn = obj(out, mask, {}).terms["contrastive"]
    torch.manual_seed(5)
    same = sample_negatives(mask, 7)
    torch.testing.assert_close(obj(out, mask, {}, negatives=same).terms["contrastive"], drawn, atol=0, rtol=0)
    other = sample_negatives(mask, 7, torch.Generator().manual_seed(6))
    assert abs(float((obj(out, mask, {}, negatives=other).terms["contrastive"] - drawn).detach())) > 1e-3
    with pytest.raises(ValueError, match=r"negatives must be \(index, valid\) of shape \(22, 7\)"):
        obj(out, mask, {}, negatives=(same[0][:, :3], same[1][:, :3]))
