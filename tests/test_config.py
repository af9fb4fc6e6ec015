from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional

import pytest
import yaml

from speechssl2.config import ConfigError, load_config, save_config
from speechssl2.typecheck import ConfigTypeError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])


@dataclass
class Exp:
    name: str
    optim: Optim = field(default_factory=Optim)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    encoder: Dict[str, Any] = field(default_factory=dict)
    max_updates: Optional[int] = None


def write(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_load_and_override(tmp_path):
    path = write(tmp_path, {"name": "a", "optim": {"lr": 1}, "encoder": {"name": "transformer"}})
    cfg = load_config(Exp, path, ["optim.lr=5e-4", "encoder.layers=2", "max_updates=10"])
    assert cfg.optim.lr == 5e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.encoder == {"name": "transformer", "layers": 2}
    assert cfg.max_updates == 10


def test_int_is_float(tmp_path):
    cfg = load_config(Exp, write(tmp_path, {"name": "a", "optim": {"lr": 1}}))
    assert isinstance(cfg.optim.lr, float)


def test_unknown_field_named_with_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown field; valid fields of Optim: lr, betas"):
        load_config(Exp, write(tmp_path, {"name": "a"}), ["optim.lrr=1"])


def test_wrong_type(tmp_path):
    with pytest.raises(ConfigTypeError, match=r"optim\.lr: expected float, got str"):
        load_config(Exp, write(tmp_path, {"name": "a", "optim": {"lr": "fast"}}))
    with pytest.raises(ConfigTypeError, match="precision"):
        load_config(Exp, write(tmp_path, {"name": "a", "precision": "fp8"}))


def test_required_field(tmp_path):
    with pytest.raises(ConfigError, match="name: required field missing"):
        load_config(Exp, write(tmp_path, {}))


def test_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(Exp, write(tmp_path, {"name": "a"}), ["optim.lr"])


def test_override_that_is_not_yaml_stays_a_string_and_is_still_type_checked(tmp_path):
    cfg = load_config(Exp, write(tmp_path, {"name": "a"}), ["name='abc"])  # unmatched quote: a character set
    assert cfg.name == "'abc"
    with pytest.raises(ConfigTypeError, match="optim.betas: expected"):
        load_config(Exp, write(tmp_path, {"name": "a"}), ["optim.betas=[0.9, 0.98"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(Exp, write(tmp_path, {"name": "a"}), ["optim.lr=0.5"])
    out = save_config(cfg, tmp_path / "exp" / "config.yaml")
    again = load_config(Exp, out)
    assert again == cfg
