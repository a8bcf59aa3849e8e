"""Conntrack through ct(): the scenarios of the kernel's openvswitch.sh selftests
(connect, related ICMP) and of net/openvswitch/conntrack.c, on both backends.

Conntrack is per network namespace on the kernel, so each test starts and ends
with an empty table (``dp.flush_conntrack()``).  TCP segments carry consistent
sequence numbers: the kernel checks them (tcp_in_window()) where the simulator
does not (a documented limitation, see tests/unit/test_sim_conntrack.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from packets import IP1, IP2, eth
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror

from odp.datapath import Datapath, UpcallListener
from odp.records import ConntrackEntry
from odp.testing import PacketHarness, Port

IP3 = "10.0.0.3"


@pytest.fixture(autouse=True)
def empty_table(dp: Datapath) -> Iterator[None]:
    dp.flush_conntrack()
    yield
    dp.flush_conntrack()


def ours(dp: Datapath, zone: int | None = None) -> list[ConntrackEntry]:
    """The connections between the test addresses (a kernel may track others)."""
    return [e for e in dp.conntrack(zone) if e.orig.src in (IP1, IP2, IP3) and e.orig.dst in (IP1, IP2, IP3)]


def tcp(fwd: bool, flags: str, seq: int, ack: int = 0, payload: bytes = b"") -> Any:
    src, dst, sport, dport = (IP1, IP2, 40000, 80) if fwd else (IP2, IP1, 80, 40000)
    pkt = eth() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=8192)
    return pkt / payload if payload else pkt


def udp(fwd: bool, sport: int = 5000, dport: int = 53) -> Any:
    if fwd:
        return eth() / IP(src=IP1, dst=IP2) / UDP(sport=sport, dport=dport) / b"query"
    return eth() / IP(src=IP2, dst=IP1) / UDP(sport=dport, dport=sport) / b"answer"


def connect_flows(dp: Datapath) -> None:
    """openvswitch.sh's connect test: ct(commit) both ways, then by state."""
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit),recirc(0x1)")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(commit),recirc(0x1)")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+new),in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+est),in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+est),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+inv),eth(),eth_type(0x0800),ipv4()", "drop")


def test_tcp_handshake_data_and_teardown(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    connect_flows(dp)
    steps = [
        (True, "S", 1000, 0, b""),
        (False, "SA", 5000, 1001, b""),
        (True, "A", 1001, 5001, b""),
        (True, "PA", 1001, 5001, b"0123456789"),
        (False, "PA", 5001, 1011, b"hello"),
        (True, "FA", 1011, 5006, b""),
        (False, "FA", 5006, 1012, b""),
        (True, "A", 1012, 5007, b""),
    ]
    states = []
    for fwd, flags, seq, ack, payload in steps:
        pkt = tcp(fwd, flags, seq, ack, payload)
        harness.send_packet(p1 if fwd else p2, pkt)
        harness.verify_packet(pkt, p2 if fwd else p1)
        (entry,) = ours(dp)
        states.append(entry.tcp_state)
    harness.verify_no_other_packets()
    assert states == [
        "SYN_SENT", "SYN_RECV", "ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "FIN_WAIT", "LAST_ACK", "TIME_WAIT"
    ]  # fmt: skip
    (entry,) = ours(dp)
    assert entry.family == 4 and entry.zone == 0 and entry.seen_reply and entry.assured
    assert (entry.orig.src, entry.orig.dst, entry.orig.proto, entry.orig.src_port, entry.orig.dst_port) == (
        IP1, IP2, 6, 40000, 80,
    )  # fmt: skip
    assert (entry.reply.src, entry.reply.dst, entry.reply.src_port, entry.reply.dst_port) == (IP2, IP1, 80, 40000)
    assert 100 <= entry.timeout <= 120  # TIME_WAIT: 2 minutes


def test_reply_without_connection_is_invalid(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    connect_flows(dp)
    # A SYN/ACK nobody asked for: tcp_new() refuses it, +inv, dropped.
    harness.send_packet(p2, tcp(False, "SA", 5000, 1001))
    # Invalid flag combinations never make a connection (tcp_valid_flags).
    harness.send_packet(p1, tcp(True, "SF", 1000))
    harness.verify_no_other_packets()
    assert ours(dp) == []
    assert [f.stats.packets for f in dp.flows() if str(f.match).startswith("recirc_id(0x1),ct_state(+inv+trk)")] == [2]


def test_firewall_admits_only_established_replies(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit),2")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(),recirc(0x2)")
    dp.add_flow("recirc_id(0x2),ct_state(+trk+est),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")
    dp.add_flow("recirc_id(0x2),ct_state(-est),in_port(2),eth(),eth_type(0x0800),ipv4()", "drop")
    harness.send_packet(p2, udp(False))  # unsolicited: +new, not committed
    harness.verify_no_other_packets()
    assert ours(dp) == []
    harness.send_packet(p1, udp(True))
    harness.verify_packet(udp(True), p2)
    harness.send_packet(p2, udp(False))
    harness.verify_packet(udp(False), p1)
    harness.send_packet(p2, udp(False, sport=5001))  # another port: no connection
    harness.verify_no_other_packets()
    (entry,) = ours(dp)
    assert entry.orig.proto == 17 and (entry.orig.src_port, entry.orig.dst_port) == (5000, 53)
    assert entry.seen_reply and entry.tcp_state is None
    assert 20 <= entry.timeout <= 30  # replied within 2 s: still the unreplied timeout


def test_mark_and_labels(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, p3 = ports
    label = 0x0102030405060708090A0B0C0D0E0F10
    dp.add_flow(
        "recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"ct(commit,mark=0x2a/0xff,label={label:#x}/0xffffffffffffffffffffffffffffffff),recirc(0x3)",
    )
    dp.add_flow(f"recirc_id(0x3),ct_mark(0x2a),ct_label({label:#x}),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(),recirc(0x4)")
    dp.add_flow("recirc_id(0x4),ct_state(+rpl),ct_mark(0x2a),eth(),eth_type(0x0800),ipv4()", "3")
    harness.send_packet(p1, udp(True))
    harness.verify_packet(udp(True), p2)
    harness.send_packet(p2, udp(False))  # the reply sees the connection's mark
    harness.verify_packet(udp(False), p3)
    harness.verify_no_other_packets()
    (entry,) = ours(dp)
    assert (entry.mark, entry.labels) == (0x2A, label)


def test_zones_isolate_identical_tuples(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, p3 = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit,zone=1),ct(zone=2),recirc(0x5)")
    dp.add_flow("recirc_id(0x5),ct_state(+new),ct_zone(2),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0x5),ct_state(+est),ct_zone(2),eth(),eth_type(0x0800),ipv4()", "3")
    dp.add_flow("recirc_id(0),in_port(3),eth(),eth_type(0x0800),ipv4()", "ct(zone=1),recirc(0x6)")
    dp.add_flow("recirc_id(0x6),ct_state(+est+rpl),ct_zone(1),eth(),eth_type(0x0800),ipv4()", "1")
    for _ in range(2):
        harness.send_packet(p1, udp(True))
        harness.verify_packet(udp(True), p2)  # zone 2 never committed: +new both times
    harness.send_packet(p3, udp(False))
    harness.verify_packet(udp(False), p1)  # zone 1 knows it
    harness.verify_no_other_packets()
    assert [e.zone for e in ours(dp)] == [1]
    assert ours(dp, zone=2) == []
    dp.flush_conntrack(zone=2)
    assert len(ours(dp, zone=1)) == 1
    dp.flush_conntrack(zone=1)
    assert ours(dp) == []


def test_ct_clear_untracks(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit,mark=0x1/0x1),ct_clear,recirc(0x7)")
    dp.add_flow("recirc_id(0x7),ct_state(-trk),ct_mark(0),eth(),eth_type(0x0800),ipv4()", "2")
    harness.send_packet(p1, udp(True))
    harness.verify_packet(udp(True), p2)
    harness.verify_no_other_packets()
    assert len(ours(dp)) == 1  # ct_clear forgets the packet's state, not the connection


def test_icmp_error_is_related(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    connect_flows(dp)
    dp.add_flow("recirc_id(0x1),ct_state(+trk+rel),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")
    harness.send_packet(p1, udp(True))
    harness.verify_packet(udp(True), p2)
    inner = IPerror(src=IP1, dst=IP2, proto=17) / UDPerror(sport=5000, dport=53)
    error = eth(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(src=IP2, dst=IP1) / ICMP(type=3, code=3) / inner
    harness.send_packet(p2, error)
    harness.verify_packet(error, p1)
    # An error about a connection nobody has is invalid.
    stray = IPerror(src=IP1, dst=IP2, proto=17) / UDPerror(sport=5999, dport=53)
    harness.send_packet(p2, eth() / IP(src=IP2, dst=IP1) / ICMP(type=3, code=3) / stray)
    harness.verify_no_other_packets()


def test_icmp_echo_is_tracked(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    connect_flows(dp)
    ping = eth() / IP(src=IP1, dst=IP2) / ICMP(type=8, id=77, seq=1)
    pong = eth() / IP(src=IP2, dst=IP1) / ICMP(type=0, id=77, seq=1)
    harness.send_packet(p1, ping)
    harness.verify_packet(ping, p2)
    harness.send_packet(p2, pong)
    harness.verify_packet(pong, p1)
    harness.verify_no_other_packets()
    (entry,) = ours(dp)
    assert (entry.orig.proto, entry.orig.icmp_id, entry.orig.icmp_type, entry.reply.icmp_type) == (1, 77, 8, 0)
    assert 20 <= entry.timeout <= 30


def test_miss_key_after_ct_and_recirc(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    p1, p2, _ = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit,zone=5,mark=0x7/0xff),recirc(0x9)")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(zone=5),recirc(0x9)")
    harness.send_packet(p1, tcp(True, "S", 1000))
    first = harness.expect_miss(listener, "recirc_id(0x9)")
    harness.send_packet(p2, tcp(False, "SA", 5000, 1001))
    second = harness.expect_miss(listener, "recirc_id(0x9),in_port(2)")
    assert str(first.key) == (
        "recirc_id(0x9),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0),ct_state(new|trk),ct_zone(0x5),"
        "ct_mark(0x7),ct_label(0),ct_tuple4(src=10.0.0.1,dst=10.0.0.2,proto=6,tp_src=40000,tp_dst=80),"
        "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=40000,dst=80),tcp_flags(syn)"
    )
    assert str(second.key) == (
        "recirc_id(0x9),dp_hash(0),skb_priority(0),in_port(2),skb_mark(0),ct_state(est|rpl|trk),ct_zone(0x5),"
        "ct_mark(0x7),ct_label(0),ct_tuple4(src=10.0.0.1,dst=10.0.0.2,proto=6,tp_src=40000,tp_dst=80),"
        "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.0.0.2,dst=10.0.0.1,proto=6,tos=0,ttl=64,frag=no),tcp(src=80,dst=40000),tcp_flags(syn|ack)"
    )


VIP = "192.168.0.20"  # the address clients connect to, DNATed to IP2
SNAT_IP = "10.0.0.100"


def test_dnat_connect_and_replies_un_nated(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    """openvswitch.sh's nat_connect_v4: the client talks to a virtual address."""
    p1, p2, _ = ports
    dp.add_flow(
        f"recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(dst={VIP})",
        f"ct(commit,nat(dst={IP2})),recirc(0x1)",
    )
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(commit,nat),recirc(0x2)")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+dnat),in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0x2),ct_state(+trk+est+rpl),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")

    def seg(fwd: bool, flags: str, seq: int, ack: int = 0, virtual: bool = True) -> Any:
        server = VIP if virtual else IP2
        src, dst, sport, dport = (IP1, server, 40000, 80) if fwd else (server, IP1, 80, 40000)
        return eth() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=8192)

    for fwd, flags, seq, ack in ((True, "S", 1000, 0), (False, "SA", 5000, 1001), (True, "A", 1001, 5001)):
        if fwd:
            harness.send_packet(p1, seg(True, flags, seq, ack))
            harness.verify_packet(seg(True, flags, seq, ack, virtual=False), p2)
        else:
            harness.send_packet(p2, seg(False, flags, seq, ack, virtual=False))
            harness.verify_packet(seg(False, flags, seq, ack), p1)
    harness.verify_no_other_packets()
    (entry,) = ours_or_virtual(dp)
    assert (entry.orig.dst, entry.reply.src, entry.tcp_state) == (VIP, IP2, "ESTABLISHED")


def ours_or_virtual(dp: Datapath) -> list[ConntrackEntry]:
    addrs = (IP1, IP2, IP3, VIP, SNAT_IP)
    return [e for e in dp.conntrack() if e.orig.src in addrs and e.orig.dst in addrs]


def test_snat_keeps_a_port_in_range_and_un_nats_replies(
    dp: Datapath, ports: list[Port], harness: PacketHarness
) -> None:
    p1, p2, _ = ports
    dp.add_flow(
        "recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"ct(commit,nat(src={SNAT_IP}:4000-6000)),2",
    )
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(nat),recirc(0x2)")
    dp.add_flow("recirc_id(0x2),ct_state(+trk+est+rpl),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")
    harness.send_packet(p1, udp(True))  # source port 5000: in the range, unused: kept
    harness.verify_packet(eth() / IP(src=SNAT_IP, dst=IP2) / UDP(sport=5000, dport=53) / b"query", p2)
    harness.send_packet(p2, eth() / IP(src=IP2, dst=SNAT_IP) / UDP(sport=53, dport=5000) / b"answer")
    harness.verify_packet(udp(False), p1)
    harness.verify_no_other_packets()
    (entry,) = ours_or_virtual(dp)
    assert (entry.reply.dst, entry.reply.dst_port, entry.seen_reply) == (SNAT_IP, 5000, True)


def test_snat_moves_a_port_out_of_range_into_it(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    p1, p2, _ = ports
    dp.add_flow(
        "recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"ct(commit,nat(src={SNAT_IP}:2000-2010)),2",
    )
    harness.send_packet(p1, udp(True))
    (frame,) = harness.received(p2)
    out = eth() / IP(frame[14:])
    assert out[IP].src == SNAT_IP and 2000 <= out[UDP].sport <= 2010  # the kernel picks it at random
    fixed = eth() / IP(src=SNAT_IP, dst=IP2) / UDP(sport=out[UDP].sport, dport=53) / b"query"
    assert frame == bytes(fixed)  # checksums updated as if computed afresh
    (entry,) = ours_or_virtual(dp)
    assert entry.reply.dst_port == out[UDP].sport


def test_miss_key_after_dnat(dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener) -> None:
    p1, _, _ = ports
    dp.add_flow(
        f"recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(dst={VIP})",
        f"ct(commit,zone=3,nat(dst={IP2}:8080)),recirc(0x9)",
    )
    harness.send_packet(p1, eth() / IP(src=IP1, dst=VIP) / TCP(sport=40000, dport=80, flags="S", seq=1000, window=8192))
    up = harness.expect_miss(listener, "recirc_id(0x9)")
    assert str(up.key) == (
        "recirc_id(0x9),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0),ct_state(new|trk|snat|dnat),"
        "ct_zone(0x3),ct_mark(0),ct_label(0),ct_tuple4(src=10.0.0.1,dst=192.168.0.20,proto=6,tp_src=40000,tp_dst=80),"
        "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=40000,dst=8080),tcp_flags(syn)"
    )


@pytest.mark.parametrize(
    "flags, chosen",
    [("", ["10.0.0.106", "10.0.0.107", "10.0.0.107"]), (",persistent", ["10.0.0.102", "10.0.0.100", "10.0.0.105"])],
)
def test_snat_address_range_picks_by_hash(
    dp: Datapath, ports: list[Port], harness: PacketHarness, flags: str, chosen: list[str]
) -> None:
    """find_best_ips_proto(): jhash2 of the source (with the destination and zone
    unless persistent) picks the address, the same on every kernel and run."""
    p1, p2, _ = ports
    dp.add_flow(
        "recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"ct(commit,zone=4,nat(src=10.0.0.100-10.0.0.110{flags})),2",
    )
    got = []
    for src in ("10.0.0.1", "10.0.0.7", "10.0.0.9"):
        harness.send_packet(p1, eth() / IP(src=src, dst=IP2) / UDP(sport=5000, dport=53) / b"query")
        (frame,) = harness.received(p2)
        got.append((eth() / IP(frame[14:]))[IP].src)
    assert got == chosen
    dp.flush_conntrack(zone=4)


def test_icmp_error_about_a_snat_connection_is_translated(
    dp: Datapath, ports: list[Port], harness: PacketHarness
) -> None:
    """openvswitch.sh's nat_related_v4: the server's port-unreachable about a
    source-NATed datagram reaches the client with both headers translated back."""
    p1, p2, _ = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", f"ct(commit,nat(src={SNAT_IP})),2")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(nat),recirc(0x2)")
    dp.add_flow("recirc_id(0x2),ct_state(+trk+rel+rpl),in_port(2),eth(),eth_type(0x0800),ipv4()", "1")
    harness.send_packet(p1, udp(True))
    (natted,) = harness.received(p2)
    assert (eth() / IP(natted[14:]))[IP].src == SNAT_IP
    back = eth(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    error = back / IP(src=IP2, dst=SNAT_IP) / ICMP(type=3, code=3) / natted[14 : 14 + 28]
    harness.send_packet(p2, error)
    original = bytes(udp(True))[14 : 14 + 28]  # the client's own header and ports, checksums and all
    harness.verify_packet(back / IP(src=IP2, dst=IP1) / ICMP(type=3, code=3) / original, p1)
    harness.verify_no_other_packets()


def test_execute_key_conntrack_metadata_finds_the_connection(
    dp: Datapath, ports: list[Port], harness: PacketHarness
) -> None:
    """EXECUTE's key carries ct_state/ct_zone (as OVS sends them back after an
    upcall): a ct() in that zone then finds the connection without running the
    packet through conntrack again (ovs_ct_executed()), so the state stays."""
    p1, p2, p3 = ports
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(commit),2")
    dp.add_flow("recirc_id(0x4),ct_state(+new),eth(),eth_type(0x0800),ipv4()", "2")
    dp.add_flow("recirc_id(0x4),ct_state(+est),eth(),eth_type(0x0800),ipv4()", "3")
    harness.send_packet(p1, udp(True))
    harness.verify_packet(udp(True), p2)
    again = bytes(udp(True))
    dp.execute(again, "ct(),recirc(0x4)", key="in_port(1),ct_state(+trk+new),ct_zone(0)")
    harness.verify_packet(udp(True), p2)  # the key's +new kept: the connection was found
    dp.execute(again, "ct(),recirc(0x4)", key="in_port(1)")
    harness.verify_packet(udp(True), p2)  # looked up afresh: +new (no reply seen yet)
    dp.execute(bytes(udp(False)), "ct(),recirc(0x4)", key="in_port(2),ct_state(+trk+new),ct_zone(0)")
    harness.verify_packet(udp(False), p2)  # found (as the reply): a cached lookup leaves the key as given
    dp.execute(bytes(udp(False)), "ct(),recirc(0x4)", key="in_port(2)")
    harness.verify_packet(udp(False), p3)  # looked up afresh: the reply, +est
    harness.verify_no_other_packets()
