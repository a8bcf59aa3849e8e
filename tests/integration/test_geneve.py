"""Geneve vports: encapsulation with options from set(tunnel(...,geneve(...))) + output,
decapsulation into misses whose tunnel key carries the options, option matches that
must and must not hit, and the driver's drops and counters."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from packets import udp4
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from odp.datapath import Datapath, UpcallListener
from odp.testing import Mask, PacketHarness, Port, Topology

LOCAL, PEER, PEER_MAC = "192.0.2.1", "192.0.2.2", "02:00:00:00:99:99"
GENEVE_PORT = 6081

#: Two options: class 0x102 type 0x80 (critical) with 4 data bytes, class 0xffff
#: type 0x1 with 8; as they appear on the wire (length in 4-byte words).
OPT_A = struct.pack("!HBB", 0x102, 0x80, 1) + bytes.fromhex("a1b2c3d4")
OPT_B = struct.pack("!HBB", 0xFFFF, 0x01, 2) + bytes.fromhex("0102030405060708")
OPTS_TEXT = "geneve({class=0x102,type=0x80,len=4,0xa1b2c3d4}{class=0xffff,type=0x1,len=8,0x102030405060708})"


def geneve_header(vni: int, opts: bytes = b"", *, bits: int = 0, proto: int = 0x6558, ver: int = 0) -> bytes:
    return struct.pack("!BBHI", ver << 6 | len(opts) // 4, bits, proto, vni << 8) + opts


@pytest.fixture
def underlay(topology: Topology, harness: PacketHarness) -> Port:
    port = topology.add_underlay(LOCAL, PEER, PEER_MAC)
    harness.register(port)
    return port


@pytest.fixture
def gnv(dp: Datapath, ports: list[Port], underlay: Port) -> int:
    return dp.add_vport("odpgnv", "geneve", dst_port=GENEVE_PORT).port_no


@pytest.fixture
def gnv_listener(dp: Datapath, gnv: int) -> Iterator[UpcallListener]:
    with dp.listen() as lst:
        yield lst


def outer(inner: object, header: bytes, *, sport: int = 5555, ttl: int = 63, tos: int = 0) -> object:
    return (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=PEER, dst=LOCAL, ttl=ttl, tos=tos)
        / UDP(sport=sport, dport=GENEVE_PORT, chksum=0)
        / Raw(header + bytes(inner))  # type: ignore[call-overload]
    )


def expected_outer(inner: object, header: bytes, *, ttl: int = 64, flags: int = 0) -> Mask:
    expected = (
        Ether(dst=PEER_MAC)
        / IP(src=LOCAL, dst=PEER, ttl=ttl, flags=flags)
        / UDP(dport=GENEVE_PORT, chksum=0)
        / Raw(header + bytes(inner))  # type: ignore[call-overload]
    )
    return Mask(expected).ignore("Ether", "src").ignore("IP", "id").ignore("IP", "chksum").ignore("UDP", "sport")


def test_encapsulation_with_options(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,{OPTS_TEXT},flags(key))),{gnv}",
    )
    inner = udp4()
    harness.send_packet(ports[0], inner)
    # The C bit: option A's type has the critical bit.
    harness.verify_packet(expected_outer(inner, geneve_header(5, OPT_A + OPT_B, bits=0x40)), underlay)
    harness.verify_no_other_packets()


def test_encapsulation_without_options_oam_df_csum(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    # tp_dst in the metadata is not used: the Geneve device sends to its own port.
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x123456,dst={PEER},ttl=9,tp_dst=4790,flags(oam|df|csum|key))),{gnv}",
    )
    inner = udp4()
    harness.send_packet(ports[0], inner)
    got = Ether(harness.received(underlay)[0])
    assert got[IP].ttl == 9
    assert got[IP].flags == "DF"
    assert got[UDP].dport == GENEVE_PORT
    assert got[UDP].chksum != 0
    assert bytes(got[UDP].payload) == geneve_header(0x123456, bits=0x80) + bytes(inner)


def test_encapsulation_with_a_non_critical_option(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,geneve({{class=0xffff,type=0x1,len=8,0x102030405060708}})"
        f",flags(key))),{gnv}",
    )
    inner = udp4()
    harness.send_packet(ports[0], inner)
    harness.verify_packet(expected_outer(inner, geneve_header(5, OPT_B)), underlay)


def test_output_to_geneve_without_tunnel_is_dropped_and_counted(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"{gnv}")
    before = dp.vport(gnv).stats()
    harness.send_packet(ports[0], udp4())
    harness.verify_no_other_packets()
    after = dp.vport(gnv).stats()
    # geneve_xmit() counts tx_dropped; on the kernel the host's own IPv6 traffic
    # through the device (no metadata either) can add to it meanwhile.
    assert after.tx_packets == before.tx_packets
    assert after.tx_dropped - before.tx_dropped >= 1


def test_decapsulation_miss_has_options(
    dp: Datapath, harness: PacketHarness, underlay: Port, gnv: int, gnv_listener: UpcallListener
) -> None:
    inner = udp4()
    harness.send_packet(underlay, outer(inner, geneve_header(7, OPT_A + OPT_B, bits=0x40)))
    up = harness.expect_miss(gnv_listener, in_port=gnv)
    assert up.packet == bytes(inner)
    text = str(up.key)
    assert (
        f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},ttl=63,tp_src=5555,tp_dst={GENEVE_PORT},{OPTS_TEXT},flags(key)),"
        in text
    )


def test_decapsulation_without_options_reports_oam(
    dp: Datapath, harness: PacketHarness, underlay: Port, gnv: int, gnv_listener: UpcallListener
) -> None:
    harness.send_packet(underlay, outer(udp4(), geneve_header(7, bits=0x80)))
    text = str(harness.expect_miss(gnv_listener, in_port=gnv).key)
    assert f"tp_dst={GENEVE_PORT},flags(oam|key))," in text
    assert "geneve(" not in text


@pytest.mark.parametrize(
    ("header", "counted"),
    [
        (geneve_header(7, ver=1), False),
        # 6.1 frees it uncounted (and so does the simulator); 6.12 counts it.
        (geneve_header(7, proto=0x1234), None),
        (geneve_header(7, proto=0x0800), True),
    ],
    ids=["version-1", "unknown-protocol", "ipv4-protocol"],
)
def test_bad_geneve_header_is_dropped(
    dp: Datapath,
    harness: PacketHarness,
    underlay: Port,
    gnv: int,
    gnv_listener: UpcallListener,
    header: bytes,
    counted: bool | None,
) -> None:
    harness.send_packet(underlay, outer(udp4(), header))
    assert [u for u in gnv_listener.receive(timeout=0.3) if u.in_port == gnv] == []
    stats = dp.vport(gnv).stats()
    assert stats.rx_packets == 0
    if counted is not None:
        assert stats.rx_dropped == int(counted)


@pytest.mark.parametrize(
    ("flow_opts", "hits", "misses"),
    [
        ("geneve({class=0x102,type=0x80,len=4,0xa1b2c3d4})", ["a1b2c3d4"], ["a1b2c3d5", None]),
        ("geneve({class=0x102,type=0x80,len=4,0xa1b20000/0xffff0000})", ["a1b2c3d4", "a1b2ffff"], ["a1b3c3d4"]),
    ],
    ids=["exact", "masked"],
)
def test_option_match(
    dp: Datapath,
    ports: list[Port],
    harness: PacketHarness,
    underlay: Port,
    gnv: int,
    flow_opts: str,
    hits: list[str],
    misses: list[str | None],
) -> None:
    dp.add_flow(
        f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},{flow_opts},flags(+key)),in_port({gnv}),eth(),eth_type(0x0800),ipv4()",
        "2",
    )
    inner = udp4()
    for data in hits:
        opt = struct.pack("!HBB", 0x102, 0x80, 1) + bytes.fromhex(data)
        harness.send_packet(underlay, outer(inner, geneve_header(7, opt, bits=0x40)))
        harness.verify_packet(inner, ports[1])
    for data_or_none in misses:
        opt = b"" if data_or_none is None else struct.pack("!HBB", 0x102, 0x80, 1) + bytes.fromhex(data_or_none)
        harness.send_packet(underlay, outer(inner, geneve_header(7, opt, bits=0x40 if opt else 0)))
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == len(hits)


def test_tos_one_is_not_inherited(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    # Unlike GRE, a collect-metadata Geneve device takes TOS 1 literally: only the
    # inner packet's ECN (ECT(0) here) shows.
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x5,dst={PEER},tos=0x1,ttl=64)),{gnv}")
    harness.send_packet(ports[0], udp4(tos=0x2A))
    assert Ether(harness.received(underlay)[0])[IP].tos == 0x02


def test_userspace_reports_the_egress_tunnel_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gnv: int
) -> None:
    import re

    with dp.listen() as listener:
        pid = dp.vport(1).info().upcall_pids[0]
        # tp_dst=4790 is not what Geneve sends: the key reports the vport's port.
        dp.add_flow(
            "in_port(1),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64,tp_dst=4790,{OPTS_TEXT},flags(key))),"
            f"userspace(pid={pid},tunnel_out_port={gnv})",
        )
        harness.send_packet(ports[0], udp4())
        ups = listener.receive(timeout=1.0)
    assert len(ups) == 1 and ups[0].egress_tun_key is not None
    text = re.sub(r"tp_src=\d+", "tp_src=N", str(ups[0].egress_tun_key))
    assert (
        text == f"tunnel(tun_id=0x5,src={LOCAL},dst={PEER},ttl=64,tp_src=N,tp_dst={GENEVE_PORT},{OPTS_TEXT},flags(key))"
    )
