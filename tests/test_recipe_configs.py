"""Every training config of the small recipes loads, validates and builds its model."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

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
        for model in ("hubert", "wav2vec2", "wavlm", "w2v_bert", "ils_hubert"):
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
