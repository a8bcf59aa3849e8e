"""go-odp's flags translated into flows, and flow specs given as ODP text or flags."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from odp.actions import Action, Actions, Output, set_tunnel
from odp.cli.base import CommandError, UsageError, _port_no
from odp.cli.output import ufid_from_text
from odp.datapath import (
    Datapath,
)
from odp.errors import InvalidFlow, ParseError
from odp.fields import Masked, parse_mac
from odp.keys import Ethernet, InPort, KeyAttr, Match, Tunnel
from odp.text import parse_actions, parse_match

if TYPE_CHECKING:
    pass

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
