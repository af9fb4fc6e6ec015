"""Continued pre-training: released pre-training checkpoints (encoder + heads) -> our SSL model.

References are random-init ``transformers`` / ``torchaudio`` models saved to tmp; fairseq
checkpoints are state dicts in fairseq's key layout (its released names), made from our
own weights. Loss tolerance: 1e-5 absolute on per-frame losses (float32, eval mode), as the
parity tests in tests/objectives/test_parity_reference.py.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.models.io.fairseq import to_fairseq_state
from speechssl2.models.io.pretraining import init_from_checkpoint
from speechssl2.models.io.rename import CheckpointError
from speechssl2.objectives.contrastive import sample_negatives
from speechssl2.registry import MODELS

TOL = 1e-5
G, V, CODE_DIM, FINAL_DIM, K, NUM_CLASSES = 2, 8, 16, 12, 5, 10
HF_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16,
               num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
               feat_proj_dropout=0.0, layerdrop=0.0, mask_feature_prob=0.0)
# The same architecture as our config writes it.
UPSTREAM = {"name": "wav2vec2_tiny", "frontend": {"channels": [16, 16, 16], "kernels": [10, 3, 3], "strides": [5, 2, 2]},
            "encoder": {"embed_dim": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 64, "pos_conv_kernel": 16,
                        "pos_conv_groups": 4}}
W2V2 = {"name": "wav2vec2", "final_dim": FINAL_DIM, "num_negatives": K,
        "quantizer": {"codebook_dim": CODE_DIM, "num_groups": G, "num_vars": V}}
HUBERT = {"name": "hubert", "num_classes": NUM_CLASSES, "final_dim": FINAL_DIM, "unmasked_weight": 0.5}
FAIRSEQ_CFG = dict(conv_feature_layers="[(16,10,5)] + [(16,3,2)] * 2", encoder_embed_dim=32, encoder_layers=2,
                   encoder_attention_heads=4, encoder_ffn_embed_dim=64, conv_pos=16, conv_pos_groups=4,
                   extractor_mode="default", layer_norm_first=False)


def ssl_model(objective: Dict[str, Any], seed: int = 0, **upstream: Any) -> nn.Module:
    torch.manual_seed(seed)
    spec = {**UPSTREAM, "encoder": {**UPSTREAM["encoder"], **upstream}}
    return MODELS.build({"name": "ssl", "upstream": spec, "masking": {"prob": 0.1, "span": 3},
                         "objectives": [objective]}).eval()


def perturb(model: nn.Module) -> None:
    """Move norms, biases and the mask embedding off their init so that a missed tensor shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(s in name for s in ("norm", "bias", "mask")):
                p.add_(torch.randn_like(p) * 0.3)


def span_mask(batch: int, frames: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for b in range(batch):
        for s in torch.randint(0, frames - 5, (6,), generator=gen).tolist():
            mask[b, s:s + 5] = True
    return mask


def hf_negatives(index: Tensor, time_mask: Tensor) -> Tensor:
    """Our (N, K) indices into the masked steps -> HF's (B, T, K) indices into the flattened frames."""
    flat = time_mask.flatten().nonzero().squeeze(1)
    out = torch.zeros(time_mask.numel(), index.shape[1], dtype=torch.long)
    out[flat] = flat[index]
    return out.view(*time_mask.shape, -1)


def save_hf_pretraining(directory, seed: int = 0) -> nn.Module:
    import transformers as T

    torch.manual_seed(seed)
    cfg = T.Wav2Vec2Config(**HF_TINY, num_codevector_groups=G, num_codevectors_per_group=V, codevector_dim=CODE_DIM,
                           proj_codevector_dim=FINAL_DIM, num_negatives=K, feat_quantizer_dropout=0.0)
    ref = T.Wav2Vec2ForPreTraining(cfg).eval()
    perturb(ref)
    ref.save_pretrained(directory)
    return ref


def test_hf_pretraining_model_gives_hfs_loss(tmp_path):
    """Imported encoder + quantizer + project_q + project_hid: HF's contrastive and diversity losses."""
    ref = save_hf_pretraining(tmp_path / "hf")
    model = ssl_model(W2V2, seed=1)
    loaded = init_from_checkpoint(model, tmp_path / "hf")
    assert "objectives.wav2vec2.quantizer.codebooks" in loaded and "objectives.wav2vec2.final_proj.weight" in loaded
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4000, 4000])
    time_mask = span_mask(2, int(model.upstream.frame_lengths(lengths)[0]), seed=2)
    index, valid = sample_negatives(time_mask, K, torch.Generator().manual_seed(3))
    n = int(time_mask.sum())
    with torch.no_grad():
        out = model.upstream(wav, lengths, time_mask=time_mask)
        ours = model.objectives["wav2vec2"](out, time_mask, {}, negatives=(index, valid))
        neg = hf_negatives(index, time_mask)
        hf_eval = ref(wav, mask_time_indices=time_mask, sampled_negative_indices=neg)
        ref.quantizer.train()  # HF's diversity uses the softmax perplexity only in train mode (as ours always)
        hf_train = ref(wav, mask_time_indices=time_mask, sampled_negative_indices=neg)
    torch.testing.assert_close(ours.terms["contrastive"], hf_eval.contrastive_loss / n, atol=TOL, rtol=0)
    torch.testing.assert_close(ours.terms["diversity"], hf_train.diversity_loss / n, atol=TOL, rtol=0)


def save_torchaudio_pretraining(path, conv=((16, 10, 5), (16, 3, 2), (16, 3, 2))) -> nn.Module:
    """A random-init torchaudio HuBERTPretrainModel of our tiny architecture, saved as its state dict."""
    from torchaudio.models import hubert_pretrain_model

    torch.manual_seed(0)
    ref = hubert_pretrain_model(
        extractor_mode="group_norm", extractor_conv_layer_config=list(conv),
        extractor_conv_bias=False, encoder_embed_dim=32, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=4, encoder_attention_dropout=0.0,
        encoder_ff_interm_features=64, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
        encoder_layer_norm_first=False, encoder_layer_drop=0.0, mask_prob=0.5, mask_selection="static",
        mask_other=0.0, mask_length=5, no_mask_overlap=False, mask_min_space=1, mask_channel_prob=0.0,
        mask_channel_selection="static", mask_channel_other=0.0, mask_channel_length=10,
        no_mask_channel_overlap=False, mask_channel_min_space=1, skip_masked=False, skip_nomask=False,
        num_classes=NUM_CLASSES, final_dim=FINAL_DIM, feature_grad_mult=None).eval()
    perturb(ref)
    torch.save(ref.state_dict(), path)
    return ref


def test_torchaudio_hubert_pretrain_model_logits_and_loss(tmp_path):
    ref = save_torchaudio_pretraining(tmp_path / "ta.pt")
    model = ssl_model(HUBERT, seed=1)
    init_from_checkpoint(model, tmp_path / "ta.pt")

    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4000, 4000])  # no padding: torchaudio's penalty averages over padded frames
    frames = int(model.upstream.frame_lengths(lengths)[0])
    time_mask = span_mask(2, frames, seed=2)
    labels = torch.randint(0, NUM_CLASSES, (2, frames), generator=torch.Generator().manual_seed(4))
    embedding = ref.mask_generator.mask_embedding

    def given_mask(x: Tensor, padding_mask: Any) -> Any:
        return torch.where(time_mask[..., None], embedding, x), time_mask

    ref.mask_generator.forward = given_mask  # our mask, its own (imported) embedding
    objective = model.objectives["hubert"]
    with torch.no_grad():
        logit_m, logit_u, pen = ref(wav, labels)
        out = model.upstream(wav, lengths, time_mask=time_mask)
        result = objective(out, time_mask, {"targets": labels, "target_lens": torch.tensor([frames, frames])})
        hidden = out.hidden_states[-1][time_mask]
        ours_logits = objective.logits(objective.final_proj[0](hidden))  # (N, C)
    # torchaudio's rows are [target, every class with the target's column at -inf]
    expected = logit_m[:, 1:].clone()
    target = labels[time_mask]
    assert torch.isinf(expected[torch.arange(len(target)), target]).all()
    expected[torch.arange(len(target)), target] = logit_m[:, 0]
    torch.testing.assert_close(ours_logits, expected, atol=TOL, rtol=0)
    n_m, n_u = int(time_mask.sum()), int((~time_mask).sum())
    top = len(out.hidden_states) - 1
    for term, logits, n in ((f"masked_ce_l{top}", logit_m, n_m), (f"unmasked_ce_l{top}", logit_u, n_u)):
        loss = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long), reduction="sum") / n
        torch.testing.assert_close(result.terms[term], loss, atol=TOL, rtol=0)
    torch.testing.assert_close(result.terms["feature_pen"], pen, atol=TOL, rtol=0)


def fairseq_checkpoint(model: nn.Module, name: str) -> Dict[str, Any]:
    """Our model's weights under fairseq's names (heads as fairseq's Wav2Vec2Model / HubertModel keep them)."""
    state = to_fairseq_state(model.upstream)
    objective = next(iter(model.objectives.values()))
    if name == "wav2vec2":
        q = objective.quantizer
        state["quantizer.vars"] = q.codebooks.detach().reshape(1, -1, q.codebooks.shape[-1])
        heads = {"quantizer.weight_proj": q.weight_proj, "project_q": objective.project_q,
                 "final_proj": objective.final_proj}
    else:
        state["label_embs_concat"] = objective.label_embs.detach().clone()
        heads = {"final_proj": objective.final_proj[0]}
    for prefix, layer in heads.items():
        state[f"{prefix}.weight"], state[f"{prefix}.bias"] = layer.weight.detach(), layer.bias.detach()
    return {"cfg": {"model": {"_name": name, **FAIRSEQ_CFG}, "task": {"normalize": False}}, "model": state}


@pytest.mark.parametrize("name, objective", [("wav2vec2", W2V2), ("hubert", HUBERT)])
def test_fairseq_pretraining_checkpoint_fills_every_tensor(name, objective, tmp_path):
    source = ssl_model(objective, seed=0)
    perturb(source)
    torch.save(fairseq_checkpoint(source, name), tmp_path / "fs.pt")
    model = ssl_model(objective, seed=1)
    init_from_checkpoint(model, tmp_path / "fs.pt")
    theirs = source.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, theirs[key]), key


def test_heads_that_do_not_fit_the_config_are_named(tmp_path):
    source = ssl_model(HUBERT)
    torch.save(fairseq_checkpoint(source, "hubert"), tmp_path / "hubert.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatches \(1\): objectives\.hubert\.label_embs: "
                                              r"checkpoint \(10, 12\) vs model \(20, 12\)"):
        init_from_checkpoint(ssl_model({**HUBERT, "num_classes": 20}), tmp_path / "hubert.pt")
    with pytest.raises(CheckpointError) as err:  # a HuBERT checkpoint for a wav2vec 2.0 config
        init_from_checkpoint(ssl_model(W2V2), tmp_path / "hubert.pt")
    assert "missing keys (7): objectives.wav2vec2.final_proj.bias" in str(err.value)
    assert "unexpected keys (3): objectives.hubert.final_proj.0.bias" in str(err.value)
    with pytest.raises(CheckpointError, match="encoder.layer_norm_first: checkpoint False vs config True"):
        init_from_checkpoint(ssl_model(HUBERT, layer_norm_first=True), tmp_path / "hubert.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pre-training checkpoint init_from can read"):
        init_from_checkpoint(ssl_model(HUBERT), tmp_path / "other.pt")


def fsdd_cuts(fsdd_dir, out_dir):
    from lhotse import CutSet, Recording, RecordingSet

    files = sorted(fsdd_dir.glob("*_jackson_[0-2].wav"))
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(Recording.from_file(f) for f in files))
    cuts.to_file(out_dir / "cuts.jsonl.gz")
    return out_dir / "cuts.jsonl.gz"


def continue_pretraining(tmp_path, cuts, upstream, objective, init_from, **data):
    """bin.train with init_from for 20 updates (fixed seed): (losses per update, the args to rerun it)."""
    import re

    import yaml

    from speechssl2.bin import train as train_bin
    from speechssl2.train import checkpoint as ckpt

    config = {
        "model": {"name": "ssl", "upstream": upstream, "masking": {"prob": 0.1, "span": 3}, "objectives": [objective]},
        "data": {"train": str(cuts), "max_duration": 4.0, "num_workers": 0, **data},
        "optim": {"lr": 5e-4}, "scheduler": {"name": "constant"},
        "trainer": {"max_updates": 20, "log_every": 1, "save_every": 20, "valid_every": 100, "seed": 3},
        "exp_dir": str(tmp_path / "exp"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["--config", str(tmp_path / "c.yaml"), "--set", f"init_from={init_from}"]
    train_bin.main(args)
    log = (tmp_path / "exp" / "train.log").read_text()
    expected = len(MODELS.build({**config["model"]}).state_dict())
    assert f"loaded {expected} tensors (upstream and objective heads)" in log
    assert ckpt.load_checkpoint(tmp_path / "exp" / ckpt.LAST)["num_updates"] == 20  # from update 0
    losses = [float(x) for x in re.findall(r"^.*update \d+ epoch \d+ \|.*? loss (\S+)", log, flags=re.M)]
    assert len(losses) == 20
    return losses, args


@pytest.mark.slow
def test_continued_pretraining_from_hf_on_fsdd_lowers_the_loss(fsdd_dir, tmp_path):
    """init_from=<HF dir>: the mean loss of the last 5 of 20 updates is below that of the first 5."""
    from speechssl2.bin import train as train_bin
    from speechssl2.config import ConfigError

    save_hf_pretraining(tmp_path / "hf")
    losses, args = continue_pretraining(tmp_path, fsdd_cuts(fsdd_dir, tmp_path), UPSTREAM, W2V2, tmp_path / "hf")
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses

    # init_from is an input of the stage: unchanged -> skipped; another checkpoint there -> not resumed
    train_bin.main(args)
    assert "[train] up to date" in (tmp_path / "exp" / "train.log").read_text()
    save_hf_pretraining(tmp_path / "hf", seed=1)
    with pytest.raises(ConfigError, match="hf"):
        train_bin.main(args)


@pytest.mark.slow
def test_continued_pretraining_from_torchaudio_on_fsdd_lowers_the_loss(fsdd_dir, tmp_path):
    """init_from=<torchaudio HuBERTPretrainModel state dict> with MFCC k-means labels on the model's 50 Hz
    grid (7 conv layers): the mean loss of the last 5 of 20 updates is below that of the first 5."""
    from lhotse import CutSet

    from speechssl2.targets.features import MfccFeatures
    from speechssl2.targets.kmeans import NearestCentroid, train_kmeans
    from speechssl2.targets.labels import label_shard, merge_parts
    from speechssl2.targets.shards import ShardFiles, dump_shard

    conv = [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2
    save_torchaudio_pretraining(tmp_path / "ta.pt", conv)
    cuts = list(CutSet.from_file(fsdd_cuts(fsdd_dir, tmp_path)))
    shard = ShardFiles(tmp_path / "feats", 0, 1)
    dump_shard(cuts, MfccFeatures(), shard, 16000)
    labeler = NearestCentroid(train_kmeans(np.load(shard.feats), NUM_CLASSES, 10, 1, 0).centroids)
    part = label_shard(cuts, shard, labeler, tmp_path / "labels", "km", 16000)
    merge_parts(cuts, [part], tmp_path / "cuts_km.jsonl.gz")
    upstream = {**UPSTREAM, "frontend": {"channels": [c for c, _, _ in conv], "kernels": [k for _, k, _ in conv],
                                         "strides": [s for _, _, s in conv]}}
    losses, _ = continue_pretraining(tmp_path, tmp_path / "cuts_km.jsonl.gz", upstream, HUBERT, tmp_path / "ta.pt",
                                     label_field="km")
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses
