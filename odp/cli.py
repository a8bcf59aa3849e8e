"""The ``odp`` command line: datapaths, vports, flows and packets on the kernel or the simulator.

Commands (any unambiguous prefix works: ``odp dp a x``, ``odp fl l x``;
``dp`` is an alias of ``datapath``)::

    odp datapath [list]                       datapath names, one per line (the syntax that creates them)
    odp datapath add|delete DP
    odp datapath show [-s] [DP...]            like ovs-dpctl show
    odp datapath listen [--keys] [--pcap FILE] [--count N] [--timeout S] DP
    odp vport [list] [DP]                     "TYPE DP NAME [--port=UDP] --port-no=N" lines
    odp vport add netdev|internal|vxlan|gre|geneve DP NAME [--port=UDP] [--port-no=N]
    odp vport delete [DP] NAME                (without DP: the vport of that name in any datapath)
    odp vport listen [DP]                     vport events (kernel only)
    odp flow list DP [--names] [--ufid] [--stats]    one line per flow, as ovs-dpctl dump-flows
    odp flow add DP [MATCH ACTIONS] [--ufid=U] [key flags] [action flags]
    odp flow mod DP MATCH ACTIONS [--clear] [--may-create]
    odp flow get DP [MATCH] [--ufid=U] [--names]
    odp flow delete DP [MATCH] [--ufid=U] [key flags]
    odp flow clear DP [MATCH] [key flags]     clear a flow's statistics (go-odp)
    odp flow flush DP                         delete every flow
    odp meter features DP                     max meters, max bands, band types
    odp meter set DP ID [--rate=N --burst=N [--type=drop|N]] [--kbps] [--clear] [--stats=P,B]
    odp meter get DP ID                       a meter's packets, bytes, used and per-band counts
    odp meter delete DP ID
    odp packet execute DP PACKET ACTIONS [--in-port=P] [--key=MATCH]
    odp packet inject DP PORT PACKET          simulator only: run a packet through, print a trace
    odp demo                                  the simulator demo (two hosts joined by VXLAN)

``MATCH`` and ``ACTIONS`` are ODP text as ovs-dpctl reads it; ports may be
given by number or vport name.  The go-odp flags build the same flows:
``--in-port=P``, ``--eth-src/--eth-dst=MAC[&MASK]``, ``--tunnel-id=HEX[&MASK]``,
``--tunnel-ipv4-src/--tunnel-ipv4-dst=IP[&MASK]``, ``--tunnel-tos/--tunnel-ttl/
--tunnel-tp-src/--tunnel-tp-dst=N[&MASK]``, ``--tunnel-df/--tunnel-csum=BOOL``
(the key always has ``eth()``, as in go-odp), and as actions
``--set-tunnel-*`` (same fields, no masks) followed by ``--output=P[,P...]``.
``PACKET`` is hex bytes or a scapy expression (``Ether()/IP(dst="10.0.0.2")/UDP()``)
evaluated with scapy's layer classes as the only names.

Global options (before or after the command): ``--backend kernel|sim``
(default: ``$ODP_BACKEND``, else ``sim``: the command line never talks to the
kernel unless asked to), ``--state PATH`` (the simulator's state file;
default ``$ODP_SIM_STATE``, else ``$XDG_STATE_HOME/odp/sim.json`` or
``~/.local/state/odp/sim.json``), ``--json`` (machine-readable output).

Exit status: 0 success, 1 error (one ``odp: error: ...`` line on stderr),
2 usage error.

The simulator's state persists in the state file (see :mod:`odp.sim.state`):
each invocation loads it under an exclusive lock, runs, and saves it
atomically, so concurrent invocations lose nothing.  Because the simulator
only moves packets while a command runs, ``datapath listen`` cannot wait for
misses there: ``packet inject`` and ``packet execute`` listen on every
datapath while they run, print the upcalls they cause in their trace and
queue them in the state, and ``datapath listen`` on the simulator prints
(and removes) the queued ones, then returns.  ``vport add netdev`` creates
the simulated network device when it does not exist yet (on the kernel the
device must exist).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from odp.actions import Action, Actions, Output, set_tunnel
from odp.constants import OVSP_LOCAL, MeterBandType
from odp.datapath import (
    DEFAULT_TUNNEL_PORTS,
    Connection,
    Datapath,
    DatapathInfo,
    Flow,
    FlowStats,
    MeterBand,
    MeterStats,
    Upcall,
    UpcallKind,
    VportInfo,
    VportKind,
)
from odp.errors import InvalidFlow, NotFoundError, NotSupported, OdpError, ParseError
from odp.fields import Masked, parse_mac
from odp.keys import Ethernet, InPort, KeyAttr, Match, Tunnel
from odp.text import format_actions, format_flow_line, format_match, parse_actions, parse_match

if TYPE_CHECKING:
    from odp.sim.network import Host
    from odp.sim.state import SimState
    from odp.sim.trace import Event as SimEvent

__all__ = ["main", "parse_packet", "ufid_from_text", "ufid_to_uuid", "write_pcap_header", "write_pcap_record"]

PROG = "odp"
BACKENDS = ("sim", "kernel")


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
        help="simulator state file (default: $ODP_SIM_STATE, else $XDG_STATE_HOME/odp/sim.json)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of text",
    )


# ===========================================================================
# The command tree
# ===========================================================================

Handler = Callable[["Ctx", argparse.Namespace], int]
PlainHandler = Callable[[argparse.Namespace], int]


@dataclass
class Command:
    """A node of the command tree: a leaf has a handler, an inner node children."""

    name: str
    help: str = ""
    handler: Handler | None = None
    setup: Callable[[argparse.ArgumentParser], None] | None = None
    #: "read"/"write": the handler gets a connection (and the simulator state, locked accordingly).
    state: str = "read"
    #: A leaf that needs no backend at all (demo, help).
    plain: PlainHandler | None = None
    aliases: tuple[str, ...] = ()
    children: dict[str, Command] = field(default_factory=dict)
    #: The child that runs when no subcommand is given (go-odp: ``odp datapath`` lists).
    default: str | None = None
    usage: str = ""

    def add(self, child: Command) -> Command:
        self.children[child.name] = child
        return child


def _resolve(node: Command, word: str, path: list[str]) -> Command | None:
    names: dict[str, Command] = {}
    for child in node.children.values():
        for name in (child.name, *child.aliases):
            names[name] = child
    if word in names:
        return names[word]
    found: dict[str, Command] = {}
    for name, child in names.items():
        if name.startswith(word):
            found[child.name] = child
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        where = " ".join([*path, word])
        raise UsageError(f"ambiguous command '{where}': could be {', '.join(sorted(found))}")
    return None


def _usage_lines(node: Command, path: list[str]) -> list[str]:
    out: list[str] = []
    if node.handler is not None or node.plain is not None:
        text = " ".join([PROG, *path, node.usage]).rstrip()
        out.append(f"  {text:<62} {node.help}".rstrip())
    for child in node.children.values():
        out.extend(_usage_lines(child, [*path, child.name]))
    return out


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
        self.out.write(json.dumps(value, indent=2) + "\n")

    def datapath(self, ref: str) -> Datapath:
        """The datapath named ``ref`` (or with ifindex ``ref``, as go-odp accepts)."""
        try:
            return self.conn.datapath(ref)
        except NotFoundError:
            if ref.isdigit():
                with contextlib.suppress(NotFoundError):
                    return self.conn.datapath(int(ref))
        raise NotFoundError(f"unknown datapath {ref!r} (see '{PROG} datapath list')")


def _port_no(dp: Datapath, ref: str, what: str = "port") -> int:
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    numbers = dp.port_numbers()
    if ref not in numbers:
        raise NotFoundError(f"{what} {ref!r}: datapath {dp.name} has no vport of that name")
    return numbers[ref]


# ===========================================================================
# JSON views
# ===========================================================================


def _dp_json(info: DatapathInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "ifindex": info.ifindex,
        "features": info.features,
        "masks_cache_size": info.masks_cache_size,
        "stats": {
            "hit": info.stats.hit,
            "missed": info.stats.missed,
            "lost": info.stats.lost,
            "flows": info.stats.flows,
        },
        "megaflow": {
            "mask_hit": info.megaflow.mask_hit,
            "masks": info.megaflow.masks,
            "cache_hit": info.megaflow.cache_hit,
        },
    }


def _vport_json(dp_name: str, v: VportInfo) -> dict[str, Any]:
    s = v.stats
    return {
        "datapath": dp_name,
        "port_no": v.port_no,
        "name": v.name,
        "type": v.kind.value,
        "dst_port": v.dst_port,
        **({"extensions": list(v.extensions)} if v.extensions else {}),
        "upcall_pids": list(v.upcall_pids),
        "ifindex": v.ifindex,
        "stats": {
            "rx_packets": s.rx_packets,
            "tx_packets": s.tx_packets,
            "rx_bytes": s.rx_bytes,
            "tx_bytes": s.tx_bytes,
            "rx_errors": s.rx_errors,
            "tx_errors": s.tx_errors,
            "rx_dropped": s.rx_dropped,
            "tx_dropped": s.tx_dropped,
        },
    }


def ufid_to_uuid(ufid: bytes) -> uuid.UUID | None:
    """A 16-byte UFID as the UUID ovs-dpctl prints (``ufid:<uuid>``): four host-order u32 words."""
    if len(ufid) != 16:
        return None
    w = struct.unpack("=4I", ufid)
    return uuid.UUID(int=(w[0] << 96) | (w[1] << 64) | (w[2] << 32) | w[3])


def ufid_from_text(text: str) -> bytes:
    """``[ufid:]<uuid>`` (or 32 hex digits) as UFID bytes (the inverse of :func:`ufid_to_uuid`)."""
    t = text.strip()
    if t.startswith("ufid:"):
        t = t[5:]
    try:
        u = uuid.UUID(t)
    except ValueError:
        raise CommandError(f"UFID {text!r}: expected a UUID (8-4-4-4-12 hex digits) or 32 hex digits") from None
    n = u.int
    return struct.pack("=4I", n >> 96, (n >> 64) & 0xFFFFFFFF, (n >> 32) & 0xFFFFFFFF, n & 0xFFFFFFFF)


def _ufid_text(ufid: bytes | None) -> str | None:
    if ufid is None:
        return None
    u = ufid_to_uuid(ufid)
    return str(u) if u is not None else ufid.hex()


def _flow_line(flow: Flow, names: dict[int, str] | None, with_ufid: bool = False) -> str:
    line = flow.to_line()
    text = format_flow_line(line, names)
    if with_ufid and flow.ufid is not None:
        text = f"ufid:{_ufid_text(flow.ufid)}, {text}"
    return text


def _flow_json(flow: Flow, names: dict[int, str] | None = None) -> dict[str, Any]:
    line = flow.to_line()
    return {
        "match": None if flow.match is None else format_match(flow.match, names),
        "actions": None if flow.actions is None else format_actions(flow.actions, names),
        "ufid": _ufid_text(flow.ufid),
        "packets": flow.stats.packets,
        "bytes": flow.stats.bytes,
        "used": line.used,
        "tcp_flags": flow.tcp_flags,
        "line": format_flow_line(line, names),
    }


# ===========================================================================
# Packets: parsing, summaries, pcap
# ===========================================================================

_HEX_PACKET = re.compile(r"(0x)?[0-9a-fA-F][0-9a-fA-F:\s]*")


def _scapy_layers() -> dict[str, Any]:
    from scapy.layers import all as layers
    from scapy.packet import Packet

    return {k: v for k, v in vars(layers).items() if isinstance(v, type) and issubclass(v, Packet)}


def parse_packet(text: str) -> bytes:
    """PACKET: hex bytes (``0x`` prefix, ``:`` and blanks allowed) or a scapy expression.

    The expression is evaluated with scapy's layer classes as the only names
    (no builtins): ``Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/UDP(dport=53)``.
    It runs with the caller's privileges like any command line argument; it
    is not a sandbox.
    """
    t = text.strip()
    if _HEX_PACKET.fullmatch(t):
        digits = re.sub(r"[:\s]", "", t[2:] if t[:2].lower() == "0x" else t)
        if len(digits) % 2:
            raise CommandError(f"packet {text!r}: an odd number of hex digits")
        return bytes.fromhex(digits)
    try:
        value = eval(t, {"__builtins__": {}}, _scapy_layers())  # documented: PACKET may be a scapy expression
    except Exception as exc:  # a user expression may fail any way
        raise CommandError(f"packet {text!r}: neither hex bytes nor a scapy expression ({exc})") from None
    from scapy.packet import Packet

    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Packet):
        return bytes(value)
    raise CommandError(f"packet {text!r}: the expression gives {type(value).__name__}, not a packet")


def _summary(frame: bytes) -> str:
    try:
        import scapy.layers.all  # noqa: F401 - binds every layer, so summaries decode IP, UDP ...
        from scapy.layers.l2 import Ether

        return str(Ether(frame).summary())
    except Exception:  # scapy missing or confused: the length is still useful
        return f"{len(frame)} bytes"


def write_pcap_header(f: Any, snaplen: int = 262144) -> None:
    """The classic pcap global header (microsecond timestamps, Ethernet link type)."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))


def write_pcap_record(f: Any, frame: bytes, when: float, orig_len: int | None = None) -> None:
    sec = int(when)
    usec = round((when - sec) * 1_000_000)
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    f.write(struct.pack("<IIII", sec, usec, len(frame), max(orig_len or 0, len(frame))) + frame)


# ===========================================================================
# go-odp flags
# ===========================================================================

_BOOL_STRINGS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}

_TUNNEL_FLAG_FIELDS = ("id", "ipv4-src", "ipv4-dst", "tos", "ttl", "df", "csum", "tp-src", "tp-dst")


def _add_key_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("go-odp key flags (instead of MATCH)")
    g.add_argument("--in-port", metavar="PORT", help="key: incoming vport (name or number)")
    g.add_argument("--eth-src", metavar="MAC[&MASK]", help="key: Ethernet source")
    g.add_argument("--eth-dst", metavar="MAC[&MASK]", help="key: Ethernet destination")
    for name in _TUNNEL_FLAG_FIELDS:
        g.add_argument(f"--tunnel-{name}", metavar=_TUNNEL_METAVARS[name], help=f"key: tunnel {name}")


def _add_action_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("go-odp action flags (instead of ACTIONS)")
    for name in _TUNNEL_FLAG_FIELDS:
        g.add_argument(
            f"--set-tunnel-{name}", metavar=_TUNNEL_METAVARS[name].replace("[&MASK]", ""), help=f"set tunnel {name}"
        )
    g.add_argument("--output", metavar="PORT[,PORT...]", help="output to these vports (names or numbers)")


_TUNNEL_METAVARS = {
    "id": "HEX[&MASK]",
    "ipv4-src": "IP[&MASK]",
    "ipv4-dst": "IP[&MASK]",
    "tos": "N[&MASK]",
    "ttl": "N[&MASK]",
    "df": "BOOL",
    "csum": "BOOL",
    "tp-src": "N[&MASK]",
    "tp-dst": "N[&MASK]",
}


def _flag_value(a: argparse.Namespace, name: str) -> str | None:
    value = getattr(a, name.replace("-", "_"), None)
    return value if isinstance(value, str) else None


def _split_mask(flag: str, text: str, allow_mask: bool) -> tuple[str, str | None]:
    value, amp, mask = text.partition("&")
    if amp and not allow_mask:
        raise CommandError(f"--{flag}={text}: this option takes no mask")
    return value.strip(), (mask.strip() if amp else None)


def _masked_mac(flag: str, text: str) -> Masked:
    value, mask = _split_mask(flag, text, True)
    try:
        return Masked(parse_mac(value), 0xFFFFFFFFFFFF if mask is None else parse_mac(mask))
    except ValueError as exc:
        raise CommandError(f"--{flag}={text}: bad MAC address: {exc}") from None


def _parse_uint(flag: str, text: str, bits: int, base: int = 0) -> int:
    t = text.strip()
    try:
        value = int(t[2:] if base == 16 and t[:2].lower() == "0x" else t, base)
    except ValueError:
        kind = "hex number" if base == 16 else "number"
        raise CommandError(f"--{flag}: {text!r} is not a {kind}") from None
    if not 0 <= value < (1 << bits):
        raise CommandError(f"--{flag}: {text!r} does not fit in {bits} bits")
    return value


def _parse_ipv4(flag: str, text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise CommandError(f"--{flag}: {text!r} is not an IPv4 address") from None


def _masked_field(flag: str, field_name: str, text: str, allow_mask: bool) -> Masked:
    value, mask = _split_mask(flag, text, allow_mask)
    if field_name == "id":
        v, full = _parse_uint(flag, value, 64, 16), (1 << 64) - 1
        m = full if mask is None else _parse_uint(flag, mask, 64, 16)
    elif field_name in ("ipv4-src", "ipv4-dst"):
        v, full = _parse_ipv4(flag, value), 0xFFFFFFFF
        if mask is None:
            m = full
        elif mask.isdigit() and int(mask) <= 32:
            m = (full << (32 - int(mask))) & full
        else:
            m = _parse_ipv4(flag, mask)
    else:
        bits = 8 if field_name in ("tos", "ttl") else 16
        v, full = _parse_uint(flag, value, bits), (1 << bits) - 1
        m = full if mask is None else _parse_uint(flag, mask, bits)
    return Masked(v, m)


def _parse_bool(flag: str, text: str) -> bool:
    if text.strip() not in _BOOL_STRINGS:
        raise CommandError(f"--{flag}={text}: not a boolean (true/false, t/f, 1/0)")
    return _BOOL_STRINGS[text.strip()]


_TUNNEL_MODEL_NAMES = {
    "id": "tun_id",
    "ipv4-src": "ipv4_src",
    "ipv4-dst": "ipv4_dst",
    "tos": "tos",
    "ttl": "ttl",
    "tp-src": "tp_src",
    "tp-dst": "tp_dst",
}


def _tunnel_fields(a: argparse.Namespace, prefix: str, allow_mask: bool) -> dict[str, Masked] | None:
    fields: dict[str, Masked] = {}
    flag_value, flag_mask = 0, 0
    for name in _TUNNEL_FLAG_FIELDS:
        flag = f"{prefix}{name}"
        text = _flag_value(a, flag)
        if text is None:
            continue
        if name in ("df", "csum"):
            bit = 0x2 if name == "df" else 0x4
            flag_mask |= bit
            if _parse_bool(flag, text):
                flag_value |= bit
        else:
            fields[_TUNNEL_MODEL_NAMES[name]] = _masked_field(flag, name, text, allow_mask)
    if flag_mask:
        fields["flags"] = Masked(flag_value, flag_mask)
    return fields or None


def _goodp_key_given(a: argparse.Namespace) -> bool:
    names = ["in-port", "eth-src", "eth-dst", *(f"tunnel-{n}" for n in _TUNNEL_FLAG_FIELDS)]
    return any(_flag_value(a, n) is not None for n in names)


def _goodp_actions_given(a: argparse.Namespace) -> bool:
    names = ["output", *(f"set-tunnel-{n}" for n in _TUNNEL_FLAG_FIELDS)]
    return any(_flag_value(a, n) is not None for n in names)


def _goodp_match(a: argparse.Namespace, dp: Datapath) -> Match:
    """go-odp's key: in_port if given, always eth() (masked MACs), tunnel() if any tunnel flag."""
    attrs: list[KeyAttr] = []
    in_port = _flag_value(a, "in-port")
    if in_port is not None:
        attrs.append(InPort(_port_no(dp, in_port, "--in-port")))
    src, dst = _flag_value(a, "eth-src"), _flag_value(a, "eth-dst")
    attrs.append(
        Ethernet(
            src=None if src is None else _masked_mac("eth-src", src),
            dst=None if dst is None else _masked_mac("eth-dst", dst),
        )
    )
    tunnel = _tunnel_fields(a, "tunnel-", allow_mask=True)
    if tunnel is not None:
        fields: dict[str, Any] = dict(tunnel)
        attrs.append(Tunnel(**fields))
    return Match(*attrs)


def _goodp_actions(a: argparse.Namespace, dp: Datapath) -> Actions:
    """go-odp's actions: set(tunnel(...)) first, then the outputs."""
    items: list[Action] = []
    tunnel = _tunnel_fields(a, "set-tunnel-", allow_mask=False)
    if tunnel is not None:
        values: dict[str, object] = {k: m.value for k, m in tunnel.items() if k != "flags"}
        values["flags"] = Masked(tunnel["flags"].value if "flags" in tunnel else 0, 0xF)
        items.append(set_tunnel(**values))
    output = _flag_value(a, "output")
    if output is not None:
        for name in output.split(","):
            if not name.strip():
                raise CommandError(f"--output={output}: empty port name")
            items.append(Output(_port_no(dp, name, "--output")))
    return Actions(items)


# ===========================================================================
# Flow specs: ODP text or go-odp flags
# ===========================================================================

_UFID_PREFIX = re.compile(r"\s*ufid:([0-9a-fA-F-]{32,36})\s*,?")


def _parse_key_text(text: str, dp: Datapath) -> tuple[Match, bytes | None]:
    ufid = None
    m = _UFID_PREFIX.match(text)
    if m is not None:
        ufid = ufid_from_text(m.group(1))
        text = text[m.end() :]
    try:
        return parse_match(text, dp.port_numbers()), ufid
    except ParseError as exc:
        raise CommandError(f"invalid flow key {text!r}: {exc}") from None


def _parse_actions_text(text: str, dp: Datapath) -> Actions:
    try:
        return parse_actions(text, dp.port_numbers())
    except ParseError as exc:
        raise CommandError(f"invalid actions {text!r}: {exc}") from None


@dataclass
class FlowSpec:
    match: Match | None
    actions: Actions | None
    ufid: bytes | None


def _flow_spec(a: argparse.Namespace, dp: Datapath, *, actions: bool) -> FlowSpec:
    match_text: str | None = getattr(a, "match", None)
    actions_text: str | None = getattr(a, "actions", None)
    key_flags = _goodp_key_given(a)
    action_flags = actions and _goodp_actions_given(a)
    if match_text is not None and key_flags:
        raise UsageError("give the flow key either as MATCH text or with go-odp key flags, not both")
    if actions_text is not None and action_flags:
        raise UsageError("give the actions either as ACTIONS text or with go-odp action flags, not both")
    ufid = None
    match: Match | None = None
    if match_text is not None:
        match, ufid = _parse_key_text(match_text, dp)
    elif key_flags or action_flags:
        match = _goodp_match(a, dp)
    ufid_opt: str | None = getattr(a, "ufid", None)
    if ufid_opt is not None:
        given = ufid_from_text(ufid_opt)
        if ufid is not None and ufid != given:
            raise UsageError("two different UFIDs given (--ufid and a ufid: prefix in MATCH)")
        ufid = given
    acts: Actions | None = None
    if actions_text is not None:
        acts = _parse_actions_text(actions_text, dp)
    elif action_flags:
        acts = _goodp_actions(a, dp)
    elif actions and key_flags:
        acts = Actions()  # go-odp: a flow without action flags drops
    return FlowSpec(match, acts, ufid)


@contextlib.contextmanager
def _flow_errors() -> Iterator[None]:
    try:
        yield
    except InvalidFlow as exc:
        rule = f" [rule: {exc.rule}]" if exc.rule not in ("invalid", "kernel-einval") else ""
        text = str(exc)
        message = text if text.startswith("invalid flow") else f"invalid flow: {text}{rule}"
        raise InvalidFlow(message, rule=exc.rule, field=exc.field) from None


# ===========================================================================
# datapath commands
# ===========================================================================


def _cmd_dp_list(ctx: Ctx, a: argparse.Namespace) -> int:
    infos = sorted(ctx.conn.backend.dp_list(), key=lambda i: i.name)
    if ctx.json:
        ctx.print_json([_dp_json(i) for i in infos])
    else:
        for info in infos:
            ctx.print(info.name)
    return 0


def _cmd_dp_add(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.conn.create_datapath(a.dp)
    if ctx.json:
        ctx.print_json(_dp_json(dp.info()))
    return 0


def _cmd_dp_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    dp.delete()
    if ctx.state is not None:
        ctx.state.upcalls.pop(dp.name, None)
    if ctx.json:
        ctx.print_json({"deleted": dp.name})
    return 0


def _port_desc(v: VportInfo) -> str:
    """ovs-dpctl's ``port N: name (type: options)`` (a netdev, OVS's "system" type, has no parenthesis)."""
    text = f"port {v.port_no}: {v.name}"
    if v.kind == VportKind.NETDEV:
        return text
    opts = []
    if v.dst_port is not None and v.dst_port != DEFAULT_TUNNEL_PORTS.get(v.kind):
        opts.append(f"dst_port={v.dst_port}")
    if v.extensions:
        opts.append(f"exts={','.join(v.extensions)}")
    return f"{text} ({v.kind.value}{': ' + ', '.join(opts) if opts else ''})"


def _human_size(value: int) -> str:
    for limit, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= limit:
            return f" ({value / limit:.1f} {unit})"
    return ""


def _port_stats_lines(v: VportInfo) -> list[str]:
    """``ovs-dpctl show -s``'s counters of one port ('?': the backend does not report it)."""
    st = v.stats
    return [
        f"    RX packets:{st.rx_packets} errors:{st.rx_errors} dropped:{st.rx_dropped} overruns:? frame:?",
        f"    TX packets:{st.tx_packets} errors:{st.tx_errors} dropped:{st.tx_dropped} aborted:? carrier:?",
        "    collisions:?",
        f"    RX bytes:{st.rx_bytes}{_human_size(st.rx_bytes)}  TX bytes:{st.tx_bytes}{_human_size(st.tx_bytes)}",
    ]


def _cmd_dp_show(ctx: Ctx, a: argparse.Namespace) -> int:
    if a.dp:
        dps = [ctx.datapath(ref) for ref in a.dp]
    else:
        dps = sorted(ctx.conn.datapaths(), key=lambda d: d.name)
    shown: list[dict[str, Any]] = []
    for dp in dps:
        info = dp.info()
        vports = dp.vports()
        if ctx.json:
            shown.append({**_dp_json(info), "ports": [_vport_json(dp.name, v) for v in vports]})
            continue
        s, m = info.stats, info.megaflow
        packets = s.hit + s.missed
        ctx.print(f"system@{info.name}:")
        ctx.print(f"  lookups: hit:{s.hit} missed:{s.missed} lost:{s.lost}")
        ctx.print(f"  flows: {s.flows}")
        ctx.print(f"  masks: hit:{m.mask_hit} total:{m.masks} hit/pkt:{(m.mask_hit / packets if packets else 0.0):.2f}")
        for v in vports:
            ctx.print(f"  {_port_desc(v)}")
            if a.statistics:
                for line in _port_stats_lines(v):
                    ctx.print(line)
    if ctx.json:
        ctx.print_json(shown)
    return 0


def _upcall_json(dp_name: str, up: Upcall, names: dict[int, str], when: float) -> dict[str, Any]:
    port = up.in_port
    return {
        "datapath": dp_name,
        "kind": "miss" if up.kind == UpcallKind.MISS else "action",
        "time": when,
        "in_port": port,
        "port_name": names.get(port) if port is not None else None,
        "bytes": len(up.packet),
        "packet": up.packet.hex(),
        "summary": _summary(up.packet),
        "key": format_match(up.key),
        "userdata": None if up.userdata is None else up.userdata.hex(),
    }


def _print_upcall(ctx: Ctx, dp_name: str, up: Upcall, names: dict[int, str], keys: bool, when: float) -> None:
    if ctx.json:
        ctx.out.write(json.dumps(_upcall_json(dp_name, up, names, when)) + "\n")
        return
    port = up.in_port
    where = f"port {port} ({names[port]})" if port in names else f"port {port}"
    kind = "miss" if up.kind == UpcallKind.MISS else "action upcall"
    extra = f", userdata {up.userdata.hex()}" if up.userdata is not None else ""
    ctx.print(f"{dp_name}: {kind} on {where}{extra}, {len(up.packet)} bytes: {_summary(up.packet)}")
    if keys:
        ctx.print(f"  key: {format_match(up.key)}")


def _cmd_dp_listen(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    pcap = open(a.pcap, "wb") if a.pcap else None  # noqa: SIM115 - closed in the finally below
    try:
        if pcap is not None:
            write_pcap_header(pcap)
        if ctx.state is not None:
            queued = ctx.state.take_upcalls(dp.name)
            if a.count is not None and queued[a.count :]:
                ctx.state.upcalls[dp.name] = queued[a.count :]  # left for the next listen
                queued = queued[: a.count]
            names = dp.port_names()
            for q in queued:
                _print_upcall(ctx, dp.name, q.upcall, names, a.keys, q.time)
                if pcap is not None:
                    write_pcap_record(pcap, q.upcall.packet, q.time, q.upcall.length)
            if not queued and not ctx.json:
                sys.stderr.write(
                    f"{PROG}: no upcalls queued for {dp.name}: the simulator only moves packets while a command runs;"
                    f" '{PROG} packet inject' prints the misses it causes and queues them for this command\n"
                )
            return 0
        return _listen_kernel(ctx, dp, a, pcap)
    finally:
        if pcap is not None:
            pcap.close()


def _listen_kernel(ctx: Ctx, dp: Datapath, a: argparse.Namespace, pcap: Any) -> int:
    names = dp.port_names()
    seen = 0
    deadline = None if a.timeout is None else time.monotonic() + a.timeout
    with dp.listen() as listener:
        try:
            while a.count is None or seen < a.count:
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                for up in listener.receive(timeout=wait, max_count=None if a.count is None else a.count - seen):
                    now = time.time()
                    if up.in_port is not None and up.in_port not in names:
                        names = dp.port_names()
                    _print_upcall(ctx, dp.name, up, names, a.keys, now)
                    if pcap is not None:
                        write_pcap_record(pcap, up.packet, now, up.length)
                        pcap.flush()
                    ctx.out.flush()
                    seen += 1
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass
    return 0


# ===========================================================================
# vport commands
# ===========================================================================


def _vport_spec(dp_name: str, v: VportInfo) -> str:
    """The vport as go-odp lists it: the arguments of ``vport add`` that recreate it."""
    text = f"{v.kind.value} {dp_name} {v.name}"
    if v.dst_port is not None and v.kind in DEFAULT_TUNNEL_PORTS:
        text += f" --port={v.dst_port}"
    text += "".join(f" --{ext}" for ext in v.extensions)
    return f"{text} --port-no={v.port_no}"


def _cmd_vport_list(ctx: Ctx, a: argparse.Namespace) -> int:
    dps = [ctx.datapath(a.dp)] if a.dp else sorted(ctx.conn.datapaths(), key=lambda d: d.name)
    rows: list[dict[str, Any]] = []
    for dp in dps:
        for v in dp.vports():
            if ctx.json:
                rows.append(_vport_json(dp.name, v))
            elif v.port_no != OVSP_LOCAL:  # the local port comes with "datapath add"
                ctx.print(_vport_spec(dp.name, v))
    if ctx.json:
        ctx.print_json(rows)
    return 0


def _cmd_vport_add(ctx: Ctx, a: argparse.Namespace) -> int:
    kind = VportKind.parse(a.kind)
    dp = ctx.datapath(a.dp)
    if a.port is not None and kind not in DEFAULT_TUNNEL_PORTS:
        raise UsageError(f"--port (a UDP port) is only for vxlan and geneve vports, not {kind.value}")
    if kind == VportKind.NETDEV and ctx.state is not None and a.name not in ctx.state.host.interfaces:
        # The simulator's convenience: the device a netdev vport attaches to is created on demand.
        ctx.state.host.add_interface(a.name)
    vport = dp.add_vport(a.name, kind, port_no=a.port_no, dst_port=a.port, extensions=["gbp"] if a.gbp else [])
    if ctx.json:
        ctx.print_json(_vport_json(dp.name, vport.info()))
    return 0


def _cmd_vport_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    if len(a.args) == 2:
        dp = ctx.datapath(a.args[0])
        ref: str | int = a.args[1]
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
    else:
        name = a.args[0]
        owners = [d for d in ctx.conn.datapaths() if name in d.port_numbers()]
        if not owners:
            raise NotFoundError(f"no vport named {name!r} in any datapath")
        dp, ref = owners[0], name
    try:
        info = dp.delete_vport(ref)
    except NotFoundError:
        raise NotFoundError(f"datapath {dp.name} has no vport {ref!r}") from None
    if ctx.json:
        ctx.print_json(_vport_json(dp.name, info))
    return 0


def _cmd_vport_listen(ctx: Ctx, a: argparse.Namespace) -> int:
    events_of = getattr(ctx.conn.backend, "vport_events", None)
    if ctx.state is not None or events_of is None:
        raise NotSupported(
            f"vport listen is not available on the {ctx.backend} backend: vport events come from the kernel's"
            " ovs_vport multicast group (use --backend kernel)"
        )
    dp_ifindex = ctx.datapath(a.dp).ifindex if a.dp else None
    names: dict[int, str] = {}
    seen = 0
    deadline = None if a.timeout is None else time.monotonic() + a.timeout
    with events_of(dp_ifindex) as events:
        try:
            while a.count is None or seen < a.count:
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                for ev in events.receive(timeout=wait):
                    ifindex = ev.vport.dp_ifindex
                    if ifindex not in names:
                        try:
                            names[ifindex] = ctx.conn.backend.dp_get(ifindex).name
                        except NotFoundError:
                            names[ifindex] = str(ifindex)
                    prefix = {"new": "add", "del": "delete"}.get(ev.kind, ev.kind)
                    if ctx.json:
                        ctx.out.write(json.dumps({"event": prefix, **_vport_json(names[ifindex], ev.vport)}) + "\n")
                    else:
                        ctx.print(f"{prefix} {_vport_spec(names[ifindex], ev.vport)}")
                    ctx.out.flush()
                    seen += 1
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass
    return 0


# ===========================================================================
# flow commands
# ===========================================================================


def _cmd_flow_list(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    names = dp.port_names() if a.names else None
    flows = dp.flows()
    if ctx.json:
        ctx.print_json([_flow_json(f, names) for f in flows])
    else:
        for f in flows:
            ctx.print(_flow_line(f, names, a.ufid))
    return 0


def _cmd_flow_add(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=True)
    if spec.match is None:
        raise UsageError("flow add needs MATCH and ACTIONS, or go-odp flags")
    if spec.actions is None:
        raise UsageError("flow add needs ACTIONS after MATCH ('drop' for none)")
    with _flow_errors():
        flow = dp.add_flow(spec.match, spec.actions, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_mod(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=True)
    if spec.match is None and spec.ufid is None:
        raise UsageError("flow mod needs MATCH (or --ufid) and ACTIONS")
    with _flow_errors():
        try:
            flow = dp.modify_flow(spec.match, spec.actions, ufid=spec.ufid, clear_stats=a.clear)
        except NotFoundError:
            if not a.may_create or spec.match is None or spec.actions is None:
                raise
            flow = dp.add_flow(spec.match, spec.actions, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_get(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        raise UsageError("flow get needs MATCH or --ufid")
    with _flow_errors():
        flow = dp.get_flow(spec.match, ufid=spec.ufid)
    names = dp.port_names() if a.names else None
    if ctx.json:
        ctx.print_json(_flow_json(flow, names))
    else:
        ctx.print(_flow_line(flow, names, with_ufid=spec.ufid is not None))
    return 0


def _cmd_flow_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        raise UsageError(f"flow delete needs MATCH, go-odp key flags or --ufid ('{PROG} flow flush DP' deletes all)")
    with _flow_errors():
        flow = dp.delete_flow(spec.match, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_clear(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        spec.match = _goodp_match(a, dp)  # go-odp: the key is at least eth()
    with _flow_errors():
        flow = dp.modify_flow(spec.match, ufid=spec.ufid, clear_stats=True)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_flush(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    dp.flush_flows()
    if ctx.json:
        ctx.print_json({"flushed": dp.name})
    return 0


# ===========================================================================
# meter commands
# ===========================================================================


def _band_type_name(number: int) -> str:
    try:
        return MeterBandType(number).name.lower()
    except ValueError:
        return str(number)


def _meter_json(stats: MeterStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "meter_id": stats.meter_id,
        "packets": stats.packets,
        "bytes": stats.bytes,
        "used": stats.used,
        "bands": [{"packets": b.packets, "bytes": b.bytes} for b in stats.bands],
    }


def _meter_lines(stats: MeterStats) -> list[str]:
    # ``used`` is ms of the monotonic clock, as flows report it; print the age like dump-flows.
    age = max(0, int(time.monotonic() * 1000) - stats.used) / 1000
    lines = [f"meter:{stats.meter_id} packets:{stats.packets} bytes:{stats.bytes} used:{age:.3f}s"]
    lines += [f"  band {i}: packets:{b.packets} bytes:{b.bytes}" for i, b in enumerate(stats.bands)]
    return lines


def _meter_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise CommandError(f"meter id {text!r} is not a number") from None
    return value


def _cmd_meter_features(ctx: Ctx, a: argparse.Namespace) -> int:
    f = ctx.datapath(a.dp).meter_features()
    types = [_band_type_name(t) for t in f.band_types]
    if ctx.json:
        ctx.print_json({"max_meters": f.max_meters, "max_bands": f.max_bands, "band_types": types})
    else:
        ctx.print(f"max_meters:{f.max_meters} max_bands:{f.max_bands} band_types:{','.join(types) or 'none'}")
    return 0


def _cmd_meter_set(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    if (a.rate is None) != (a.burst is None):
        raise UsageError("meter set: give both --rate and --burst (or neither, for a meter without bands)")
    if a.type is not None and a.rate is None:
        raise UsageError("meter set: --type needs --rate and --burst")
    bands: list[MeterBand] = []
    if a.rate is not None:
        type_text = a.type or "drop"
        if type_text.lower() == "drop":
            band_type = int(MeterBandType.DROP)
        else:
            try:
                band_type = int(type_text, 0)
            except ValueError:
                raise CommandError(f"--type={type_text}: 'drop' or a band type number") from None
        bands.append(MeterBand(rate=a.rate, burst=a.burst, type=band_type))
    stats = None
    if a.stats is not None:
        parts = a.stats.split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise CommandError(f"--stats={a.stats}: expected PACKETS,BYTES")
        stats = FlowStats(int(parts[0]), int(parts[1]))
    old = dp.set_meter(_meter_id(a.id), bands, kbps=a.kbps, clear=a.clear, stats=stats)
    if ctx.json:
        ctx.print_json({"meter_id": _meter_id(a.id), "replaced": _meter_json(old)})
    elif old is not None:
        ctx.print("replaced " + "\n".join(_meter_lines(old)))
    return 0


def _cmd_meter_get(ctx: Ctx, a: argparse.Namespace) -> int:
    stats = ctx.datapath(a.dp).get_meter(_meter_id(a.id))
    if ctx.json:
        ctx.print_json(_meter_json(stats))
    else:
        for line in _meter_lines(stats):
            ctx.print(line)
    return 0


def _cmd_meter_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    stats = ctx.datapath(a.dp).delete_meter(_meter_id(a.id))
    if ctx.json:
        ctx.print_json(_meter_json(stats))
    elif stats is not None:
        for line in _meter_lines(stats):
            ctx.print(line)
    return 0


def _setup_meter_id(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("id", metavar="ID", help="meter id (0 to 4294967295)")


def _setup_meter_set(p: argparse.ArgumentParser) -> None:
    _setup_meter_id(p)
    p.add_argument("--rate", type=int, help="band rate: packets/s, or kbit/s with --kbps")
    p.add_argument("--burst", type=int, help="band burst: packets, or kbit with --kbps")
    p.add_argument("--type", help="band type: drop (default) or a number (other types only count)")
    p.add_argument("--kbps", action="store_true", help="rates in kbit/s of frame bytes (default: packets/s)")
    p.add_argument("--clear", action="store_true", help="keep this meter's stats out of the reply that replaces it")
    p.add_argument("--stats", metavar="PACKETS,BYTES", help="start the meter's counters at these values")


# ===========================================================================
# packet commands and the simulator trace
# ===========================================================================


@dataclass
class TraceEvent:
    depth: int
    event: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "event": self.event, **self.data}

    def text(self) -> str:
        d = self.data
        e = self.event
        if e == "receive":
            return f"{d['datapath']}: port {d['port']} ({d['port_name']}) received {d['bytes']} bytes: {d['summary']}"
        if e == "execute":
            return f"{d['datapath']}: execute on {d['bytes']} bytes: {d['summary']}"
        if e == "key":
            return f"key: {d['key']}"
        if e == "flow":
            return f"flow: {d['match']}"
        if e == "actions":
            return f"actions: {d['actions']}"
        if e == "miss":
            return "miss: no flow matches"
        if e == "recirculate":
            return f"recirculate: recirc_id({d['recirc_id']:#x})"
        if e == "upcall":
            what = "miss upcall" if d["kind"] == "miss" else f"userspace(pid={d['pid']}) upcall"
            if d["delivered"]:
                return f"upcall: {what} sent to userspace ('{PROG} datapath listen {d['datapath']}' prints it)"
            return f"upcall: {what} lost (no listener on pid {d['pid']})"
        if e == "output":
            head = f"output to port {d['port']} ({d['port_name']})"
            if d.get("tunnel") is not None:
                t = d["tunnel"]
                if t["tp_dst"] is None:  # GRE: no UDP port, the key
                    return f"{head}: {d['type'].upper()} to {t['dst']}, key {t['vni']:#x}"
                return f"{head}: {d['type'].upper()} to {t['dst']} port {t['tp_dst']}, vni {t['vni']}"
            return f"{head}: {d['bytes']} bytes: {d['summary']}"
        if e == "underlay":
            return f"underlay: {d['bytes']} bytes {d['src']}:{d['sport']} > {d['dst']}:{d['dport']}: {d['summary']}"
        if e == "drop":
            return f"dropped: {d['reason']}"
        return f"{e}: {d}"


class Tracer:
    """Renders what the simulated datapaths report (odp.sim.trace) as TraceEvents.

    The observer (odp.sim.trace.Observer) of every datapath on the host for
    the duration of a ``with`` block.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.events: list[TraceEvent] = []
        #: The depth of the events the simulator reports (it moves it).
        self.depth = 0
        self._observing: contextlib.AbstractContextManager[Tracer] | None = None

    def add(self, depth: int, event: str, **data: Any) -> None:
        self.events.append(TraceEvent(depth, event, data))

    @property
    def moved(self) -> bool:
        """Whether the packet got anywhere (received, output, upcalled) before an error."""
        return any(e.event in ("receive", "output", "upcall", "drop") for e in self.events)

    def __enter__(self) -> Tracer:
        from odp.sim.trace import observing

        self._observing = observing([self.host], self)
        return self._observing.__enter__()

    def __exit__(self, *exc: Any) -> None:
        assert self._observing is not None
        self._observing.__exit__(*exc)
        self._observing = None

    def emit(self, e: SimEvent) -> None:
        from odp.sim import trace

        n, dp = e.depth, e.datapath
        if isinstance(e, trace.Receive):
            frame = e.packet
            self.add(n, "receive", datapath=dp, port=e.port, port_name=e.port_name, bytes=len(frame),
                     packet=frame.hex(), summary=_summary(frame))  # fmt: skip
        elif isinstance(e, trace.Extract):
            self.add(n, "key", key=format_match(e.key))
        elif isinstance(e, trace.Hit):
            self.add(n, "flow", match=format_match(e.flow), ufid=_ufid_text(e.ufid))
            self.add(n, "actions", actions=format_actions(e.actions))
        elif isinstance(e, trace.Miss):
            self.add(n, "miss")
        elif isinstance(e, trace.Recirculate):
            self.add(n, "recirculate", recirc_id=e.recirc_id)
            self.add(n, "key", key=format_match(e.key))
        elif isinstance(e, trace.Upcall):
            kind = "miss" if e.kind == UpcallKind.MISS else "action"
            self.add(n, "upcall", datapath=dp, kind=kind, pid=e.pid, delivered=e.delivered)
        elif isinstance(e, trace.Output):
            frame, tun = e.packet, e.tunnel
            tunnel = None
            if tun is not None:
                # Only VXLAN sends to the metadata's tp_dst; Geneve uses its own port, GRE has none.
                dst = ipaddress.IPv6Address(tun.ipv6_dst) if tun.ipv6_dst else ipaddress.IPv4Address(tun.ipv4_dst)
                tp_dst = (tun.tp_dst or e.tp_dst) if e.kind == VportKind.VXLAN else e.tp_dst
                vni = tun.tun_id & (0xFFFFFFFF if tp_dst is None else 0xFFFFFF)
                tunnel = {"dst": str(dst), "tp_dst": tp_dst, "vni": vni}
            self.add(n, "output", port=e.port, port_name=e.port_name, type=e.kind.value, bytes=len(frame),
                     packet=frame.hex(), summary=_summary(frame), tunnel=tunnel)  # fmt: skip
        elif isinstance(e, trace.Underlay):
            self._underlay(n, e.packet)
        elif isinstance(e, trace.Drop):
            self.add(n, "drop", reason=e.reason)
        # ActionExecuted: the flow's actions are printed whole with the flow.

    def _underlay(self, depth: int, frame: bytes) -> None:
        data: dict[str, Any] = {"bytes": len(frame), "packet": frame.hex(), "summary": _summary(frame)}
        data.update(src="?", dst="?", sport="?", dport="?")
        try:
            from scapy.contrib.geneve import GENEVE  # binds UDP port 6081
            from scapy.layers.inet import IP, UDP
            from scapy.layers.inet6 import IPv6
            from scapy.layers.l2 import Ether
            from scapy.layers.vxlan import VXLAN

            pkt = Ether(frame)
            ip: Any = None
            for layer in (IP, IPv6):
                if layer in pkt:
                    ip = pkt[layer]
                    break
            if ip is not None and UDP in pkt:
                data.update(src=ip.src, dst=ip.dst, sport=pkt[UDP].sport, dport=pkt[UDP].dport)
                if VXLAN not in pkt and GENEVE not in pkt:
                    pkt[UDP].decode_payload_as(VXLAN)
                data["summary"] = str(pkt.summary())
        except Exception:  # the summary is a nicety
            pass
        self.add(depth, "underlay", **data)


@contextlib.contextmanager
def _listening(ctx: Ctx) -> Iterator[None]:
    """Listen on every datapath of the simulated host while a packet runs (see the module doc)."""
    state = ctx.state
    assert state is not None
    host = state.host
    saved = {(d.name, v.port_no): v.upcall_pids for d in host.datapaths.values() for v in d.vports.values()}
    listeners = {name: ctx.conn.backend.upcall_listener(name) for name in list(host.datapaths)}
    try:
        yield
    finally:
        now = time.time()
        for name, listener in listeners.items():
            for up in listener.receive():
                state.queue_upcall(name, up, now)
            listener.close()
        for d in host.datapaths.values():
            for v in d.vports.values():
                v.upcall_pids = saved.get((d.name, v.port_no), v.upcall_pids)
        for iface in host.interfaces.values():
            iface.sent.clear()  # printed in the trace; frames out of a device are not kept


def _print_trace(ctx: Ctx, tracer: Tracer) -> None:
    if ctx.json:
        ctx.print_json([e.to_json() for e in tracer.events])
    else:
        for e in tracer.events:
            ctx.print("  " * e.depth + e.text())


def _run_traced(ctx: Ctx, run: Callable[[Tracer], None]) -> None:
    tracer = Tracer(ctx.host)
    try:
        with _listening(ctx), tracer:
            run(tracer)
    except OdpError:
        if tracer.moved:
            _print_trace(ctx, tracer)  # what the packet did before the error, then the error
        raise
    _print_trace(ctx, tracer)


def _cmd_packet_inject(ctx: Ctx, a: argparse.Namespace) -> int:
    if ctx.state is None:
        raise CommandError(
            "packet inject needs the simulator (--backend sim): on the kernel, send the packet into the port's"
            " network device instead (e.g. scapy's sendp)"
        )
    dp = ctx.datapath(a.dp)
    port_no = _port_no(dp, a.port)
    sim_dp = ctx.state.host.datapaths[dp.name]
    vport = sim_dp.vports.get(port_no)
    if vport is None:
        raise NotFoundError(f"datapath {dp.name} has no port {port_no}")
    if vport.kind not in (VportKind.NETDEV, VportKind.INTERNAL):
        raise CommandError(
            f"port {vport.name} is a {vport.kind.value} vport: inject into a netdev or internal port"
            " (tunnel ports receive from the underlay)"
        )
    frame = parse_packet(a.packet)
    _run_traced(ctx, lambda tracer: vport.interface.inject(frame))
    return 0


def _cmd_packet_execute(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    frame = parse_packet(a.packet)
    actions = _parse_actions_text(a.actions, dp)
    key: Match | None = None
    attrs: list[KeyAttr] = []
    if a.key is not None:
        key, _ = _parse_key_text(a.key, dp)
        attrs.extend(key.attrs)
    if a.in_port is not None:
        if any(isinstance(x, InPort) for x in attrs):
            raise UsageError("in_port given twice (--in-port and in --key)")
        attrs.append(InPort(_port_no(dp, a.in_port, "--in-port")))
    if attrs:
        key = Match(*attrs)
    if ctx.state is None:
        with _flow_errors():
            dp.execute(frame, actions, key=key)
        if ctx.json:
            ctx.print_json({"executed": True, "datapath": dp.name, "bytes": len(frame)})
        return 0

    def run(tracer: Tracer) -> None:
        tracer.add(0, "execute", datapath=dp.name, bytes=len(frame), packet=frame.hex(), summary=_summary(frame))
        tracer.add(1, "actions", actions=format_actions(actions))
        tracer.depth = 1
        with _flow_errors():
            dp.execute(frame, actions, key=key)

    _run_traced(ctx, run)
    return 0


# ===========================================================================
# Parsers of the leaves
# ===========================================================================


def _setup_dp(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", help="datapath name")


def _setup_dp_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", nargs="*", help="datapaths to show (default: all)")
    p.add_argument("-s", "--statistics", action="store_true", help="print each port's packet counters")


def _setup_listen_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, metavar="N", help="stop after N events")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long (kernel)")


def _setup_dp_listen(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("--keys", action="store_true", help="print each packet's flow key (ODP text)")
    p.add_argument("--pcap", metavar="FILE", help="also write the packets to this pcap file")
    _setup_listen_limits(p)


def _setup_vport_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", nargs="?", help="datapath (default: all)")


def _setup_vport_listen(p: argparse.ArgumentParser) -> None:
    _setup_vport_list(p)
    _setup_listen_limits(p)


def _setup_vport_add(kind: VportKind) -> Callable[[argparse.ArgumentParser], None]:
    def setup(p: argparse.ArgumentParser) -> None:
        p.set_defaults(kind=kind.value)
        _setup_dp(p)
        p.add_argument("name", metavar="NAME", help="vport (and network device) name")
        if kind in DEFAULT_TUNNEL_PORTS:
            p.add_argument("--port", type=int, metavar="UDP", help=f"UDP port (default {DEFAULT_TUNNEL_PORTS[kind]})")
        else:
            p.set_defaults(port=None)
        if kind == VportKind.VXLAN:
            p.add_argument("--gbp", action="store_true", help="the Group Based Policy extension (VXLAN GBP)")
        else:
            p.set_defaults(gbp=False)
        p.add_argument("--port-no", type=int, metavar="N", help="vport number (default: the lowest free)")

    return setup


def _setup_vport_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", metavar="[DP] NAME", nargs="+", help="the vport (name, or number with DP)")


def _check_vport_delete(a: argparse.Namespace) -> None:
    if len(a.args) > 2:
        raise UsageError("vport delete takes [DP] NAME")


def _setup_flow_list(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("--names", action="store_true", help="print port names instead of numbers")
    p.add_argument("--ufid", action="store_true", help="print each flow's ufid:<uuid> first (as ovs-dpctl -m)")
    p.add_argument("--stats", action="store_true", help="go-odp compatibility: the lines always carry statistics")


def _setup_flow(*, actions: bool, names: bool = False, mod: bool = False) -> Callable[[argparse.ArgumentParser], None]:
    def setup(p: argparse.ArgumentParser) -> None:
        _setup_dp(p)
        p.add_argument("match", metavar="MATCH", nargs="?", help="flow key, ODP text (port names allowed)")
        if actions:
            p.add_argument("actions", metavar="ACTIONS", nargs="?", help="actions, ODP text ('drop' for none)")
        p.add_argument("--ufid", metavar="UUID", help="the flow's UFID (ufid:<uuid> as ovs-dpctl prints it)")
        if names:
            p.add_argument("--names", action="store_true", help="print port names instead of numbers")
        if mod:
            p.add_argument("--clear", action="store_true", help="also clear the flow's statistics")
            p.add_argument("--may-create", action="store_true", help="create the flow if it does not exist")
        _add_key_flags(p)
        if actions:
            _add_action_flags(p)

    return setup


def _setup_packet_execute(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("packet", metavar="PACKET", help="hex bytes or a scapy expression")
    p.add_argument("actions", metavar="ACTIONS", help="actions, ODP text")
    p.add_argument("--in-port", metavar="PORT", help="the packet's input port (default: the local port)")
    p.add_argument("--key", metavar="MATCH", help="metadata for the packet, ODP text (in_port, skb_mark ...)")


def _setup_packet_inject(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("port", metavar="PORT", help="the vport the packet arrives on (name or number)")
    p.add_argument("packet", metavar="PACKET", help="hex bytes or a scapy expression")


def _cmd_demo(a: argparse.Namespace) -> int:
    from odp.demo import main as demo

    return demo()


def _cmd_help(a: argparse.Namespace) -> int:
    sys.stdout.write(_overview())
    return 0


def _build_tree() -> Command:
    root = Command(PROG)
    dp = root.add(Command("datapath", aliases=("dp",), default="list"))
    dp.add(Command("list", "list datapaths", _cmd_dp_list))
    dp.add(Command("add", "create a datapath", _cmd_dp_add, _setup_dp, "write", usage="DP"))
    dp.add(Command("delete", "delete a datapath", _cmd_dp_delete, _setup_dp, "write", usage="DP"))
    dp.add(Command("show", "ovs-dpctl show", _cmd_dp_show, _setup_dp_show, usage="[-s] [DP...]"))
    dp.add(
        Command(
            "listen",
            "print misses (sim: the queued ones)",
            _cmd_dp_listen,
            _setup_dp_listen,
            "write",
            usage="[--keys] [--pcap FILE] [--count N] DP",
        )
    )
    vp = root.add(Command("vport", default="list"))
    vp.add(Command("list", "list vports", _cmd_vport_list, _setup_vport_list, usage="[DP]"))
    add = vp.add(Command("add"))
    for kind in VportKind:
        opts = " [--port=UDP]" if kind in DEFAULT_TUNNEL_PORTS else ""
        add.add(
            Command(
                kind.value,
                f"add {'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value} vport",
                _cmd_vport_add,
                _setup_vport_add(kind),
                "write",
                usage=f"DP NAME{opts} [--port-no=N]",
            )
        )
    vp.add(Command("delete", "delete a vport", _cmd_vport_delete, _setup_vport_delete, "write", usage="[DP] NAME"))
    vp.add(
        Command(
            "listen",
            "print vport events (kernel)",
            _cmd_vport_listen,
            _setup_vport_listen,
            usage="[DP]",
        )
    )
    fl = root.add(Command("flow"))
    fl.add(Command("list", "ovs-dpctl dump-flows", _cmd_flow_list, _setup_flow_list, usage="DP [--names]"))
    fl.add(
        Command(
            "add", "add a flow", _cmd_flow_add, _setup_flow(actions=True), "write", usage="DP MATCH ACTIONS | flags"
        )
    )
    fl.add(
        Command(
            "mod",
            "change a flow's actions",
            _cmd_flow_mod,
            _setup_flow(actions=True, mod=True),
            "write",
            usage="DP MATCH ACTIONS [--clear]",
        )
    )
    fl.add(
        Command(
            "get", "print one flow", _cmd_flow_get, _setup_flow(actions=False, names=True), usage="DP MATCH | --ufid=U"
        )
    )
    fl.add(
        Command(
            "delete", "delete a flow", _cmd_flow_delete, _setup_flow(actions=False), "write", usage="DP MATCH | flags"
        )
    )
    fl.add(
        Command(
            "clear",
            "clear a flow's statistics",
            _cmd_flow_clear,
            _setup_flow(actions=False),
            "write",
            usage="DP MATCH | flags",
        )
    )
    fl.add(Command("flush", "delete every flow", _cmd_flow_flush, _setup_dp, "write", usage="DP"))
    me = root.add(Command("meter"))
    me.add(Command("features", "meter limits of a datapath", _cmd_meter_features, _setup_dp, usage="DP"))
    me.add(
        Command(
            "set",
            "create or replace a meter",
            _cmd_meter_set,
            _setup_meter_set,
            "write",
            usage="DP ID [--rate=N --burst=N] [--kbps] [--clear]",
        )
    )
    me.add(Command("get", "print a meter's counters", _cmd_meter_get, _setup_meter_id, usage="DP ID"))
    me.add(Command("delete", "delete a meter", _cmd_meter_delete, _setup_meter_id, "write", usage="DP ID"))
    pk = root.add(Command("packet"))
    pk.add(
        Command(
            "execute",
            "run actions on a packet",
            _cmd_packet_execute,
            _setup_packet_execute,
            "write",
            usage="DP PACKET ACTIONS",
        )
    )
    pk.add(
        Command(
            "inject",
            "trace a packet (simulator)",
            _cmd_packet_inject,
            _setup_packet_inject,
            "write",
            usage="DP PORT PACKET",
        )
    )
    root.add(Command("demo", "the simulator demo (no state, no backend)", plain=_cmd_demo))
    root.add(Command("help", "this overview", plain=_cmd_help))
    return root


TREE = _build_tree()


def _overview() -> str:
    lines = [
        f"usage: {PROG} [--backend kernel|sim] [--state PATH] [--json] COMMAND ...",
        "",
        "Commands (any unambiguous prefix works; dp = datapath):",
        *_usage_lines(TREE, []),
        "",
        "Backend: --backend or $ODP_BACKEND (default sim); simulator state: --state or $ODP_SIM_STATE",
        f"(default $XDG_STATE_HOME/odp/sim.json).  '{PROG} COMMAND --help' describes a command.",
        "",
    ]
    return "\n".join(lines)


# ===========================================================================
# main
# ===========================================================================


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, InvalidFlow) and exc.rule not in ("invalid", "kernel-einval") and "[rule:" not in text:
        text += f" [rule: {exc.rule}]"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def _main_parser() -> _ArgParser:
    p = _ArgParser(prog=PROG, add_help=False, allow_abbrev=False)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--version", action="store_true")
    _add_global_options(p, suppress=False)
    p.add_argument("words", nargs=argparse.REMAINDER)
    return p


def _leaf_parser(node: Command, path: list[str]) -> _ArgParser:
    p = _ArgParser(prog=" ".join([PROG, *path]), description=node.help, allow_abbrev=False)
    if node.setup is not None:
        node.setup(p)
    _add_global_options(p, suppress=True)
    return p


def _backend_name(value: str | None) -> str:
    name = value or os.environ.get("ODP_BACKEND") or "sim"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r} (use --backend kernel or --backend sim)")
    return name


def _state_path(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("ODP_SIM_STATE")
    if env:
        return env
    from odp.sim.state import default_state_path

    return str(default_state_path())


def _dispatch(args: list[str]) -> int:
    top = _main_parser().parse_args(args)
    if top.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            sys.stdout.write(f"{PROG} {version('odp')}\n")
        except PackageNotFoundError:
            sys.stdout.write(f"{PROG} (version unknown)\n")
        return 0
    words: list[str] = list(top.words)
    if top.help:
        sys.stdout.write(_overview())
        return 0
    if not words:
        sys.stderr.write(_overview())  # a usage error: no command
        return 2
    node, path = TREE, list[str]()
    while node.children and words and not words[0].startswith("-"):
        child = _resolve(node, words[0], path)
        if child is None:
            raise UsageError(f"unknown command '{' '.join([*path, words[0]])}' (see '{PROG} help')")
        node = child
        path.append(child.name)
        words.pop(0)
    if node.children:
        if node.default is not None and not any(w in ("-h", "--help") for w in words):
            node = node.children[node.default]
            path.append(node.name)
        else:
            subs = ", ".join(node.children)
            if any(w in ("-h", "--help") for w in words):
                sys.stdout.write("\n".join(_usage_lines(node, path)) + "\n")
                return 0
            raise UsageError(f"'{' '.join(path)}' needs a subcommand: {subs}")
    a = _leaf_parser(node, path).parse_args(words)
    if node.handler is _cmd_vport_delete:
        _check_vport_delete(a)
    json_out = bool(getattr(a, "json", False) or top.json)
    backend = _backend_name(getattr(a, "backend", None) or top.backend)
    if node.plain is not None:
        return node.plain(a)
    handler = node.handler
    assert handler is not None
    out = sys.stdout
    if backend == "kernel":
        from odp.datapath import connect

        with connect("kernel") as conn:
            return handler(Ctx(conn, backend, json_out, out), a)
    from odp.sim.datapath import SimBackend
    from odp.sim.state import locked_state

    path_ = _state_path(getattr(a, "state", None) or top.state)
    with locked_state(path_, write=node.state == "write") as state:
        conn = Connection(SimBackend(state.host))
        return handler(Ctx(conn, backend, json_out, out, state), a)


def main(argv: list[str] | None = None) -> int:
    """Run the ``odp`` command line; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return _dispatch(args)
    except _Exit as exc:
        return exc.status
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {_error_text(exc)}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OdpError, ValueError, OSError) as exc:
        sys.stderr.write(f"{PROG}: error: {_error_text(exc)}\n")
        return 1
