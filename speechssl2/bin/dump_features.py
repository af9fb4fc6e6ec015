"""Dump MFCC, layer-N or Kaldi ``feats.scp`` features at the model frame rate, sharded and resumable.

``python -m speechssl2.bin.dump_features --config conf/targets_iter1.yaml --set shard.rank=0``
(omit ``shard.rank`` to dump every shard in this process). See speechssl2.targets.config.
``features.format: kaldi`` (or ``both``) writes Kaldi ``.ark``/``.scp`` shards, and the job
that completes the last shard joins them into ``<feat_dir>/feats.scp`` for Kaldi and ESPnet.
``features.kind: scp`` reads an existing ``feats.scp`` instead of computing features.
"""
from __future__ import annotations

from typing import List, Optional

from lhotse import CutSet

from speechssl2.cli import run_main
from speechssl2.config import ConfigError
from speechssl2.targets.ark import ScpFeatures, merge_scp
from speechssl2.targets.bookkeeping import feature_shard_stage, remove
from speechssl2.targets.config import FeatureConfig, TargetsConfig, load_stage_config
from speechssl2.targets.features import FrameFeatures, LayerFeatures, MfccFeatures
from speechssl2.targets.shards import ShardFiles, dump_shard


def build_extractor(cfg: FeatureConfig) -> FrameFeatures:
    """MFCC for iteration 1; ``hidden_states[layer]`` of a pre-trained upstream after that; or a feats.scp."""
    if cfg.kind == "mfcc":
        return MfccFeatures(sample_rate=cfg.sample_rate)
    if cfg.kind == "scp":
        if not cfg.scp:
            raise ConfigError("features.kind=scp needs features.scp (a Kaldi feats.scp keyed by cut id)")
        return ScpFeatures(cfg.scp, subsample=cfg.subsample)
    if not cfg.checkpoint:
        raise ConfigError("features.kind=layer needs features.checkpoint (the previous iteration's model)")
    from speechssl2 import load_pretrained  # models family; imported only when needed

    upstream, _ = load_pretrained(cfg.checkpoint)
    return LayerFeatures(upstream, cfg.layer, source=cfg.checkpoint, device=cfg.device)


def main(argv: Optional[List[str]] = None) -> None:
    cfg = load_stage_config("dump_features", __doc__, argv)
    cuts = list(CutSet.from_file(cfg.cuts))
    extractor = build_extractor(cfg.features)
    if isinstance(extractor, ScpFeatures):
        extractor.require([c.id for c in cuts])
    for rank in cfg.my_ranks():
        stage = feature_shard_stage(cfg, rank)
        if stage.up_to_date():
            continue
        files = ShardFiles(cfg.feat_dir, rank, cfg.shard.nshard)
        outputs = files.outputs(cfg.features.format)
        if not stage.resumable:  # a complete shard of another cut list or upstream is not this one
            remove(outputs)
        dump_shard(cuts, extractor, files, cfg.features.sample_rate, cfg.features.dtype, cfg.features.format)
        stage.done(outputs)
    merge_kaldi_shards(cfg)


def merge_kaldi_shards(cfg: TargetsConfig) -> None:
    """``<feat_dir>/feats.scp`` over every shard, once all are dumped (each job checks; the last one writes)."""
    shards = cfg.shard_files()
    if cfg.features.format != "npy" and all(f.marker.exists() and f.scp.exists() for f in shards):
        merge_scp([f.scp for f in shards], cfg.feat_dir / "feats.scp")


if __name__ == "__main__":
    run_main(main)
