"""Runtime checks of YAML-loaded values against type hints, with readable errors."""
from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin


class ConfigTypeError(TypeError):
    """A configuration value does not have the type its field declares."""


def check_type(value: Any, annotation: Any, where: str) -> None:
    """Raise ``ConfigTypeError`` naming ``where`` unless ``value`` fits ``annotation``.

    Covers what YAML produces: scalars, lists, dicts, None, Literal choices and
    unions. ``int`` is accepted where ``float`` is expected (YAML writes ``1`` for 1.0);
    ``bool`` is never accepted as a number.
    """
    if not _fits(value, annotation):
        raise ConfigTypeError(
            f"{where}: expected {_describe(annotation)}, got {type(value).__name__} {value!r}"
        )


def _fits(value: Any, ann: Any) -> bool:
    if ann is Any or ann is object:
        return True
    origin = get_origin(ann)
    args = get_args(ann)
    if origin is Union or origin is types.UnionType:
        return any(_fits(value, a) for a in args)
    if origin is Literal:
        return value in args
    if ann is type(None) or ann is None:
        return value is None
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, set, frozenset) or ann in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return all(_fits(v, inner) for v in value)
    if origin is dict or ann is dict:
        if not isinstance(value, dict):
            return False
        if not args:
            return True
        return all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if isinstance(ann, type):
        return isinstance(value, ann)
    return True  # callables, modules, protocols: not a config concern


def _describe(ann: Any) -> str:
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
