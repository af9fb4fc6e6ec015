"""``python -m speechssl2.espnet asr_train --config conf/train_asr.yaml ...``.

Registers the speechssl2 frontend, then runs ``espnet2.bin.<first argument>`` with the
remaining arguments as if it had been started with ``python -m``.
"""
from __future__ import annotations

import runpy
import sys

from speechssl2.espnet.register import register


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python -m speechssl2.espnet <espnet2.bin module, e.g. asr_train> [its arguments]")
    module = argv[0] if argv[0].startswith("espnet2.") else f"espnet2.bin.{argv[0]}"
    register()
    sys.argv = [module, *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
