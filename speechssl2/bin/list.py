"""Print every registry family and its keys: ``python -m speechssl2.bin.list``."""
from __future__ import annotations

import argparse

from speechssl2.registry import FAMILIES, load_components


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family", nargs="?", help="show only this family")
    args = parser.parse_args(argv)
    load_components()
    names = [args.family] if args.family else sorted(FAMILIES)
    for name in names:
        if name not in FAMILIES:
            parser.error(f"unknown family {name!r}; valid: {', '.join(sorted(FAMILIES))}")
        keys = FAMILIES[name].keys()
        print(f"{name}: {', '.join(keys) if keys else '(none yet)'}")


if __name__ == "__main__":
    main()
