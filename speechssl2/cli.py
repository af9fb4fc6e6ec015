"""The command line of every ``python -m speechssl2.bin.<stage>``: one parser, one error style.

``--help`` lists each config field with its type, default and one-line doc. The doc
is the trailing ``# comment`` of the field's line in the dataclass, read from the
source, so the help cannot drift from the code. A user's mistake (a missing config
file, an unknown field or registry key, a wrong type) ends as one ``error:`` line and
exit status 2, like argparse; anything else keeps its traceback.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import sys
import textwrap
import tokenize
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple, Type, TypeVar, get_type_hints

import yaml

from speechssl2.config import ConfigError, load_config
from speechssl2.registry import RegistryError
from speechssl2.typecheck import ConfigTypeError

C = TypeVar("C")
T = TypeVar("T")
USER_ERRORS = (ConfigError, ConfigTypeError, RegistryError)


class FieldHelp(NamedTuple):
    """One leaf of a config tree as ``--help`` shows it."""

    name: str  # dotted path, as --set takes it: optim.lr
    type: str  # the annotation as written in the source
    default: Optional[str]  # YAML text of the default; None: the field is required
    doc: str  # trailing comment of the field's line(s); "" when there is none

    def line(self) -> str:
        default = "required" if self.default is None else f"default {self.default}"
        return f"{self.name} ({self.type}, {default}): {self.doc}"


def config_fields(cls: type, prefix: str = "") -> Iterator[FieldHelp]:
    """Every leaf field of dataclass ``cls``; nested dataclass fields are flattened to dotted names."""
    hints = get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from config_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield FieldHelp(f"{prefix}{f.name}", _type_text(f.type), _default_text(f), docs.get(f.name, ""))


def field_docs(cls: type) -> Dict[str, str]:
    """Field name -> trailing comment in the class body (inherited fields from their base's source)."""
    docs: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_trailing_comments(klass))
    return docs


def _trailing_comments(klass: type) -> Dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):  # no source (e.g. a class made at run time): fields go undocumented
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    docs = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            docs[node.target.id] = " ".join(comments[i] for i in lines if i in comments)
    return docs


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, str):  # ``from __future__ import annotations``: as written
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default_text(f: dataclasses.Field) -> Optional[str]:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()
    return text.removesuffix("...").strip()  # a YAML scalar document ends with "..."


def config_help(cls: type) -> str:
    """The ``--help`` epilog: where the fields come from, then one line per leaf field."""
    lines = [f"  {f.line()}" for f in config_fields(cls)]
    header = f"config fields of {cls.__module__}.{cls.__qualname__} (keys of the --config YAML; --set KEY=VALUE):"
    return "\n".join([header, *lines])


def parse_stage(
    cls: Type[C],
    doc: Optional[str],
    argv: Optional[Sequence[str]] = None,
    *,
    stage: str,
    add_arguments: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
) -> Tuple[C, argparse.Namespace]:
    """Parse ``--config FILE --set KEY=VALUE ...`` (plus the flags ``add_arguments`` adds) into ``cls``.

    ``stage`` is the module name under ``speechssl2.bin``; ``doc`` its docstring.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m speechssl2.bin.{stage}", description=doc, epilog=config_help(cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a config value (repeatable), e.g. --set optim.lr=1e-4",
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    return load_config(cls, args.config, args.overrides), args


def run_main(main: Callable[[], T]) -> T:
    """Run a stage's ``main`` as a program: a config or registry mistake is one ``error:`` line, exit 2.

    Used under ``if __name__ == "__main__"`` only: callers of ``main(argv)`` (tests, other
    stages) still get the exception itself.
    """
    try:
        return main()
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
