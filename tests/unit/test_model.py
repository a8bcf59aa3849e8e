"""The flow model: masked fields from natural values, mask-aware equality."""

from __future__ import annotations

import ipaddress

import pytest

from odp import (
    Actions,
    Encap,
    Ethernet,
    EthType,
    FieldError,
    InPort,
    Ipv4,
    Ipv6,
    Masked,
    Match,
    Mpls,
    Output,
    RecircId,
    Sample,
    Tunnel,
    TunnelFlag,
    Vlan,
)


def test_masked_equality_ignores_wildcarded_bits() -> None:
    assert Masked(0x1234, 0xFF00) == Masked(0x12FF, 0xFF00)
    assert Masked(0x1234, 0xFF00) != Masked(0x1234, 0xFFFF)
    assert hash(Masked(5, 0)) == hash(Masked(0, 0))


@pytest.mark.parametrize(
    ("given", "value", "mask"),
    [
        ("10.0.0.0/24", 0x0A000000, 0xFFFFFF00),
        ("10.0.0.1/255.0.255.0", 0x0A000001, 0xFF00FF00),
        ("10.0.0.1", 0x0A000001, 0xFFFFFFFF),
        (ipaddress.IPv4Address("10.0.0.1"), 0x0A000001, 0xFFFFFFFF),
        (ipaddress.IPv4Network("10.0.0.0/8"), 0x0A000000, 0xFF000000),
        (ipaddress.IPv4Interface("10.1.2.3/16"), 0x0A010203, 0xFFFF0000),
        (0x0A000001, 0x0A000001, 0xFFFFFFFF),
        (("10.0.0.1", "255.255.0.0"), 0x0A000001, 0xFFFF0000),
        (None, 0, 0),
    ],
)
def test_ipv4_field_from_natural_values(given: object, value: int, mask: int) -> None:
    src = Ipv4(src=given).src
    assert (src.value, src.mask) == (value, mask)


def test_mac_with_mask() -> None:
    eth = Ethernet(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:01/ff:ff:ff:00:00:00")
    assert eth.dst == Masked(0xFFFFFFFFFFFF, 0xFFFFFFFFFFFF)
    assert (eth.src.value, eth.src.mask) == (0x020000000001, 0xFFFFFF000000)


def test_ipv6_prefix() -> None:
    src = Ipv6(src="2001:db8::/32").src
    assert src.mask == ((1 << 32) - 1) << 96


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Ipv4(src="10.0.0.300"), "ipv4.src"),
        (lambda: Ipv4(proto=256), "ipv4.proto"),
        (lambda: Ipv4(bogus=1), "unknown field 'bogus'"),
        (lambda: Ethernet(src="02:00:00:00:00"), "eth.src"),
        (lambda: InPort(-1), "in_port.port"),
        (lambda: Vlan.of(5000), "vid 5000"),
        (lambda: Match(InPort(1), InPort(2)), "duplicate attribute in_port"),
        (lambda: Tunnel(flags=0x10), "tunnel.flags"),
        (lambda: Mpls(label=1 << 20), "mpls: label"),
        (lambda: Output(-1), "output port"),
    ],
)
def test_bad_values_raise_field_error_naming_the_field(build: object, fragment: str) -> None:
    with pytest.raises(FieldError, match=fragment.replace("(", r"\(")):
        build()  # type: ignore[operator]


def test_match_equality_is_order_insensitive_and_mask_aware() -> None:
    a = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(src="10.0.0.7/24"))
    b = Match(EthType(0x0800), Ipv4(src="10.0.0.9/24"), Ethernet(), InPort(1))
    assert a == b
    assert hash(a) == hash(b)
    assert a != Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(src="10.0.0.7/25"))


def test_wildcarded_metadata_counts_as_absent_but_ethernet_does_not() -> None:
    base = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4())
    assert base == Match(InPort(1), Ethernet(), EthType(0x0800), RecircId(value=(0, 0)))
    assert base != Match(InPort(1), EthType(0x0800), Ipv4())


def test_encap_equality_is_mask_aware() -> None:
    assert Encap(EthType(0x0800), Ipv4(ttl=(64, 0))) == Encap(EthType(0x0800))


def test_tunnel_id_sets_key_flag() -> None:
    t = Tunnel(tun_id=5, ipv4_dst="10.0.0.1", ttl=64)
    assert t.flags.value & TunnelFlag.KEY
    assert t.flags.mask & TunnelFlag.KEY


def test_match_accessors() -> None:
    m = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(proto=6))
    assert m[Ipv4].proto.value == 6
    assert m.get(Vlan) is None
    assert Ipv4 in m
    with pytest.raises(KeyError):
        m[Vlan]
    assert m.replace(InPort(2))[InPort].port.value == 2


def test_masked_clears_wildcarded_key_bits() -> None:
    ip = Ipv4(src="10.1.2.3/255.255.0.0").masked()
    assert ip.src.value == 0x0A010000


def test_actions_nest() -> None:
    acts = Actions.of(Sample(Sample.ALWAYS, [Output(2)]), Output(3))
    assert isinstance(acts[0], Sample)
    assert acts[0].actions == Actions.of(Output(2))
    assert len(acts) == 2
    assert not Actions()
