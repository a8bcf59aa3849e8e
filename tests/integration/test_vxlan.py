"""VXLAN vports: encapsulation from set(tunnel) + output, decapsulation into misses
with tunnel metadata, matching on tunnel fields, and the kernel's drops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from packets import udp4
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from odp.datapath import Datapath, UpcallListener
from odp.testing import Mask, PacketHarness, Port, Topology

LOCAL, PEER, PEER_MAC = "192.0.2.1", "192.0.2.2", "02:00:00:00:99:99"


@pytest.fixture
def underlay(topology: Topology, harness: PacketHarness) -> Port:
    port = topology.add_underlay(LOCAL, PEER, PEER_MAC)
    harness.register(port)
    return port


@pytest.fixture
def vx(dp: Datapath, ports: list[Port], underlay: Port) -> int:
    return dp.add_vport("odpvx", "vxlan", dst_port=4789).port_no


@pytest.fixture
def vx_listener(dp: Datapath, vx: int) -> Iterator[UpcallListener]:
    with dp.listen() as lst:
        yield lst


def outer(inner: object, vni: int, *, sport: int = 5555, ttl: int = 63, tos: int = 0, flags: int = 0x08) -> object:
    return (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=PEER, dst=LOCAL, ttl=ttl, tos=tos)
        / UDP(sport=sport, dport=4789, chksum=0)
        / VXLAN(vni=vni, flags=flags, NextProtocol=0)
        / inner
    )


def test_encapsulation(dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int) -> None:
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,flags(key))),{vx}",
    )
    inner = udp4()
    harness.send_packet(ports[0], inner)
    expected = (
        Ether(dst=PEER_MAC)
        / IP(src=LOCAL, dst=PEER, ttl=64, flags=0)
        / UDP(dport=4789, chksum=0)
        / VXLAN(vni=5, flags=0x08, NextProtocol=0)
        / inner
    )
    mask = Mask(expected).ignore("Ether", "src").ignore("IP", "id").ignore("IP", "chksum").ignore("UDP", "sport")
    frame = harness.verify_packet(mask, underlay)
    assert 32768 <= Ether(frame)[UDP].sport <= 60999
    harness.verify_no_other_packets()


def test_encapsulation_with_tp_dst_and_csum(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int
) -> None:
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x1234,dst={PEER},ttl=9,tp_dst=4790,flags(df|csum|key))),{vx}",
    )
    harness.send_packet(ports[0], udp4())
    got = Ether(harness.received(underlay)[0])
    assert got[IP].ttl == 9
    assert got[IP].flags == "DF"
    assert got[UDP].dport == 4790
    assert got[UDP].chksum != 0
    assert got[VXLAN].vni == 0x1234


def test_output_to_vxlan_without_tunnel_is_dropped(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"{vx}")
    harness.send_packet(ports[0], udp4())
    harness.verify_no_other_packets()


def test_decapsulation_miss_has_tunnel_metadata(
    dp: Datapath, harness: PacketHarness, underlay: Port, vx: int, vx_listener: UpcallListener
) -> None:
    inner = udp4()
    harness.send_packet(underlay, outer(inner, 7))
    up = harness.expect_miss(vx_listener, in_port=vx)
    assert up.packet == bytes(inner)
    text = str(up.key)
    assert f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},ttl=63,tp_src=5555,tp_dst=4789,flags(key))," in text
    assert text.startswith("recirc_id(0),dp_hash(0),skb_priority(0),tunnel(")


def test_decapsulation_reports_tos(
    dp: Datapath, harness: PacketHarness, underlay: Port, vx: int, vx_listener: UpcallListener
) -> None:
    harness.send_packet(underlay, outer(udp4(), 7, tos=0x28))
    assert ",tos=0x28," in str(harness.expect_miss(vx_listener, in_port=vx).key)


@pytest.mark.parametrize("flags", [0x00, 0x0C, 0x88], ids=["no-I-flag", "reserved-bit", "reserved-high-bit"])
def test_bad_vxlan_header_is_dropped(
    dp: Datapath, harness: PacketHarness, underlay: Port, vx: int, vx_listener: UpcallListener, flags: int
) -> None:
    harness.send_packet(underlay, outer(udp4(), 7, flags=flags))
    assert [u for u in vx_listener.receive(timeout=0.3) if u.in_port == vx] == []


def test_match_on_tunnel_fields(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int
) -> None:
    dp.add_flow(
        f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},flags(+key)),in_port({vx}),eth(),eth_type(0x0800),ipv4()", "2"
    )
    inner = udp4()
    harness.send_packet(underlay, outer(inner, 7))
    harness.send_packet(underlay, outer(inner, 8))
    harness.verify_packet(inner, ports[1])
    harness.verify_no_other_packets()


@pytest.mark.sim_only("needs two hosts on one underlay; the kernel topology has a single network namespace")
def test_two_hosts_end_to_end(odp_backend: str) -> None:
    from odp.datapath import Connection
    from odp.sim import Network
    from odp.sim.datapath import SimBackend
    from odp.testing.plugin import sim_kernel

    net = Network()
    a, b = net.host("a", "172.16.0.1"), net.host("b", "172.16.0.2")
    dp_a = Connection(SimBackend(a, kernel=sim_kernel())).create_datapath("dpa")
    dp_b = Connection(SimBackend(b, kernel=sim_kernel())).create_datapath("dpb")
    a.add_interface("veth-a")
    b.add_interface("veth-b")
    pa = dp_a.add_vport("veth-a").port_no
    va = dp_a.add_vport("vx", "vxlan").port_no
    pb = dp_b.add_vport("veth-b").port_no
    vb = dp_b.add_vport("vx", "vxlan").port_no
    dp_a.add_flow(
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64)),{va}"
    )
    dp_b.add_flow(
        f"tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2,flags(+key)),in_port({vb}),eth(),eth_type(0x0800),ipv4()",
        f"{pb}",
    )
    inner = bytes(udp4())
    a.interface("veth-a").inject(inner)
    assert b.interface("veth-b").receive() == [inner]
    assert dp_b.flows()[0].stats.packets == 1


# ---------------------------------------------------------------------------
# VXLAN GBP (the vport's OVS_VXLAN_EXT_GBP extension)
# ---------------------------------------------------------------------------

GBP_SET = "vxlan(gbp(id=10,flags=0x40))"  # policy 10, the D (don't learn) bit


@pytest.fixture
def vx_gbp(dp: Datapath, ports: list[Port], underlay: Port) -> int:
    return dp.add_vport("odpvx", "vxlan", dst_port=4789, extensions=["gbp"]).port_no


def test_gbp_extension_is_reported(dp: Datapath, vx_gbp: int) -> None:
    info = dp.vport(vx_gbp).info()
    assert info.extensions == ("gbp",)
    assert str(info).endswith("(type: vxlan, dst_port=4789, gbp)")


def test_gbp_encapsulation(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx_gbp: int
) -> None:
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,{GBP_SET})),{vx_gbp}"
    )
    harness.send_packet(ports[0], udp4())
    got = bytes(Ether(harness.received(underlay)[0])[UDP].payload)
    # G bit + I bit, D bit, policy id 10; then the VNI.
    assert got[:8] == bytes.fromhex("8840000a00000500")


def test_gbp_metadata_is_not_sent_without_the_extension(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,{GBP_SET})),{vx}")
    harness.send_packet(ports[0], udp4())
    assert bytes(Ether(harness.received(underlay)[0])[UDP].payload)[:8] == bytes.fromhex("0800000000000500")


def test_gbp_decapsulation(dp: Datapath, harness: PacketHarness, underlay: Port, vx_gbp: int) -> None:
    inner = udp4()
    frame = outer(inner, 7, flags=0x88)
    # The policy word: D bit (0x40 in the second byte), policy id 0x1234.
    raw = bytearray(bytes(frame))
    raw[42 + 1], raw[42 + 2], raw[42 + 3] = 0x40, 0x12, 0x34
    with dp.listen() as listener:
        harness.send_packet(underlay, bytes(raw))
        up = harness.expect_miss(listener, in_port=vx_gbp)
    assert up.packet == bytes(inner)
    assert ",vxlan(gbp(id=4660,flags=0x40)),flags(key))," in str(up.key)


def test_g_bit_without_the_extension_is_dropped(
    dp: Datapath, harness: PacketHarness, underlay: Port, vx: int, vx_listener: UpcallListener
) -> None:
    harness.send_packet(underlay, outer(udp4(), 7, flags=0x88))
    assert [u for u in vx_listener.receive(timeout=0.3) if u.in_port == vx] == []


def test_userspace_reports_the_egress_tunnel_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, vx: int
) -> None:
    import re

    with dp.listen() as listener:
        pid = dp.vport(1).info().upcall_pids[0]
        dp.add_flow(
            "in_port(1),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,tp_dst=4790,flags(key))),userspace(pid={pid},tunnel_out_port={vx})",
        )
        harness.send_packet(ports[0], udp4())
        ups = listener.receive(timeout=1.0)
    assert len(ups) == 1
    # vxlan_fill_metadata_dst(): the route's source, the source port, the metadata's tp_dst.
    text = re.sub(r"tp_src=\d+", "tp_src=N", str(ups[0].egress_tun_key))
    assert text == f"tunnel(tun_id=0x5,src={LOCAL},dst={PEER},ttl=64,tp_src=N,tp_dst=4790,flags(key))"
