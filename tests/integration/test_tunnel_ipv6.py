"""VXLAN and Geneve over an IPv6 underlay: tunnel(ipv6_src=...,ipv6_dst=...) in set
and in match, encapsulated frames compared with the kernel's, and the UDP checksum
rule of each device (VXLAN takes zero IPv6 UDP checksums, Geneve does not).  GRE has
no IPv6 underlay through OVS: its vport is an IPv4 gretap device."""

from __future__ import annotations

import struct

import pytest
from packets import udp4
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from odp.datapath import Datapath
from odp.testing import Mask, PacketHarness, Port, Topology

LOCAL6, PEER6, PEER_MAC = "2001:db8::1", "2001:db8::2", "02:00:00:00:99:99"
PORTS = {"vxlan": 4789, "geneve": 6081}


def tunnel_header(kind: str, vni: int, opts: bytes = b"") -> bytes:
    if kind == "vxlan":
        return struct.pack("!II", 0x08000000, vni << 8)
    return struct.pack("!BBHI", len(opts) // 4, 0, 0x6558, vni << 8) + opts


@pytest.fixture(params=["vxlan", "geneve"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def underlay6(topology: Topology, harness: PacketHarness) -> Port:
    port = topology.add_underlay(LOCAL6, PEER6, PEER_MAC)
    harness.register(port)
    return port


@pytest.fixture
def tnl(dp: Datapath, ports: list[Port], underlay6: Port, kind: str) -> int:
    return dp.add_vport(f"odp{kind[:3]}6", kind, dst_port=PORTS[kind]).port_no


def test_encapsulation_over_ipv6(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay6: Port, tnl: int, kind: str
) -> None:
    opts = struct.pack("!HBB", 0x102, 0x01, 1) + b"\xa1\xb2\xc3\xd4" if kind == "geneve" else b""
    geneve = ",geneve({class=0x102,type=0x1,len=4,0xa1b2c3d4})" if kind == "geneve" else ""
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x5,ipv6_dst={PEER6},tos=0x20,ttl=64{geneve},flags(df|key))),{tnl}",
    )
    inner = udp4()
    harness.send_packet(ports[0], inner)
    # DF means nothing over IPv6; the traffic class is the metadata's TOS.
    expected = (
        Ether(dst=PEER_MAC)
        / IPv6(src=LOCAL6, dst=PEER6, hlim=64, tc=0x20)
        / UDP(dport=PORTS[kind], chksum=0)
        / Raw(tunnel_header(kind, 5, opts) + bytes(inner))  # type: ignore[call-overload]
    )
    harness.verify_packet(Mask(expected).ignore("Ether", "src").ignore("UDP", "sport"), underlay6)
    harness.verify_no_other_packets()


def test_decapsulation_over_ipv6(dp: Datapath, harness: PacketHarness, underlay6: Port, tnl: int, kind: str) -> None:
    inner = udp4()
    frame = (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / IPv6(src=PEER6, dst=LOCAL6, hlim=63)
        / UDP(sport=5555, dport=PORTS[kind])  # scapy fills in the checksum
        / Raw(tunnel_header(kind, 7) + bytes(inner))  # type: ignore[call-overload]
    )
    with dp.listen() as listener:
        harness.send_packet(underlay6, frame)
        up = harness.expect_miss(listener, in_port=tnl)
    assert up.packet == bytes(inner)
    assert (
        f"tunnel(tun_id=0x7,ipv6_src={PEER6},ipv6_dst={LOCAL6},ttl=63,tp_src=5555,tp_dst={PORTS[kind]},"
        "flags(csum|key))," in str(up.key)
    )


def test_zero_udp_checksum_over_ipv6(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay6: Port, tnl: int, kind: str
) -> None:
    # VXLAN's socket takes zero IPv6 UDP checksums (VXLAN_F_UDP_ZERO_CSUM6_RX); Geneve's does not.
    dp.add_flow(
        f"tunnel(tun_id=0x7,ipv6_src={PEER6},ipv6_dst={LOCAL6},flags(+key)),in_port({tnl}),eth(),"
        "eth_type(0x0800),ipv4()",
        "2",
    )
    inner = udp4()
    frame = (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / IPv6(src=PEER6, dst=LOCAL6, hlim=63)
        / UDP(sport=5555, dport=PORTS[kind], chksum=0)
        / Raw(tunnel_header(kind, 7) + bytes(inner))  # type: ignore[call-overload]
    )
    harness.send_packet(underlay6, frame)
    if kind == "vxlan":
        harness.verify_packet(inner, ports[1])
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == (1 if kind == "vxlan" else 0)
