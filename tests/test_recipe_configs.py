"""Every training config of the small recipes loads, validates and builds its model."""
from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest

from speechssl2.bin import dump_features, dump_labels, learn_kmeans, prepare_data, train
from speechssl2.config import load_config
from speechssl2.registry import MODELS, OBJECTIVES, check_arguments
from speechssl2.train.config import TrainConfig, validate

REPO = Path(__file__).resolve().parents[1]
CONFS = sorted(
    p for recipe in ("asterisk", "fsdd") for p in (REPO / "egs" / recipe / "ssl1" / "conf").rglob("*.yaml")
    if p.name.startswith(("pretrain_", "finetune_"))
)


def test_small_recipes_have_every_objective_config():
    names = {(p.parts[-4], p.name) for p in CONFS if p.parent.name == "conf"}
    for recipe in ("asterisk", "fsdd"):
        for model in ("wav2vec", "hubert", "wav2vec2", "wavlm", "w2v_bert", "ils_hubert", "ils_wavlm", "wav2vec2_mlm"):
            assert (recipe, f"pretrain_{model}.yaml") in names


@pytest.mark.parametrize("path", CONFS, ids=lambda p: str(p.relative_to(REPO / "egs")))
def test_config_validates(path):
    cfg = load_config(TrainConfig, path)
    validate(cfg)
    if cfg.model["name"] == "ssl" and "tiny" in cfg.model["upstream"]["name"]:
        model = MODELS.build(cfg.model)  # tiny: cheap enough to build every time
        assert sum(p.numel() for p in model.parameters()) < 1_000_000
    elif cfg.model["name"] == "ssl":  # paper size: too big to build here; check the objectives' arguments
        for spec in cfg.model["objectives"]:
            kwargs = {k: v for k, v in spec.items() if k not in ("name", "weight")}
            factory = OBJECTIVES.get(spec["name"])
            sizes = {k: 8 for k in ("embed_dim", "feature_dim") if k in inspect.signature(factory).parameters}
            check_arguments(factory, {**sizes, **kwargs}, where=f"objectives.{spec['name']}")


@pytest.mark.parametrize("path", sorted((REPO / "egs").glob("*/ssl1/conf/targets_iter*.yaml")),
                         ids=lambda p: str(p.relative_to(REPO / "egs")))
def test_targets_configs_validate(path):
    from speechssl2.targets.config import TargetsConfig

    cfg = load_config(TargetsConfig, path)
    assert cfg.iteration == int(path.stem.removeprefix("targets_iter"))
    assert (cfg.features.kind == "mfcc") == (cfg.iteration == 1)  # later iterations cluster model layers


FSDD_CONF = REPO / "egs" / "fsdd" / "ssl1" / "conf"
SMOKE_UPDATES = 3


@pytest.fixture(scope="module")
def fsdd_labelled_cuts(fsdd_dir, tmp_path_factory):
    """Six FSDD train recordings through the recipe's stages 0 and 2 (its data and targets configs)."""
    work = tmp_path_factory.mktemp("fsdd_recipe")
    corpus = work / "recordings"
    corpus.mkdir()
    for path in sorted(fsdd_dir.glob("[0-5]_theo_7.wav")):
        (corpus / path.name).symlink_to(path)
    prepare_data.main(["--config", str(FSDD_CONF / "data.yaml"), "--set", f"corpus.corpus_dir={corpus}",
                       "--set", f"output_dir={work / 'data'}"])
    targets = ["--config", str(FSDD_CONF / "targets_iter1.yaml"), "--set", f"cuts={work / 'data/train/cuts.jsonl.gz'}",
               "--set", f"exp_dir={work / 'exp'}",
               "--set", "kmeans.n_clusters=8"]  # 6 digits have ~90 frames, too few for 100 clusters
    for stage in (dump_features, learn_kmeans, dump_labels):
        stage.main(targets)
    return work / "data" / "train" / "cuts_hubert_iter1.jsonl.gz"


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(FSDD_CONF.glob("pretrain_*.yaml")), ids=lambda p: p.stem)
def test_small_pretrain_config_trains(path, fsdd_labelled_cuts, noise_dir, tmp_path):
    """A few real updates of every FSDD pre-training config through ``bin.train``, as stage 3 runs them."""
    exp = tmp_path / "exp"
    overrides = {"data.train": fsdd_labelled_cuts, "exp_dir": exp, "trainer.max_updates": SMOKE_UPDATES,
                 "trainer.log_every": 1, "scheduler.warmup_updates": 1}
    if load_config(TrainConfig, path).data.mixing:
        overrides["data.mixing.noise_dir"] = noise_dir  # the config's path is relative to the recipe folder
    train.main(["--config", str(path)] + [arg for k, v in overrides.items() for arg in ("--set", f"{k}={v}")])
    log = (exp / "train.log").read_text()
    assert "non-finite" not in log
    lines = {int(n): rest.split() for n, rest in re.findall(r"update (\d+) epoch \d+ \| (.*)", log)}
    assert sorted(lines) == list(range(1, SMOKE_UPDATES + 1)), log[-2000:]
    for update, words in lines.items():
        values = {name: float(value) for name, value in zip(words[::2], words[1::2])}  # loss, terms, grad_norm, ...
        assert values["loss"] > 0 and all(math.isfinite(v) for v in values.values()), (update, values)
