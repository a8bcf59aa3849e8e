"""The documented command-line sessions are true: every ``$ odp ...`` line runs and prints what follows it.

Reads the fenced ```` ```console ```` blocks of docs/cli-session.md and of
README.md (a file without such a block with ``$ odp`` commands is skipped).
Each file's commands run in order, in-process, in a temporary directory with
a fresh simulator state (``ODP_SIM_STATE``; a ``--state PATH`` argument is
redirected into the temporary directory too), and their stdout followed by
their stderr must equal the lines after the command up to the next ``$``
line or the end of the block.  ``used:`` times are normalized; other ``$``
lines (``export ...``) are shown to readers only and skipped.  A command
whose expected output has an ``odp: error:`` line must fail, any other must
succeed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from odp.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "docs" / "cli-session.md", ROOT / "README.md"]

_USED = re.compile(r"used:\d+(\.\d+)?s")


@dataclass
class Step:
    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def console_steps(text: str) -> list[Step]:
    """The ``$ `` commands of the console blocks and the output lines after each."""
    steps: list[Step] = []
    in_block = False
    current: Step | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if line.startswith("```"):
            in_block = line.strip() == "```console" if not in_block else False
            current = None
            continue
        if not in_block:
            continue
        if pending or line.startswith("$ "):
            part = line[2:] if not pending else line.strip()
            if part.endswith("\\"):
                pending += part[:-1].rstrip() + " "
                continue
            current = Step(number, pending + part)
            pending = ""
            steps.append(current)
        elif current is not None:
            current.expected.append(line)
    return steps


_HEREDOC = re.compile(r"cat > (\S+) <<'?EOF'?")


def odp_steps(path: Path) -> list[Step]:
    """The ``$ odp`` steps, and the ``$ cat > FILE <<EOF`` ones that write a file the next steps read."""
    if not path.exists():
        return []
    steps = console_steps(path.read_text(encoding="utf-8"))
    return [s for s in steps if shlex.split(s.command)[:1] == ["odp"] or _HEREDOC.fullmatch(s.command)]


def write_heredoc(step: Step, where: Path) -> bool:
    """Run a ``cat > FILE <<EOF`` step (its lines up to ``EOF`` are the file); False for other steps."""
    m = _HEREDOC.fullmatch(step.command)
    if m is None:
        return False
    assert "EOF" in step.expected, f"line {step.line}: a here-document without its EOF line"
    lines = step.expected[: step.expected.index("EOF")]
    (where / m.group(1)).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return True


def normalize(lines: list[str]) -> list[str]:
    out = [_USED.sub("used:<t>", line.rstrip()) for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def _redirect_state(words: list[str], tmp: Path) -> list[str]:
    out: list[str] = []
    for i, w in enumerate(words):
        if i > 0 and words[i - 1] == "--state":
            w = str(tmp / ("state-" + Path(w).name))
        elif w.startswith("--state="):
            w = "--state=" + str(tmp / ("state-" + Path(w[8:]).name))
        out.append(w)
    return out


def test_the_session_document_has_commands() -> None:
    steps = odp_steps(DOCUMENTS[0])
    assert len(steps) >= 30
    assert any(s.expected for s in steps)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_documented_session(
    document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = odp_steps(document)
    if not steps:
        pytest.skip(f"{document.name} has no console block with '$ odp' commands")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ODP_SIM_STATE", str(tmp_path / "session.json"))
    monkeypatch.delenv("ODP_BACKEND", raising=False)
    for step in steps:
        if write_heredoc(step, tmp_path):
            continue
        words = _redirect_state(shlex.split(step.command)[1:], tmp_path)
        status = main(words)
        captured = capsys.readouterr()
        got = normalize((captured.out + captured.err).splitlines())
        expected = normalize(step.expected)
        where = f"{document.name}:{step.line}: $ {step.command}"
        assert got == expected, where
        fails = any(line.startswith("odp: error:") for line in expected)
        assert (status != 0) == fails, f"{where}: exit status {status}"


def test_console_parser_handles_continuations_and_other_commands() -> None:
    text = "\n".join(
        [
            "```console",
            "$ export X=1",
            "$ odp dp \\",
            "  list",
            "g",
            "```",
            "```python",
            "$ odp not-a-command",
            "```",
        ]
    )
    steps = console_steps(text)
    assert [s.command for s in steps] == ["export X=1", "odp dp list"]
    assert steps[1].expected == ["g"]
