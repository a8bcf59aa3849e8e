"""``odp state``: the simulator's state as JSON (export) and back (import)."""

from __future__ import annotations

import argparse
import json
import sys

from odp.cli.base import CommandError


def _setup_state_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="the JSON document ('-', the default: stdio)")


def _cmd_state_export(a: argparse.Namespace, path: str) -> int:
    from odp.sim.store import export_store

    text = json.dumps(export_store(path), indent=1) + "\n"
    if a.file == "-":
        sys.stdout.write(text)
        return 0
    with open(a.file, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


def _cmd_state_import(a: argparse.Namespace, path: str) -> int:
    from odp.sim.state import state_from_text
    from odp.sim.store import replace_store

    if a.file == "-":
        data, where = sys.stdin.buffer.read(), "<stdin>"
    else:
        try:
            with open(a.file, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CommandError(f"{a.file}: {exc.strerror}") from None
        where = a.file
    replace_store(path, state_from_text(data, where))
    return 0
