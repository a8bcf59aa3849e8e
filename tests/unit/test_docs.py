"""The README's library example runs as written (docs that run stay true)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if b.startswith("import odp")]


def test_readme_has_a_library_example() -> None:
    assert python_examples()


def test_readme_library_example_runs() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in python_examples():
            exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "True"
    assert lines[1].startswith("in_port(1),eth(),eth_type(0x0806), packets:1, bytes:42, used:")
    assert lines[2].endswith("actions:set(tunnel(tun_id=0x2a,dst=192.0.2.2,ttl=64,flags(key))),3")
    assert lines[3].startswith("MISS recirc_id(0),") and "in_port(2)" in lines[3]
