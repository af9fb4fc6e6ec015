"""Continued pre-training: every weight of an SSL model (upstream *and* objective heads) from a checkpoint.

``init_from_checkpoint(model, path)`` is what ``bin.train``'s ``init_from`` calls. The
training config builds the model; the checkpoint must fit it. Where the checkpoint
carries its own config (HF, fairseq, speechssl2) the architecture fields are compared
first, so a post-LN config never silently takes pre-LN weights of the same shapes; then
every tensor is loaded strictly (missing, unexpected and misshaped tensors are named).

Formats and the heads they carry (``objectives.<name>.`` below is ours):

- HF ``Wav2Vec2ForPreTraining`` directory: ``quantizer.codevectors`` (1, G*V, d) ->
  ``wav2vec2.quantizer.codebooks`` (G, V, d), ``quantizer.weight_proj``, ``project_q``,
  ``project_hid`` -> ``wav2vec2.final_proj``.
- fairseq wav2vec 2.0: ``quantizer.vars``, ``quantizer.weight_proj``, ``project_q``,
  ``final_proj``, ``mask_emb``. fairseq HuBERT: ``final_proj`` and ``label_embs_concat`` ->
  ``hubert.final_proj.0`` and ``hubert.label_embs``. Its labels must come from the k-means
  model the checkpoint was trained on (the cluster ids index ``label_embs``).
- torchaudio ``HuBERTPretrainModel``: ``torch.save(model.state_dict())``, or a Lightning
  checkpoint whose ``state_dict`` holds it under ``model.``; ``logit_generator.final_proj``,
  ``logit_generator.label_embeddings``, ``mask_generator.mask_embedding``. No config: shapes only.
- speechssl2 training checkpoint: the model's own keys (any model, not only ``ssl``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping

from torch import Tensor, nn

from speechssl2.models.io import fairseq, hf
from speechssl2.models.io.detect import detect, read_checkpoint
from speechssl2.models.io.rename import CheckpointError, Table, load_strict, rename
from speechssl2.models.upstream import resolve_spec

log = logging.getLogger(__name__)

W2V2, HUBERT = "objectives.wav2vec2.", "objectives.hubert."
HF_HEADS: Table = [
    (W2V2 + "quantizer.codebooks", "quantizer.codevectors"), (W2V2 + "quantizer.weight_proj.", "quantizer.weight_proj."),
    (W2V2 + "project_q.", "project_q."), (W2V2 + "final_proj.", "project_hid."),
]
FAIRSEQ_W2V2_HEADS: Table = [
    (W2V2 + "quantizer.codebooks", "quantizer.vars"), (W2V2 + "quantizer.weight_proj.", "quantizer.weight_proj."),
    (W2V2 + "project_q.", "project_q."), (W2V2 + "final_proj.", "final_proj."),
]
FAIRSEQ_HUBERT_HEADS: Table = [(HUBERT + "final_proj.0.", "final_proj."), (HUBERT + "label_embs", "label_embs_concat")]
TORCHAUDIO_HEADS: Table = [
    (HUBERT + "final_proj.0.", "logit_generator.final_proj."), (HUBERT + "label_embs", "logit_generator.label_embeddings"),
]
# torchaudio's wav2vec2 components are HF's one level deeper (HF name prefix -> torchaudio name prefix)
TORCHAUDIO_NEST = (("feature_extractor.", "wav2vec2.feature_extractor."),
                   ("feature_projection.", "wav2vec2.encoder.feature_projection."),
                   ("encoder.", "wav2vec2.encoder.transformer."), ("masked_spec_embed", "mask_generator.mask_embedding"))
# Fields that change what the weights mean without changing their shapes (or that shapes cannot show).
ARCHITECTURE = {"frontend": ("name", "channels", "kernels", "strides", "conv_bias", "norm_mode"),
                "encoder": ("name", "embed_dim", "num_layers", "num_heads", "ffn_dim", "layer_norm_first",
                            "pos_conv_kernel", "pos_conv_groups", "num_buckets", "max_distance")}


def upstream_table(table: Table) -> Table:
    """An upstream rename table applied to the SSL model's ``upstream.`` sub-module."""
    return [("upstream." + ours, theirs) for ours, theirs in table]


def torchaudio_table() -> Table:
    def nest(key: str) -> str:
        for hf_prefix, ta_prefix in TORCHAUDIO_NEST:
            if key.startswith(hf_prefix):
                return ta_prefix + key[len(hf_prefix):]
        raise AssertionError(f"no torchaudio name for HF key {key!r}")

    return upstream_table([(ours, nest(theirs)) for ours, theirs in hf.TRANSFORMER]) + TORCHAUDIO_HEADS


def is_torchaudio(state: Mapping[str, Any]) -> bool:
    return any(str(k).startswith("logit_generator.") for k in state)


def check_architecture(ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str) -> None:
    """Raise naming every architecture field where the config's upstream differs from the checkpoint's."""
    ours, theirs = resolve_spec(ours), resolve_spec(theirs)
    diffs = [f"{part}.{key}: checkpoint {theirs[part].get(key)!r} vs config {ours[part].get(key)!r}"
             for part, keys in ARCHITECTURE.items() for key in keys
             if ours[part].get(key) != theirs[part].get(key)]
    if bool(ours.get("normalize_waveform")) != bool(theirs.get("normalize_waveform")):
        diffs.append(f"normalize_waveform: checkpoint {theirs.get('normalize_waveform')} vs config "
                     f"{ours.get('normalize_waveform')}")
    if diffs:
        raise CheckpointError(f"{where}: the config's model.upstream is not the checkpoint's architecture: "
                              + "; ".join(diffs))


def fit_codebooks(state: Dict[str, Tensor], model: nn.Module) -> None:
    """HF/fairseq keep the codebook as (1, G*V, d); ours is (G, V, d): the same rows, viewed."""
    expected = model.state_dict()
    key = W2V2 + "quantizer.codebooks"
    if key in state and key in expected:
        groups, num_vars, dim = expected[key].shape
        if tuple(state[key].shape) == (1, groups * num_vars, dim):
            state[key] = state[key].view(groups, num_vars, dim)


def from_hf(directory: Path, spec: Mapping[str, Any]) -> Dict[str, Tensor]:
    cfg, normalize = hf.read_config(directory)
    check_architecture(spec, hf.hf_config_to_spec(cfg, normalize), str(directory))
    base, heads = hf.split_base(hf.read_state_file(directory))
    table, ignore = hf.table_for(spec)
    state = rename(base, upstream_table(table), ignore=ignore, where=str(directory))
    state.update(rename(heads, HF_HEADS, where=str(directory)))
    return state


def from_fairseq(ckpt: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> Dict[str, Tensor]:
    theirs = fairseq.checkpoint_spec(ckpt)
    check_architecture(spec, theirs, where)
    heads = FAIRSEQ_HUBERT_HEADS if theirs["name"].startswith("hubert") else FAIRSEQ_W2V2_HEADS
    table = upstream_table(fairseq.table(resolve_spec(spec)["frontend"]["norm_mode"])) + heads
    return rename(ckpt["model"], table, where=where)


def checkpoint_state(path: Path, model: nn.Module) -> Dict[str, Tensor]:
    """The checkpoint's weights under the model's own names (not yet checked against the model)."""
    upstream = getattr(model, "upstream", None)
    spec = getattr(upstream, "spec", None)
    if path.is_dir():
        _need_ssl(spec, path, "an HF directory")
        return from_hf(path, spec)
    ckpt = read_checkpoint(path)
    kind = detect(ckpt)
    if kind == "speechssl2-training":
        if spec is not None:
            check_architecture(spec, ckpt["config"]["model"]["upstream"], str(path))
        return dict(ckpt["model"])
    if kind in ("fairseq", "unispeech"):
        _need_ssl(spec, path, "a fairseq checkpoint")
        return from_fairseq(ckpt, spec, str(path))
    state = ckpt.get("state_dict", ckpt)  # a Lightning checkpoint of the torchaudio example holds model.<key>
    if isinstance(state, Mapping) and not is_torchaudio(state):
        state = {k[len("model."):]: v for k, v in state.items() if str(k).startswith("model.")}
    if isinstance(state, Mapping) and is_torchaudio(state):
        _need_ssl(spec, path, "a torchaudio HuBERTPretrainModel state dict")
        return rename(state, torchaudio_table(), where=str(path))
    raise CheckpointError(
        f"{path}: not a pre-training checkpoint init_from can read (top-level keys: {sorted(map(str, ckpt))[:10]}); "
        "expected an HF directory, a fairseq wav2vec 2.0 / HuBERT .pt, a torchaudio HuBERTPretrainModel "
        "state dict or a speechssl2 training checkpoint"
    )


def _need_ssl(spec: Any, path: Path, what: str) -> None:
    if spec is None:
        raise CheckpointError(f"{path}: {what} can only initialise a model with an upstream (model.name: ssl)")


def init_from_checkpoint(model: nn.Module, path: str | Path) -> List[str]:
    """Load every weight of ``model`` from ``path``; returns the model's keys that were loaded."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"init_from: checkpoint not found: {path}")
    state = checkpoint_state(path, model)
    fit_codebooks(state, model)
    expected = model.state_dict()
    if "upstream.mask_emb" in expected and "upstream.mask_emb" not in state and path.is_dir():
        # HF drops the mask embedding when its config masks nothing; keep ours rather than refuse the model
        log.warning("init_from %s: no masked_spec_embed in the checkpoint; the mask embedding keeps its init", path)
        state["upstream.mask_emb"] = expected["upstream.mask_emb"]
    load_strict(model, state, where=f"init_from {path}")
    log.info("init_from %s: loaded %d tensors (upstream and objective heads)", path, len(state))
    return sorted(state)

