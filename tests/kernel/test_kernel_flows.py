"""Flows on the real kernel (OVS_FLOW_CMD_*): life cycle, identity, errors, batches, dumps."""

from __future__ import annotations

import pytest

from odp.actions import Output, PushVlan, set_tunnel
from odp.constants import UfidFlags
from odp.datapath import Datapath
from odp.errors import ExistsError, InvalidFlow, NotFoundError
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match
from odp.text import format_actions, format_match, parse_actions, parse_match

BASE = "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)"


def test_add_get_dump_delete(dp: Datapath) -> None:
    flow = dp.add_flow(BASE, "2")
    assert flow.match == parse_match(BASE)
    assert format_match(flow.match) == BASE
    assert format_actions(flow.actions) == "2"
    assert (flow.stats.packets, flow.used, flow.tcp_flags) == (0, None, 0)
    got = dp.get_flow(BASE)
    assert got.match == parse_match(BASE) and got.actions == parse_actions("2")
    (dumped,) = dp.flows()
    assert dumped.match == parse_match(BASE)
    assert dp.info().stats.flows == 1 and dp.info().megaflow.masks == 1
    deleted = dp.delete_flow(BASE)
    assert deleted.actions == parse_actions("2")
    assert dp.flows() == []
    with pytest.raises(NotFoundError, match="no flow"):
        dp.get_flow(BASE)
    with pytest.raises(NotFoundError):
        dp.delete_flow(BASE)


def test_exclusive_add_of_an_existing_flow_is_exists(dp: Datapath) -> None:
    dp.add_flow(BASE, "2")
    with pytest.raises(ExistsError, match="already exists"):
        dp.add_flow(BASE, "3")
    # A narrower flow whose key falls inside the existing one is also EEXIST.
    with pytest.raises(ExistsError):
        dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)", "3")


def test_replace_changes_actions_and_keeps_stats(dp: Datapath) -> None:
    dp.add_flow(BASE, "2")
    replaced = dp.add_flow(BASE, "3", replace=True)
    assert replaced.actions == parse_actions("3")
    assert dp.get_flow(BASE).actions == parse_actions("3")
    # Same unmasked key needed: an overlapping but different flow is ENOENT.
    with pytest.raises(NotFoundError, match="overlapping"):
        dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)", "3", replace=True)


def test_wider_flow_next_to_a_narrower_one(dp: Datapath) -> None:
    # kernel-semantics.md: the unmasked key of the second does not hit the first.
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(src=1.1.1.1/192.0.0.0)", "2")
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(src=192.1.1.1/0.0.0.0)", "3")
    assert len(dp.flows()) == 2


def test_modify_and_clear_stats(dp: Datapath) -> None:
    dp.add_flow(BASE, "2")
    modified = dp.modify_flow(BASE, "3")
    assert modified.actions == parse_actions("3")
    cleared = dp.modify_flow(BASE, clear_stats=True)
    assert cleared.actions == parse_actions("3")
    with pytest.raises(NotFoundError):
        dp.modify_flow("in_port(2),eth(),eth_type(0x0800),ipv4()", "3")


def test_ufid_flows(dp: Datapath) -> None:
    ufid = bytes(range(16))
    dp.add_flow(BASE, "2", ufid=ufid)
    flow = dp.get_flow(ufid=ufid)
    assert flow.ufid == ufid and flow.actions == parse_actions("2")
    # UFID flows are stored and dumped with the masked key.
    assert flow.match == parse_match(BASE).masked()
    # A flow made with a UFID is not found by key.
    with pytest.raises(NotFoundError):
        dp.get_flow(BASE)
    omitted = dp.get_flow(ufid=ufid, ufid_flags=int(UfidFlags.OMIT_KEY | UfidFlags.OMIT_ACTIONS))
    assert omitted.match is None and omitted.actions is None
    (dumped,) = dp.flows(ufid_flags=UfidFlags.OMIT_KEY | UfidFlags.OMIT_MASK | UfidFlags.OMIT_ACTIONS)
    assert dumped.ufid == ufid and dumped.match is None and dumped.actions is None
    # SET of the actions by UFID alone: the backend supplies the key the kernel wants.
    assert dp.modify_flow(ufid=ufid, actions="3").actions == parse_actions("3")
    assert dp.delete_flow(ufid=ufid).ufid == ufid
    with pytest.raises(NotFoundError, match="ufid"):
        dp.get_flow(ufid=ufid)


def test_flush(dp: Datapath) -> None:
    for port in range(1, 6):
        dp.add_flow(f"in_port({port}),eth(),eth_type(0x0800),ipv4()", "drop" if port == 1 else "1")
    assert len(dp.flows()) == 5
    dp.flush_flows()
    assert dp.flows() == []


def test_drop_flow_has_empty_actions(dp: Datapath) -> None:
    flow = dp.add_flow(BASE, [])
    assert flow.actions is not None and len(flow.actions) == 0
    assert format_actions(dp.get_flow(BASE).actions or []) == "drop"


@pytest.mark.parametrize(
    ("match", "rule"),
    [
        ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6)", None),  # tcp() missing
        ("in_port(1),eth(),eth_type(0x0800),ipv4(),tcp(dst=80)", None),  # proto wildcarded
        ("in_port(1),eth(),eth_type(0x0800)", None),  # ipv4() missing
    ],
)
def test_einval_is_explained(dp: Datapath, match: str, rule: str | None) -> None:
    with pytest.raises(InvalidFlow) as info:
        dp.add_flow(match, "2")
    assert info.value.rule != "kernel-einval", str(info.value)
    assert "EINVAL" in str(info.value)


def test_invalid_actions_are_explained(dp: Datapath) -> None:
    # push_vlan needs the CFI bit (0x1000) in its TCI.
    with pytest.raises(InvalidFlow) as info:
        dp.add_flow(BASE, [PushVlan(tci=10), Output(2)])
    assert "EINVAL" in str(info.value) and info.value.rule != "kernel-einval", str(info.value)
    # set(tunnel()) needs a TTL attribute; the codec always sends one (0 when not given).
    dp.add_flow(BASE, [set_tunnel(tun_id=5, ipv4_dst="1.1.1.1"), Output(2)])


def test_flow_new_many_and_dump(dp: Datapath) -> None:
    n = 5000
    flows = [
        (Match(InPort(1 + i % 100), Ethernet(), EthType(0x0800), Ipv4(dst=0x0A000000 + i)), parse_actions("2"))
        for i in range(n)
    ]
    assert dp.backend.flow_new_many(dp.name, flows) == n
    assert dp.info().stats.flows == n
    dumped = dp.flows()
    assert len(dumped) == n
    assert {f.match for f in dumped} == {m for m, _ in flows}
    fresh = (Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst="11.0.0.1")), parse_actions("2"))
    with pytest.raises(ExistsError, match="#1"):
        dp.backend.flow_new_many(dp.name, [fresh, flows[7]])
    assert dp.info().stats.flows == n + 1
