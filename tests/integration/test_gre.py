"""GRE vports (gretap with collect_md over IPv4): encapsulation with and without key and
checksum, TOS inheritance, decapsulation into misses with tunnel metadata, matching on
the key, and the drops of the GRE layer and the device."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from packets import udp4
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from odp.datapath import Datapath, UpcallListener
from odp.errors import ExistsError
from odp.testing import Mask, PacketHarness, Port, Topology

LOCAL, PEER, PEER_MAC = "192.0.2.1", "192.0.2.2", "02:00:00:00:99:99"
TEB = 0x6558


def gre_header(*, key: int | None = None, csum: bool = False, seq: int | None = None, proto: int = TEB) -> bytes:
    flags = (0x8000 if csum else 0) | (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    return (
        struct.pack("!HH", flags, proto)
        + (b"\0\0\0\0" if csum else b"")
        + (struct.pack("!I", key) if key is not None else b"")
        + (struct.pack("!I", seq) if seq is not None else b"")
    )


def with_checksum(gre_and_inner: bytes) -> bytes:
    from odp.sim.packet import checksum

    c = checksum(gre_and_inner)
    return gre_and_inner[:4] + struct.pack("!H", c) + gre_and_inner[6:]


@pytest.fixture
def underlay(topology: Topology, harness: PacketHarness) -> Port:
    port = topology.add_underlay(LOCAL, PEER, PEER_MAC)
    harness.register(port)
    return port


@pytest.fixture
def gre(dp: Datapath, ports: list[Port], underlay: Port) -> int:
    return dp.add_vport("odpgre", "gre").port_no


@pytest.fixture
def gre_listener(dp: Datapath, gre: int) -> Iterator[UpcallListener]:
    with dp.listen() as lst:
        yield lst


def outer(payload: bytes, *, ttl: int = 63, tos: int = 0) -> object:
    return (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=PEER, dst=LOCAL, ttl=ttl, tos=tos, proto=47)
        / Raw(payload)  # type: ignore[call-overload]
    )


def expected(payload: bytes, *, ttl: int = 64, flags: int = 0, tos: int = 0) -> Mask:
    pkt = Ether(dst=PEER_MAC) / IP(src=LOCAL, dst=PEER, ttl=ttl, flags=flags, tos=tos, proto=47) / Raw(payload)  # type: ignore[call-overload]
    return Mask(pkt).ignore("Ether", "src").ignore("IP", "id").ignore("IP", "chksum")


def test_encapsulation_with_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x12345678,dst={PEER},ttl=64)),{gre}")
    inner = udp4()
    harness.send_packet(ports[0], inner)
    harness.verify_packet(expected(gre_header(key=0x12345678) + bytes(inner)), underlay)
    harness.verify_no_other_packets()


def test_encapsulation_with_checksum_and_df_without_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(dst={PEER},ttl=9,flags(df|csum))),{gre}")
    inner = udp4()
    harness.send_packet(ports[0], inner)
    payload = with_checksum(gre_header(csum=True) + bytes(inner))
    # The checksum itself is masked: the kernel leaves it to the device (CHECKSUM_PARTIAL),
    # and a veth hands the frame over before anything fills it in.
    harness.verify_packet(expected(payload, ttl=9, flags=2).ignore_bytes(14 + 20 + 4, 2), underlay)


@pytest.mark.parametrize(("tos", "outer_tos"), [(1, 0x2A), (0x40, 0x42)], ids=["inherit", "given"])
def test_tos_inheritance(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int, tos: int, outer_tos: int
) -> None:
    # TOS 1 takes the inner packet's DSCP and ECN (ECT(0) here); otherwise only its ECN.
    dp.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x1,dst={PEER},tos={tos:#x},ttl=64)),{gre}"
    )
    inner = udp4(tos=0x2A)
    harness.send_packet(ports[0], inner)
    harness.verify_packet(expected(gre_header(key=1) + bytes(inner), tos=outer_tos), underlay)


def test_output_to_gre_without_tunnel_is_dropped(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int
) -> None:
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", f"{gre}")
    before = dp.vport(gre).stats()
    harness.send_packet(ports[0], udp4())
    harness.verify_no_other_packets()
    after = dp.vport(gre).stats()
    assert after.tx_packets == before.tx_packets
    assert after.tx_dropped - before.tx_dropped >= 1  # the host's own traffic may add to it on the kernel


def test_decapsulation_with_key(
    dp: Datapath, harness: PacketHarness, underlay: Port, gre: int, gre_listener: UpcallListener
) -> None:
    inner = udp4()
    harness.send_packet(underlay, outer(gre_header(key=0x7) + bytes(inner)))
    up = harness.expect_miss(gre_listener, in_port=gre)
    assert up.packet == bytes(inner)
    assert f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},ttl=63,flags(key))," in str(up.key)


def test_decapsulation_without_key_and_with_sequence_number(
    dp: Datapath, harness: PacketHarness, underlay: Port, gre: int, gre_listener: UpcallListener
) -> None:
    inner = udp4()
    harness.send_packet(underlay, outer(gre_header(seq=99) + bytes(inner), tos=0x20))
    up = harness.expect_miss(gre_listener, in_port=gre)
    assert up.packet == bytes(inner)
    assert f"tunnel(src={PEER},dst={LOCAL},tos=0x20,ttl=63,flags(0))," in str(up.key)


@pytest.mark.parametrize(
    ("payload_header", "errors"),
    [
        (gre_header(key=7, csum=True), 1),  # the device's receive flags have no checksum bit
        (gre_header(key=7, proto=0x0800), 0),
        (struct.pack("!HH", 0x0001, TEB), 0),  # version 1
        (struct.pack("!HH", 0x4000, TEB), 0),  # routing
    ],
    ids=["checksummed", "ipv4-protocol", "version-1", "routing"],
)
def test_dropped_gre_packets(
    dp: Datapath,
    harness: PacketHarness,
    underlay: Port,
    gre: int,
    gre_listener: UpcallListener,
    payload_header: bytes,
    errors: int,
) -> None:
    payload = payload_header + bytes(udp4())
    if payload_header[0] & 0x80:
        payload = with_checksum(payload)
    harness.send_packet(underlay, outer(payload))
    assert [u for u in gre_listener.receive(timeout=0.3) if u.in_port == gre] == []
    stats = dp.vport(gre).stats()
    assert (stats.rx_packets, stats.rx_errors) == (0, errors)


def test_match_on_key(dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int) -> None:
    dp.add_flow(
        f"tunnel(tun_id=0x7,src={PEER},dst={LOCAL},flags(+key)),in_port({gre}),eth(),eth_type(0x0800),ipv4()", "2"
    )
    inner = udp4()
    harness.send_packet(underlay, outer(gre_header(key=7) + bytes(inner)))
    harness.send_packet(underlay, outer(gre_header(key=8) + bytes(inner)))
    harness.send_packet(underlay, outer(gre_header() + bytes(inner)))
    harness.verify_packet(inner, ports[1])
    harness.verify_no_other_packets()
    assert dp.flows()[0].stats.packets == 1


def test_one_gre_vport_per_host(dp: Datapath, gre: int) -> None:
    with pytest.raises(ExistsError):
        dp.add_vport("odpgre2", "gre")
    assert [v.name for v in dp.vports()].count("odpgre2") == 0


def test_userspace_reports_the_egress_tunnel_key(
    dp: Datapath, ports: list[Port], harness: PacketHarness, underlay: Port, gre: int
) -> None:
    with dp.listen() as listener:
        pid = dp.vport(1).info().upcall_pids[0]
        dp.add_flow(
            "in_port(1),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x5,dst={PEER},ttl=64)),userspace(pid={pid},tunnel_out_port={gre})",
        )
        harness.send_packet(ports[0], udp4())
        ups = listener.receive(timeout=1.0)
    assert len(ups) == 1
    # gre_fill_metadata_dst() fills in only the source address.
    assert str(ups[0].egress_tun_key) == f"tunnel(tun_id=0x5,src={LOCAL},dst={PEER},ttl=64,flags(key))"
