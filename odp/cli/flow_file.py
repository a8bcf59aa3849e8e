"""``odp flow add-flows|mod-flows|del-flows [DP] FILE``: flows in bulk, in ovs-dpctl's file format.

The format is ``ovs-dpctl add-flows``' (lib/dpctl.c, dpctl_parse_flow_line):
one flow per line, ``#`` starts a comment, blank lines are skipped, a line
ending in ``\\`` continues on the next.  A line is ``[COMMAND] FLOW
[ACTIONS]``: COMMAND is ``add``, ``modify`` or ``delete`` (or an
abbreviation) and defaults to the command's own (add-flows: add, mod-flows:
modify, del-flows: delete); FLOW is the key in ODP text without blanks
(``ufid:<uuid>,`` may lead it); ACTIONS, required for add and modify and
refused for delete, is the rest of the line.

Unlike ovs-dpctl, which reports a bad line and goes on, the whole file is
read and parsed first, and any error (parsing, or a flow the datapath
refuses) stops the command with the line number.  On the simulator the file
is applied in one transaction: an error leaves the state as it was.  On the
kernel, runs of plain ``add`` lines go in batched netlink requests
(:meth:`odp.kernel.backend.KernelBackend.flow_new_many`); the flows before
the refused one stay installed, as with ovs-dpctl.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from odp.cli.base import CommandError, Ctx
from odp.cli.goodp import _flow_errors, _parse_actions_text, _parse_key_text
from odp.errors import OdpError

if TYPE_CHECKING:
    from odp.actions import Actions
    from odp.datapath import Datapath
    from odp.keys import Match

#: The commands a line may start with (dpctl_parse_flow_line's).
COMMANDS = ("add", "modify", "delete")
#: Lines from which a progress bar is worth drawing (when stderr is a terminal).
PROGRESS_FROM = 1000
#: Plain adds sent per flow_new_many call on the kernel (its own batches are 256 requests).
KERNEL_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class FlowLine:
    """One line of a flows file: its number (of its first physical line), command, flow and actions text."""

    number: int
    command: str
    flow: str
    actions: str | None


def logical_lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    """(number, text) of each non-blank line, comments removed, ``\\`` continuations joined."""
    pending = ""
    start = 0
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        text = (pending + line).split("#", 1)[0].strip()
        pending = ""
        if text:
            yield start, text
    if pending.split("#", 1)[0].strip():
        yield start, pending.split("#", 1)[0].strip()


def parse_flow_line(number: int, text: str, default: str, where: str) -> FlowLine:
    """dpctl_parse_flow_line: the optional command word, the flow, the actions."""
    word = re.match(r"[^,\s]*", text)
    command = default
    rest = text
    if word is not None and word.group(0):
        found = [c for c in COMMANDS if c.startswith(word.group(0))]
        if found:
            command = found[0]
            rest = text[word.end() :].lstrip()
    flow, _, actions = rest.partition(" ")
    flow = flow.strip()
    actions_text = actions.strip() or None
    if "\t" in flow:
        flow, _, more = flow.partition("\t")
        actions_text = (more + " " + (actions_text or "")).strip() or None
    if not flow:
        raise CommandError(f"{where}:{number}: no flow on this line")
    if command in ("add", "modify") and actions_text is None:
        raise CommandError(f"{where}:{number}: {command} needs actions after the flow ('drop' for none)")
    if command == "delete" and actions_text is not None:
        raise CommandError(f"{where}:{number}: delete takes a flow and no actions (got {actions_text!r})")
    return FlowLine(number, command, flow, actions_text)


@dataclass(frozen=True, slots=True)
class FlowOp:
    line: FlowLine
    match: Match
    ufid: bytes | None
    actions: Actions | None


def _read(file: str) -> tuple[list[tuple[int, str]], str]:
    if file == "-":
        return list(logical_lines(sys.stdin)), "<stdin>"
    try:
        with open(file, encoding="utf-8") as f:
            return list(logical_lines(f)), file
    except OSError as exc:
        raise CommandError(f"{file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _progress(total: int, what: str) -> Any:
    """A progress bar on stderr for long files when stderr is a terminal (tqdm), else a no-op."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit=" flows", desc=what, leave=False)


def _at(op: FlowOp, where: str) -> AbstractContextManager[None]:
    return _line_errors(where, op.line.number)


class _line_errors:  # noqa: N801 - used as a context manager, like contextlib's
    """Re-raise an OdpError with ``FILE:LINE:`` in front of its message (same class, rule and field)."""

    def __init__(self, where: str, number: int) -> None:
        self.prefix = f"{where}:{number}: "

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, OdpError) and not str(exc).startswith(self.prefix):
            exc.args = (self.prefix + str(exc), *exc.args[1:])


def run_flows_file(ctx: Ctx, dp: Datapath, file: str, default: str) -> dict[str, int]:
    """Parse ``file`` whole, then apply it to ``dp``; the count of each command applied."""
    lines, where = _read(file)
    bar = _progress(len(lines), "checking")
    try:
        ops: list[FlowOp] = []
        for number, text in lines:
            line = parse_flow_line(number, text, default, where)
            with _line_errors(where, number):
                match, ufid = _parse_key_text(line.flow, dp)
                actions = None if line.actions is None else _parse_actions_text(line.actions, dp)
            ops.append(FlowOp(line, match, ufid, actions))
            if bar is not None:
                bar.update(1)
        counts = dict.fromkeys(COMMANDS, 0)
        if bar is not None:
            bar.reset(total=len(ops))
            bar.set_description(f"{default}-flows")
        if ctx.state is None:
            _apply_kernel(dp, ops, where, counts, bar)
        else:
            for op in ops:
                with _at(op, where):
                    _apply_one(dp, op)
                counts[op.line.command] += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return counts


def _apply_one(dp: Datapath, op: FlowOp) -> None:
    with _flow_errors():
        if op.line.command == "add":
            assert op.actions is not None
            dp.add_flow(op.match, op.actions, ufid=op.ufid)
        elif op.line.command == "modify":
            dp.modify_flow(op.match, op.actions, ufid=op.ufid)
        else:
            dp.delete_flow(op.match, ufid=op.ufid)


_BATCH_INDEX = re.compile(r"flow #(\d+) of a batch")


def _apply_kernel(dp: Datapath, ops: list[FlowOp], where: str, counts: dict[str, int], bar: Any) -> None:
    """Runs of plain adds in batched requests; anything else one request at a time."""
    i = 0
    while i < len(ops):
        run: list[FlowOp] = []
        while i < len(ops) and ops[i].line.command == "add" and ops[i].ufid is None and len(run) < KERNEL_CHUNK:
            run.append(ops[i])
            i += 1
        if run:
            from odp.validate import validate_actions, validate_match

            for op in run:  # refused here with its line rather than somewhere in a batch
                assert op.actions is not None
                with _at(op, where), _flow_errors():
                    validate_match(op.match)
                    validate_actions(op.actions, op.match)
            items = [(op.match, op.actions) for op in run if op.actions is not None]
            try:
                with _flow_errors():
                    dp.backend.flow_new_many(dp.name, items)
            except OdpError as exc:
                found = _BATCH_INDEX.search(str(exc))
                first, last = run[0].line.number, run[-1].line.number
                number = run[int(found.group(1))].line.number if found else None
                prefix = f"{where}:{number}: " if number is not None else f"{where}:{first}-{last}: "
                exc.args = (prefix + str(exc), *exc.args[1:])
                raise
            counts["add"] += len(run)
            if bar is not None:
                bar.update(len(run))
            continue
        op = ops[i]
        with _at(op, where):
            _apply_one(dp, op)
        counts[op.line.command] += 1
        if bar is not None:
            bar.update(1)
        i += 1


def _setup_flows_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "args", metavar="[DP] FILE", nargs="+", help="datapath (optional with one datapath) and flows file ('-': stdin)"
    )


def _cmd_flows_file(ctx: Ctx, a: argparse.Namespace) -> int:
    from odp.cli.base import UsageError

    if len(a.args) > 2:
        raise UsageError("give [DP] FILE")
    dp = ctx.datapath(a.args[0]) if len(a.args) == 2 else ctx.only_datapath()
    counts = run_flows_file(ctx, dp, a.args[-1], a.command)
    if ctx.json:
        ctx.print_json({"datapath": dp.name, "added": counts["add"], "modified": counts["modify"],
                        "deleted": counts["delete"]})  # fmt: skip
    return 0


def _setup_add_flows(p: argparse.ArgumentParser) -> None:
    p.set_defaults(command="add")
    _setup_flows_file(p)


def _setup_mod_flows(p: argparse.ArgumentParser) -> None:
    p.set_defaults(command="modify")
    _setup_flows_file(p)


def _setup_del_flows(p: argparse.ArgumentParser) -> None:
    p.set_defaults(command="delete")
    _setup_flows_file(p)
