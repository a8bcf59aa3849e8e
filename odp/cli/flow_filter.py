"""``odp flow list DP [filter=]FILTER``: ovs-dpctl dump-flows' filter.

ovs-dpctl parses the filter as an OpenFlow match (``in_port=1,ip,nw_dst=10.0.0.1``)
and keeps the flows whose key equals it on every bit the filter sets
(dpctl_dump_flows: ``flow_equal_except`` against the filter's wildcards).
The flow's key is its masked key: a field the flow wildcards is zero there, so
``nw_dst=10.0.0.1`` does not pass a flow that matches any destination, just as
in ovs-dpctl.  The fields understood are the common ones (listed in
:data:`FIELDS` and the protocol shorthands of :data:`SHORTHANDS`); others are
refused with their name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from odp.cli.base import CommandError
from odp.fields import Masked, parse_mac
from odp.keys import Arp, Ethernet, EthType, Icmp, InPort, Ipv4, Ipv6, KeyAttr, Match, Sctp, Tcp, Udp

Parser = Callable[[str, dict[str, int]], tuple[int, int]]


def _uint(bits: int) -> Parser:
    def parse(text: str, names: dict[str, int]) -> tuple[int, int]:
        value, _, mask = text.partition("/")
        full = (1 << bits) - 1
        try:
            v, m = int(value, 0), int(mask, 0) if mask else full
        except ValueError:
            raise CommandError(f"{text!r} is not a number") from None
        if not (0 <= v <= full and 0 <= m <= full):
            raise CommandError(f"{text!r} does not fit in {bits} bits")
        return v, m

    return parse


def _port(text: str, names: dict[str, int]) -> tuple[int, int]:
    if text in names:
        return names[text], 0xFFFFFFFF
    return _uint(32)(text, names)


def _mac(text: str, names: dict[str, int]) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    try:
        return parse_mac(value), parse_mac(mask) if mask else 0xFFFFFFFFFFFF
    except ValueError as exc:
        raise CommandError(f"{text!r}: {exc}") from None


def _ip(version: int) -> Parser:
    def parse(text: str, names: dict[str, int]) -> tuple[int, int]:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            value, _, mask = text.partition("/")
            try:
                return int(ipaddress.ip_address(value)), int(ipaddress.ip_address(mask))
            except ValueError:
                raise CommandError(f"{text!r} is not an IPv{version} address or prefix") from None
        if net.version != version:
            raise CommandError(f"{text!r} is not an IPv{version} address")
        return int(net.network_address), int(net.netmask)

    return parse


@dataclass(frozen=True, slots=True)
class Field:
    attrs: tuple[type[KeyAttr], ...]
    name: str
    parse: Parser


_L4 = (Tcp, Udp, Sctp)
#: OpenFlow field names (and their OXM spellings) -> the key attribute fields they compare.
FIELDS: dict[str, Field] = {
    "in_port": Field((InPort,), "port", _port),
    "dl_src": Field((Ethernet,), "src", _mac),
    "dl_dst": Field((Ethernet,), "dst", _mac),
    "dl_type": Field((EthType,), "value", _uint(16)),
    "nw_src": Field((Ipv4,), "src", _ip(4)),
    "nw_dst": Field((Ipv4,), "dst", _ip(4)),
    "nw_proto": Field((Ipv4, Ipv6), "proto", _uint(8)),
    "nw_ttl": Field((Ipv4,), "ttl", _uint(8)),
    "ipv6_src": Field((Ipv6,), "src", _ip(6)),
    "ipv6_dst": Field((Ipv6,), "dst", _ip(6)),
    "tp_src": Field(_L4, "src", _uint(16)),
    "tp_dst": Field(_L4, "dst", _uint(16)),
    "icmp_type": Field((Icmp,), "type", _uint(8)),
    "icmp_code": Field((Icmp,), "code", _uint(8)),
    "arp_spa": Field((Arp,), "sip", _ip(4)),
    "arp_tpa": Field((Arp,), "tip", _ip(4)),
    "arp_op": Field((Arp,), "op", _uint(16)),
}
for _alias, _name in (
    ("eth_src", "dl_src"), ("eth_dst", "dl_dst"), ("eth_type", "dl_type"), ("ip_src", "nw_src"),
    ("ip_dst", "nw_dst"), ("ip_proto", "nw_proto"), ("tcp_src", "tp_src"), ("tcp_dst", "tp_dst"),
    ("udp_src", "tp_src"), ("udp_dst", "tp_dst"), ("icmpv4_type", "icmp_type"), ("icmpv4_code", "icmp_code"),
):  # fmt: skip
    FIELDS[_alias] = FIELDS[_name]

#: Protocol shorthands: (eth_type, ip proto or None).
SHORTHANDS: dict[str, tuple[int, int | None]] = {
    "ip": (0x0800, None), "ipv6": (0x86DD, None), "arp": (0x0806, None), "rarp": (0x8035, None),
    "icmp": (0x0800, 1), "tcp": (0x0800, 6), "udp": (0x0800, 17), "sctp": (0x0800, 132),
    "icmp6": (0x86DD, 58), "tcp6": (0x86DD, 6), "udp6": (0x86DD, 17), "sctp6": (0x86DD, 132),
    "mpls": (0x8847, None), "mplsm": (0x8848, None),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Condition:
    field: Field
    value: int
    mask: int

    def holds(self, match: Match) -> bool:
        for cls in self.field.attrs:
            attr = match.get(cls)
            if attr is not None:
                m: Masked = getattr(attr, self.field.name)
                return (m.value & m.mask & self.mask) == (self.value & self.mask)
        return self.value & self.mask == 0  # no such attribute: the key holds zero there


@dataclass(frozen=True, slots=True)
class FlowFilter:
    conditions: tuple[Condition, ...]

    def matches(self, match: Match | None) -> bool:
        return match is not None and all(c.holds(match) for c in self.conditions)


def parse_filter(text: str, names: dict[str, int]) -> FlowFilter:
    """``[filter=]FIELD=VALUE[/MASK],SHORTHAND,...`` as a :class:`FlowFilter`."""
    body = text[len("filter=") :] if text.startswith("filter=") else text
    conditions: list[Condition] = []
    for part in (p.strip() for p in body.split(",")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq:
            if name not in SHORTHANDS:
                raise CommandError(f"filter {text!r}: unknown protocol {name!r} (fields are NAME=VALUE)")
            eth_type, proto = SHORTHANDS[name]
            conditions.append(Condition(FIELDS["dl_type"], eth_type, 0xFFFF))
            if proto is not None:
                conditions.append(Condition(FIELDS["nw_proto"], proto, 0xFF))
            continue
        field = FIELDS.get(name)
        if field is None:
            known = ", ".join(sorted(FIELDS))
            raise CommandError(f"filter {text!r}: unknown field {name!r} (known: {known})")
        try:
            v, m = field.parse(value.strip(), names)
        except CommandError as exc:
            raise CommandError(f"filter {text!r}: {name}: {exc}") from None
        conditions.append(Condition(field, v, m))
    return FlowFilter(tuple(conditions))
