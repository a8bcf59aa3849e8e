"""odp.validate: the kernel's key, mask and action rules, and the stored/dumped form of a match.

Every rule has an accepted and a rejected case built from the model classes;
the rejected case checks the rule id, the field and that the message names the
field.  Hypothesis checks that nothing but InvalidFlow ever escapes.
"""

from __future__ import annotations

import errno
import functools
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odp.actions import (
    Action,
    Actions,
    AddMpls,
    CheckPktLen,
    Clone,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Meter,
    Nat,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
    set_tunnel,
)
from odp.errors import InvalidFlow
from odp.fields import Masked
from odp.keys import (
    FIXED_ATTRS,
    Arp,
    CtLabels,
    CtMark,
    CtState,
    CtTupleIpv6,
    CtZone,
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
    MaskedBytes,
    Match,
    Mpls,
    Nd,
    Nsh,
    PacketType,
    Priority,
    RecircId,
    Sctp,
    SkbMark,
    Tcp,
    TcpFlags,
    Tunnel,
    Udp,
    UnknownKeyAttr,
    Vlan,
)
from odp.validate import kernel_mask, stored_key_and_mask, validate_actions, validate_match

# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def nla(type_: int, payload: bytes) -> bytes:
    """A netlink attribute (native-endian header, padded), for raw attributes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, type_) + payload + b"\0" * (-length % 4)


def eth(*rest: KeyAttr, mask_only: tuple[KeyAttr, ...] = ()) -> Match:
    return Match(InPort(1), Ethernet(), *rest, mask_only=mask_only)


def ip4(*l4: KeyAttr, **ipv4: Any) -> Match:
    return eth(EthType(0x0800), Ipv4(**ipv4), *l4)


def ip6(*l4: KeyAttr, **ipv6: Any) -> Match:
    return eth(EthType(0x86DD), Ipv6(**ipv6), *l4)


def tcp4(**ipv4: Any) -> Match:
    return ip4(Tcp(dst=80), TcpFlags(), proto=6, **ipv4)


def tagged(*inner: KeyAttr, tci: Any = 0x1005, tpid: Any = 0x8100) -> Match:
    return eth(EthType(tpid), Vlan(tci=tci), Encap(*inner))


def nsh_flow(**nsh: Any) -> Match:
    return eth(EthType(0x894F), Nsh(**nsh))


def tun(**fields: Any) -> Match:
    return Match(Tunnel(**fields), InPort(1), Ethernet())


GOOD_TUNNEL: dict[str, Any] = {"tun_id": 5, "ipv4_dst": "10.0.0.2", "ttl": 64}
ETHERTYPE_0x1234 = nla(6, b"\x12\x34")
RAW_TUNNEL_KEY = nla(2, bytes([10, 0, 0, 2])) + nla(4, b"\x40")  # dst 10.0.0.2, ttl 64

# ---------------------------------------------------------------------------
# validate_match: one accepted and one rejected match per rule
# ---------------------------------------------------------------------------

MATCH_RULES = [
    # (rule, field, accepted, rejected)
    pytest.param(
        "unencodable",
        "ipv4",
        ip4(Udp(), proto=17, src="1.2.3.4"),
        eth(EthType(0x0800), Ipv4.from_values((0, 0, 300, 0, 0, 0), (0, 0, 0xFF, 0, 0, 0))),
        id="unencodable",
    ),
    pytest.param("unknown-key-attr", "key40", eth(), eth(UnknownKeyAttr(40, b"\0" * 4)), id="unknown-key-attr-40"),
    pytest.param("unknown-key-attr", "unspec", eth(), eth(UnknownKeyAttr(0, b"")), id="unknown-key-attr-0"),
    pytest.param("unsupported-key-attr", "packet_type", eth(), eth(PacketType(0, 0x0800)), id="packet-type-in-key"),
    pytest.param(
        "unsupported-key-attr", "nd_extensions", eth(), eth(UnknownKeyAttr(30, b"\0" * 8)), id="nd-extensions-in-key"
    ),
    pytest.param(
        "unsupported-key-attr", "tunnel_info", eth(), eth(UnknownKeyAttr(31, b"\0" * 8)), id="tunnel-info-in-key"
    ),
    pytest.param(
        "duplicate-key-attr",
        "eth",
        tagged(EthType(0x0800), Ipv4()),
        tagged(Ethernet(), EthType(0x0800), Ipv4()),
        id="duplicate-inside-encap",
    ),
    pytest.param(
        "unencodable",
        "eth_type",
        eth(EthType(0x0800), Ipv4(), mask_only=(EthType(Masked(0, 0)),)),
        eth(EthType(Masked(0x0800, 0)), Ipv4(), mask_only=(EthType(Masked(0, 0xFFFF)),)),
        id="mask-only-twin-of-key-attr",
    ),
    pytest.param(
        "bad-attr-length",
        "in_port",
        Match(Ethernet(), UnknownKeyAttr(3, struct.pack("=I", 1), b"\xff" * 4)),
        Match(Ethernet(), UnknownKeyAttr(3, b"\0\0", b"\xff\xff")),
        id="bad-attr-length",
    ),
    pytest.param(
        "trailing-bytes",
        None,
        eth(EthType(0x8100), Vlan(tci=Masked(0x1001, 0)), UnknownKeyAttr(1, ETHERTYPE_0x1234)),
        eth(EthType(0x8100), Vlan(tci=Masked(0x1001, 0)), UnknownKeyAttr(1, ETHERTYPE_0x1234 + b"\1\2\3")),
        id="trailing-bytes",
    ),
    pytest.param(
        "vlan-needs-vlan-and-encap",
        "vlan",
        tagged(EthType(0x0800), Ipv4()),
        eth(EthType(0x8100), Vlan.of(5)),
        id="vlan-needs-encap",
    ),
    pytest.param(
        "vlan-tci-without-cfi",
        "vlan",
        tagged(EthType(0x0800), Ipv4(), tci=0x1005),
        tagged(EthType(0x0800), Ipv4(), tci=0x0005),
        id="vlan-tci-without-cfi",
    ),
    pytest.param(
        "truncated-vlan-nonempty-encap",
        "encap",
        tagged(tci=Masked(0, 0)),
        tagged(EthType(0x0800), Ipv4(), tci=Masked(0, 0)),
        id="truncated-vlan-nonempty-encap",
    ),
    pytest.param(
        "vlan-unexpected", "vlan", tagged(EthType(0x0800), Ipv4()), eth(Vlan.of(5)), id="vlan-without-vlan-eth-type"
    ),
    pytest.param(
        "vlan-unexpected",
        "vlan",
        tagged(EthType(Masked(0x1234, 0))),
        tagged(),
        id="vlan-mask-without-encap-mask",
    ),
    pytest.param(
        "encap-without-vlan",
        "encap",
        ip4(),
        eth(EthType(0x0800), Ipv4(), Encap()),
        id="encap-without-vlan",
    ),
    pytest.param(
        "vlan-mask-for-untagged",
        "encap",
        tagged(tci=Masked(0, 0)),
        eth(EthType(0x8100), Vlan(tci=Masked(0, 0)), Encap(), mask_only=(Encap(EthType(Masked(0, 0xFFFF))),)),
        id="vlan-mask-for-untagged",
    ),
    pytest.param(
        "vlan-tpid-mask-not-exact",
        "eth_type",
        tagged(EthType(0x0800), Ipv4(), tpid=0x8100),
        tagged(EthType(0x0800), Ipv4(), tpid=Masked(0x8100, 0xFF00)),
        id="vlan-tpid-mask-not-exact",
    ),
    pytest.param(
        "vlan-tci-mask-without-cfi",
        "vlan",
        tagged(EthType(0x0800), Ipv4(), tci=Masked(0x1005, 0x1FFF)),
        tagged(EthType(0x0800), Ipv4(), tci=Masked(0x1005, 0x0FFF)),
        id="vlan-tci-mask-without-cfi",
    ),
    pytest.param(
        "in-port-range",
        "in_port",
        Match(InPort(65534), Ethernet()),
        Match(InPort(65535), Ethernet()),
        id="in-port-range",
    ),
    pytest.param(
        "in-port-range",
        "in_port",
        Match(InPort(Masked(65534, 0)), Ethernet()),
        Match(InPort(Masked(70000, 0)), Ethernet()),
        id="in-port-range-wildcarded-key",
    ),
    pytest.param(
        "eth-type-below-0x600", "eth_type", eth(EthType(0x0600)), eth(EthType(0x05FF)), id="eth-type-below-0x600"
    ),
    pytest.param(
        "no-eth-or-eth-type",
        "eth",
        Match(InPort(1), EthType(0x0800), Ipv4()),
        Match(InPort(1)),
        id="no-eth-or-eth-type",
    ),
    pytest.param("frag-range", "ipv4", ip4(frag=2), ip4(frag=3), id="ipv4-frag-range"),
    pytest.param("frag-range", "ipv6", ip6(frag=2), ip6(frag=3), id="ipv6-frag-range"),
    pytest.param("ipv6-label-range", "ipv6", ip6(label=0xFFFFF), ip6(label=0x100000), id="ipv6-label-range"),
    pytest.param(
        "arp-op-range", "arp", eth(EthType(0x0806), Arp(op=255)), eth(EthType(0x0806), Arp(op=256)), id="arp-op-range"
    ),
    pytest.param(
        "ct-state-flags",
        "ct_state",
        eth(CtState(Masked(0x21, 0xFF))),
        eth(CtState(Masked(0x121, 0xFF))),
        id="ct-state-value",
    ),
    pytest.param(
        "ct-state-flags", "ct_state", eth(CtState(Masked(0x21, 0x21))), eth(CtState(0x21)), id="ct-state-exact-u32-mask"
    ),
    pytest.param(
        "ct-state-flags",
        "ct_state",
        eth(CtState(Masked(0x21, 0xFF))),
        eth(CtState(Masked(0x21, 0x1FF))),
        id="ct-state-mask",
    ),
    pytest.param(
        "mpls-label-count",
        "mpls",
        eth(EthType(0x8847), Mpls(1, 2, 3)),
        eth(EthType(0x8847), Mpls(1, 2, 3, 4)),
        id="mpls-label-count",
    ),
    pytest.param("tunnel-needs-dst", "tunnel", tun(**GOOD_TUNNEL), tun(tun_id=5, ttl=64), id="tunnel-needs-dst"),
    pytest.param(
        "tunnel-dst-zero",
        "tunnel",
        tun(ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", ttl=64),
        tun(ipv4_src="10.0.0.1", ttl=64),
        id="tunnel-dst-zero",
    ),
    pytest.param(
        "tunnel-dst-zero",
        "tunnel",
        tun(ipv6_dst="fe80::1", ttl=64),
        tun(ipv6_src="fe80::1", ttl=64),
        id="tunnel-ipv6-dst-zero",
    ),
    pytest.param(
        "tunnel-needs-ttl",
        "tunnel",
        eth(UnknownKeyAttr(16, RAW_TUNNEL_KEY)),
        eth(UnknownKeyAttr(16, nla(2, bytes([10, 0, 0, 2])))),
        id="tunnel-needs-ttl",
    ),
    pytest.param(
        "tunnel-mixed-families",
        "tunnel",
        tun(ipv6_src="fe80::1", ipv6_dst="fe80::2", ttl=64),
        tun(ipv4_dst="10.0.0.2", ipv6_src="fe80::1", ttl=64),
        id="tunnel-mixed-families",
    ),
    pytest.param(
        "tunnel-multiple-options",
        "tunnel",
        tun(**GOOD_TUNNEL, vxlan_gbp=7),
        tun(**GOOD_TUNNEL, vxlan_gbp=7, geneve=b"\0\1\2\0"),
        id="tunnel-multiple-options",
    ),
    pytest.param(
        "geneve-options-length",
        "tunnel",
        tun(**GOOD_TUNNEL, geneve=b"\0\1\2\0"),
        tun(**GOOD_TUNNEL, geneve=b"\0\1\2"),
        id="geneve-not-multiple-of-4",
    ),
    pytest.param(
        "geneve-options-length",
        "tunnel",
        tun(**GOOD_TUNNEL, geneve=b"\0" * 252),
        tun(**GOOD_TUNNEL, geneve=b"\0" * 256),
        id="geneve-too-long",
    ),
    pytest.param(
        "geneve-mask-length",
        "tunnel",
        eth(UnknownKeyAttr(16, RAW_TUNNEL_KEY + nla(8, b"\0" * 8), nla(8, b"\xff" * 8))),
        eth(UnknownKeyAttr(16, RAW_TUNNEL_KEY + nla(8, b"\0" * 4), nla(8, b"\xff" * 8))),
        id="geneve-mask-length",
    ),
    pytest.param(
        "tunnel-options-length",
        "tunnel",
        tun(**GOOD_TUNNEL, erspan=b"\0" * 12),
        tun(**GOOD_TUNNEL, erspan=b"\0" * 256),
        id="erspan-too-long",
    ),
    pytest.param(
        "vxlan-options",
        "tunnel",
        tun(**GOOD_TUNNEL, extra=((11, nla(1, b"\0" * 4), b""),)),
        tun(**GOOD_TUNNEL, extra=((11, nla(2, b"\0" * 4), b""),)),
        id="vxlan-unknown-extension",
    ),
    pytest.param(
        "tunnel-attr-unknown",
        "tunnel",
        tun(**GOOD_TUNNEL, extra=((14, b"", b""),)),
        tun(**GOOD_TUNNEL, extra=((17, b"", b""),)),
        id="tunnel-attr-unknown",
    ),
    pytest.param(
        "tunnel-attr-length",
        "tunnel",
        tun(**GOOD_TUNNEL, extra=((14, b"", b""),)),
        tun(**GOOD_TUNNEL, extra=((14, b"\0", b""),)),
        id="tunnel-attr-length",
    ),
    pytest.param(
        "tunnel-bridge-info",
        "tunnel",
        tun(tun_id=5, extra=((16, b"", b""),)),
        tun(tun_id=5, ttl=64, extra=((16, b"", b""),)),
        id="tunnel-bridge-info",
    ),
    pytest.param(
        "nsh-attr",
        "nsh",
        nsh_flow(mdtype=1, np=1, has_md1=True),
        eth(EthType(0x894F), UnknownKeyAttr(28, nla(5, b""))),
        id="nsh-unknown-sub-attribute",
    ),
    pytest.param(
        "nsh-md2-unsupported",
        "nsh",
        nsh_flow(mdtype=1, has_md1=True),
        nsh_flow(mdtype=2, md2=b"\0" * 4),
        id="nsh-md2-in-key",
    ),
    pytest.param(
        "nsh-mdtype-mismatch",
        "nsh",
        nsh_flow(mdtype=1, has_md1=True),
        nsh_flow(mdtype=2, has_md1=True),
        id="nsh-mdtype-mismatch",
    ),
    pytest.param("missing-l3", "ipv4", ip4(), eth(EthType(0x0800)), id="missing-ipv4"),
    pytest.param("missing-l3", "ipv6", ip6(), eth(EthType(0x86DD)), id="missing-ipv6"),
    pytest.param("missing-l3", "arp", eth(EthType(0x0806), Arp()), eth(EthType(0x0806)), id="missing-arp"),
    pytest.param("missing-l3", "arp", eth(EthType(0x8035), Arp()), eth(EthType(0x8035)), id="missing-rarp"),
    pytest.param("missing-l3", "mpls", eth(EthType(0x8848), Mpls(1)), eth(EthType(0x8848)), id="missing-mpls"),
    pytest.param("missing-l3", "nsh", nsh_flow(mdtype=1, has_md1=True), eth(EthType(0x894F)), id="missing-nsh"),
    pytest.param("missing-l4", "tcp", tcp4(), ip4(proto=6), id="missing-tcp"),
    pytest.param("missing-l4", "tcp_flags", tcp4(), ip4(Tcp(dst=80), proto=6), id="missing-tcp-flags"),
    pytest.param("missing-l4", "tcp", ip6(Tcp(), TcpFlags(), proto=6), ip6(proto=6), id="missing-tcp-ipv6"),
    pytest.param("missing-l4", "udp", ip4(Udp(), proto=17), ip4(proto=17), id="missing-udp"),
    pytest.param("missing-l4", "sctp", ip4(Sctp(), proto=132), ip4(proto=132), id="missing-sctp"),
    pytest.param("missing-l4", "icmp", ip4(Icmp(), proto=1), ip4(proto=1), id="missing-icmp"),
    pytest.param("missing-l4", "icmpv6", ip6(Icmpv6(), proto=58), ip6(proto=58), id="missing-icmpv6"),
    pytest.param("missing-l4", "tcp", ip4(proto=6, frag=2), ip4(proto=6, frag=1), id="frag-later-needs-no-l4"),
    pytest.param(
        "missing-nd",
        "nd",
        ip6(Icmpv6(type=136), Nd(), proto=58),
        ip6(Icmpv6(type=136), proto=58),
        id="missing-nd",
    ),
    pytest.param("mask-without-key", "skb_mark", eth(SkbMark(5)), eth(mask_only=(SkbMark(5),)), id="mask-without-key"),
    pytest.param(
        "l3-mask-needs-exact-eth-type",
        "ipv4",
        ip4(src="1.2.3.4"),
        eth(EthType(Masked(0x0800, 0)), Ipv4(src="1.2.3.4")),
        id="l3-mask-needs-exact-eth-type",
    ),
    pytest.param(
        "l3-mask-eth-type-mismatch",
        "ipv4",
        eth(EthType(0x86DD), Ipv6(), Ipv4()),
        eth(EthType(0x86DD), Ipv6(), Ipv4(src="1.2.3.4")),
        id="l3-mask-eth-type-mismatch",
    ),
    pytest.param(
        "ct-tuple-mask-with-nd",
        "ct_tuple6",
        ip6(Icmpv6(type=1), CtTupleIpv6(proto=6), proto=58),
        ip6(Icmpv6(type=135), Nd(), CtTupleIpv6(proto=6), proto=58),
        id="ct-tuple-mask-with-nd",
    ),
    pytest.param(
        "l4-mask-needs-exact-proto",
        "tcp",
        ip4(Tcp(dst=80), TcpFlags(), proto=6),
        ip4(Tcp(dst=80)),
        id="tcp-with-wildcarded-proto",
    ),
    pytest.param(
        "l4-mask-needs-exact-proto",
        "udp",
        ip4(Udp(dst=53), proto=17),
        ip4(Udp(dst=53), proto=(17, 0x1F)),
        id="udp-with-partial-proto",
    ),
    pytest.param(
        "l4-mask-without-ip",
        "tcp",
        eth(EthType(0x0806), Arp(), Tcp()),
        eth(EthType(0x0806), Arp(), Tcp(dst=80)),
        id="l4-mask-without-ip",
    ),
    pytest.param(
        "l4-mask-wrong-ip-version",
        "icmp",
        ip6(Icmpv6(type=1), Icmp(), proto=58),
        ip6(Icmpv6(type=1), Icmp(type=1), proto=58),
        id="icmp-under-ipv6",
    ),
    pytest.param(
        "l4-mask-on-later-fragment",
        "tcp",
        ip4(Tcp(), proto=6, frag=2),
        ip4(Tcp(dst=80), proto=6, frag=2),
        id="l4-mask-on-later-fragment",
    ),
    pytest.param(
        "nd-mask-needs-exact-icmpv6-type",
        "nd",
        ip6(Icmpv6(type=135), Nd(target="fe80::1"), proto=58),
        ip6(Icmpv6(type=(135, 0xFE)), Nd(target="fe80::1"), proto=58),
        id="nd-mask-needs-exact-icmpv6-type",
    ),
    pytest.param(
        "nd-mask-without-nd-type",
        "nd",
        ip6(Icmpv6(type=1), Nd(), proto=58),
        ip6(Icmpv6(type=1), Nd(target="fe80::1"), proto=58),
        id="nd-mask-without-nd-type",
    ),
]


@pytest.mark.parametrize(("rule", "field", "accepted", "rejected"), MATCH_RULES)
def test_match_rule(rule: str, field: str | None, accepted: Match, rejected: Match) -> None:
    validate_match(accepted)
    with pytest.raises(InvalidFlow) as info:
        validate_match(rejected)
    assert info.value.rule == rule
    assert info.value.field == field
    assert info.value.errno == errno.EINVAL
    if field is not None:
        assert field in str(info.value)


@pytest.mark.parametrize(
    "match",
    [
        pytest.param(eth(), id="eth-only"),
        pytest.param(Match(EthType(0x0800), Ipv4(dst="10.0.0.0/8")), id="l3-packet-without-eth"),
        pytest.param(tcp4(src="10.0.0.1"), id="ipv4-tcp"),
        pytest.param(ip6(Udp(src=5), proto=17, label=0x12345), id="ipv6-udp"),
        pytest.param(ip4(proto=6, frag=2), id="later-fragment-needs-no-l4"),
        pytest.param(ip4(Udp(), Tcp(), proto=17), id="extra-key-attr-with-zero-mask"),
        pytest.param(
            eth(EthType(0x88A8), Vlan.of(10), Encap(EthType(0x8100), Vlan.of(20), Encap(EthType(0x0800), Ipv4()))),
            id="qinq",
        ),
        pytest.param(tagged(EthType(0x0800), Ipv4(proto=6), Tcp(dst=22), TcpFlags()), id="tagged-tcp"),
        pytest.param(eth(RecircId(3), DpHash(Masked(1, 0xF)), Priority(7), SkbMark(9)), id="metadata"),
        pytest.param(eth(CtState(Masked(0x22, 0xFF)), CtZone(3), CtMark(Masked(1, 1)), CtLabels(5)), id="conntrack"),
        pytest.param(eth(EthType(0x86DD), Ipv6(), Ipv6Exthdrs(Masked(1, 1))), id="ipv6-exthdrs"),
        pytest.param(Match(Ethernet(), mask_only=(InPort(Masked(0, 0xFFFFFFFF)),)), id="mask-only-in-port"),
        pytest.param(Match(Ethernet(), mask_only=(Tunnel(ttl=Masked(0, 0xFF)),)), id="mask-only-tunnel"),
        pytest.param(tun(**GOOD_TUNNEL, geneve=b"\0\1\2\1" + b"\0" * 4), id="geneve"),
        pytest.param(tun(ipv6_dst="2001:db8::1", ttl=1, tp_dst=4789), id="ipv6-tunnel"),
        pytest.param(
            Match(Tunnel(ipv4_dst="10.0.0.2", ttl=64, vxlan_gbp=1), Ethernet()),
            id="vxlan-gbp",
        ),
    ],
)
def test_match_accepted(match: Match) -> None:
    validate_match(match)


def test_tcp_flags_requirement_message_names_tcp_flags() -> None:
    with pytest.raises(InvalidFlow, match=r"tcp_flags\(\)"):
        validate_match(ip4(Tcp(src=(80, 0xFF00)), proto=6))


def test_reference_examples() -> None:
    """The three cases kernel-semantics.md saw with ovs-dpctl on 6.1."""
    for match, rule in (
        (ip4(proto=6), "missing-l4"),
        (ip4(Tcp(dst=80)), "l4-mask-needs-exact-proto"),
        (ip4(Tcp(src=(80, 0xFF00)), proto=6), "missing-l4"),
    ):
        with pytest.raises(InvalidFlow) as info:
            validate_match(match)
        assert info.value.rule == rule


def test_all_zero_mask_attributes_are_ignored() -> None:
    # A wildcarded tcp() under a wildcarded proto is not a mask: accepted.
    validate_match(ip4(Tcp(), Udp(), Sctp(), Icmp()))
    # A wildcarded skb_mark only in the mask is ignored too.
    validate_match(eth(mask_only=(SkbMark(Masked(0, 0)),)))


def test_not_a_match() -> None:
    with pytest.raises(InvalidFlow) as info:
        validate_match("in_port(1)")  # type: ignore[arg-type]
    assert info.value.rule == "not-a-match"


# ---------------------------------------------------------------------------
# validate_actions: one accepted and one rejected action list per rule
# ---------------------------------------------------------------------------

ARP = eth(EthType(0x0806), Arp())
L3_IP = Match(InPort(1), EthType(0x0800), Ipv4())
L3_ARP = Match(InPort(1), EthType(0x0806), Arp())
MPLS = eth(EthType(0x8847), Mpls(label=5))
MPLS_L3 = Match(InPort(1), EthType(0x8847), Mpls(label=5))
TAGGED = tagged(EthType(0x0800), Ipv4())
TCP6 = ip6(Tcp(), TcpFlags(), proto=6)
NSH_IP = nsh_flow(mdtype=1, np=1, has_md1=True)
NSH_BAD_NP = nsh_flow(mdtype=1, np=0, has_md1=True)
GOOD_NSH = Nsh(mdtype=1, np=3, has_md1=True)


def _sneak(action: Action, **fields: object) -> Action:
    """Bypass a model constructor's check to build what a raw decoder could produce."""
    for name, value in fields.items():
        object.__setattr__(action, name, value)
    return action


def _deep(levels: int) -> list[Action]:
    acts = Actions([Output(1)])
    for _ in range(levels):
        acts = Actions([Clone(acts)])
    return list(acts)


ACTION_RULES = [
    # (rule, field, match, accepted, rejected)
    pytest.param("output-port", "output", tcp4(), [Output(65534)], [Output(65535)], id="output-port"),
    pytest.param("userspace-pid", "userspace", tcp4(), [Userspace(1)], [Userspace(0)], id="userspace-pid"),
    pytest.param("trunc-length", "trunc", tcp4(), [Trunc(14), Output(1)], [Trunc(13), Output(1)], id="trunc-length"),
    pytest.param("hash-alg", "hash", tcp4(), [Hash(0), Recirc(1)], [Hash(2), Recirc(1)], id="hash-alg"),
    pytest.param("needs-ethernet", "pop_vlan", tcp4(), [PopVlan()], [PopEth(), PopVlan()], id="pop-vlan-needs-eth"),
    pytest.param("needs-ethernet", "push_vlan", tcp4(), [PushVlan.of(1)], [PushVlan.of(1)], id="push-vlan-l3"),
    pytest.param("needs-ethernet", "pop_eth", L3_IP, [PushEth(), PopEth()], [PopEth()], id="pop-eth-l3"),
    pytest.param(
        "needs-ethernet",
        "set(eth)",
        L3_IP,
        [PushEth(), Set(Ethernet(dst="00:00:00:00:00:01"))],
        [Set(Ethernet(dst="00:00:00:00:00:01"))],
        id="set-eth-l3",
    ),
    pytest.param(
        "push-vlan-tpid",
        "push_vlan",
        tcp4(),
        [PushVlan(tci=0x1001, tpid=0x88A8)],
        [PushVlan(tci=0x1001, tpid=0x0800)],
        id="push-vlan-tpid",
    ),
    pytest.param(
        "push-vlan-cfi", "push_vlan", tcp4(), [PushVlan(tci=0x1001)], [PushVlan(tci=0x0001)], id="push-vlan-cfi"
    ),
    pytest.param(
        "mpls-ethertype", "push_mpls", tcp4(), [PushMpls(1, 0x8848)], [PushMpls(1, 0x0800)], id="push-mpls-ethertype"
    ),
    pytest.param(
        "mpls-ethertype", "add_mpls", tcp4(), [AddMpls(1, 0x8847)], [AddMpls(1, 0x0800)], id="add-mpls-ethertype"
    ),
    pytest.param(
        "mpls-with-vlan",
        "push_mpls",
        TAGGED,
        [PopVlan(), PushMpls(1)],
        [PushMpls(1)],
        id="push-mpls-on-tagged",
    ),
    pytest.param(
        "mpls-with-vlan",
        "add_mpls",
        TAGGED,
        [AddMpls(1, 0x8847, tun_flags=0)],
        [AddMpls(1, 0x8847, tun_flags=1)],
        id="add-mpls-l3-on-tagged",
    ),
    pytest.param(
        "push-mpls-eth-type",
        "push_mpls",
        ARP,
        [PushMpls(1)],
        [PopEth(), PushEth(), PushMpls(1), PopMpls(0x1234), PushMpls(1)],
        id="push-mpls-eth-type",
    ),
    pytest.param(
        "pop-mpls-not-mpls", "pop_mpls", MPLS, [PopMpls(0x0800)], [PopMpls(0x0800), PopMpls(0x0800)], id="pop-mpls"
    ),
    pytest.param("pop-mpls-teb", "pop_mpls", MPLS_L3, [PopMpls(0x6558)], [PopMpls(0x6558)], id="pop-mpls-teb"),
    pytest.param(
        "set-attr-not-settable", "set(in_port)", tcp4(), [Set(Priority(1))], [Set(InPort(2))], id="set-in-port"
    ),
    pytest.param(
        "set-attr-not-settable",
        "set(eth_type)",
        tcp4(),
        [Set(SkbMark(1))],
        [Set(EthType(0x0800))],
        id="set-eth-type",
    ),
    pytest.param("set-attr-not-settable", "set(vlan)", TAGGED, [Set(CtMark(1))], [Set(Vlan.of(3))], id="set-vlan"),
    pytest.param(
        "set-attr-not-settable",
        "set_masked(icmp)",
        ip4(Icmp(), proto=1),
        [SetMasked(CtLabels(1))],
        [SetMasked(Icmp(type=3))],
        id="set-masked-icmp",
    ),
    pytest.param(
        "set-attr-length",
        "set(in_port)",
        tcp4(),
        [Set(UnknownKeyAttr(2, b"\1\0\0\0"))],
        [Set(UnknownKeyAttr(3, b"\1\0"))],
        id="set-attr-length",
    ),
    pytest.param(
        "set-tunnel-masked",
        "set_masked(tunnel)",
        tcp4(),
        [set_tunnel(**GOOD_TUNNEL)],
        [_sneak(SetMasked(Priority(1)), attr=Tunnel(**GOOD_TUNNEL))],
        id="set-tunnel-masked",
    ),
    pytest.param(
        "set-l3-eth-type",
        "set(ipv6)",
        TCP6,
        [Set(Ipv6(src="::1", proto=6))],
        [PushMpls(1), Set(Ipv6(src="::1", proto=6))],
        id="set-ipv6-after-push-mpls",
    ),
    pytest.param(
        "set-l3-eth-type",
        "set_masked(ipv4)",
        tcp4(),
        [SetMasked(Ipv4(ttl=1))],
        [PushMpls(1), SetMasked(Ipv4(ttl=1))],
        id="set-ipv4-after-push-mpls",
    ),
    pytest.param(
        "set-ip-readonly",
        "set(ipv4)",
        tcp4(),
        [Set(Ipv4(dst="1.1.1.1", proto=6))],
        [Set(Ipv4(dst="1.1.1.1", proto=17))],
        id="set-ipv4-changes-proto",
    ),
    pytest.param(
        "set-ip-readonly",
        "set(ipv4)",
        tcp4(),
        [Set(Ipv4(dst="1.1.1.1", proto=6))],
        [Set(Ipv4(dst="1.1.1.1", proto=6, frag=1))],
        id="set-ipv4-changes-frag",
    ),
    pytest.param(
        "set-ip-readonly",
        "set_masked(ipv6)",
        TCP6,
        [SetMasked(Ipv6(hlimit=3))],
        [SetMasked(Ipv6(hlimit=3, proto=6))],
        id="set-masked-ipv6-proto",
    ),
    pytest.param(
        "set-ipv6-label-range",
        "set(ipv6)",
        TCP6,
        [Set(Ipv6(label=0xFFFFF, proto=6))],
        [Set(Ipv6(label=0x100000, proto=6))],
        id="set-ipv6-label",
    ),
    pytest.param(
        "set-ipv6-label-range",
        "set_masked(ipv6)",
        TCP6,
        [SetMasked(Ipv6(label=(0, 0xFFFFF)))],
        [SetMasked(Ipv6(label=(0, 0x1FFFFF)))],
        id="set-masked-ipv6-label-mask",
    ),
    pytest.param("set-l4-proto", "set(tcp)", ip4(Udp(), proto=17), [Set(Udp(dst=1))], [Set(Tcp(dst=1))], id="set-tcp"),
    pytest.param("set-l4-proto", "set(sctp)", tcp4(), [Set(Tcp(dst=1))], [Set(Sctp(dst=1))], id="set-sctp"),
    pytest.param("set-l4-proto", "set(tcp)", ARP, [Output(1)], [Set(Tcp(dst=1))], id="set-tcp-on-arp"),
    pytest.param(
        "set-mpls-eth-type",
        "set(mpls)",
        MPLS,
        [Set(Mpls(label=7))],
        [PopMpls(0x0800), Set(Mpls(label=7))],
        id="set-mpls",
    ),
    pytest.param(
        "set-nsh-eth-type",
        "set(nsh)",
        NSH_IP,
        [Set(Nsh(mdtype=1, np=1, has_md1=True))],
        [Set(Nsh(mdtype=1, np=1, has_md1=True))],
        id="set-nsh",
    ),
    pytest.param(
        "nsh-mdtype-mismatch",
        "set(nsh)",
        NSH_IP,
        [Set(Nsh(mdtype=1, np=1, has_md1=True))],
        [Set(Nsh(mdtype=2, np=1, has_md1=True))],
        id="set-nsh-mdtype",
    ),
    pytest.param(
        "tunnel-needs-ttl",
        "set(tunnel)",
        tcp4(),
        [Set(UnknownKeyAttr(16, RAW_TUNNEL_KEY)), Output(3)],
        [Set(UnknownKeyAttr(16, nla(2, bytes([10, 0, 0, 2])))), Output(3)],
        id="set-tunnel-needs-ttl",
    ),
    pytest.param(
        "tunnel-needs-dst",
        "set(tunnel)",
        tcp4(),
        [set_tunnel(tun_id=5, ipv6_dst="2001:db8::1", ttl=9)],
        [set_tunnel(tun_id=5, ttl=64)],
        id="set-tunnel-needs-dst",
    ),
    pytest.param(
        "geneve-options-tlv",
        "set(tunnel)",
        tcp4(),
        [set_tunnel(**GOOD_TUNNEL, geneve=b"\x01\x02\x80\x01" + b"\0" * 4)],
        [set_tunnel(**GOOD_TUNNEL, geneve=b"\x01\x02\x80\x02" + b"\0" * 4)],
        id="geneve-options-tlv",
    ),
    pytest.param("ct-needs-ip", "ct", tcp4(), [Ct(zone=1), Recirc(1)], [Ct(zone=1), Recirc(1)], id="ct-on-ip"),
    pytest.param(
        "ct-mark-mask-zero",
        "ct",
        tcp4(),
        [Ct(commit=True, mark=Masked(1, 1))],
        [Ct(commit=True, mark=Masked(0, 0))],
        id="ct-mark-mask-zero",
    ),
    pytest.param(
        "ct-labels-mask-zero",
        "ct",
        tcp4(),
        [Ct(commit=True, labels=Masked(1, 1))],
        [Ct(commit=True, labels=Masked(0, 0))],
        id="ct-labels-mask-zero",
    ),
    pytest.param(
        "ct-needs-commit",
        "ct",
        tcp4(),
        [Ct(force_commit=True, mark=Masked(1, 0xFF))],
        [Ct(mark=Masked(1, 0xFF))],
        id="ct-mark-needs-commit",
    ),
    pytest.param(
        "ct-needs-commit",
        "ct",
        tcp4(),
        [Ct(commit=True, labels=Masked(1, 0xFF))],
        [Ct(labels=Masked(1, 0xFF))],
        id="ct-labels-needs-commit",
    ),
    pytest.param("ct-helper", "ct", tcp4(), [Ct(commit=True, helper="ftp")], [Ct(helper="x" * 16)], id="ct-helper"),
    pytest.param("ct-timeout", "ct", tcp4(), [Ct(timeout="t" * 31)], [Ct(timeout="t" * 32)], id="ct-timeout"),
    pytest.param(
        "nat-flags-without-type",
        "ct",
        tcp4(),
        [Ct(commit=True, nat=Nat())],
        [Ct(commit=True, nat=Nat(proto_random=True))],
        id="nat-flags-without-type",
    ),
    pytest.param(
        "nat-needs-commit",
        "ct",
        tcp4(),
        [Ct(nat=Nat())],
        [Ct(nat=Nat(kind="dst", ip_min=0x0A000001))],
        id="nat-needs-commit",
    ),
    pytest.param(
        "nat-address-family",
        "ct",
        TCP6,
        [Ct(commit=True, nat=Nat(kind="src", ip_min=1, ipv6=True))],
        [Ct(commit=True, nat=Nat(kind="src", ip_min=1))],
        id="nat-address-family",
    ),
    pytest.param("nat-outside-ct", "nat", tcp4(), [Ct(nat=Nat())], [Nat()], id="nat-outside-ct"),
    pytest.param(
        "push-eth-has-ethernet", "push_eth", L3_IP, [PushEth(), Output(1)], [PushEth(), PushEth()], id="push-eth"
    ),
    pytest.param("pop-eth-with-vlan", "pop_eth", TAGGED, [PopVlan(), PopEth()], [PopEth()], id="pop-eth-with-vlan"),
    pytest.param(
        "push-nsh-eth-type", "push_nsh", L3_IP, [PushNsh(GOOD_NSH)], [PushNsh(GOOD_NSH)], id="push-nsh-eth-type"
    ),
    pytest.param("push-nsh-attr", "push_nsh", tcp4(), [PushNsh(GOOD_NSH)], [PushNsh(Ipv4())], id="push-nsh-needs-nsh"),
    pytest.param(
        "nsh-incomplete",
        "push_nsh",
        tcp4(),
        [PushNsh(Nsh(mdtype=2, np=3, md2=b"\0" * 8))],
        [PushNsh(Nsh(mdtype=1, np=3))],
        id="push-nsh-needs-metadata",
    ),
    pytest.param(
        "nsh-md1-md2",
        "push_nsh",
        tcp4(),
        [PushNsh(GOOD_NSH)],
        [PushNsh(Nsh(mdtype=1, np=3, has_md1=True, md2=b"\0" * 4))],
        id="push-nsh-md1-and-md2",
    ),
    pytest.param("pop-nsh-eth-type", "pop_nsh", NSH_IP, [PopNsh()], [PopNsh()], id="pop-nsh-eth-type"),
    pytest.param("pop-nsh-next-proto", "pop_nsh", NSH_IP, [PopNsh()], [PopNsh()], id="pop-nsh-next-proto"),
    pytest.param(
        "check-pkt-len-zero",
        "check_pkt_len",
        tcp4(),
        [CheckPktLen(1500, Actions([Output(1)]), Actions([Output(2)]))],
        [CheckPktLen(0)],
        id="check-pkt-len-zero",
    ),
    pytest.param("drop-not-last", "drop", tcp4(), [Output(1), Drop()], [Drop(), Output(1)], id="drop-not-last"),
    pytest.param(
        "drop-not-last",
        "drop",
        tcp4(),
        [Clone(Actions([Drop()])), Output(1)],
        [Clone(Actions([Drop(), Output(2)]))],
        id="drop-not-last-nested",
    ),
    pytest.param(
        "psample-cookie",
        "psample",
        tcp4(),
        [Psample(1, cookie=b"\0" * 16)],
        [_sneak(Psample(1), cookie=b"\0" * 17)],
        id="psample-cookie",
    ),
    pytest.param(
        "unknown-action", "action99", tcp4(), [UnknownAction(5, b"")], [UnknownAction(99, b"")], id="unknown-action"
    ),
    pytest.param(
        "output-port",
        "output",
        tcp4(),
        [UnknownAction(1, struct.pack("=I", 3))],
        [UnknownAction(1, struct.pack("=I", 70000))],
        id="raw-output",
    ),
    pytest.param(
        "unknown-action",
        "action1",
        tcp4(),
        [UnknownAction(1, struct.pack("=I", 3))],
        [UnknownAction(1, b"\0\0")],
        id="raw-output-bad-length",
    ),
    pytest.param("nesting-too-deep", "actions", tcp4(), _deep(16), _deep(17), id="nesting-too-deep"),
    pytest.param(
        "output-port",
        "output",
        tcp4(),
        [Sample(Sample.ALWAYS, Actions([Output(1)])), DecTtl(Actions([Output(1)]))],
        [DecTtl(Actions([Userspace(1), Output(70000)]))],
        id="nested-in-dec-ttl",
    ),
    pytest.param(
        "output-port",
        "output",
        tcp4(),
        [CheckPktLen(100, Actions([Output(1)]), Actions([Output(2)]))],
        [CheckPktLen(100, Actions([Output(99999)]), Actions([Output(2)]))],
        id="nested-in-check-pkt-len",
    ),
]


#: Rules whose rejected case needs a different flow than the accepted one.
REJECT_FLOW = {
    "push-vlan-l3": L3_IP,
    "ct-on-ip": ARP,
    "pop-mpls-teb": MPLS,
    "push-nsh-eth-type": L3_ARP,
    "pop-nsh-next-proto": NSH_BAD_NP,
    "set-nsh": tcp4(),
    "pop-nsh-eth-type": tcp4(),
}


@pytest.mark.parametrize(("rule", "field", "match", "accepted", "rejected"), ACTION_RULES)
def test_action_rule(
    request: pytest.FixtureRequest, rule: str, field: str, match: Match, accepted: list[Action], rejected: list[Action]
) -> None:
    validate_actions(Actions(accepted), match)
    case_id = request.node.callspec.id
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions(rejected), REJECT_FLOW.get(case_id, match))
    assert info.value.rule == rule
    assert info.value.field == field
    assert field in str(info.value)


def test_nesting_too_deep_is_eoverflow() -> None:
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions(_deep(17)))
    assert info.value.errno == errno.EOVERFLOW


@pytest.mark.parametrize(
    ("action", "since"),
    [
        pytest.param(Drop(), (6, 6), id="drop"),
        pytest.param(Hash(1), (6, 5), id="hash-sym-l4"),
        pytest.param(Psample(7, b"ab"), (6, 11), id="psample"),
    ],
)
def test_kernel_version_gates(action: Action, since: tuple[int, int]) -> None:
    validate_actions(Actions([action]), kernel=since)
    validate_actions(Actions([action]))
    older = (since[0], since[1] - 1)
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([action]), kernel=older)
    assert info.value.rule in ("action-needs-newer-kernel", "hash-alg")


def test_actions_without_match_skip_key_checks() -> None:
    # Without a flow, the key-dependent checks cannot fire ...
    validate_actions(Actions([Set(Ipv4(src="1.1.1.1")), PopVlan(), Ct(), PopMpls(0x0800)]))
    # ... until an action makes the state known.
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([PushMpls(1), Set(Ipv4(src="1.1.1.1"))]))
    assert info.value.rule == "set-l3-eth-type"
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([PopEth(), PushVlan.of(3)]))
    assert info.value.rule == "needs-ethernet"


def test_actions_use_the_masked_key() -> None:
    # eth_type given but wildcarded (zero mask): the masked key's eth_type is 0.
    match = eth(EthType(Masked(0x0800, 0)), Ipv4())
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([Set(Ipv4(src="1.1.1.1"))]), match)
    assert info.value.rule == "set-l3-eth-type"
    # The ip proto is compared on the masked key: a wildcarded proto reads as 0.
    validate_actions(Actions([Set(Ipv4(src="1.1.1.1", proto=0))]), ip4(Udp(), proto=Masked(17, 0)))


def test_actions_validate_the_match_first() -> None:
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([Output(1)]), ip4(proto=6))
    assert info.value.rule == "missing-l4"


def test_malformed_actions_argument() -> None:
    with pytest.raises(InvalidFlow) as info:
        validate_actions([Output(1)])  # type: ignore[arg-type]
    assert info.value.rule == "malformed-action"
    with pytest.raises(InvalidFlow):
        validate_actions(Actions([Output(1)]), kernel="6.1")  # type: ignore[arg-type]


def test_every_model_action_is_accepted_in_some_context() -> None:
    validate_actions(
        Actions(
            [
                Meter(1),
                CtClear(),
                Recirc(5),
                Hash(0, 7),
                Trunc(100),
                Userspace(9, userdata=b"\1\2"),
                Set(Priority(1)),
                SetMasked(SkbMark(Masked(1, 1))),
                Set(CtMark(1)),
                Set(CtLabels(1)),
                PushVlan.of(1),
                PopVlan(),
                AddMpls(5, 0x8847),
                PushEth(),
                PopEth(),
                Output(1),
            ]
        ),
        tcp4(),
    )


# ---------------------------------------------------------------------------
# kernel_mask and stored_key_and_mask
# ---------------------------------------------------------------------------


def types(match: Match) -> list[type[KeyAttr]]:
    return [type(a) for a in match.attrs]


def test_kernel_mask_metadata_always_present_in_kernel_order() -> None:
    km = kernel_mask(tcp4())
    assert types(km) == [
        RecircId, DpHash, Priority, InPort, SkbMark, CtState, CtZone, CtMark, CtLabels,
        Ethernet, EthType, Ipv4, Tcp, TcpFlags,
    ]  # fmt: skip
    assert km[RecircId].value == Masked(0, 0)
    assert km[CtLabels].is_wildcard()
    # The kernel always dumps a tunnel mask; without a tunnel key it is mask-only and wildcarded.
    assert [type(a) for a in km.mask_only] == [Tunnel]
    assert km.mask_only[0].is_wildcard()


def test_kernel_mask_forced_exact_in_port_and_eth_type() -> None:
    km = kernel_mask(eth(EthType(0x0806), Arp(op=(1, 0xFFFF))))
    assert km[InPort].port == Masked(1, 0xFFFFFFFF)
    assert km[EthType].value == Masked(0x0806, 0xFFFF)
    # The ARP op lives in an 8-bit field: its mask comes back as 0xff.
    assert km[Arp].op == Masked(1, 0xFF)


def test_kernel_mask_wildcarded_in_port_reports_upper_bits() -> None:
    km = kernel_mask(Match(InPort(Masked(3, 0)), Ethernet()))
    assert km[InPort].port == Masked(3, 0xFFFF0000)
    assert km[InPort].port.value == 3  # the unmasked key is kept


def test_kernel_mask_without_in_port_or_eth_type() -> None:
    km = kernel_mask(Match(Ethernet(src="00:00:00:00:00:01")))
    assert InPort not in km
    assert EthType not in km
    by_type = {type(a): a for a in km.mask_only}
    assert by_type[InPort].port == Masked(0, 0xFFFF0000)  # type: ignore[attr-defined]
    assert by_type[EthType].value == Masked(0, 0)  # type: ignore[attr-defined]  # eth_type(0/0x0000)


def test_kernel_mask_mask_only_in_port_is_forced_exact() -> None:
    km = kernel_mask(Match(Ethernet(), mask_only=(InPort(Masked(0, 1)),)))
    assert next(a for a in km.mask_only if isinstance(a, InPort)).port == Masked(0, 0xFFFFFFFF)


def test_kernel_mask_keeps_unmasked_key_unless_asked() -> None:
    match = ip4(Udp(dst=53), proto=17, src=Masked(0x01020304, 0xFFFF0000))
    assert kernel_mask(match)[Ipv4].src.value == 0x01020304
    assert kernel_mask(match, masked_key=True)[Ipv4].src.value == 0x01020000
    assert kernel_mask(match)[Ipv4].src.mask == 0xFFFF0000


def test_kernel_mask_drops_l4_the_key_does_not_select() -> None:
    km = kernel_mask(ip4(Udp(dst=53), Tcp(), proto=17))
    assert Udp in km
    assert Tcp not in km
    later = kernel_mask(ip4(proto=6, frag=2))
    assert not any(isinstance(a, (Tcp, Udp, Icmp, TcpFlags)) for a in later.attrs)


def test_kernel_mask_ipv6_has_exthdrs_and_nd() -> None:
    km = kernel_mask(ip6(Icmpv6(type=135), Nd(target="fe80::1"), proto=58))
    assert types(km)[-4:] == [Ipv6, Ipv6Exthdrs, Icmpv6, Nd]
    assert km[Ipv6Exthdrs].is_wildcard()
    assert km[Nd].target.mask == (1 << 128) - 1


def test_kernel_mask_vlan() -> None:
    km = kernel_mask(tagged(EthType(0x0800), Ipv4(proto=17), Udp(dst=4789), tci=Masked(0x1005, 0x1FFF)))
    assert km[EthType].value == Masked(0x8100, 0xFFFF)
    assert km[Vlan].tci == Masked(0x1005, 0x1FFF)
    encap = km[Encap]
    assert [type(a) for a in encap.attrs] == [EthType, Ipv4, Udp]


def test_kernel_mask_vlan_mask_quirk_reads_the_key() -> None:
    # With a zero vlan() mask the kernel's VLAN mask code reads the key's TCI.
    km = kernel_mask(tagged(EthType(0x0800), Ipv4(), tci=Masked(0x1005, 0)))
    assert km[Vlan].tci == Masked(0x1005, 0x1005)


def test_kernel_mask_tunnel_family_and_fields() -> None:
    km = kernel_mask(tun(**GOOD_TUNNEL, tos=Masked(0, 0)))
    t = km[Tunnel]
    assert t.tun_id == Masked(5, 0xFFFFFFFFFFFFFFFF)
    assert t.ipv4_dst == Masked(0x0A000002, 0xFFFFFFFF)
    assert t.ttl == Masked(64, 0xFF)
    assert t.flags.value & 8 and t.flags.mask & 8
    assert not km.mask_only or not any(isinstance(a, Tunnel) for a in km.mask_only)
    key, mask = stored_key_and_mask(tun(**GOOD_TUNNEL))
    assert key["tun_proto"] == 2 and mask["tun_proto"] == 0xFF


def test_kernel_mask_geneve_options() -> None:
    opts = b"\x01\x02\x80\x01\xaa\xbb\xcc\xdd"
    t = kernel_mask(tun(**GOOD_TUNNEL, geneve=opts))[Tunnel]
    assert t.geneve == MaskedBytes.exact(opts)


def test_kernel_mask_result_is_a_valid_match_for_plain_flows() -> None:
    for match in (tcp4(src="10.0.0.0/8"), ip6(Udp(), proto=17), eth(EthType(0x0806), Arp(op=1))):
        validate_match(kernel_mask(match))


def test_stored_key_and_mask_forced_values() -> None:
    key, mask = stored_key_and_mask(eth())
    assert mask["vlan_tci"] == 0xFFFF  # no vlan(): untagged packets only
    assert key["vlan_tci"] == 0
    assert mask["mac_proto"] == 0xFF and key["mac_proto"] == 0
    assert key["eth_type"] == 0x0004  # eth() without eth_type is 802.2 in the kernel
    assert mask["eth_type"] == 0
    assert key["in_port"] == 1 and mask["in_port"] == 0xFFFF
    key, mask = stored_key_and_mask(Match(Ethernet()))
    assert key["in_port"] == 65535 and mask["in_port"] == 0
    key, mask = stored_key_and_mask(Match(EthType(0x86DD), Ipv6()))
    assert key["mac_proto"] == 1  # no L2 header
    key, mask = stored_key_and_mask(eth(EthType(0x8847), Mpls(1, 2)))
    assert key["mpls_count"] == 0b11 and mask["mpls_count"] == 0b11


# ---------------------------------------------------------------------------
# Hypothesis: nothing but InvalidFlow escapes
# ---------------------------------------------------------------------------

WILD_INTS = st.one_of(st.integers(0, 0xFFFF), st.integers(0, (1 << 130)), st.integers(-3, -1), st.sampled_from([0]))


@functools.cache
def _field_value(bits: int) -> st.SearchStrategy[int]:
    full = (1 << bits) - 1
    interesting = [0, 1, 2, 3, 6, 17, 58, 135, 0x1000, 0x0800, 0x86DD, 0x8100, 0x0806, 0x8847, 0x894F]
    return st.one_of(st.sampled_from([v for v in interesting if v <= full] + [full]), st.integers(0, full), WILD_INTS)


@functools.cache
def _mask_value(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.just((1 << bits) - 1), st.just(0), _field_value(bits))


FIXED_CLASSES = st.sampled_from(sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE))


@st.composite
def fixed_attr(draw: st.DrawFn) -> FixedKeyAttr:
    cls = draw(FIXED_CLASSES)
    values = [draw(_field_value(spec.kind.bits)) for spec in cls.FIELDS]
    masks = [draw(_mask_value(spec.kind.bits)) for spec in cls.FIELDS]
    return cls.from_values(values, masks)


@functools.cache
def _masked(bits: int) -> st.SearchStrategy[Masked]:
    full = (1 << bits) - 1
    return st.builds(Masked, st.integers(0, full), st.sampled_from([0, full]) | st.integers(0, full))


OPTION_BLOB = st.none() | st.binary(max_size=12).map(MaskedBytes.exact)
TUNNEL_EXTRA = st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=9), st.binary(max_size=9)), max_size=2)


@st.composite
def tunnel_attr(draw: st.DrawFn) -> Tunnel:
    kw: dict[str, Any] = {}
    for name, bits in (("tun_id", 64), ("ipv4_src", 32), ("ipv4_dst", 32), ("ipv6_src", 128), ("ipv6_dst", 128),
                       ("tos", 8), ("ttl", 8), ("tp_src", 16), ("tp_dst", 16), ("vxlan_gbp", 32)):  # fmt: skip
        if draw(st.booleans()):
            kw[name] = draw(_masked(bits))
    kw["flags"] = Masked(draw(st.integers(0, 15)), draw(st.integers(0, 15)))
    blob = st.none() | st.binary(max_size=12).map(MaskedBytes.exact)
    extra = st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=9), st.binary(max_size=9)), max_size=2)
    return Tunnel(geneve=draw(blob), erspan=draw(blob), extra=tuple(draw(extra)), normalize=draw(st.booleans()), **kw)


@st.composite
def nsh_attr(draw: st.DrawFn) -> Nsh:
    return Nsh(
        mdtype=draw(_masked(8)),
        np=draw(_masked(8)),
        path_hdr=draw(_masked(32)),
        c1=draw(_masked(32)),
        has_md1=draw(st.booleans()),
        md2=draw(st.none() | st.binary(max_size=8)),
    )


leaf_attr = st.one_of(
    fixed_attr(),
    fixed_attr(),
    tunnel_attr(),
    nsh_attr(),
    st.lists(_masked(32), min_size=1, max_size=4).map(lambda lses: Mpls(*lses)),
    st.builds(
        UnknownKeyAttr,
        st.integers(0, 40) | st.integers(0, 70000),
        st.binary(max_size=24),
        st.none() | st.binary(max_size=24),
    ),
)


def _unique(attrs: list[KeyAttr]) -> list[KeyAttr]:
    seen: set[int] = set()
    out = []
    for a in attrs:
        if a.TYPE not in seen:
            seen.add(a.TYPE)
            out.append(a)
    return out


key_attr = st.recursive(
    leaf_attr, lambda children: st.lists(children, max_size=4).map(lambda xs: Encap(*_unique(xs))), max_leaves=4
)


@st.composite
def matches(draw: st.DrawFn) -> Match:
    base = draw(
        st.sampled_from(
            [[], [Ethernet()], [InPort(1), Ethernet(), EthType(0x0800)], [Ethernet(), EthType(0x8100), Vlan.of(3)]]
        )
    )
    attrs = _unique(base + draw(st.lists(key_attr, max_size=4)))
    mask_only = _unique(draw(st.lists(key_attr, max_size=1)))
    return Match(*attrs, mask_only=mask_only)


U32 = st.integers(0, 0xFFFFFFFF)
U16 = st.integers(0, 0xFFFF)
SIMPLE_ACTION: st.SearchStrategy[Action] = st.one_of(
    st.builds(Output, U32),
    st.builds(Userspace, U32),
    st.builds(Set, key_attr),
    st.builds(SetMasked, fixed_attr()),
    st.builds(PushVlan, U16, st.sampled_from([0x8100, 0x88A8, 0x0800])),
    st.just(PopVlan()),
    st.builds(Recirc, U32),
    st.builds(Hash, st.integers(0, 3), U32),
    st.builds(PushMpls, U32, st.sampled_from([0x8847, 0x8848, 0x0800])),
    st.builds(PopMpls, st.sampled_from([0x0800, 0x8847, 0x6558, 0])),
    st.builds(AddMpls, U32, st.sampled_from([0x8847, 0x0800]), st.integers(0, 3)),
    st.builds(
        Ct,
        commit=st.booleans(),
        zone=st.none() | U16,
        mark=st.none() | _masked(32),
        labels=st.none() | _masked(128),
        helper=st.none() | st.text(max_size=20),
        timeout=st.none() | st.text(max_size=40),
        nat=st.none()
        | st.builds(
            Nat,
            kind=st.sampled_from([None, "src", "dst"]),
            ip_min=st.none() | st.integers(0, 0xFFFFFFFF),
            proto_min=st.none() | U16,
            persistent=st.booleans(),
            ipv6=st.booleans(),
        ),
    ),
    st.builds(Trunc, U32),
    st.builds(PushEth),
    st.just(PopEth()),
    st.just(CtClear()),
    st.builds(PushNsh, nsh_attr() | fixed_attr()),
    st.just(PopNsh()),
    st.builds(Meter, U32),
    st.builds(Drop, U32),
    st.builds(Psample, U32, st.none() | st.binary(max_size=16)),
    st.builds(UnknownAction, st.integers(0, 40), st.binary(max_size=12)),
    st.just(Nat()),
)

action_lists = st.recursive(
    st.lists(SIMPLE_ACTION, max_size=4).map(Actions),
    lambda inner: st.lists(
        st.one_of(
            SIMPLE_ACTION,
            st.builds(Sample, st.integers(0, 0xFFFFFFFF), inner),
            st.builds(Clone, inner),
            st.builds(DecTtl, inner),
            st.builds(CheckPktLen, st.integers(0, 0xFFFF), inner, inner),
        ),
        max_size=4,
    ).map(Actions),
    max_leaves=6,
)

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(matches())
def test_fuzz_match_only_raises_invalid_flow(match: Match) -> None:
    try:
        validate_match(match)
    except InvalidFlow as exc:
        assert exc.rule and isinstance(exc.rule, str)
        return
    # A match the kernel accepts can be stored and dumped.
    km = kernel_mask(match)
    assert isinstance(km, Match)
    kernel_mask(match, masked_key=True)
    key, mask = stored_key_and_mask(match)
    assert set(key) == set(mask)


@FUZZ
@given(action_lists, st.none() | matches() | st.sampled_from([tcp4(), ARP, TAGGED, L3_IP, MPLS, NSH_IP, TCP6]))
def test_fuzz_actions_only_raise_invalid_flow(actions: Actions, match: Match | None) -> None:
    for kernel in (None, (6, 1)):
        try:
            validate_actions(actions, match, kernel=kernel)
        except InvalidFlow as exc:
            assert exc.rule


@FUZZ
@given(st.sampled_from([tcp4(), ARP, TAGGED, L3_IP, MPLS, NSH_IP, TCP6, tun(**GOOD_TUNNEL)]), st.data())
def test_fuzz_valid_flows_with_sensible_masks(base: Match, data: st.DataObject) -> None:
    """Narrowing masks of a valid flow never breaks anything but with InvalidFlow."""
    attrs = []
    for a in base.attrs:
        if isinstance(a, FixedKeyAttr) and data.draw(st.booleans()):
            masks = [data.draw(st.integers(0, s.kind.full)) for s in a.FIELDS]
            a = type(a).from_values(a.values(), masks)
        attrs.append(a)
    match = Match(*attrs)
    try:
        validate_match(match)
    except InvalidFlow:
        return
    kernel_mask(match)


def test_packet_keys_are_read_as_given() -> None:
    # A truncated VLAN tag: as a flow the exact vlan(0) mask needs an encap() mask (EINVAL),
    # but for OVS_PACKET_CMD_EXECUTE it is only the packet's key.
    truncated = Match(InPort(1), Ethernet(), EthType(0x8100), Vlan(tci=0), Encap())
    with pytest.raises(InvalidFlow):
        validate_match(truncated)
    validate_actions(Actions([PopVlan(), Output(2)]), truncated, packet=True)
    # The packet's values still drive the action checks.
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([Set(Ipv4(src="1.1.1.1"))]), truncated, packet=True)
    assert info.value.rule == "set-l3-eth-type"
    inner = tagged(EthType(0x0800), Ipv4(proto=17), Udp())
    with pytest.raises(InvalidFlow) as info:
        validate_actions(Actions([PushMpls(1)]), inner, packet=True)
    assert info.value.rule == "mpls-with-vlan"
    validate_actions(Actions([PopVlan(), PushMpls(1), Output(1)]), inner, packet=True)


def test_checked_bytes_are_the_codecs() -> None:
    """validate_match replays exactly what odp.netlink.codec sends."""
    from odp.netlink.codec import encode_key, encode_mask

    match = tun(**GOOD_TUNNEL, tos=Masked(4, 0xFC))
    assert encode_key(match) and encode_mask(match)
    validate_match(match)
    # A tunnel mask with nothing in it is not sent at all, so it cannot make the flow invalid.
    validate_match(Match(Tunnel(ipv4_dst=Masked(1, 0), ttl=Masked(2, 0)), Ethernet()))


def test_codec_always_sends_a_tunnel_ttl() -> None:
    """odp's codec sends TTL 0 for a wildcarded ttl (as OVS does), so the kernel's TTL rule holds."""
    validate_match(tun(tun_id=5, ipv4_dst="10.0.0.2"))
    validate_actions(Actions([set_tunnel(tun_id=5, ipv4_dst="10.0.0.2"), Output(3)]), tcp4())
