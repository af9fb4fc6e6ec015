"""YAML experiment configs as typed dataclasses, with dotted command-line overrides.

A config file maps onto a dataclass tree; components inside it stay plain dicts
(``{"name": key, ...}``) that a registry validates when it builds them. Every
experiment writes its fully resolved config next to its outputs.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence, Type, TypeVar, get_type_hints

import yaml

from speechssl2.typecheck import ConfigTypeError, check_type

C = TypeVar("C")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A config names a field that does not exist, misses a required one, or is malformed."""


def load_yaml(path: str | os.PathLike) -> Dict[str, Any]:
    """The top-level mapping of a config file; a missing file or bad YAML is a ``ConfigError``."""
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = parse_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``a.b.c=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {key!r} holds {child!r}, not a mapping")
            node = child
        node[keys[-1]] = override_value(raw)
    return data


def override_value(raw: str) -> Any:
    """A command-line value as YAML (``1e-4``, ``[1, 2]``, ``{name: x}``); text that is not
    valid YAML (``'abc`` with an unmatched quote, e.g. a character set) stays a string, and
    the dataclass type check still rejects it where a string is wrong."""
    if raw == "":
        return ""
    try:
        return parse_yaml(raw)
    except yaml.YAMLError:
        return raw


def from_dict(cls: Type[C], data: Mapping[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields."""
    if not isinstance(data, Mapping):
        raise ConfigTypeError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{_join(where, key)}: unknown field; valid fields of {cls.__name__}: {', '.join(fields)}"
            )
    kwargs: Dict[str, Any] = {}
    for name, field in fields.items():
        path = _join(where, name)
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: required field missing")
            continue
        ann = hints[name]
        value = data[name]
        if dataclasses.is_dataclass(ann):
            kwargs[name] = from_dict(ann, value or {}, path)
        else:
            check_type(value, ann, path)
            kwargs[name] = _coerce(value, ann)
    return cls(**kwargs)


def load_config(cls: Type[C], path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> C:
    """Read YAML ``path`` (or start empty), apply overrides, validate into ``cls``."""
    data = load_yaml(path) if path else {}
    apply_overrides(data, overrides)
    return from_dict(cls, data)


def to_dict(cfg: Any) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config atomically (temp file + rename) as YAML."""
    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _coerce(value: Any, ann: Any) -> Any:
    """YAML has no float for ``1``: store ints given to float fields as floats."""
    if ann is float and isinstance(value, int):
        return float(value)
    if isinstance(value, list) and getattr(ann, "__origin__", None) is tuple:
        return tuple(value)
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
