"""w2v-BERT objective: terms against direct references, the random-vector mask, and code collapse on FSDD."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from speechssl2.config import load_config
from speechssl2.interfaces import UpstreamOutput
from speechssl2.models import build_upstream
from speechssl2.models.functional import padding_mask
from speechssl2.objectives.contrastive import contrastive_logits, sample_negatives
from speechssl2.quantizers.gumbel import GumbelQuantizer
from speechssl2.registry import MODELS, OBJECTIVES
from speechssl2.train.config import TrainConfig
from ssl_helpers import load_fsdd, pad_batch

REPO = Path(__file__).resolve().parents[2]
SMALL = {"name": "w2v_bert", "contrastive_layers": 1, "final_dim": 6, "num_negatives": 7,
         "quantizer": {"num_vars": 10, "codebook_dim": 4}}


def _setup(**overrides):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([20, 14, 3])
    padding = torch.arange(20)[None, :] >= lengths[:, None]
    mask = (torch.rand(3, 20, generator=gen) < 0.5) & ~padding
    hidden = [torch.randn(3, 20, 8, generator=gen, requires_grad=True) for _ in range(4)]  # input + 3 blocks
    features = torch.randn(3, 20, 12, generator=gen, requires_grad=True)
    out = UpstreamOutput(hidden, lengths, padding, features, features.pow(2).mean())
    torch.manual_seed(0)
    obj = OBJECTIVES.build({**SMALL, **overrides}, embed_dim=8, feature_dim=12)
    return obj, out, mask


def test_terms_match_direct_reference():
    obj, out, mask = _setup()
    obj.eval()  # argmax quantizer: the reference can replay it
    torch.manual_seed(5)
    result = obj(out, mask, {})
    quantized = obj.quantizer(out.features[mask])
    positives = obj.project_q(quantized.q)
    torch.manual_seed(5)
    index, valid = sample_negatives(mask, 7)
    context = obj.final_proj(out.hidden_states[1][mask])  # contrastive module = first block
    logits = contrastive_logits(context, positives, index, valid, 0.1)
    expected_c = F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
    mlm_logits = out.hidden_states[3][mask] @ obj.mlm_head.weight.T + obj.mlm_head.bias  # (N, V): top block
    expected_m = -torch.log_softmax(mlm_logits, dim=-1).gather(1, quantized.codes).mean()
    torch.testing.assert_close(result.terms["contrastive"], expected_c, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.terms["mlm"], expected_m, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.terms["diversity"], (10 - quantized.prob_perplexity) / 10, atol=1e-5, rtol=0)
    assert quantized.codes.shape == (int(mask.sum()), 1)  # default: one codebook (paper: G=1, V=1024 here 10)
    assert result.weights == {"contrastive": 1.0, "diversity": pytest.approx(0.1), "mlm": 1.0}
    assert result.sample_size == int(mask.sum())
    assert {"acc_masked", "mlm_acc", "code_ppl", "prob_ppl", "temperature"} == set(result.metrics)
    result.weighted_loss().backward()  # contrastive reads block 1, masked prediction the top, nothing else
    assert out.hidden_states[1].grad.abs().sum() > 0 and out.hidden_states[3].grad.abs().sum() > 0
    assert out.hidden_states[0].grad is None and out.hidden_states[2].grad is None


def test_product_codebooks_get_one_softmax_each():
    obj, out, mask = _setup(quantizer={"num_groups": 2, "num_vars": 5, "codebook_dim": 4})
    obj.eval()
    result = obj(out, mask, {})
    codes = obj.quantizer(out.features[mask]).codes  # (N, 2)
    logits = obj.mlm_head(out.hidden_states[-1][mask]).view(-1, 2, 5)
    expected = (F.cross_entropy(logits[:, 0], codes[:, 0]) + F.cross_entropy(logits[:, 1], codes[:, 1])) / 2
    torch.testing.assert_close(result.terms["mlm"], expected, atol=1e-5, rtol=0)


def test_weights_contrastive_switch_and_target_gradient():
    obj, out, mask = _setup(contrastive_weight=0.5, mlm_weight=2.0, diversity_weight=0.2)
    assert obj(out, mask, {}).weights == {"contrastive": 0.5, "diversity": pytest.approx(0.1), "mlm": 2.0}
    obj, out, mask = _setup(contrastive=False)
    obj.train()
    result = obj(out, mask, {})
    assert set(result.terms) == {"mlm"} and not hasattr(obj, "project_q")
    result.weighted_loss().backward()
    assert obj.quantizer.weight_proj.weight.grad is None  # targets are token IDs: no gradient to the quantizer
    obj, out, mask = _setup(contrastive=False, target_grad=True)
    obj.eval()
    detached = obj(out, mask, {}).terms["mlm"]
    obj.target_grad = False
    torch.testing.assert_close(obj(out, mask, {}).terms["mlm"], detached)  # same value either way
    obj.target_grad = True
    obj.train()
    obj(out, mask, {}).weighted_loss().backward()
    assert obj.quantizer.weight_proj.weight.grad.abs().sum() > 0  # straight-through one-hot targets


def test_empty_mask_and_bad_configs():
    obj, out, mask = _setup()
    result = obj(out, torch.zeros_like(mask), {})
    assert result.terms["contrastive"].item() == 0.0 and result.terms["mlm"].item() == 0.0
    obj, out, mask = _setup(contrastive_layers=3)
    with pytest.raises(ValueError, match="leaves no block for masked prediction"):
        obj(out, mask, {})
    with pytest.raises(ValueError, match="contrastive_layers must be >= 1"):
        _setup(contrastive_layers=0)


def test_w2v_bert_upstream_masks_with_fresh_random_vectors():
    torch.manual_seed(0)
    up = build_upstream({"name": "w2v_bert_tiny", "feature_dropout": 0.0}).eval()
    assert up.mask_mode == "random" and up.mask_emb is None
    wav, lengths = torch.randn(2, 8000), torch.tensor([8000, 8000])
    mask = torch.zeros(2, int(up.frame_lengths(lengths)[0]), dtype=torch.bool)
    mask[:, 4:9] = True
    with torch.no_grad():
        plain, a, b = up(wav, lengths), up(wav, lengths, time_mask=mask), up(wav, lengths, time_mask=mask)
    x0 = up.feature_proj(plain.features)  # what the encoder would see unmasked
    assert not torch.allclose(a.hidden_states[-1], b.hidden_states[-1])  # a new draw every forward
    torch.testing.assert_close(a.features, plain.features)  # the quantizer input stays unmasked
    assert not torch.allclose(a.hidden_states[0][mask], x0[mask])
    torch.testing.assert_close(a.hidden_states[0][~mask], x0[~mask])
    std = a.hidden_states[0][mask].std().item()
    assert 0.8 < std < 1.2  # standard-normal vectors
    with pytest.raises(ValueError, match="mask_mode must be 'learned' or 'random'"):
        build_upstream({"name": "w2v_bert_tiny", "mask_mode": "zeros"})


def _quantizers(model):
    return [m for m in model.modules() if isinstance(m, GumbelQuantizer)]


def _audio_batch():
    lens = torch.tensor([16000, 12000])
    audio = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * (torch.arange(16000) < lens[:, None])
    return {"audio": audio, "audio_lens": lens}


def test_wav2vec2_plus_mlm_config_predicts_the_contrastive_quantizers_codes():
    """pretrain_wav2vec2_mlm.yaml: one quantizer, trained by the contrastive task, whose codes are the MLM targets."""
    cfg = load_config(TrainConfig, REPO / "egs" / "fsdd" / "ssl1" / "conf" / "pretrain_wav2vec2_mlm.yaml")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()  # argmax quantizer, no dropout: the reference can replay it
    (quantizer,) = _quantizers(model)
    objective, batch = model.objectives["w2v_bert"], _audio_batch()
    assert model.upstream.mask_mode == "learned"  # a wav2vec 2.0 upstream, not the w2v-BERT conformer
    frames = model.upstream.frame_lengths(batch["audio_lens"])
    mask = model.masker(padding_mask(frames, int(frames.max())), torch.Generator().manual_seed(0))
    out = model.upstream(batch["audio"], batch["audio_lens"], time_mask=mask)
    result = objective(out, mask, batch)
    assert set(result.terms) == {"contrastive", "diversity", "mlm", "feature_pen"}
    codes = quantizer(out.features[mask]).codes  # (N, 2)
    logits = objective.mlm_head(out.hidden_states[-1][mask]).view(-1, 2, 64)  # (N, G, V)
    expected = (F.cross_entropy(logits[:, 0], codes[:, 0]) + F.cross_entropy(logits[:, 1], codes[:, 1])) / 2
    torch.testing.assert_close(result.terms["mlm"], expected, atol=1e-5, rtol=0)
    model.train()  # Gumbel straight-through: the contrastive task alone trains this quantizer
    out = model.upstream(batch["audio"], batch["audio_lens"], time_mask=mask)
    objective(out, mask, batch).terms["contrastive"].backward()
    assert quantizer.weight_proj.weight.grad.abs().sum() > 0


def test_two_listed_objectives_do_not_share_a_quantizer():
    """Why that config exists: [wav2vec2, w2v_bert without L_c] takes MLM targets from a quantizer nothing trains."""
    torch.manual_seed(0)
    model = MODELS.build({"name": "ssl", "upstream": {"name": "wav2vec2_tiny"}, "masking": {"prob": 0.2, "span": 3},
                          "objectives": [{"name": "wav2vec2", "final_dim": 16, "num_negatives": 5},
                                         {"name": "w2v_bert", "contrastive_layers": 1, "contrastive": False}]})
    model(_audio_batch(), generator=torch.Generator().manual_seed(0)).loss.backward()
    trained, mlm_targets = model.objectives["wav2vec2"].quantizer, model.objectives["w2v_bert"].quantizer
    assert len(_quantizers(model)) == 2
    assert trained.weight_proj.weight.grad.abs().sum() > 0 and mlm_targets.weight_proj.weight.grad is None


# ---------------------------------------------------------------- learning on real speech

SPEAKERS = ["george", "jackson", "nicolas", "theo"]
STEPS, WINDOW = 60, 8


def _batches(fsdd_dir):
    """Two batches of 8 utterances, each five digits of one speaker back to back (1.5-3 s, 32-63 frames)."""
    batches = []
    for take in (5, 6):
        waves = []
        for speaker in SPEAKERS:
            digits = load_fsdd(fsdd_dir, [speaker], range(10), index=take)
            waves += [torch.cat(digits[:5]), torch.cat(digits[5:])]
        batches.append(pad_batch(waves))
    return batches


@pytest.fixture
def one_thread():
    """These tiny models are hundreds of small ops: on 2 shared cores a second thread only spins (~10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


RECIPE_CONF = REPO / "egs" / "fsdd" / "ssl1" / "conf" / "pretrain_w2v_bert.yaml"
SEEDS = range(6)
COLLAPSED = 8.0  # code perplexity below 8 of the V = 64 codes: the codes have collapsed (both arms)
_RUNS = {}  # (seed, objective overrides) -> _train result: the ablation arm serves two tests


@pytest.fixture(scope="module")
def batches(fsdd_dir):
    return _batches(fsdd_dir)


def _recipe_model():
    """The model section of the FSDD recipe's w2v-BERT config (w2v_bert_tiny, V = 64, diversity 0.1)."""
    return load_config(TrainConfig, RECIPE_CONF).model


def _train(batches, seed, **overrides):
    """The recipe's model with ``overrides`` on its objective, 60 Adam steps: first- and last-window
    means of the MLM loss, its accuracy and the quantizer's code perplexity."""
    key = (seed, tuple(sorted(overrides.items())))
    if key in _RUNS:
        return _RUNS[key]
    spec = _recipe_model()
    (objective,) = spec["objectives"]
    objective.update(overrides)
    torch.manual_seed(seed)
    model = MODELS.build(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for step in range(STEPS):
        model.set_num_updates(step)
        out = model(batches[step % 2])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append((out.terms["w2v_bert/mlm"].item(), out.metrics["w2v_bert/mlm_acc"],
                        out.metrics["w2v_bert/code_ppl"]))
    mean = lambda rows, i: sum(r[i] for r in rows) / len(rows)  # noqa: E731
    first, last = history[:WINDOW], history[-WINDOW:]
    _RUNS[key] = {k: (mean(first, i), mean(last, i)) for i, k in enumerate(("mlm", "mlm_acc", "ppl"))}
    print(seed, overrides, {k: f"{a:.3f} -> {b:.3f}" for k, (a, b) in _RUNS[key].items()})
    return _RUNS[key]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_without_the_contrastive_module_the_codes_collapse(batches, one_thread, seed):
    """The paper's ablation (``contrastive: false``): both arms of the tests below predict integer
    token IDs (no gradient into the quantizer, as in the paper); only the contrastive module differs.
    Tiny preset, FSDD, V=64, 60 Adam steps (7-15 s a run on one core; the three tests make 18 runs).

    Without L_c the codes collapse early: within ~25 steps the quantizer uses 2-5 of its 64 codes
    and L_m falls far below ln 64 while its accuracy rises (the MLM predicts the few codes left; the
    quantizer gets no gradient, the shared frontend drifts its input into few cells). L_m does not
    reach 0 with integer targets: that takes ``target_grad: true``. Measured, seeds 0-5: code
    perplexity 16.3 -> 3.6, 7.8 -> 2.2, 3.0 -> 2.1, 7.0 -> 3.9, 8.8 -> 4.9, 11.1 -> 2.6.
    """
    alone = _train(batches, seed, contrastive=False)
    chance = math.log(64)
    assert alone["ppl"][1] < COLLAPSED and alone["mlm"][1] < chance - 2.0 and alone["mlm_acc"][1] > 0.3


# Measured with the recipe's diversity weight 0.1 (60 steps, last-window code perplexity with the
# contrastive module vs without it): seed 2 1.61 vs 2.09, seed 3 1.07 vs 3.90 (seed 3: L_m 0.07,
# accuracy 0.99, one code left). Once the codes collapse every distractor equals its positive and is
# masked out (as in wav2vec 2.0), so L_w goes to 0 with them and no longer resists. Weights 0.3 and
# 0.5, tried on seeds 2 and 3, still lose seed 2 (2.54 and 2.14); 1.0 keeps all six (test below).
RECIPE_WEIGHT_COLLAPSES = {
    2: "measured: codes collapse with L_c at diversity weight 0.1 (perplexity 1.61, ablation 2.09)",
    3: "measured: codes collapse with L_c at diversity weight 0.1 (perplexity 1.07, ablation 3.90)",
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [
    pytest.param(seed, marks=pytest.mark.xfail(strict=True, reason=RECIPE_WEIGHT_COLLAPSES[seed]))
    if seed in RECIPE_WEIGHT_COLLAPSES else seed for seed in SEEDS])
def test_contrastive_module_at_the_recipe_diversity_weight_prevents_collapse(batches, one_thread, seed):
    """The claim at the recipe's (and the paper's) weight: L_c = L_w + 0.1 L_d keeps the code
    perplexity out of the collapsed range and far above the ablation's. It does NOT hold for every
    seed: seeds 2 and 3 are expected failures (strict: they fail this run if they start passing),
    see RECIPE_WEIGHT_COLLAPSES. Measured on the others: 24.3, 12.4, 24.1, 39.1 (seeds 0, 1, 4, 5)
    against 3.6, 2.2, 4.9, 2.6 without the module; L_m 3.4, 2.7, 3.4, 3.9 (below ln 64 = 4.16: the
    kept codes are partly predictable already).
    """
    (objective,) = _recipe_model()["objectives"]
    assert objective["diversity_weight"] == 0.1
    kept, alone = _train(batches, seed), _train(batches, seed, contrastive=False)
    assert kept["ppl"][1] >= COLLAPSED and kept["ppl"][1] > 4 * alone["ppl"][1]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_contrastive_module_at_diversity_weight_1_keeps_every_seed_diverse(batches, one_thread, seed):
    """Why weight 1.0 as well: it is the smallest tried (0.1 on seeds 0-5, 0.3 and 0.5 on seeds 2
    and 3, 1.0) that keeps all six seeds diverse: the setting where the module prevents the
    collapse without exception.
    Measured: perplexity ~51-54 for every seed, L_m stays at ~ln 64 (the codes are near uniform and
    not yet predictable). Earlier 100-step runs (not repeated by this test) found that the
    diversity term does the work, not the contrastive task: with L_w switched off, 1.0 L_d alone
    kept seeds 0, 2, 4, 5 diverse, while L_w's accuracy never rose above its starting ~0.1; and
    with ``target_grad: true`` both arms collapsed fully (one code, L_m ~0.002) at 0.1 and 1.0.
    """
    kept, alone = _train(batches, seed, diversity_weight=1.0), _train(batches, seed, contrastive=False)
    chance = math.log(64)
    assert kept["ppl"][1] > 30.0 and kept["mlm"][1] > chance - 0.5
    assert kept["ppl"][1] > 4 * alone["ppl"][1]
