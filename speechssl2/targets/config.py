"""One config for the four target stages (dump_features, learn_kmeans, dump_labels, pnmi).

A recipe keeps one YAML per HuBERT iteration and points the stages at another data set
with ``--set cuts=data/valid/cuts.jsonl.gz``. Paths derived from it:

- features: ``<exp_dir>/feats_iter<k>/<tag>/feats_<rank>_<nshard>.{npy,len,json}``
  (``features.format: kaldi`` or ``both``: ``.ark``/``.scp`` per shard and ``feats.scp`` over all)
- k-means:  ``<exp_dir>/kmeans_iter<k>/km.{npy,json}``
- labels:   ``<exp_dir>/kmeans_iter<k>/labels/<tag>/`` (arrays + per-shard manifests)
- manifest: ``<dir of cuts>/cuts_<labels.name>.jsonl.gz``
- report:   ``<exp_dir>/kmeans_iter<k>/pnmi_<tag>.{md,json}`` and ``<exp_dir>/pnmi_<tag>.md``

``tag`` defaults to the name of the folder holding the cuts (``data/train/...`` -> ``train``).
Example (iteration 2 changes ``iteration``, ``features`` and ``kmeans.n_clusters``)::

    cuts: data/train/cuts.jsonl.gz
    exp_dir: exp/hubert_targets
    iteration: 1
    features: {kind: mfcc, dtype: float32}
    shard: {nshard: 4}            # each job adds --set shard.rank=<r>
    kmeans: {n_clusters: 100, max_frames: 1000000, percent: 0.1, seed: 0}
    labels: {field: hubert_labels}
    pnmi: {reference: text, min_pnmi: 0.1}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional

from speechssl2.cli import parse_stage
from speechssl2.config import save_config
from speechssl2.logging_utils import setup_logging
from speechssl2.targets.shards import ShardFiles


@dataclass
class FeatureConfig:
    kind: Literal["mfcc", "layer", "scp"] = "mfcc"  # mfcc (iteration 1); layer: a pre-trained model's; scp: read features.scp
    checkpoint: Optional[str] = None  # kind=layer: model given to speechssl2.load_pretrained
    layer: int = 6  # kind=layer: index into hidden_states (0 = projected conv features)
    scp: Optional[str] = None  # kind=scp: Kaldi feats.scp with one matrix per cut id
    subsample: int = 1  # kind=scp: keep every n-th frame (2 for Kaldi's 10 ms frames; the model's are 20 ms)
    dtype: Literal["float16", "float32"] = "float32"  # dtype of the dumped .npy (a Kaldi ark is float32)
    format: Literal["npy", "kaldi", "both"] = "npy"  # npy: what k-means reads; kaldi: .ark/.scp + feats.scp; both
    device: str = "cpu"  # kind=layer: where the upstream runs
    sample_rate: int = 16000  # cuts at another rate are resampled on the fly


@dataclass
class ShardConfig:
    nshard: int = 1  # feature shards (one per parallel job)
    rank: Optional[int] = None  # None: every shard in this process


@dataclass
class KMeansConfig:
    n_clusters: int = 100  # codebook size: the number of distinct labels
    max_frames: int = 1_000_000  # cap on the training sample (whole utterances are dropped to fit)
    percent: float = 1.0  # fraction of the utterances to sample (fairseq learn_kmeans --percent)
    niter: int = 20  # Lloyd iterations per restart (faiss)
    nredo: int = 1  # k-means restarts from independent seedings; the lowest inertia is kept
    init: Literal["k-means++", "random"] = "k-means++"  # seeding of each restart
    init_size: int = 30000  # frames the k-means++ seeding draws from (MiniBatchKMeans: 3 x batch_size)
    n_init: int = 1  # k-means++ seedings per restart; the one with the lowest inertia on the init frames is kept
    seed: int = 0  # seeds the utterance sample and the k-means initialisation
    centroids: Optional[str] = None  # (K, D) .npy used instead of training: a released HuBERT's k-means


@dataclass
class LabelConfig:
    field: str = "hubert_labels"  # custom cut field the labels are stored in
    name: Optional[str] = None  # manifest cuts_<name>.jsonl.gz; default hubert_iter<k>
    manifest: Optional[str] = None  # explicit output path instead


@dataclass
class PnmiConfig:
    reference: str = "text"  # or "alignment:<kind>"
    min_pnmi: Optional[float] = None  # quality gate: fail the stage below this


@dataclass
class TargetsConfig:
    cuts: str  # cut manifest whose audio is featurized and labelled
    exp_dir: str  # features, k-means, labels, logs and reports go under it
    iteration: int = 1  # HuBERT iteration: names the feats_iter<k> / kmeans_iter<k> folders
    tag: Optional[str] = None  # name of the set in paths; default: the folder holding cuts
    features: FeatureConfig = field(default_factory=FeatureConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    pnmi: PnmiConfig = field(default_factory=PnmiConfig)

    @property
    def set_tag(self) -> str:
        return self.tag or Path(self.cuts).parent.name or "data"

    @property
    def feat_dir(self) -> Path:
        return Path(self.exp_dir) / f"feats_iter{self.iteration}" / self.set_tag

    @property
    def kmeans_dir(self) -> Path:
        return Path(self.exp_dir) / f"kmeans_iter{self.iteration}"

    @property
    def labels_dir(self) -> Path:
        return self.kmeans_dir / "labels" / self.set_tag

    @property
    def label_name(self) -> str:
        return self.labels.name or f"hubert_iter{self.iteration}"

    @property
    def label_manifest(self) -> Path:
        if self.labels.manifest:
            return Path(self.labels.manifest)
        return Path(self.cuts).parent / f"cuts_{self.label_name}.jsonl.gz"

    def shard_files(self) -> List[ShardFiles]:
        """Every shard of the dump (what k-means and labelling read)."""
        return [ShardFiles(self.feat_dir, r, self.shard.nshard) for r in range(self.shard.nshard)]

    def my_ranks(self) -> List[int]:
        """The shards this process works on: ``shard.rank`` or all of them."""
        if self.shard.rank is None:
            return list(range(self.shard.nshard))
        if not 0 <= self.shard.rank < self.shard.nshard:
            raise ValueError(f"shard.rank={self.shard.rank} outside 0..{self.shard.nshard - 1}")
        return [self.shard.rank]


def load_stage_config(stage: str, description: str, argv: Optional[List[str]] = None) -> TargetsConfig:
    """Parse ``--config/--set``, start logging to ``<exp_dir>/log/``, save the resolved config."""
    cfg, _ = parse_stage(TargetsConfig, description, argv, stage=stage)
    ranks = "all" if cfg.shard.rank is None else str(cfg.shard.rank)
    name = f"{stage}_iter{cfg.iteration}_{cfg.set_tag}_{ranks}"
    setup_logging(Path(cfg.exp_dir) / "log" / f"{name}.log")
    save_config(cfg, Path(cfg.exp_dir) / "conf" / f"{name}.yaml")
    return cfg
