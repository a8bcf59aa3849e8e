"""Actions, seen from outside: what leaves which port after each action."""

from __future__ import annotations

import pytest
from packets import MAC1, MAC2, eth, tcp4, udp4, udp6
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from odp import InvalidFlow, SetMasked, parse_actions
from odp.datapath import Datapath, UpcallListener
from odp.records import UpcallKind
from odp.testing import PacketHarness, Port

IN1 = "in_port(1),eth(),eth_type(0x0800),ipv4()"


def send_through(dp: Datapath, harness: PacketHarness, ports: list[Port], actions: str, pkt: object) -> None:
    dp.add_flow(IN1 if IP in pkt else "in_port(1),eth(),eth_type(0x86dd),ipv6()", actions)  # type: ignore[operator]
    harness.send_packet(ports[0], pkt)


def test_set_eth_addresses(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "set(eth(src=02:aa:00:00:00:01,dst=02:bb:00:00:00:02)),2", pkt)
    exp = pkt.copy()  # type: ignore[attr-defined]
    exp[Ether].src, exp[Ether].dst = "02:aa:00:00:00:01", "02:bb:00:00:00:02"
    harness.verify_packet(exp, ports[1])
    harness.verify_no_other_packets()


def test_set_masked_eth_dst(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "set(eth(dst=02:00:00:00:ff:00/ff:ff:ff:ff:ff:00)),2", pkt)
    exp = pkt.copy()  # type: ignore[attr-defined]
    exp[Ether].dst = "02:00:00:00:ff:02"
    harness.verify_packet(exp, ports[1])


def test_set_ipv4_addresses_fixes_checksums(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "set(ipv4(src=192.168.1.1/255.255.255.255,dst=192.168.1.2)),2", pkt)
    got = Ether(harness.received(ports[1])[0])
    exp = Ether(bytes(pkt))
    exp[IP].src, exp[IP].dst = "192.168.1.1", "192.168.1.2"
    del exp[IP].chksum
    del exp[UDP].chksum
    exp = Ether(bytes(exp))
    assert bytes(got) == bytes(exp)


def test_set_ipv4_ttl_masked(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4(ttl=64)
    send_through(dp, harness, ports, "set(ipv4(ttl=9)),2", pkt)
    got = Ether(harness.received(ports[1])[0])
    assert got[IP].ttl == 9
    assert got[IP].src == "10.0.0.1"
    check = Ether(bytes(got))
    del check[IP].chksum
    assert Ether(bytes(check))[IP].chksum == got[IP].chksum


def test_set_udp_ports(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp()", "set(udp(src=7,dst=8)),2")
    harness.send_packet(ports[0], udp4())
    got = Ether(harness.received(ports[1])[0])
    assert (got[UDP].sport, got[UDP].dport) == (7, 8)
    check = Ether(bytes(got))
    del check[UDP].chksum
    assert Ether(bytes(check))[UDP].chksum == got[UDP].chksum


def test_set_tcp_dst_port(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)", "set(tcp(dst=8080)),2")
    harness.send_packet(ports[0], tcp4())
    got = Ether(harness.received(ports[1])[0])
    assert got[TCP].dport == 8080
    check = Ether(bytes(got))
    del check[TCP].chksum
    assert Ether(bytes(check))[TCP].chksum == got[TCP].chksum


def test_set_ipv6_hlimit(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    send_through(dp, harness, ports, "set(ipv6(hlimit=5)),2", udp6())
    got = Ether(harness.received(ports[1])[0])
    assert got[IPv6].hlim == 5


def test_push_vlan(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "push_vlan(vid=10,pcp=2),2", pkt)
    exp = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=10, prio=2) / pkt[IP]  # type: ignore[index]
    harness.verify_packet(exp, ports[1])


def test_pop_vlan(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / (b"y" * 20)
    dp.add_flow("in_port(1),eth(),eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4())", "pop_vlan,2")
    harness.send_packet(ports[0], Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=10) / inner)
    harness.verify_packet(Ether(src=MAC1, dst=MAC2) / inner, ports[1])


def test_push_then_pop_mpls(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "push_mpls(label=100,tc=0,ttl=64,bos=1,eth_type=0x8847),2", pkt)
    got = Ether(harness.received(ports[1])[0])
    assert got.type == 0x8847
    assert got[MPLS].label == 100
    assert bytes(got[MPLS].payload)[:20] == bytes(pkt[IP])[:20]  # type: ignore[index]


def test_set_masked_mpls_label_keeps_tc_ttl_and_bos(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    # set(mpls(label=7/0xfffff)) is a SET_MASKED of the top LSE: only the label bits change.
    actions = "set(mpls(label=7/0xfffff)),2"
    dp.add_flow("in_port(1),eth(),eth_type(0x8847),mpls(label=100/0xfffff,tc=0/0,ttl=0/0,bos=1/1)", actions)
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
    harness.send_packet(ports[0], Ether(src=MAC1, dst=MAC2) / MPLS(label=100, cos=5, s=1, ttl=33) / inner)
    harness.verify_packet(Ether(src=MAC1, dst=MAC2) / MPLS(label=7, cos=5, s=1, ttl=33) / inner, ports[1])
    harness.verify_no_other_packets()
    (flow,) = dp.flows()
    assert flow.actions == parse_actions(actions)
    assert isinstance(flow.actions[0], SetMasked)  # the mask is kept, not turned into a whole set


def test_output_order_sees_set(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "2,set(ipv4(ttl=7)),3", pkt)
    assert Ether(harness.received(ports[1])[0])[IP].ttl == 64
    assert Ether(harness.received(ports[2])[0])[IP].ttl == 7


def test_trunc_applies_to_next_output_only(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "trunc(20),2,3", pkt)
    assert harness.received(ports[1])[0] == bytes(pkt)[:20]
    assert harness.received(ports[2])[0] == bytes(pkt)


def test_trunc_length_is_absolute_and_the_last_one_wins(
    dp: Datapath, ports: list[Port], harness: PacketHarness
) -> None:
    # OVS_CB(skb)->cutlen holds the last trunc's max_len; do_output() trims to it whatever the actions
    # in between did to the length (kernel oracle cases 3823, 4368).
    pkt = udp4()
    send_through(
        dp,
        harness,
        ports,
        "trunc(30),trunc(1000),2,trunc(40),push_mpls(label=100,tc=0,ttl=64,bos=1,eth_type=0x8847),3",
        pkt,
    )
    assert harness.received(ports[1])[0] == bytes(pkt)
    out = harness.received(ports[2])[0]
    assert len(out) == 40 and out[12:14] == b"\x88\x47"


def test_a_pending_trunc_goes_along_with_recirculation(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    # OVS_CB(skb)->cutlen travels with the skb into the recirculated lookup (kernel oracle 3738, 5355, 7836).
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "trunc(30),recirc(7)")
    dp.add_flow("recirc_id(7),in_port(1),eth(),eth_type(0x0800),ipv4()", "2,3")
    pkt = udp4()
    harness.send_packet(ports[0], pkt)
    assert harness.received(ports[1]) == [bytes(pkt)[:30]]
    assert harness.received(ports[2]) == [bytes(pkt)]


def test_set_mpls_under_two_vlan_tags_drops_the_packet(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    # skb->protocol is the inner tag's TPID there, and skb_mpls_update_lse() refuses anything but MPLS:
    # the action fails and the packet is dropped (kernel oracle, case 8469).
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x88a8),vlan(vid=5,pcp=0),encap(eth_type(0x8100),vlan(vid=6,pcp=0),"
        "encap(eth_type(0x8847),mpls(label=16,tc=0,ttl=64,bos=1)))",
        "3,set(mpls(label=7,tc=0,ttl=9,bos=1)),2",
    )
    pkt = (
        eth(type=0x88A8) / Dot1Q(vlan=5, type=0x8100) / Dot1Q(vlan=6, type=0x8847) / MPLS(label=16, s=1, ttl=64) / IP()
    )
    harness.send_packet(ports[0], pkt)
    assert harness.received(ports[2]) == [bytes(pkt)]
    assert harness.received(ports[1]) == []


def test_clone_isolates_changes(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "clone(set(ipv4(ttl=3)),2),3", pkt)
    assert Ether(harness.received(ports[1])[0])[IP].ttl == 3
    assert Ether(harness.received(ports[2])[0])[IP].ttl == 64


def test_sample_always(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "sample(sample=100.0%,actions(2)),3", pkt)
    harness.verify_packet(pkt, ports[1])
    harness.verify_packet(pkt, ports[2])


def test_sample_never(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "sample(sample=0.0%,actions(2)),3", pkt)
    harness.verify_packet(pkt, ports[2])
    harness.verify_no_other_packets()


@pytest.mark.parametrize(("size", "port"), [(59, 2), (60, 3), (1000, 3)])
def test_check_pkt_len(dp: Datapath, ports: list[Port], harness: PacketHarness, size: int, port: int) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, f"check_pkt_len(size={size},gt(2),le(3))", pkt)
    harness.verify_packet(pkt, ports[port - 1])
    harness.verify_no_other_packets()


@pytest.mark.parametrize(("ttl", "port"), [(64, 2), (1, 3)])
def test_dec_ttl(dp: Datapath, ports: list[Port], harness: PacketHarness, ttl: int, port: int) -> None:
    pkt = udp4(ttl=ttl)
    send_through(dp, harness, ports, "dec_ttl(le_1(3)),2", pkt)
    got = harness.received(ports[port - 1])
    assert len(got) == 1
    if port == 2:
        assert Ether(got[0])[IP].ttl == ttl - 1
    harness.verify_no_other_packets()


def test_recirc_relooks_up_with_recirc_id(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "recirc(0x5)")
    dp.add_flow("recirc_id(0x5),in_port(1),eth(),eth_type(0x0800),ipv4()", "3")
    pkt = udp4()
    harness.send_packet(ports[0], pkt)
    harness.verify_packet(pkt, ports[2])
    harness.verify_no_other_packets()


def test_recirc_miss_reports_recirc_id(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "recirc(0x7)")
    harness.send_packet(ports[0], udp4())
    up = harness.expect_miss(listener)
    assert str(up.key).startswith("recirc_id(0x7),")


def test_userspace_then_output(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    pid = dp.vport(1).info().upcall_pids[0]
    pkt = udp4()
    send_through(dp, harness, ports, f"userspace(pid={pid},userdata(aabbccdd)),2", pkt)
    harness.verify_packet(pkt, ports[1])
    ups = listener.receive(timeout=1.0)
    assert [(u.kind, u.userdata) for u in ups] == [(UpcallKind.ACTION, bytes.fromhex("aabbccdd"))]


def test_execute_outputs_without_touching_flow_stats(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow(IN1, "3")
    pkt = udp4()
    dp.execute(bytes(pkt), "2", key="in_port(1)")
    harness.verify_packet(pkt, ports[1])
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == 0
    assert dp.stats().hit == 0


def test_execute_set_then_output(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    dp.execute(bytes(pkt), "set(ipv4(ttl=3)),2", key="in_port(1)")
    assert Ether(harness.received(ports[1])[0])[IP].ttl == 3


def test_execute_rejects_runt_packet(dp: Datapath, ports: list[Port]) -> None:
    from odp import InvalidArgument

    with pytest.raises(InvalidArgument):
        dp.execute(b"\x00" * 10, "2", key="in_port(1)")


@pytest.mark.parametrize(
    "actions",
    [
        "set(tcp(dst=80)),2",  # the flow is UDP
        "set(tunnel(tun_id=0x1,ttl=64)),2",  # no tunnel destination
        "push_vlan(tpid=0x1234,vid=1,pcp=0),2",
    ],
)
def test_invalid_actions_are_rejected(dp: Datapath, ports: list[Port], actions: str) -> None:
    with pytest.raises(InvalidFlow):
        dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp()", actions)
    assert dp.flows() == []


def test_nested_lists_start_from_the_flows_mac_proto(dp: Datapath, ports: list[Port]) -> None:
    # __ovs_nla_copy_actions recomputes mac_proto from the flow key for every nested list (clone,
    # sample, check_pkt_len, dec_ttl): an L2 action in a clone is checked against the flow's
    # Ethernet header, not against what the actions before it did (kernel oracle, cases 385 and 5047).
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        "add_mpls(label=100,tc=3,ttl=64,bos=1,eth_type=0x8847),clone(push_vlan(vid=5,pcp=0))",
    )
    with pytest.raises(InvalidFlow):
        dp.add_flow(
            "in_port(1),eth_type(0x0800),ipv4()",
            "push_eth(src=02:00:00:00:00:aa,dst=02:00:00:00:00:bb),clone(push_vlan(vid=5,pcp=0),2)",
        )
    assert len(dp.flows()) == 1


def test_pop_eth_then_push_eth(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "pop_eth,push_eth(src=02:00:00:00:00:aa,dst=02:00:00:00:00:bb),2", pkt)
    exp = pkt.copy()  # type: ignore[attr-defined]
    exp[Ether].src, exp[Ether].dst = "02:00:00:00:00:aa", "02:00:00:00:00:bb"
    harness.verify_packet(exp, ports[1])


def test_hash_then_recirc_matches_dp_hash(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "hash(l4(0)),recirc(0x9)")
    dp.add_flow("recirc_id(0x9),dp_hash(0/0x0),in_port(1),eth(),eth_type(0x0800),ipv4()", "3")
    pkt = udp4()
    harness.send_packet(ports[0], pkt)
    harness.verify_packet(pkt, ports[2])


def test_hash_l4_covers_the_vlan_tag(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    # skb_get_hash()'s dissector hashes the first VLAN tag: frames that differ only in it hash apart
    # (the values are seeded at random at boot; which frames share one is not). Kernel oracle 3174, 4893.
    dp.add_flow(
        "recirc_id(0),in_port(1),eth(),eth_type(0x8100),vlan(vid=5/0,pcp=0/0),encap(eth_type(0x0800),ipv4())",
        "hash(l4(0)),recirc(0x9)",
    )
    hashes = []
    for vid, pcp in ((5, 0), (6, 0), (5, 3), (5, 0)):
        harness.send_packet(ports[0], eth() / Dot1Q(vlan=vid, prio=pcp) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP())
        up = harness.expect_miss(listener, in_port=1)
        (dp_hash,) = [a for a in up.key.attrs if a.NAME == "dp_hash"]
        hashes.append(str(dp_hash))
    assert hashes[0] == hashes[3] and len(set(hashes)) == 3, hashes


def test_ct_clear_then_output(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "ct_clear,2", pkt)
    harness.verify_packet(pkt, ports[1])


def test_meter_that_does_not_exist_lets_packets_pass(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    pkt = udp4()
    send_through(dp, harness, ports, "meter(7),2", pkt)
    harness.verify_packet(pkt, ports[1])


def test_set_skb_mark_is_seen_by_recirculated_lookup(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "set(skb_mark(0x2a)),recirc(0x3)")
    dp.add_flow("recirc_id(0x3),skb_mark(0x2a),in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    pkt = udp4()
    harness.send_packet(ports[0], pkt)
    harness.verify_packet(pkt, ports[1])
    harness.verify_no_other_packets()


def test_output_to_missing_port_is_silently_dropped(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    send_through(dp, harness, ports, "9,2", udp4())
    harness.verify_packet(udp4(), ports[1])
    harness.verify_no_other_packets()


def test_userspace_action_via_execute(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    pid = dp.vport(1).info().upcall_pids[0]
    dp.execute(bytes(udp4()), f"userspace(pid={pid},userdata(0a0b0c0d))", key="in_port(1)")
    ups = listener.receive(timeout=1.0)
    assert [u.userdata for u in ups] == [bytes.fromhex("0a0b0c0d")]
