"""The generated per-shape conversion agrees with the general one (ovs_nla_get_match transcribed).

``odp.validate.fastpath.from_match`` (the flow table's fast conversion) and
``odp.validate.get_match.sw_match`` / ``stored_key_and_mask`` (the kernel's
parser replayed on the codec's bytes) must store the same key and mask for
every match the kernel accepts.
"""

from __future__ import annotations

from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fixed_attrs, masked

import odp.validate.swkey as sk
from odp import InvalidFlow, Match, NotSupported
from odp.keys import (
    Arp,
    DpHash,
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    Icmp,
    Icmpv6,
    InPort,
    Ipv4,
    Ipv6,
    Ipv6Exthdrs,
    KeyAttr,
    Priority,
    RecircId,
    Sctp,
    SkbMark,
    Tcp,
    TcpFlags,
    Udp,
    Vlan,
)
from odp.validate import stored_key_and_mask, validate_match
from odp.validate.fastpath import from_match
from odp.validate.get_match import sw_match as _from_match

#: validate.py's name for a field where swkey's differs.
_RENAMED = {"mpls_labels": "mpls_count"}


def assert_agrees(match: Match) -> bool:
    """False if the kernel refuses the match or the simulator does not model it."""
    try:
        validate_match(match)
        sw = from_match(match)
        # The per-shape generated converter and the general one agree.
        assert sw == _from_match(match), match
    except (InvalidFlow, NotSupported):
        return False
    key, mask = stored_key_and_mask(match)
    if key["eth_type"] in (0x0806, 0x8035):
        # The kernel keeps the ARP opcode in ip.proto; swkey in arp_op.
        for d in (key, mask):
            d["arp_op"], d["ip_proto"] = d["ip_proto"], 0
    for name in sk.NAMES:
        other = _RENAMED.get(name, name)
        assert (name, sk.get(sw.key, name)) == (name, key[other]), match
        assert (name, sk.get(sw.mask, name)) == (name, mask[other]), match
    return True


def test_common_shapes_agree() -> None:
    shapes = [
        Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst="10.0.0.0/8", proto=17), Udp(dst=53)),
        Match(InPort(2), Ethernet(src="02:00:00:00:00:01"), EthType(0x86DD), Ipv6(proto=6), Tcp(src=80), TcpFlags(0)),
        Match(Ethernet(), EthType(0x0806), Arp(op=1)),
        Match(Ethernet()),
        Match(InPort(1), Ethernet()),
        Match(Ethernet(), EthType(0x8100), Vlan(tci=0x1005), Encap(EthType(0x0800), Ipv4(proto=1), Icmp(type=8))),
        Match(Ethernet(), EthType(0x8100), Vlan(tci=(0x1000, 0x1000)), Encap(EthType(0x88CC))),
    ]
    assert all([assert_agrees(m) for m in shapes])


_L4 = {6: Tcp, 17: Udp, 132: Sctp}


@st.composite
def plausible_matches(draw: st.DrawFn) -> Match:
    """Matches shaped like real flows (the kernel accepts most of them): metadata,
    maybe a VLAN tag, an ethertype with its L3 and L4 attributes, random masks."""
    outer: list[KeyAttr] = []
    if draw(st.booleans()):
        outer.append(InPort((draw(st.integers(0, 300)), draw(st.sampled_from([0, 0xFFFFFFFF, 0xFFFF])))))
    for cls in (Priority, SkbMark, RecircId, DpHash):
        if draw(st.integers(0, 3)) == 0:
            outer.append(cast(KeyAttr, draw(fixed_attrs(cls))))
    outer.append(cast(KeyAttr, draw(fixed_attrs(Ethernet))))
    inner: list[KeyAttr] = []
    eth_type = draw(st.sampled_from([0x0800, 0x86DD, 0x0806, 0x88CC]))
    inner.append(EthType(eth_type))
    if eth_type in (0x0800, 0x86DD):
        proto = draw(st.sampled_from([6, 17, 132, 1, 58, 47]))
        frag = draw(st.sampled_from([(0, 0xFF), (0, 0), (1, 0xFF), (2, 0xFF)]))
        ip = cast(FixedKeyAttr, draw(fixed_attrs(Ipv4 if eth_type == 0x0800 else Ipv6)))
        inner.append(ip.with_fields(proto=proto, frag=frag))
        if eth_type == 0x86DD and draw(st.booleans()):
            inner.append(Ipv6Exthdrs(draw(masked(16))))
        if frag[0] != 2:
            if proto in _L4:
                inner.append(cast(KeyAttr, draw(fixed_attrs(_L4[proto]))))
                if proto == 6:
                    inner.append(TcpFlags((draw(st.integers(0, 0xFFF)), draw(st.sampled_from([0, 0xFFF, 0x02])))))
            elif proto == 1 and eth_type == 0x0800:
                inner.append(cast(KeyAttr, draw(fixed_attrs(Icmp))))
            elif proto == 58 and eth_type == 0x86DD:
                inner.append(Icmpv6(type=draw(st.sampled_from([128, 135, 136])), code=0))
    elif eth_type == 0x0806:
        arp = cast(Arp, draw(fixed_attrs(Arp)))
        inner.append(arp.with_fields(op=(draw(st.integers(0, 255)), arp.op.mask)))
    if draw(st.integers(0, 3)) == 0:
        tci = draw(st.sampled_from([(0x1005, 0xFFFF), (0x1000, 0x1000), (0x1123, 0x1FFF)]))
        return Match(*outer, EthType(0x8100), Vlan(tci), Encap(*inner))
    return Match(*outer, *inner)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible_matches())
def test_random_matches_agree(match: Match) -> None:
    assert_agrees(match)


def test_random_matches_are_mostly_accepted() -> None:
    """The property above is not vacuous: most drawn matches reach the comparison."""
    seen: list[bool] = []

    @settings(max_examples=100, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plausible_matches())
    def count(match: Match) -> None:
        seen.append(assert_agrees(match))

    count()
    assert sum(seen) >= len(seen) // 2, f"only {sum(seen)} of {len(seen)} matches were accepted"


def test_declared_swkey_fields_exist() -> None:
    """Each fixed-size key field names (in odp.keys) the swkey field the kernel stores it in."""
    from odp.keys import FIXED_ATTRS

    declared = {(cls.__name__, s.name): s.sw for cls in FIXED_ATTRS.values() for s in cls.FIELDS if s.sw}
    assert declared[("Arp", "op")] == "arp_op"
    assert declared[("Icmpv6", "type")] == "tp_src"
    assert {name for name in declared.values()} <= set(sk.NAMES)
