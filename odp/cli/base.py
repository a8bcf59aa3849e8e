"""The command line's common ground: errors, the argument parser, the per-command context."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from odp.errors import NotFoundError, OdpError

if TYPE_CHECKING:
    from odp.datapath import Connection, Datapath
    from odp.sim.network import Host
    from odp.sim.state import SimState

PROG = "odp"
#: The version of the command line's JSON output: every document is
#: ``{"version": N, "data": ...}``, every JSON line (listen) has ``"version": N``.
JSON_VERSION = 1


# ===========================================================================
# Errors and argument parsing
# ===========================================================================


class UsageError(Exception):
    """Bad command line: exit status 2."""


class CommandError(OdpError):
    """A request the command line itself refuses (bad flag value, wrong backend ...): exit status 1."""


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _ArgParser(argparse.ArgumentParser):
    """argparse without sys.exit: errors become UsageError, --help an _Exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def _add_global_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--backend",
        metavar="kernel|sim",
        default=default,
        help="the datapath backend (default: $ODP_BACKEND, else sim)",
    )
    p.add_argument(
        "--state",
        metavar="PATH",
        default=default,
        help="simulator state file (default: $ODP_SIM_STATE, else $XDG_STATE_HOME/odp/sim.db)",
    )
    p.add_argument(
        "--kernel",
        metavar="VERSION",
        default=default,
        help="the Linux version the simulator behaves as, e.g. 6.6 (saved in its state; "
        "default: the state's, else the newest kernel odp is tested on)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of text",
    )


# ===========================================================================
# Context: the connection, the output
# ===========================================================================


@dataclass
class Ctx:
    conn: Connection
    backend: str
    json: bool
    out: TextIO
    state: SimState | None = None

    @property
    def host(self) -> Host:
        if self.state is None:
            raise CommandError("this needs the simulator (--backend sim)")
        return self.state.host

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def print_json(self, value: object) -> None:
        self.out.write(json.dumps({"version": JSON_VERSION, "data": value}, indent=2) + "\n")

    def print_json_line(self, value: dict[str, Any]) -> None:
        """One object of a stream (listeners), on one line, flushed."""
        self.out.write(json.dumps({"version": JSON_VERSION, **value}) + "\n")
        self.out.flush()

    def datapath(self, ref: str) -> Datapath:
        """The datapath named ``ref`` (or with ifindex ``ref``, as go-odp accepts)."""
        try:
            return self.conn.datapath(ref)
        except NotFoundError:
            if ref.isdigit():
                with contextlib.suppress(NotFoundError):
                    return self.conn.datapath(int(ref))
        raise NotFoundError(f"unknown datapath {ref!r} (see '{PROG} datapath list')")

    def only_datapath(self) -> Datapath:
        """The datapath when there is exactly one (ovs-dpctl's default), else a usage error."""
        dps = sorted(self.conn.datapaths(), key=lambda d: d.name)
        if len(dps) != 1:
            names = ", ".join(d.name for d in dps) or "none"
            raise UsageError(f"give the datapath: there is not exactly one (datapaths: {names})")
        return dps[0]


def _port_no(dp: Datapath, ref: str, what: str = "port") -> int:
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    numbers = dp.port_numbers()
    if ref not in numbers:
        raise NotFoundError(f"{what} {ref!r}: datapath {dp.name} has no vport of that name")
    return numbers[ref]


def _setup_dp(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", help="datapath name")


def _setup_listen_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, metavar="N", help="stop after N events")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long (kernel)")
