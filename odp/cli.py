"""The ``odp`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["demo"]:
        from odp.demo import main as demo

        return demo()
    print("usage: odp demo", file=sys.stderr)
    return 2
