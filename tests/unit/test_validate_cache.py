"""The cache of accepted flow shapes never accepts what the full check refuses."""

from __future__ import annotations

import pytest

import odp.validate as v
from odp import Actions, Ethernet, EthType, InPort, InvalidFlow, Ipv4, Match, Output, Set, Udp


def udp_flow(in_port: int = 1, src: str = "10.0.0.1", proto: int = 17, **udp: object) -> Match:
    return Match(InPort(in_port), Ethernet(), EthType(0x0800), Ipv4(src=src, proto=proto), Udp(**udp))


def test_same_shape_other_addresses_is_served_from_the_cache() -> None:
    v.validate_match(udp_flow(src="10.0.0.1", dst=53))
    before = set(v._accepted_matches)
    v.validate_match(udp_flow(src="10.9.9.9", dst=54))
    assert set(v._accepted_matches) == before


def test_cached_shape_still_checks_in_port_range() -> None:
    v.validate_match(udp_flow(in_port=1, dst=53))
    with pytest.raises(InvalidFlow, match="in_port"):
        v.validate_match(udp_flow(in_port=70000, dst=53))


def test_cached_shape_still_checks_proto_chain() -> None:
    v.validate_match(udp_flow(proto=17, dst=53))
    with pytest.raises(InvalidFlow):
        v.validate_match(udp_flow(proto=6, dst=53))


def test_actions_cache_is_per_action_list() -> None:
    match = udp_flow(dst=53)
    v.validate_actions(Actions.of(Output(2)), match)
    with pytest.raises(InvalidFlow):
        v.validate_actions(Actions.of(Output(2), Set(Ipv4(src="1.1.1.1", proto=6, frag=0))), match)


def test_cached_shape_still_refuses_a_value_outside_its_field() -> None:
    masks = (0xFFFFFFFF, 0xFFFFFFFF, 0xFF, 0, 0, 0)
    ok = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4.from_values((1, 2, 17, 0, 0, 0), masks), Udp(dst=53))
    v.validate_match(ok)
    for src in (-1, 1 << 32):
        bad = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4.from_values((src, 2, 17, 0, 0, 0), masks), Udp(dst=53))
        with pytest.raises(InvalidFlow, match="ipv4"):
            v.validate_match(bad)
