"""The kernel oracle's cases: generated from a seed, stored as plain text and bytes.

A case is either an *install* case (one flow over any key attributes with
random masks and random actions, valid or not: the outcome is the error
class, or the flow as the datapath dumps it) or a *packet* case (meters, a
small flow table whose flows share one mask per recirculation stage, so no
two overlap, and frames sent into port 1: the outcome is what came out of
each port, the miss keys and the flows' stats).

``generate(seed, index)`` depends on nothing but its arguments and
:data:`GENERATOR_VERSION`: the same pair gives the same case, so a corpus
records only cases and outcomes plus the seed, and can be regenerated and
checked.  Bump the version whenever generation changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from odp.testing.oracle.frames import IP4S, IP6S, MACS, PORTS, Frame, random_frame

GENERATOR_VERSION = 2

#: Meters whose verdicts do not depend on time (buckets refill by the
#: millisecond, and the VM is slow): one that never drops, in packets and in
#: kbit/s, and one (1 packet/s, burst 1) that passes the first packet and
#: drops the rest of the case (it would take a second to refill).
_METERS: tuple[tuple[int, int, bool], ...] = ((1000000, 100000, False), (1000000, 100000, True), (1, 1, False))

#: Ports of the oracle's datapath: frames go into port 1, come out of 1-3;
#: port 4 carries the fence (see odp.testing.oracle.bench).
CASE_PORTS = (1, 2, 3)


@dataclass(frozen=True)
class Case:
    """One oracle case.  ``meters`` are (id, rate, burst, kbps)."""

    seed: int
    index: int
    kind: str  # "install" or "packet"
    flows: tuple[tuple[str, str], ...]
    packets: tuple[bytes, ...] = ()
    meters: tuple[tuple[int, int, int, bool], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.seed}:{self.index}"

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "index": self.index,
            "kind": self.kind,
            "flows": [list(f) for f in self.flows],
            "packets": [p.hex() for p in self.packets],
            "meters": [list(m) for m in self.meters],
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Case:
        flows = d["flows"]
        packets = d["packets"]
        meters = d["meters"]
        assert isinstance(flows, list) and isinstance(packets, list) and isinstance(meters, list)
        return cls(
            seed=int(str(d["seed"])),
            index=int(str(d["index"])),
            kind=str(d["kind"]),
            flows=tuple((str(m), str(a)) for m, a in flows),
            packets=tuple(bytes.fromhex(p) for p in packets),
            meters=tuple((int(i), int(r), int(b), bool(k)) for i, r, b, k in meters),
        )


def generate(seed: int, index: int) -> Case:
    """Case ``index`` of ``seed``: about one in five is a packet case."""
    rng = random.Random(f"odp-oracle/{GENERATOR_VERSION}/{seed}/{index}")
    if rng.random() < 0.2:
        return _packet_case(rng, seed, index)
    return Case(seed, index, "install", ((_any_match(rng), _actions(rng, None)),))


def generate_many(seed: int, count: int, start: int = 0) -> list[Case]:
    return [generate(seed, i) for i in range(start, start + count)]


# -- values ----------------------------------------------------------------------


def _hex(rng: random.Random, bits: int) -> int:
    return rng.choice((0, 1, (1 << bits) - 1, rng.randrange(1 << bits), rng.randrange(1 << bits)))


def _int_field(rng: random.Random, name: str, bits: int, value: int | None = None, exact: float = 0.5) -> str:
    v = _hex(rng, bits) if value is None else value
    r = rng.random()
    if r < exact:
        return f"{name}={v}"
    mask = rng.choice((0, (1 << bits) - 1, rng.randrange(1 << bits), ((1 << bits) - 1) ^ 1))
    return f"{name}={v:#x}/{mask:#x}"


def _mac_field(rng: random.Random, name: str, value: str | None = None) -> str:
    v = value or rng.choice(MACS)
    if rng.random() < 0.6:
        return f"{name}={v}"
    return f"{name}={v}/" + rng.choice(
        ("ff:ff:ff:ff:ff:00", "01:00:00:00:00:00", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")
    )


def _ip4_field(rng: random.Random, name: str, value: str | None = None) -> str:
    v = value or rng.choice(IP4S)
    if rng.random() < 0.5:
        return f"{name}={v}"
    return f"{name}={v}/" + rng.choice(("255.255.255.0", "255.0.0.0", "0.0.0.0", "255.255.255.255", "0.255.0.255"))


def _ip6_field(rng: random.Random, name: str, value: str | None = None) -> str:
    v = value or rng.choice(IP6S)
    if rng.random() < 0.5:
        return f"{name}={v}"
    return f"{name}={v}/" + rng.choice(("ffff:ffff::", "::ffff", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))


def _some(rng: random.Random, parts: list[str]) -> str:
    return ",".join(p for p in parts if rng.random() < 0.6)


# -- install cases: any attributes, any masks ---------------------------------------


def _l3_attr(rng: random.Random, which: str, proto: int | None = None) -> str:
    """An L3 attribute; with ``proto``, its protocol is exactly that (an L4 attribute follows)."""
    text = _l3_fields(rng, which)
    if proto is None or which not in ("ipv4", "ipv6"):
        return text
    fields = [f for f in text[5:-1].split(",") if f and not f.startswith("proto=")]
    return f"{which}({','.join([*fields, f'proto={proto}'])})"


def _l3_fields(rng: random.Random, which: str) -> str:
    if which == "ipv4":
        frag = rng.choice(("no", "first", "later", "no/0", "1/0xf"))
        src, dst = _ip4_field(rng, "src"), _ip4_field(rng, "dst")
        proto = _int_field(rng, "proto", 8, rng.choice((6, 17, 1, 132, 47)))
        parts = [src, dst, proto, _int_field(rng, "tos", 8), _int_field(rng, "ttl", 8), f"frag={frag}"]
        return f"ipv4({_some(rng, parts)})"
    if which == "ipv6":
        frag = rng.choice(("no", "first", "later"))
        parts = [_ip6_field(rng, "src"), _ip6_field(rng, "dst"), _int_field(rng, "label", 20),
                 _int_field(rng, "proto", 8, rng.choice((6, 17, 58, 132))), _int_field(rng, "tclass", 8),
                 _int_field(rng, "hlimit", 8), f"frag={frag}"]  # fmt: skip
        return f"ipv6({_some(rng, parts)})"
    if which == "arp":
        parts = [_ip4_field(rng, "sip"), _ip4_field(rng, "tip"), _int_field(rng, "op", 16, rng.choice((1, 2, 256))),
                 _mac_field(rng, "sha"), _mac_field(rng, "tha")]  # fmt: skip
        return f"arp({_some(rng, parts)})"
    if which == "mpls":
        parts = [
            _int_field(rng, "label", 20),
            _int_field(rng, "tc", 3),
            _int_field(rng, "ttl", 8),
            _int_field(rng, "bos", 1),
        ]
        return f"mpls({','.join(parts)})"
    return ""


def _l4_attr(rng: random.Random, which: str) -> str:
    if which in ("tcp", "udp", "sctp"):
        port = rng.choice(PORTS)
        return f"{which}({_some(rng, [_int_field(rng, 'src', 16, port), _int_field(rng, 'dst', 16, port)])})"
    if which in ("icmp", "icmpv6"):
        icmp_type = _int_field(rng, "type", 8, rng.choice((8, 135, 136)))
        return f"{which}({_some(rng, [icmp_type, _int_field(rng, 'code', 8, 0)])})"
    if which == "nd":
        return f"nd({_some(rng, [_ip6_field(rng, 'target'), _mac_field(rng, 'sll'), _mac_field(rng, 'tll')])})"
    if which == "tcp_flags":
        return f"tcp_flags({rng.choice(('+syn-ack', 'syn', '0x12/0x12', '0/0xfff', '0x800/0xfff'))})"
    return ""


_L3_FOR = {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp", 0x8847: "mpls", 0x8848: "mpls"}
_L4_FOR = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"}


def _any_match(rng: random.Random) -> str:
    parts: list[str] = []
    r = rng.random
    if r() < 0.15:
        parts.append(f"recirc_id({rng.choice((0, 1, 7, 0xFFFFFFFF))}{rng.choice(('', '', '/0xff', '/0'))})")
    if r() < 0.1:
        parts.append(f"dp_hash({_hex(rng, 32):#x}/{_hex(rng, 32):#x})")
    if r() < 0.15:
        parts.append(f"skb_priority({_hex(rng, 32):#x}{rng.choice(('', '/0xff'))})")
    if r() < 0.9:
        parts.append(f"in_port({rng.choice((1, 1, 1, 2, 9, 0))}{rng.choice(('', '', '', '/0xff'))})")
    if r() < 0.15:
        parts.append(f"skb_mark({_hex(rng, 32):#x}{rng.choice(('', '/0xf0'))})")
    if r() < 0.08:
        parts.append(rng.choice(("ct_state(+trk)", "ct_state(-trk)", "ct_state(+new+trk)", "ct_zone(5)",
                                 "ct_mark(0x1/0xff)", "ct_label(0x1)", "ct_state(+new)")))  # fmt: skip
    if r() < 0.05:
        parts.append(rng.choice(("tunnel(tun_id=0x5,src=10.0.0.1,dst=10.0.0.2,ttl=64,flags(key))",
                                 "tunnel(dst=10.0.0.2,ttl=64)", "tunnel(tun_id=0x5/0xff)")))  # fmt: skip
    has_eth = r() < 0.93
    if has_eth:
        parts.append(f"eth({_some(rng, [_mac_field(rng, 'src'), _mac_field(rng, 'dst')])})")
    vlan = has_eth and r() < 0.15
    eth_type = rng.choice((0x0800, 0x0800, 0x0800, 0x86DD, 0x86DD, 0x0806, 0x8847, 0x1234, 0x05FF, 0x8100))
    inner: list[str] = []
    if r() < 0.07:
        inner.append(rng.choice(("eth_type(0/0)", "eth_type(0x800/0xff00)", "eth_type(0x0800/0xffff)")))
    elif r() < 0.95:
        inner.append(f"eth_type({eth_type:#06x})")
    l3 = _L3_FOR.get(eth_type, "")
    if r() < 0.08:  # an attribute the ethertype does not allow
        l3 = rng.choice(("ipv4", "ipv6", "arp", "mpls"))
    has_l3 = bool(l3) and r() < 0.9
    proto = rng.choice((6, 17, 1, 58, 132))
    with_l4 = has_l3 and l3 in ("ipv4", "ipv6") and r() < 0.8
    if has_l3:
        # an L4 attribute needs the protocol exact in the L3 attribute
        inner.append(_l3_attr(rng, l3, proto if with_l4 else None))
    if with_l4:
        l4 = _L4_FOR[proto]
        if r() < 0.08:
            l4 = rng.choice(("tcp", "udp", "icmp", "icmpv6", "sctp"))
        inner.append(_l4_attr(rng, l4))
        if l4 == "tcp" and r() < 0.5:
            inner.append(_l4_attr(rng, "tcp_flags"))
        if l4 == "icmpv6" and r() < 0.5:
            inner.append(_l4_attr(rng, "nd"))
    if vlan:
        tci = rng.choice(
            ("vid=5,pcp=0", "vid=5", "vid=100/0xff0,pcp=7/0x6", "tci=0x1005", "vid=0,pcp=0,cfi=0", "vid=5,cfi=1/0")
        )
        parts += [
            f"eth_type({rng.choice(('0x8100', '0x8100', '0x88a8'))})",
            f"vlan({tci})",
            f"encap({','.join(inner)})",
        ]
    else:
        parts += inner
    return ",".join(p for p in parts if p)


# -- actions ----------------------------------------------------------------------


_ANY_SET = ("eth", "ipv4", "ipv4", "ipv6", "tcp", "udp", "sctp", "mpls", "skb_mark", "skb_priority", "arp", "icmp",
            "vlan", "nd", "tunnel", "ct_state", "in_port")  # fmt: skip
#: Per frame kind of a packet case, the set() actions that mostly fit its flows.
_KIND_SETS = {"ipv4": ("ipv4", "ipv4", "tcp", "udp"), "ipv6": ("ipv6", "ipv6", "tcp", "udp", "nd"), "mpls": ("mpls",),
              "arp": (), "other": ()}  # fmt: skip


def _set_action(rng: random.Random, kind: str | None) -> str:
    which = rng.choice(_ANY_SET if kind is None else ("eth", "skb_mark", "skb_priority", *_KIND_SETS[kind]))
    masked = rng.random() < 0.4

    def m(mask: str) -> str:
        return f"/{mask}" if masked else ""

    if which == "eth":
        body = _some(
            rng, [f"src={rng.choice(MACS)}{m('ff:ff:ff:00:00:00')}", f"dst={rng.choice(MACS)}{m('ff:ff:ff:ff:ff:ff')}"]
        )
    elif which == "ipv4":
        body = _some(rng, [f"src={rng.choice(IP4S)}{m('255.255.0.0')}", f"dst={rng.choice(IP4S)}",
                           f"tos={rng.choice((0x10, 0xff, 3))}{m('0xfc')}", f"ttl={rng.choice((9, 0, 1))}",
                           rng.choice(("", "proto=17", "frag=no"))])  # fmt: skip
    elif which == "ipv6":
        body = _some(rng, [f"src={rng.choice(IP6S)}", f"dst={rng.choice(IP6S)}{m('::ffff')}",
                           f"label={rng.choice((0, 0x12345))}{m('0xfff')}", f"tclass={rng.choice((0x70, 3))}",
                           f"hlimit={rng.choice((9, 1))}"])  # fmt: skip
    elif which in ("tcp", "udp", "sctp"):
        body = _some(rng, [f"src={rng.choice(PORTS)}{m('0xff00')}", f"dst={rng.choice(PORTS)}"])
    elif which == "mpls":
        body = (
            f"label={rng.choice((7, 0xFFFFF))},tc={rng.randrange(8)},ttl={rng.choice((9, 0))},bos={rng.choice((0, 1))}"
        )
    elif which in ("skb_mark", "skb_priority"):
        return f"set({which}({_hex(rng, 32):#x}{m('0xff')}))"
    elif which == "arp":
        body = f"sip={rng.choice(IP4S)}"
    elif which == "icmp":
        body = "type=0,code=0"
    elif which == "vlan":
        body = "vid=3,pcp=5"
    elif which == "nd":
        body = f"target={rng.choice(IP6S)}"
    elif which == "tunnel":
        return "set(tunnel(tun_id=0x5,dst=10.0.0.2,ttl=64))"
    elif which == "ct_state":
        return "set(ct_state(+trk))"
    else:
        return "set(in_port(2))"
    return f"set({which}({body}))"


def _atom(rng: random.Random, depth: int, kind: str | None) -> str:
    """One action; ``kind`` is the frame kind of a packet case (None: an install case, anything goes)."""
    install = kind is None
    ports = (1, 2, 3, 2, 3, 0, 9) if install else (1, 2, 3, 2, 3)
    action = rng.choice(("output", "output", "output", "set", "set", "set", "vlan", "mpls", "eth", "clone", "sample",
                       "check_pkt_len", "dec_ttl", "trunc", "recirc", "hash", "meter", "misc"))  # fmt: skip
    if not install and ((action == "mpls" and kind != "mpls") or (action in ("misc", "eth") and rng.random() < 0.7)):
        action = "output"  # packet cases want flows that install: fewer actions their frames cannot take
    if action == "output":
        return str(rng.choice(ports))
    if action == "set":
        return _set_action(rng, kind)
    if action == "vlan":
        if rng.random() < 0.4:
            return "pop_vlan"
        tpid = rng.choice(("", "", "tpid=0x88a8,", "tpid=0x1234,"))
        return f"push_vlan({tpid}vid={rng.choice((7, 0, 4095))},pcp={rng.randrange(8)})"
    if action == "mpls":
        if rng.random() < 0.4:
            return f"pop_mpls(eth_type={rng.choice(('0x800', '0x86dd', '0x8847'))})"
        verb = rng.choice(("push_mpls", "push_mpls", "add_mpls"))
        label = rng.choice((100, 3))
        return f"{verb}(label={label},tc=3,ttl=64,bos=1,eth_type={rng.choice(('0x8847', '0x8848', '0x800'))})"
    if action == "eth":
        return rng.choice(("pop_eth", "push_eth(src=02:00:00:00:00:aa,dst=02:00:00:00:00:bb)"))
    if depth >= 2:
        return str(rng.choice(ports))
    if action == "clone":
        return f"clone({_action_list(rng, depth + 1, kind)})"
    if action == "sample":
        prob = rng.choice(("0%", "100%", "100%", "0.0%"))
        return f"sample(sample={prob},actions({_action_list(rng, depth + 1, kind)}))"
    if action == "check_pkt_len":
        size = rng.choice((60, 64, 100, 1500, 0))
        greater = _action_list(rng, depth + 1, kind) or "drop"
        less_equal = _action_list(rng, depth + 1, kind) or "drop"
        return f"check_pkt_len(size={size},gt({greater}),le({less_equal}))"
    if action == "dec_ttl":
        return f"dec_ttl(le_1({rng.choice(('drop', '2', '3'))}))"
    if action == "trunc":
        return f"trunc({rng.choice((14, 30, 60, 100, 0))})"
    if action == "recirc":
        return f"recirc({rng.choice((1, 7)) if install else 7})"
    if action == "hash":
        return f"hash({rng.choice(('l4', 'l4', 'sym_l4'))}({rng.choice((0, 5))}))"
    if action == "meter":
        return f"meter({rng.choice((1, 2, 3))})"
    return rng.choice(("ct_clear", "drop(0)", "psample(group=12,cookie=0x0102)", "userspace(pid=0)"))


def _action_list(rng: random.Random, depth: int, kind: str | None) -> str:
    n = rng.choice((0, 1, 1, 2, 2, 3, 4)) if depth else rng.choice((1, 1, 2, 2, 3, 4, 5))
    atoms = [_atom(rng, depth, kind) for _ in range(n)]
    return ",".join(atoms)


def _actions(rng: random.Random, kind: str | None) -> str:
    if rng.random() < 0.05:
        return "drop"
    return _action_list(rng, 0, kind) or "drop"


# -- packet cases -----------------------------------------------------------------

#: Per frame kind, the fields a flow of a packet case may match on: (attribute, field, text width).
_TEMPLATE_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ipv4": (("ipv4", "src", "ip4"), ("ipv4", "dst", "ip4"), ("ipv4", "tos", "8"), ("ipv4", "ttl", "8"),
             ("ipv4", "frag", "frag")),
    "ipv6": (("ipv6", "src", "ip6"), ("ipv6", "dst", "ip6"), ("ipv6", "label", "20"), ("ipv6", "tclass", "8"),
             ("ipv6", "hlimit", "8"), ("ipv6", "frag", "frag")),
    "arp": (("arp", "sip", "ip4"), ("arp", "tip", "ip4"), ("arp", "op", "16"), ("arp", "sha", "mac"),
            ("arp", "tha", "mac")),
    "mpls": (("mpls", "label", "20"), ("mpls", "tc", "3"), ("mpls", "ttl", "8"), ("mpls", "bos", "1")),
    "other": (),
}  # fmt: skip


@dataclass(frozen=True)
class _Template:
    kind: str
    eth: tuple[tuple[str, str], ...]  # (field, mask)
    l3: tuple[tuple[str, str, str], ...]  # (field, width, mask)
    l4: tuple[str, ...]  # ("src", "dst") masks, empty: no L4 attribute; the proto comes from the frame
    proto: int | None
    vlan: bool


def _mask_for(rng: random.Random, width: str) -> str:
    if width == "ip4":
        return rng.choice(("255.255.255.255", "255.255.255.0", "255.0.0.0"))
    if width == "ip6":
        return rng.choice(("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff::"))
    if width == "mac":
        return rng.choice(("ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:00"))
    if width == "frag":
        return "exact"
    bits = int(width)
    return f"{rng.choice(((1 << bits) - 1, (1 << bits) - 1, ((1 << bits) - 1) >> 1)):#x}"


def _template(rng: random.Random, frame: Frame) -> _Template:
    eth = tuple((f, _mask_for(rng, "mac")) for f in ("src", "dst") if rng.random() < 0.4)
    l3 = tuple((f, w, _mask_for(rng, w)) for a, f, w in _TEMPLATE_FIELDS[frame.kind] if rng.random() < 0.4)
    proto = frame.fields.get(f"{frame.kind}.proto")
    if proto in _L4_FOR and not any(f == "frag" for f, _, _ in l3):
        # later fragments have no L4 attribute: frag exact keeps their flows and the others apart
        l3 += (("frag", "frag", "exact"),)
    l4: tuple[str, ...] = ()
    if isinstance(proto, int) and proto in (6, 17, 132) and rng.random() < 0.6 and f"{frame.kind}.frag" in frame.fields:
        l4 = tuple(rng.choice(("0xffff", "0xff00", "")) for _ in ("src", "dst"))
    return _Template(frame.kind, eth, l3, l4, proto if isinstance(proto, int) else None, "vlans" in frame.fields)


def _apply(t: _Template, f: Frame, recirc: int | None) -> str | None:
    """The match of template ``t`` with the values of frame ``f`` (None when ``f`` does not fit ``t``)."""
    fv = f.fields
    if f.kind != t.kind or ("vlans" in fv) != t.vlan or fv.get(f"{t.kind}.proto") != t.proto:
        return None
    parts = [f"recirc_id({recirc})" if recirc is not None else "", "in_port(1)"]
    parts.append("eth(" + ",".join(f"{n}={fv['eth.' + n]}/{m}" for n, m in t.eth) + ")")
    inner = [f"eth_type({int(str(fv['eth_type'])):#06x})"]
    if t.kind != "other":
        attr = "mpls" if t.kind == "mpls" else t.kind
        fields = []
        for name, width, mask in t.l3:
            v = fv.get(f"{t.kind}.{name}")
            if width == "frag":
                fields.append(f"frag={v}")
            elif width in ("ip4", "ip6", "mac"):
                fields.append(f"{name}={v}/{mask}")
            else:
                fields.append(f"{name}={int(str(v)):#x}/{mask}")
        if t.proto is not None:
            fields.append(f"proto={t.proto}")
        inner.append(f"{attr}({','.join(fields)})")
    if t.proto in _L4_FOR and fv.get(f"{t.kind}.frag") != "later":
        # the kernel wants the L4 attribute whenever the protocol is exact (and not a later fragment)
        l4name = _L4_FOR[t.proto]
        if (l4name == "icmpv6" and t.kind == "ipv4") or (l4name == "icmp" and t.kind == "ipv6"):
            return None
        ports = [f"{n}={fv['l4.' + n]}/{m}" for n, m in zip(("src", "dst"), t.l4) if m and f"l4.{n}" in fv]
        inner.append(f"{l4name}({','.join(ports)})")
        if l4name == "tcp":
            inner.append("tcp_flags(0/0)")
    if int(str(fv["eth_type"])) < 0x600 or fv["eth_type"] == 0x8100:
        return None  # an 802.3 frame: no flow, its misses test key extraction
    vlans = fv.get("vlans", [])
    assert isinstance(vlans, list)
    for tpid, vid, pcp in reversed(vlans):
        inner = [f"eth_type({tpid:#06x})", f"vlan(vid={vid},pcp={pcp})", f"encap({','.join(inner)})"]
    parts += inner
    return ",".join(p for p in parts if p)


def _packet_case(rng: random.Random, seed: int, index: int) -> Case:
    kind = rng.choice(("ipv4", "ipv4", "ipv4", "ipv6", "ipv6", "arp", "mpls", "other"))
    first = random_frame(rng, kind)
    stage0 = _template(rng, first)
    stage1 = _template(rng, first)
    pool = [first]
    for _ in range(30):  # frames that fit the template, so that flows are hit
        f = random_frame(rng, kind)
        if len(pool) < 6 and _apply(stage0, f, None) is not None:
            pool.append(f)
    pool += [random_frame(rng) for _ in range(2)]
    recirc = rng.random() < 0.25
    flows: list[tuple[str, str]] = []
    sources = pool[: rng.choice((1, 2, 3, 4))]
    for f in sources:
        match = _apply(stage0, f, 0 if recirc else None)
        if match is not None:
            actions = _actions(rng, kind)
            if recirc and rng.random() < 0.6:
                actions = rng.choice(("hash(l4(0)),", "", "set(ipv4(ttl=9)),")) + "recirc(7)"
            flows.append((match, actions))
    if recirc:
        for f in pool[: rng.choice((1, 2, 3))]:
            match = _apply(stage1, f, 7)
            if match is not None:
                flows.append((match, _actions(rng, kind)))
    packets = tuple(rng.choice(sources if rng.random() < 0.7 else pool).data for _ in range(rng.choice((1, 2, 3, 4))))
    meters = tuple((m, *rng.choice(_METERS)) for m in (1, 2, 3) if rng.random() < 0.5)
    return Case(seed, index, "packet", tuple(flows), packets, meters)
