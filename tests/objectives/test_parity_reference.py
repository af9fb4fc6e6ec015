"""Loss parity with the reference implementations, on the same weights, mask and negatives.

References (tiny configs, random init, no hub access):

- wav2vec 2.0: ``transformers.Wav2Vec2ForPreTraining`` given ``mask_time_indices`` and
  ``sampled_negative_indices``; our encoder loaded from its ``save_pretrained`` directory by
  ``load_hf``, the heads copied by ``_load_w2v2_heads`` (``project_hid`` is our ``final_proj``).
- HuBERT: ``torchaudio.models.HuBERTPretrainModel`` (encoder by torchaudio's own
  ``import_huggingface_model`` from the same HF model, our mask through its ``mask_generator``
  argument). torchaudio 2.11 ships no ``hubert_loss`` (it lives in pytorch/audio
  ``examples/hubert/loss/hubert_loss.py``); the reference loss is computed from the model's
  logits as that function and the model's docstring define it: ``cross_entropy(logit, 0,
  reduction="sum")`` (the positive sits in column 0), feature penalty weighted by 10.
- Gumbel quantizer: ``transformers`` ``Wav2Vec2GumbelVectorQuantizer``.

Conventions that differ on purpose; each comparison converts them:

1. Reduction: the references sum over masked (or unmasked) frames, HF also multiplies the
   diversity loss by N; ours average. Compared: ours == reference / N (and gradients of our
   mean == gradients of reference sum / N).
2. Diversity: ours (as fairseq) uses the softmax ("prob") perplexity in training and eval.
   HF's quantizer reports the hard-code perplexity in eval mode and the softmax perplexity only
   in train mode. Compared: our ``code_ppl`` metric == HF eval perplexity; our ``diversity``
   == HF's diversity with its quantizer in train mode (its Gumbel codes are not used there).
3. Entropy: ours is ``-sum p log(p + 1e-7)`` (fairseq's formula), HF's ``xlogy``. They differ by
   about ``used codes * 1e-7`` nats per group; at V=8 that is < 1e-6 in the diversity loss, at
   V=320 ~3e-5 (measured in ``test_gumbel_quantizer_matches_hf``).
4. Feature penalty: HF has none; fairseq and torchaudio take ``mean(raw conv features ** 2)``
   over the padded batch, ours over valid frames only (padding-invariant). Compared on batches
   without padding, against HF's feature extractor output and torchaudio's ``features_pen``.
"""
from __future__ import annotations

from typing import Dict

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.models.functional import normalize_waveform
from speechssl2.models.io.hf import TRANSFORMER, load_hf
from speechssl2.models.io.rename import rename
from speechssl2.objectives.contrastive import sample_negatives
from speechssl2.quantizers.gumbel import GumbelQuantizer
from speechssl2.registry import OBJECTIVES

TOL = 1e-5  # absolute, on per-frame losses and on gradients of the per-frame loss
G, V, CODE_DIM, FINAL_DIM, K, NUM_CLASSES = 2, 8, 16, 12, 5, 10
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, hidden_dropout=0.0,
            attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
            mask_feature_prob=0.0)


def _perturb(model: nn.Module) -> None:
    """Move norms, biases and the mask embedding off their init values so they get tested."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(s in name for s in ("norm", "bias", "masked_spec")):
                p.add_(torch.randn_like(p) * 0.3)


def _span_mask(batch: int, frames: int, seed: int, span: int = 5, starts: int = 9) -> Tensor:
    """(B, T) bool, overlapping spans at random starts: many masked frames per utterance."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for b in range(batch):
        for s in torch.randint(0, frames - span, (starts,), generator=gen).tolist():
            mask[b, s:s + span] = True
    return mask


def _grads(module: nn.Module) -> Dict[str, Tensor]:
    return {name: p.grad for name, p in module.named_parameters() if p.grad is not None}


def _assert_grads_match(ours: Dict[str, Tensor], theirs: Dict[str, Tensor]) -> None:
    """Same parameters; each gradient within TOL absolute and 1e-4 relative (in norm).

    The relative check is what tests the small gradients (q/k projections ~1e-5 here); measured
    errors are <= 1.1e-6 absolute and <= 5e-6 relative. A key bias cannot change a softmax, so
    its true gradient is 0: both sides must be float noise.
    """
    assert ours.keys() == theirs.keys()
    for key, ref in theirs.items():
        if key.endswith("k_proj.bias"):
            assert ours[key].abs().max() < 1e-8 and ref.abs().max() < 1e-8, key
            continue
        torch.testing.assert_close(ours[key], ref, atol=TOL, rtol=0, msg=lambda m: f"{key}: {m}")
        relative = float((ours[key] - ref).norm() / ref.norm())
        assert relative < 1e-4, f"{key}: relative gradient error {relative:.2e}"


def _float_slack(num_vars: int) -> float:
    """A few float32 ulps of a perplexity (at most G * V)."""
    return 4 * G * num_vars * torch.finfo(torch.float32).eps


def _entropy_bound(num_vars: int) -> float:
    """Largest perplexity gap between log(p + 1e-7) and xlogy (convention 3): G * V * (V * 1e-7), plus float32."""
    return G * num_vars * num_vars * 1e-7 + _float_slack(num_vars)


# ---------------------------------------------------------------- wav2vec 2.0


def _w2v2_pair(tmp_path, norm: str):
    import transformers as T

    torch.manual_seed(0)
    cfg = T.Wav2Vec2Config(**TINY, feat_extract_norm=norm, num_codevector_groups=G, num_codevectors_per_group=V,
                           codevector_dim=CODE_DIM, proj_codevector_dim=FINAL_DIM, num_negatives=K,
                           contrastive_logits_temperature=0.1, diversity_loss_weight=0.1, feat_quantizer_dropout=0.0)
    ref = T.Wav2Vec2ForPreTraining(cfg).eval()
    _perturb(ref)
    ref.save_pretrained(tmp_path)
    upstream, _ = load_hf(tmp_path)
    objective = OBJECTIVES.build({"name": "wav2vec2", "final_dim": FINAL_DIM, "num_negatives": K,
                                  "quantizer": {"codebook_dim": CODE_DIM, "num_groups": G, "num_vars": V}},
                                 embed_dim=upstream.embed_dim, feature_dim=upstream.feature_dim)
    _load_w2v2_heads(objective, ref)
    return ref, upstream.eval(), objective.eval()


def _load_w2v2_heads(objective: nn.Module, ref: nn.Module) -> None:
    """HF pre-training heads -> ours: codevectors (1, G*V, d/G) are our codebooks (G, V, d/G) row-major."""
    theirs = ref.state_dict()
    state = {"quantizer.codebooks": theirs["quantizer.codevectors"].view(G, V, -1)}
    for ours, hf in (("quantizer.weight_proj.", "quantizer.weight_proj."), ("project_q.", "project_q."),
                     ("final_proj.", "project_hid.")):
        for leaf in ("weight", "bias"):
            state[ours + leaf] = theirs[hf + leaf]
    objective.load_state_dict(state, strict=True)


def _hf_negatives(index: Tensor, time_mask: Tensor) -> Tensor:
    """Our (N, K) indices into the masked steps -> HF's (B, T, K) indices into the flattened B*T frames."""
    flat = time_mask.flatten().nonzero().squeeze(1)  # (N,) position of each masked step in B*T
    out = torch.zeros(time_mask.numel(), index.shape[1], dtype=torch.long)
    out[flat] = flat[index]
    return out.view(*time_mask.shape, -1)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_wav2vec2_losses_and_gradients_match_hf_pretraining(norm, tmp_path):
    """Contrastive, diversity and feature penalty terms, code perplexity, and every parameter's gradient."""
    ref, upstream, objective = _w2v2_pair(tmp_path, norm)
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4000, 4000])  # no padding: HF's group-norm frontend and the penalty see padding
    # HF's feature extractor (not the model) normalizes the layer-norm models' input
    hf_wav = normalize_waveform(wav, lengths) if upstream.normalize_waveform else wav
    frames = int(upstream.frame_lengths(lengths)[0])
    time_mask = _span_mask(2, frames, seed=2)
    index, valid = sample_negatives(time_mask, K, torch.Generator().manual_seed(3))
    assert valid.all()
    n = int(time_mask.sum())

    out = upstream(wav, lengths, time_mask=time_mask)
    result = objective(out, time_mask, {}, negatives=(index, valid))
    result.weighted_loss().backward()

    hf_neg = _hf_negatives(index, time_mask)
    hf_eval = ref(hf_wav, mask_time_indices=time_mask, sampled_negative_indices=hf_neg)
    ref.quantizer.train()  # softmax perplexity (convention 2); its Gumbel-sampled contrastive loss is unused
    hf_train = ref(hf_wav, mask_time_indices=time_mask, sampled_negative_indices=hf_neg)
    ref.quantizer.eval()
    pen = ref.wav2vec2.feature_extractor(hf_wav).float().pow(2).mean()
    (hf_eval.contrastive_loss / n + 0.1 * hf_train.diversity_loss / n + 10.0 * pen).backward()

    terms = result.terms
    torch.testing.assert_close(terms["contrastive"], hf_eval.contrastive_loss / n, atol=TOL, rtol=0)
    torch.testing.assert_close(terms["diversity"], hf_train.diversity_loss / n, atol=TOL, rtol=0)
    torch.testing.assert_close(terms["feature_pen"], pen, atol=TOL, rtol=0)
    ppl_tol = _entropy_bound(V)
    assert result.metrics["code_ppl"] == pytest.approx(float(hf_eval.codevector_perplexity.detach()), abs=ppl_tol)
    assert result.metrics["prob_ppl"] == pytest.approx(float(hf_train.codevector_perplexity.detach()), abs=ppl_tol)
    # the batch exercises the neg == pos rule: 64 codes, ~2 * 40 masked frames, 5 negatives each
    positives = objective.project_q(objective.quantizer(out.features[time_mask]).q)
    assert (positives[index] == positives[:, None]).all(-1).any()

    ours = rename(_grads(upstream), TRANSFORMER, reverse=True, where="grads")
    for leaf in ("weight", "bias"):
        ours[f"quantizer.weight_proj.{leaf}"] = objective.quantizer.weight_proj.get_parameter(leaf).grad
        ours[f"project_q.{leaf}"] = objective.project_q.get_parameter(leaf).grad
        ours[f"project_hid.{leaf}"] = objective.final_proj.get_parameter(leaf).grad
    ours["quantizer.codevectors"] = objective.quantizer.codebooks.grad.reshape(1, G * V, -1)
    theirs = {k.removeprefix("wav2vec2."): g for k, g in _grads(ref).items()}
    _assert_grads_match(ours, theirs)


# ---------------------------------------------------------------- HuBERT


class GivenMask(nn.Module):
    """torchaudio ``mask_generator`` that applies a fixed (B, T) mask with its own embedding."""

    def __init__(self, mask: Tensor, embedding: Tensor) -> None:
        super().__init__()
        self.mask = mask
        self.embedding = nn.Parameter(embedding.detach().clone())

    def forward(self, x: Tensor, padding_mask):  # noqa: ANN001 - torchaudio's signature
        return torch.where(self.mask[..., None], self.embedding, x), self.mask


class _quiet:
    """Silence torchaudio's 'lm_head is not imported' warning (a base model has no head)."""

    def __enter__(self):
        import logging

        self.logger = logging.getLogger("torchaudio.models.wav2vec2.utils.import_huggingface")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def test_hubert_losses_and_gradients_match_torchaudio(tmp_path):
    import transformers as T
    from torchaudio.models import HuBERTPretrainModel
    from torchaudio.models.wav2vec2.components import LogitGenerator
    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    torch.manual_seed(0)
    hf = T.HubertModel(T.HubertConfig(**TINY)).eval()
    _perturb(hf)
    hf.save_pretrained(tmp_path)
    upstream, _ = load_hf(tmp_path)
    upstream.eval()
    objective = OBJECTIVES.build({"name": "hubert", "num_classes": NUM_CLASSES, "final_dim": FINAL_DIM,
                                  "unmasked_weight": 0.5}, embed_dim=upstream.embed_dim)
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4000, 4000])  # no padding: torchaudio's penalty averages over padded frames
    frames = int(upstream.frame_lengths(lengths)[0])
    time_mask = _span_mask(2, frames, seed=2)
    labels = torch.randint(0, NUM_CLASSES, (2, frames), generator=torch.Generator().manual_seed(4))

    logit_gen = LogitGenerator(upstream.embed_dim, NUM_CLASSES, FINAL_DIM, skip_masked=False, skip_nomask=False)
    logit_gen.final_proj.load_state_dict(objective.final_proj[0].state_dict())
    with torch.no_grad():
        logit_gen.label_embeddings.copy_(objective.label_embs)
    with _quiet():
        encoder = import_huggingface_model(hf)
    ref = HuBERTPretrainModel(encoder, GivenMask(time_mask, upstream.mask_emb), logit_gen, feature_grad_mult=None)
    ref.eval()

    out = upstream(wav, lengths, time_mask=time_mask)
    result = objective(out, time_mask, {"targets": labels, "target_lens": torch.tensor([frames, frames])})
    result.weighted_loss().backward()

    logit_m, logit_u, pen = ref(wav, labels)
    n_m, n_u = int(time_mask.sum()), int((~time_mask).sum())
    loss_m = F.cross_entropy(logit_m, torch.zeros(n_m, dtype=torch.long), reduction="sum")
    loss_u = F.cross_entropy(logit_u, torch.zeros(n_u, dtype=torch.long), reduction="sum")
    (loss_m / n_m + 0.5 * loss_u / n_u + 10.0 * pen).backward()

    top = len(out.hidden_states) - 1
    torch.testing.assert_close(result.terms[f"masked_ce_l{top}"], loss_m / n_m, atol=TOL, rtol=0)
    torch.testing.assert_close(result.terms[f"unmasked_ce_l{top}"], loss_u / n_u, atol=TOL, rtol=0)
    torch.testing.assert_close(result.terms["feature_pen"], pen, atol=TOL, rtol=0)
    assert result.weights == {f"masked_ce_l{top}": 1.0, f"unmasked_ce_l{top}": 0.5, "feature_pen": 10.0}

    # gradients: torchaudio's encoder keys are HF's below feature_extractor / encoder.{feature_projection,transformer}
    ours = rename(_grads(upstream), TRANSFORMER, reverse=True, where="grads")
    ours["logit_generator.final_proj.weight"] = objective.final_proj[0].weight.grad
    ours["logit_generator.final_proj.bias"] = objective.final_proj[0].bias.grad
    ours["logit_generator.label_embeddings"] = objective.label_embs.grad
    ours["mask_generator.embedding"] = ours.pop("masked_spec_embed")
    theirs = {k.replace("wav2vec2.", "").replace("encoder.transformer.", "encoder.")
               .replace("encoder.feature_projection.", "feature_projection."): g for k, g in _grads(ref).items()}
    _assert_grads_match(ours, theirs)


# ---------------------------------------------------------------- Gumbel quantizer


@pytest.mark.parametrize("num_vars", [8, 320])
def test_gumbel_quantizer_matches_hf(num_vars):
    """Eval: the same hard codes (vectors, exactly) and code perplexity; train: the same softmax perplexity.

    The perplexities differ only by the entropy convention (3.): ours is lower, by at most
    G * V^2 * 1e-7 (1.3e-5 at V=8, 0.02 at V=320) plus float32 rounding.
    """
    import transformers as T
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2GumbelVectorQuantizer

    torch.manual_seed(0)
    cfg = T.Wav2Vec2Config(conv_dim=(24,), conv_kernel=(10,), conv_stride=(5,), num_codevector_groups=G,
                           num_codevectors_per_group=num_vars, codevector_dim=CODE_DIM)
    ref = Wav2Vec2GumbelVectorQuantizer(cfg)
    nn.init.normal_(ref.weight_proj.weight, std=0.3)  # softer than the init so several codes are in use
    nn.init.normal_(ref.weight_proj.bias, std=0.3)
    nn.init.uniform_(ref.codevectors)
    ours = GumbelQuantizer(24, codebook_dim=CODE_DIM, num_groups=G, num_vars=num_vars)
    ours.load_state_dict({"weight_proj.weight": ref.weight_proj.weight, "weight_proj.bias": ref.weight_proj.bias,
                          "codebooks": ref.codevectors.view(G, num_vars, -1)})
    x = torch.randn(3, 50, 24, generator=torch.Generator().manual_seed(1))
    mask = _span_mask(3, 50, seed=2)

    ref.eval()
    ours.eval()
    with torch.no_grad():
        vectors, code_ppl = ref(x, mask_time_indices=mask)
        q = ours(x[mask])
        ref.train()
        _, prob_ppl = ref(x, mask_time_indices=mask)
    torch.testing.assert_close(q.q, vectors[mask], atol=0, rtol=0)  # the chosen entries, exactly
    assert len(q.codes.unique()) > 4  # several codes in use, so the perplexities are informative
    bound = _entropy_bound(num_vars)
    assert -_float_slack(num_vars) <= float(code_ppl) - q.code_perplexity <= bound
    assert -_float_slack(num_vars) <= float(prob_ppl) - float(q.prob_perplexity) <= bound
    # and it is that convention: HF's formula with fairseq's +1e-7 gives our numbers to float precision
    with torch.no_grad():
        probs = torch.softmax(ref.weight_proj(x[mask]).view(-1, G, num_vars), dim=-1).mean(0)  # (G, V)
        fairseq_ppl = torch.exp(-(probs * torch.log(probs + 1e-7)).sum(-1)).sum()
    assert float(q.prob_perplexity) == pytest.approx(float(fairseq_ppl), rel=1e-6)
