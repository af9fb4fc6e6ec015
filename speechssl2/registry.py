"""Registries: one dict per component family, filled by a decorator beside each class.

Configs name a component by key (``{"name": "transformer", **kwargs}``); ``build`` turns
that into ``cls(**kwargs)`` after checking the keyword names and types against the
constructor, so a typo in a YAML file fails at start-up with the valid choices listed.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Callable, Dict, Iterator, List, Mapping, TypeVar, get_type_hints

from speechssl2.typecheck import check_type

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown key, a duplicate registration or a bad constructor argument."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0])


class Registry:
    """A named family of components (frontends, encoders, ...) keyed by string."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: Dict[str, Callable[..., Any]] = {}
        if family in FAMILIES:
            raise RegistryError(f"registry family {family!r} already exists")
        FAMILIES[family] = self

    def register(self, key: str) -> Callable[[T], T]:
        """Decorator: ``@ENCODERS.register("transformer")`` above a class or factory."""

        def add(obj: T) -> T:
            if key in self._entries and self._entries[key] is not obj:
                raise RegistryError(
                    f"{self.family}: key {key!r} is already registered to "
                    f"{_qualname(self._entries[key])}; cannot register {_qualname(obj)}"
                )
            self._entries[key] = obj  # type: ignore[assignment]
            return obj

        return add

    def get(self, key: str) -> Callable[..., Any]:
        load_components()
        if key not in self._entries:
            raise RegistryError(
                f"unknown {self.family} key {key!r}; valid keys: {', '.join(self.keys()) or '(none)'}"
            )
        return self._entries[key]

    def build(self, spec: Mapping[str, Any] | str, **extra: Any) -> Any:
        """``build({"name": key, **kw}, **extra)`` is ``get(key)(**kw, **extra)``, validated."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if "name" not in spec:
            raise RegistryError(
                f"{self.family} spec {dict(spec)!r} has no 'name'; valid keys: {', '.join(self.keys())}"
            )
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        kwargs.update(extra)
        factory = self.get(spec["name"])
        check_arguments(factory, kwargs, where=f"{self.family}.{spec['name']}")
        return factory(**kwargs)

    def keys(self) -> List[str]:
        load_components()
        return sorted(self._entries)

    def __contains__(self, key: str) -> bool:
        load_components()
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


def check_arguments(factory: Callable[..., Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Raise if ``kwargs`` names a parameter ``factory`` lacks, misses one, or has a wrong type."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items() if n != "self"}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name in kwargs:
        if name not in valid:
            raise RegistryError(f"{where}: unknown argument {name!r}; valid arguments: {', '.join(valid)}")
    missing = [n for n in valid if params[n].default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        raise RegistryError(f"{where}: missing required argument(s): {', '.join(missing)}")
    try:
        hints = get_type_hints(target)
    except Exception:  # unresolvable forward references: skip type checks, keep name checks
        hints = {}
    for name, value in kwargs.items():
        if name in hints:
            check_type(value, hints[name], f"{where}.{name}")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


FAMILIES: Dict[str, Registry] = {}

FRONTENDS = Registry("frontends")
ENCODERS = Registry("encoders")
QUANTIZERS = Registry("quantizers")
OBJECTIVES = Registry("objectives")
HEADS = Registry("heads")
LOSSES = Registry("losses")
TOKENIZERS = Registry("tokenizers")
CORPORA = Registry("corpora")
PRESETS = Registry("presets")
DOWNSTREAMS = Registry("downstreams")
MODELS = Registry("models")  # top-level trainables: forward(batch) -> StepOutput
SCHEDULERS = Registry("schedulers")
MASK_SAMPLERS = Registry("mask_samplers")  # span-mask samplers: masking: {sampler: key, ...}

_STATE = {"loaded": False, "loading": False}


def load_components() -> None:
    """Import every module of the package once so that all decorators have run.

    Walking the package (rather than a central import list) is what lets a new
    component be one new file: nothing else needs editing for it to be found. A
    module that fails to import raises here, and the next call tries again.
    """
    if _STATE["loaded"] or _STATE["loading"]:
        return
    _STATE["loading"] = True
    try:
        import speechssl2

        for info in pkgutil.walk_packages(speechssl2.__path__, prefix="speechssl2."):
            if ".bin." in info.name or info.name.endswith(".bin"):
                continue
            importlib.import_module(info.name)
        _STATE["loaded"] = True
    finally:
        _STATE["loading"] = False
