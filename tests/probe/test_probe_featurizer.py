"""Featurizer maths, gradient flow (featurizer learns, upstream never does), frozen eval mode."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from speechssl2.models import build_upstream
from speechssl2.probe.featurizer import Featurizer, FrozenUpstream
from speechssl2.probe.features import extract_batch, make_store
from speechssl2.probe.labels import load_labelled_set
from speechssl2.probe.loop import ProbeModel, collate_features
from speechssl2.registry import DOWNSTREAMS


def test_weighted_sum_matches_manual_softmax_mixture_with_and_without_layer_norm():
    torch.manual_seed(0)
    hidden = torch.randn(2, 3, 5, 4) * torch.tensor([1.0, 10.0, 100.0])[None, :, None, None]  # (B, L, T, D)
    for layer_norm in (False, True):
        feat = Featurizer(3, layer_norm=layer_norm)
        with torch.no_grad():
            feat.layer_sum.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
        w = torch.tensor([0.5, -1.0, 2.0]).softmax(0)
        h = F.layer_norm(hidden, (4,)) if layer_norm else hidden
        expected = sum(w[i] * h[:, i] for i in range(3))
        torch.testing.assert_close(feat(hidden), expected, rtol=1e-5, atol=1e-5)
        assert feat.layer_weights() == pytest.approx(w.tolist())
        assert sum(feat.layer_weights()) == pytest.approx(1.0)


def test_layer_norm_removes_scale_differences_between_layers():
    hidden = torch.randn(1, 2, 6, 8)
    hidden[:, 1] = hidden[:, 0] * 50 + 3  # same pattern, much larger scale and offset
    feat = Featurizer(2, layer_norm=True)
    with torch.no_grad():
        feat.layer_sum.weights.copy_(torch.tensor([10.0, -10.0]))  # ~all weight on layer 0
    a = feat(hidden)
    with torch.no_grad():
        feat.layer_sum.weights.copy_(torch.tensor([-10.0, 10.0]))  # ~all weight on layer 1
    torch.testing.assert_close(a, feat(hidden), rtol=1e-3, atol=1e-3)


def test_featurizer_rejects_hidden_states_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(B, L, T, D\)"):
        Featurizer(3)(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="expects 3 hidden states, got 2"):
        Featurizer(3)(torch.zeros(1, 2, 5, 4))


def wavlm_tiny_with_gradients_switched_back_on():
    """A frozen upstream whose parameters were made trainable again after freezing: only
    ``FrozenUpstream.forward`` itself (no_grad) stands between a probe loss and its weights."""
    torch.manual_seed(0)
    frozen = FrozenUpstream(build_upstream({"name": "wavlm_tiny"}))
    assert not any(p.requires_grad for p in frozen.upstream.parameters())  # frozen on construction
    frozen.upstream.requires_grad_(True)
    return frozen


def test_frozen_upstream_outputs_are_outside_the_autograd_graph(fsdd_manifests):
    data = load_labelled_set(fsdd_manifests["train"], "speaker", max_utts=2)
    frozen = wavlm_tiny_with_gradients_switched_back_on()
    frozen.train()  # a probe model in training mode must not switch the upstream's dropout on
    assert not frozen.upstream.training and all(not m.training for m in frozen.upstream.modules())
    audio = torch.randn(2, 8000, requires_grad=True)  # even an input that wants gradients
    hidden, _ = frozen(audio, torch.tensor([8000, 6000]))
    assert hidden.grad_fn is None and not hidden.requires_grad
    for features in extract_batch(frozen, data.cuts, torch.device("cpu")):
        assert features.grad_fn is None and not features.requires_grad


def test_probe_backprop_reaches_the_layer_weights_and_never_the_upstream(fsdd_manifests):
    """Caching off: every batch runs the upstream inside the step, as with ``cache: none``."""
    data = load_labelled_set(fsdd_manifests["train"], "speaker", max_utts=4)
    frozen = wavlm_tiny_with_gradients_switched_back_on()
    store = make_store("none", frozen, data.cuts, batch_size=4, device=torch.device("cpu"))
    model = ProbeModel(Featurizer(frozen.num_layers),
                       DOWNSTREAMS.build({"name": "utterance_classifier"}, input_dim=frozen.embed_dim,
                                         labels=data.labels)).train()
    with torch.no_grad():  # unequal weights, so that each layer's gradient differs
        model.featurizer.layer_sum.weights.copy_(torch.tensor([0.3, -0.2, 0.1]))
    hidden, lengths = collate_features(store.load(data.ids))
    assert hidden.shape[:2] == (4, frozen.num_layers)
    model.loss(hidden, lengths, data.labels, data.ids).backward()
    grad = model.featurizer.layer_sum.weights.grad
    assert grad is not None and bool((grad != 0).all()), grad
    assert all(p.grad is not None for p in model.downstream.parameters())
    leaked = [name for name, p in frozen.upstream.named_parameters() if p.grad is not None]
    assert not leaked, f"upstream parameters received gradients: {leaked[:5]}"
