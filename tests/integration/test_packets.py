"""Packets through flows: matching, outputs, stats, misses."""

from __future__ import annotations

import pytest
from packets import arp_request, icmp4, tcp4, udp4, udp6, vlan_udp4

from odp.datapath import Datapath, UpcallListener
from odp.keys import EthType, InPort, Ipv4, Tcp, TcpFlags, Udp
from odp.records import UpcallKind
from odp.testing import PacketHarness, Port


def test_output_to_one_port(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    pkt = udp4()
    harness.send_packet(p1, pkt)
    harness.verify_packet(pkt, p2)
    harness.verify_no_other_packets()


def test_output_to_several_ports(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, p3 = ports
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2,3")
    pkt = udp4()
    harness.send_packet(p1, pkt)
    harness.verify_packets(pkt, [p2, p3])
    harness.verify_no_other_packets()


def test_drop_flow_sends_nothing(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "drop")
    harness.send_packet(ports[0], udp4())
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == 1


def test_flow_stats_count_whole_frame(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    pkt = udp4()
    for _ in range(3):
        harness.send_packet(ports[0], pkt)
    flow = dp.flows()[0]
    assert flow.stats.packets == 3
    assert flow.stats.bytes == 3 * len(bytes(pkt))
    assert flow.used is not None
    stats = dp.stats()
    assert (stats.hit, stats.missed, stats.lost) == (3, 0, 0)


def test_unused_flow_has_no_used_time(dp: Datapath, ports: list[Port]) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    flow = dp.flows()[0]
    assert flow.used is None
    assert flow.stats.packets == 0


def test_tcp_flags_are_accumulated(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)", "drop")
    harness.send_packet(ports[0], tcp4(flags="S"))
    harness.send_packet(ports[0], tcp4(flags="A"))
    assert dp.flows()[0].tcp_flags == 0x12


def test_clear_stats(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    match = "in_port(1),eth(),eth_type(0x0800),ipv4()"
    dp.add_flow(match, "drop")
    harness.send_packet(ports[0], udp4())
    flow = dp.modify_flow(match, clear_stats=True)
    assert flow.stats.packets == 1  # the reply carries the stats from before clearing
    assert dp.get_flow(match).stats.packets == 0


def test_replace_keeps_stats(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    match = "in_port(1),eth(),eth_type(0x0800),ipv4()"
    dp.add_flow(match, "drop")
    harness.send_packet(ports[0], udp4())
    dp.add_flow(match, "2", replace=True)
    assert dp.get_flow(match).stats.packets == 1


def test_vport_stats_count_rx_and_tx(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    pkt = udp4()
    harness.send_packet(ports[0], pkt)
    harness.verify_packet(pkt, ports[1])
    rx = dp.vport(1).stats()
    tx = dp.vport(2).stats()
    assert (rx.rx_packets, rx.rx_bytes) == (1, len(bytes(pkt)))
    assert (tx.tx_packets, tx.tx_bytes) == (1, len(bytes(pkt)))


# --- misses ------------------------------------------------------------------


def test_miss_without_listener_counts_lost(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    harness.send_packet(ports[0], udp4())
    stats = dp.stats()
    assert (stats.hit, stats.missed, stats.lost) == (0, 1, 1)


def test_miss_upcall_carries_packet_and_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    pkt = udp4(1111, 2222)
    harness.send_packet(ports[0], pkt)
    up = harness.expect_miss(listener, in_port=1)
    assert up.kind == UpcallKind.MISS
    assert up.packet == bytes(pkt)
    key = up.key
    assert key[InPort].port.value == 1
    assert key[EthType].value.value == 0x0800
    assert key[Ipv4].proto.value == 17
    assert (key[Udp].src.value, key[Udp].dst.value) == (1111, 2222)
    assert dp.stats().missed == 1
    assert dp.stats().lost == 0


def test_miss_key_has_kernel_metadata(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    harness.send_packet(ports[0], udp4())
    text = str(harness.expect_miss(listener).key)
    assert text.startswith("recirc_id(0),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0),ct_state(0),ct_zone(0)")
    assert "packet_type" not in text


def test_miss_key_for_tcp_has_flags(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    harness.send_packet(ports[0], tcp4(4000, 80, "SA"))
    key = harness.expect_miss(listener).key
    assert (key[Tcp].src.value, key[Tcp].dst.value) == (4000, 80)
    assert key[TcpFlags].value.value == 0x12


def test_upcall_pid_zero_on_port_loses_misses(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    dp.vport(1).set_upcall_pids((0,))
    harness.send_packet(ports[0], udp4())
    assert listener.receive(timeout=0.2) == []
    assert dp.stats().lost == 1


def test_listener_follows_new_vports(
    topology: object, dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    from odp.testing import Topology

    assert isinstance(topology, Topology)
    late = topology.add_port(dp, "odpp4")
    harness.register(late)
    harness.send_packet(late, udp4())
    up = harness.expect_miss(listener, in_port=late.port_no)
    assert up.in_port == 4


def test_userspace_action_upcall(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    pid = listener_pid(dp)
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"userspace(pid={pid},userdata(0102030405060708))")
    harness.send_packet(ports[0], udp4())
    ups = wait_upcalls(listener)
    assert [u.kind for u in ups] == [UpcallKind.ACTION]
    assert ups[0].userdata == bytes.fromhex("0102030405060708")
    assert dp.stats().hit == 1


def listener_pid(dp: Datapath) -> int:
    pids = dp.vport(1).info().upcall_pids
    assert pids and pids[0] != 0
    return pids[0]


def wait_upcalls(listener: UpcallListener) -> list[object]:
    ups = listener.receive(timeout=1.0)
    return ups  # type: ignore[return-value]


# --- matching on fields ------------------------------------------------------

MATCH_CASES = [
    # (flow match, packet that matches, packet that does not)
    ("in_port(1),eth(src=02:00:00:00:00:01),eth_type(0x0800),ipv4()", udp4(), None),
    ("in_port(1),eth(dst=02:00:00:00:00:02),eth_type(0x0800),ipv4()", udp4(), None),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1)", udp4(), udp4(src="10.0.0.9")),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.255.0)", udp4(), udp4(dst="10.0.1.2")),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(ttl=64)", udp4(), udp4(ttl=10)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(tos=0x10)", udp4(tos=0x10), udp4()),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp(dst=5678)", udp4(), udp4(dport=9)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp(src=1234)", udp4(), udp4(sport=9)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp(dst=0x1600/0xff00)", udp4(dport=0x1601), udp4(dport=53)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst=80),tcp_flags(0/0)", tcp4(), tcp4(dport=81)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(+syn-ack)", tcp4(flags="S"), tcp4(flags="SA")),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=1),icmp(type=8)", icmp4(8), icmp4(0)),
    ("in_port(1),eth(),eth_type(0x0806),arp(tip=10.0.0.2)", arp_request(), arp_request(pdst="10.0.0.3")),
    ("in_port(1),eth(),eth_type(0x0806),arp(op=1)", arp_request(), None),
    ("in_port(1),eth(),eth_type(0x86dd),ipv6(src=2001:db8::1)", udp6(), None),
    ("in_port(1),eth(),eth_type(0x86dd),ipv6(proto=17),udp(dst=5678)", udp6(), udp6(dport=7)),
    ("in_port(1),eth(),eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4())", vlan_udp4(10), vlan_udp4(11)),
    ("in_port(1),eth(),eth_type(0x0800),ipv4()", udp4(), vlan_udp4(10)),
]


@pytest.mark.parametrize(("match", "hit", "miss"), MATCH_CASES, ids=[c[0][29:] for c in MATCH_CASES])
def test_match_field(
    dp: Datapath, ports: list[Port], harness: PacketHarness, match: str, hit: object, miss: object
) -> None:
    dp.add_flow(match, "2")
    harness.send_packet(ports[0], hit)
    harness.verify_packet(hit, ports[1])
    if miss is not None:
        harness.send_packet(ports[0], miss)
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == 1


def test_in_port_is_matched(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(2),eth(),eth_type(0x0800),ipv4()", "3")
    harness.send_packet(ports[0], udp4())
    harness.verify_no_other_packets()
    harness.send_packet(ports[1], udp4())
    harness.verify_packet(udp4(), ports[2])


def test_two_masks_both_hit(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp(dst=5678)", "2")
    dp.add_flow("in_port(1),eth(),eth_type(0x0806),arp()", "3")
    harness.send_packet(ports[0], udp4())
    harness.send_packet(ports[0], arp_request())
    harness.verify_packet(udp4(), ports[1])
    harness.verify_packet(arp_request(), ports[2])
    assert dp.info().megaflow.masks == 2


def test_missed_packet_then_flow_then_hit(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    harness.send_packet(ports[0], udp4())
    up = harness.expect_miss(listener)
    ip = up.key[Ipv4]
    dp.add_flow(f"in_port({up.in_port}),eth(),eth_type(0x0800),ipv4(src={ip.src.value >> 24}.0.0.0/8)", "2")
    harness.send_packet(ports[0], udp4())
    harness.verify_packet(udp4(), ports[1])
