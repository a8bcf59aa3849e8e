"""VXLAN encapsulation/decapsulation of the simulator (odp.sim.vport_vxlan), checked with scapy."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from odp.constants import TunnelFlag
from odp.sim import vport_vxlan as vx
from odp.sim.packet import TunnelInfo, checksum, ones_sum
from odp.sim.vport_vxlan import DecapDrop, decapsulate, encapsulate, fill_metadata_dst, source_port

LOCAL = int(ipaddress.IPv4Address("192.168.0.1"))
REMOTE = int(ipaddress.IPv4Address("192.168.0.2"))
HOST_MAC = 0x020000000001
NEXT_MAC = 0x020000000002
VXLAN_DEV_MAC = 0x0A0000000099
PORT = 4789


def inner_tcp(tos: int = 0, sport: int = 1234) -> bytes:
    return bytes(
        Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2", tos=tos)
        / TCP(sport=sport, dport=80)
        / b"payload"
    )


def tun(**kw: Any) -> TunnelInfo:
    base: dict[str, Any] = dict(
        tun_id=0x123456, ipv4_src=LOCAL, ipv4_dst=REMOTE, ttl=0, flags=int(TunnelFlag.KEY), egress=True
    )
    base.update(kw)
    return TunnelInfo(**base)


def encap(inner: bytes | None = None, t: TunnelInfo | None = None, **kw: Any) -> bytes:
    kw.setdefault("vport_dst_port", PORT)
    out = encapsulate(
        inner if inner is not None else inner_tcp(), t if t is not None else tun(), src_mac=HOST_MAC, dst_mac=NEXT_MAC,
        **kw,
    )  # fmt: skip
    assert out is not None
    return out


def parse(outer: bytes) -> tuple[Packet, Packet]:
    """(outer Ether packet, VXLAN layer) whatever the UDP port."""
    p = Ether(outer)
    return p, VXLAN(bytes(p[UDP].payload))


def decap(outer: bytes, **kw: Any) -> tuple[bytes, TunnelInfo] | DecapDrop | None:
    kw.setdefault("local_ips", {REMOTE})
    kw.setdefault("vport_dst_port", PORT)
    kw.setdefault("vxlan_mac", VXLAN_DEV_MAC)
    return decapsulate(outer, **kw)


def patch(outer: bytes, offset: int, data: bytes, *, fix_udp: bool = True) -> bytes:
    """Overwrite bytes of an outer frame, keeping a non-zero UDP checksum valid."""
    buf = bytearray(outer)
    buf[offset : offset + len(data)] = data
    if fix_udp and (buf[40] or buf[41]):
        buf[40:42] = b"\x00\x00"
        ulen = buf[38] << 8 | buf[39]
        pseudo = bytes(buf[26:34]) + struct.pack("!BBH", 0, 17, ulen)
        c = checksum(bytes(buf[34 : 34 + ulen]), ones_sum(pseudo)) or 0xFFFF
        buf[40:42] = c.to_bytes(2, "big")
    return bytes(buf)


VX = 42  # offset of the VXLAN header in an outer frame


# ---------------------------------------------------------------------------
# encapsulation
# ---------------------------------------------------------------------------


def test_encapsulation_layout() -> None:
    inner = inner_tcp()
    p, v = parse(encap(inner))
    assert (p.src, p.dst, p.type) == ("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800)
    ip = p[IP]
    assert (ip.src, ip.dst, ip.proto, ip.ihl, ip.version) == ("192.168.0.1", "192.168.0.2", 17, 5, 4)
    assert ip.len == 20 + 8 + 8 + len(inner)
    rebuilt = ip.copy()
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == ip.chksum
    assert p[UDP].dport == PORT and p[UDP].len == 8 + 8 + len(inner)
    assert v.flags == 0x08 and v.vni == 0x123456
    assert bytes(v.payload) == inner
    assert p[VXLAN].vni == 0x123456  # scapy binds 4789 to VXLAN


def test_vni_is_the_low_24_bits_of_tun_id() -> None:
    _, v = parse(encap(t=tun(tun_id=0xAB_CD123456)))
    assert v.vni == 0x123456


def test_udp_destination_port_from_metadata_or_vport() -> None:
    p, _ = parse(encap(vport_dst_port=8472))
    assert p[UDP].dport == 8472
    p, _ = parse(encap(t=tun(tp_dst=9999), vport_dst_port=8472))
    assert p[UDP].dport == 9999


def test_udp_source_port_hashes_the_inner_flow_into_the_range() -> None:
    ports = {Ether(encap(inner_tcp(sport=s)))[UDP].sport for s in range(200)}
    assert all(32768 <= port < 60999 for port in ports)
    assert len(ports) > 150  # spread
    same = {Ether(encap(inner_tcp(sport=7), t=tun(tp_src=11111)))[UDP].sport for _ in range(3)}
    assert len(same) == 1 and 11111 not in same  # deterministic, tp_src ignored
    narrow = {Ether(encap(inner_tcp(sport=s), port_range=(1000, 1004)))[UDP].sport for s in range(100)}
    assert narrow <= {1000, 1001, 1002, 1003}
    assert source_port(inner_tcp(sport=7)) in same


def test_udp_checksum_only_with_csum_flag() -> None:
    p, _ = parse(encap())
    assert p[UDP].chksum == 0
    outer = encap(t=tun(flags=int(TunnelFlag.KEY | TunnelFlag.CSUM)))
    p, _ = parse(outer)
    assert p[UDP].chksum != 0
    rebuilt = p.copy()
    del rebuilt[UDP].chksum
    assert bytes(rebuilt) == outer


def test_ttl_from_metadata_or_route_default() -> None:
    assert Ether(encap())[IP].ttl == 64
    assert Ether(encap(default_ttl=255))[IP].ttl == 255
    assert Ether(encap(t=tun(ttl=7)))[IP].ttl == 7


def test_df_only_with_the_df_flag() -> None:
    assert Ether(encap())[IP].flags == 0
    assert Ether(encap(t=tun(flags=int(TunnelFlag.KEY | TunnelFlag.DF))))[IP].flags == "DF"


@pytest.mark.parametrize(
    ("tun_tos", "inner_tos", "outer_tos"),
    [
        (0x00, 0x00, 0x00),
        (0xB8, 0x00, 0xB8),
        (0xB8, 0x02, 0xBA),  # ECT(0) copied
        (0xB8, 0x01, 0xB9),  # ECT(1) copied
        (0xB8, 0x03, 0xBA),  # CE becomes ECT(0)
        (0xBB, 0x00, 0xB8),  # the metadata's ECN bits are not used
        (0x00, 0xFE, 0x02),  # only the inner ECN bits, not its DSCP
    ],
)
def test_tos_dscp_from_metadata_ecn_from_inner(tun_tos: int, inner_tos: int, outer_tos: int) -> None:
    assert Ether(encap(inner_tcp(tos=inner_tos), t=tun(tos=tun_tos)))[IP].tos == outer_tos


def test_ecn_from_tagged_and_ipv6_inner_and_none_from_non_ip() -> None:
    tagged = bytes(Ether() / Dot1Q(vlan=4) / IP(tos=0x01) / UDP())
    assert Ether(encap(tagged))[IP].tos == 0x01
    v6 = bytes(Ether() / IPv6(tc=0x02) / UDP())
    assert Ether(encap(v6))[IP].tos == 0x02
    arp = bytes(Ether() / ARP())
    assert Ether(encap(arp, t=tun(tos=0x13)))[IP].tos == 0x10


def test_source_address_from_route_when_metadata_has_none() -> None:
    assert Ether(encap(t=tun(ipv4_src=0), src_ip=0x01020304))[IP].src == "1.2.3.4"
    assert Ether(encap(src_ip=0x01020304))[IP].src == "192.168.0.1"


def test_no_ipv4_destination_or_source_means_drop() -> None:
    args: dict[str, Any] = dict(vport_dst_port=PORT, src_mac=1, dst_mac=2)
    assert encapsulate(inner_tcp(), tun(ipv4_dst=0), **args) is None
    assert encapsulate(inner_tcp(), tun(ipv4_dst=0, ipv6_dst=1), **args) is None
    assert encapsulate(inner_tcp(), tun(ipv4_src=0), **args) is None


def test_gbp_header() -> None:
    gbp = 0x1234 | vx.VXLAN_GBP_DONT_LEARN | vx.VXLAN_GBP_POLICY_APPLIED
    outer = encap(t=tun(gbp=gbp), gbp=True)
    assert outer[VX : VX + 4] == bytes.fromhex("88481234")
    assert encap(t=tun(gbp=gbp))[VX : VX + 4] == bytes.fromhex("08000000")  # vport without GBP
    res = decap(outer, gbp=True)
    assert isinstance(res, tuple) and res[1].gbp == gbp
    assert decap(outer) == DecapDrop(vx.DROP_RESERVED_BITS)


def test_ip_id_and_header_checksum() -> None:
    outer = encap(ip_id=0xBEEF)
    assert Ether(outer)[IP].id == 0xBEEF
    assert checksum(outer[14:34]) == 0


# ---------------------------------------------------------------------------
# decapsulation
# ---------------------------------------------------------------------------


def test_round_trip_gives_back_the_inner_frame_and_swapped_metadata() -> None:
    inner = inner_tcp()
    t = tun(tos=0x20, ttl=33)
    outer = encap(inner, t)
    res = decap(outer)
    assert isinstance(res, tuple)
    got, meta = res
    assert got == inner
    sport = Ether(outer)[UDP].sport
    assert meta == TunnelInfo(
        tun_id=0x123456,
        ipv4_src=LOCAL,
        ipv4_dst=REMOTE,
        tos=0x20,
        ttl=33,
        tp_src=sport,
        tp_dst=PORT,
        flags=int(TunnelFlag.KEY),
        egress=False,
    )
    # The receiver's view: its source is the sender's destination.
    assert (meta.ipv4_src, meta.ipv4_dst) == (t.ipv4_src, t.ipv4_dst)


def test_decap_reports_csum_but_never_df() -> None:
    outer = encap(t=tun(flags=int(TunnelFlag.KEY | TunnelFlag.CSUM | TunnelFlag.DF)))
    res = decap(outer)
    assert isinstance(res, tuple)
    assert res[1].flags == int(TunnelFlag.KEY | TunnelFlag.CSUM)


def test_decap_of_frames_built_by_scapy() -> None:
    inner = inner_tcp()

    def outer(vxlan: Packet) -> bytes:
        return bytes(
            Ether(dst="02:00:00:00:00:02")
            / IP(src="192.168.0.9", dst="192.168.0.2", ttl=9, tos=0x04)
            / UDP(sport=55555, dport=PORT)
            / vxlan
            / Ether(inner)
        )

    # scapy's default header over Ethernet is VXLAN-GPE style (flags 0x0c, next
    # protocol 3): reserved bits for the kernel's plain VXLAN.
    assert decap(outer(VXLAN(vni=77))) == DecapDrop(vx.DROP_RESERVED_BITS)
    res = decap(outer(VXLAN(vni=77, flags=0x08, NextProtocol=0)))
    assert isinstance(res, tuple)
    got, meta = res
    assert got == inner
    assert (meta.tun_id, meta.ipv4_src, meta.ttl, meta.tos, meta.tp_src) == (77, 0xC0A80009, 9, 4, 55555)
    assert meta.flags == int(TunnelFlag.KEY | TunnelFlag.CSUM)  # scapy computes a UDP checksum


def test_local_ips_may_be_a_predicate() -> None:
    outer = encap()
    assert isinstance(decap(outer, local_ips=lambda ip: ip == REMOTE), tuple)
    assert decap(outer, local_ips=lambda ip: False) is None


@pytest.mark.parametrize(
    "change",
    [
        {"vport_dst_port": 8472},
        {"local_ips": {LOCAL}},
    ],
)
def test_not_for_this_vport(change: dict[str, Any]) -> None:
    assert decap(encap(), **change) is None


def test_not_for_this_vport_by_packet() -> None:
    assert decap(bytes(Ether() / IPv6() / UDP(dport=PORT))) is None
    assert decap(bytes(Ether() / IP(dst="192.168.0.2") / TCP(dport=PORT))) is None
    outer = bytearray(encap())
    outer[24] ^= 0xFF  # corrupt the IP header checksum: the IP layer drops it
    assert decap(bytes(outer)) is None
    frag = bytes(Ether() / IP(dst="192.168.0.2", flags="MF") / UDP(dport=PORT) / VXLAN() / Ether(inner_tcp()))
    assert decap(frag) is None


def test_padding_after_the_ip_packet_is_ignored() -> None:
    outer = encap()
    res = decap(outer + b"\x00" * 10)
    assert isinstance(res, tuple) and res[0] == inner_tcp()


def test_drop_missing_i_flag() -> None:
    assert decap(patch(encap(), VX, b"\x00")) == DecapDrop(vx.DROP_NO_VNI_FLAG)


@pytest.mark.parametrize(
    ("offset", "data"),
    [
        (VX, b"\x0c"),  # a reserved flag bit
        (VX, b"\x88"),  # G bit on a vport without GBP
        (VX + 1, b"\x01"),  # reserved bytes after the flags
        (VX + 3, b"\x01"),
        (VX + 7, b"\x01"),  # the reserved byte after the VNI
    ],
)
def test_drop_reserved_bits(offset: int, data: bytes) -> None:
    assert decap(patch(encap(), offset, data)) == DecapDrop(vx.DROP_RESERVED_BITS)


def test_drop_bad_udp_checksum_but_not_zero_checksum() -> None:
    outer = encap(t=tun(flags=int(TunnelFlag.KEY | TunnelFlag.CSUM)))
    bad = patch(outer, 40, bytes([outer[40] ^ 0x55]), fix_udp=False)
    assert decap(bad) == DecapDrop(vx.DROP_BAD_UDP_CHECKSUM)
    assert isinstance(decap(patch(outer, 40, b"\x00\x00", fix_udp=False)), tuple)


def test_drop_bad_udp_length() -> None:
    outer = encap()
    assert decap(patch(outer, 38, b"\xff\xff")) == DecapDrop(vx.DROP_BAD_UDP_LENGTH)
    assert decap(patch(outer, 38, b"\x00\x04")) == DecapDrop(vx.DROP_BAD_UDP_LENGTH)


def test_drop_short_vxlan_header() -> None:
    outer = bytes(Ether() / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(sport=1, dport=PORT) / b"\x08\x00")
    assert decap(outer) == DecapDrop(vx.DROP_SHORT_VXLAN_HEADER)


def test_drop_inner_frame_too_short() -> None:
    outer = encap(inner_tcp()[:13])
    assert decap(outer) == DecapDrop(vx.DROP_INNER_TOO_SHORT)
    assert isinstance(decap(encap(inner_tcp()[:14])), tuple)


def test_drop_inner_source_mac_of_the_vxlan_device() -> None:
    inner = bytes(Ether(src="0a:00:00:00:00:99", dst="00:00:00:00:00:02") / IP() / UDP())
    assert decap(encap(inner)) == DecapDrop(vx.DROP_INNER_SRC_MAC_IS_DEVICE)
    assert isinstance(decap(encap(inner), vxlan_mac=None), tuple)


@pytest.mark.parametrize("src", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"])
def test_drop_invalid_inner_source_mac(src: str) -> None:
    inner = bytes(Ether(src=src, dst="00:00:00:00:00:02") / IP() / UDP())
    assert decap(encap(inner)) == DecapDrop(vx.DROP_INNER_SRC_MAC_INVALID)


def _with_outer_tos(outer: bytes, tos: int) -> bytes:
    buf = bytearray(outer)
    buf[15] = tos
    buf[24:26] = b"\x00\x00"
    buf[24:26] = checksum(bytes(buf[14:34])).to_bytes(2, "big")
    return bytes(buf)


def test_ecn_decapsulation() -> None:
    # Outer CE on a not-ECT inner packet: dropped.
    assert decap(_with_outer_tos(encap(inner_tcp(tos=0x00)), 0x03)) == DecapDrop(vx.DROP_ECN)
    # Outer CE on an ECT(0) inner packet: the inner packet is marked CE.
    res = decap(_with_outer_tos(encap(inner_tcp(tos=0x02)), 0x03))
    assert isinstance(res, tuple)
    ip = Ether(res[0])[IP]
    assert ip.tos == 0x03
    assert checksum(res[0][14:34]) == 0
    assert res[1].tos == 0x03
    # Outer ECT(1) turns an inner ECT(0) into ECT(1).
    res = decap(_with_outer_tos(encap(inner_tcp(tos=0xA2)), 0x01))
    assert isinstance(res, tuple) and Ether(res[0])[IP].tos == 0xA1
    # Outer ECT on not-ECT inner: accepted unchanged.
    res = decap(_with_outer_tos(encap(inner_tcp(tos=0x00)), 0x02))
    assert isinstance(res, tuple) and res[0] == inner_tcp()
    # Non-IP inner: nothing to check.
    arp = bytes(Ether(src="00:00:00:00:00:01") / ARP())
    res = decap(_with_outer_tos(encap(arp), 0x03))
    assert isinstance(res, tuple) and res[0] == arp


def test_fill_metadata_dst() -> None:
    inner = inner_tcp()
    t = tun(ipv4_src=0)
    filled = fill_metadata_dst(inner, t, vport_dst_port=PORT, src_ip=0x0A0B0C0D)
    assert filled is not None
    outer = encap(inner, t, src_ip=0x0A0B0C0D)
    assert filled.tp_src == Ether(outer)[UDP].sport
    assert (filled.tp_dst, filled.ipv4_src, filled.egress) == (PORT, 0x0A0B0C0D, True)
    assert fill_metadata_dst(inner, tun(egress=False), vport_dst_port=PORT) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tun_id=st.integers(0, (1 << 64) - 1),
    tos=st.integers(0, 255),
    ttl=st.integers(0, 255),
    csum=st.booleans(),
    df=st.booleans(),
    tp_dst=st.sampled_from([0, 4789, 8472, 12345]),
    inner_tos=st.integers(0, 255),
    payload=st.binary(max_size=64),
)
def test_property_round_trip(
    tun_id: int, tos: int, ttl: int, csum: bool, df: bool, tp_dst: int, inner_tos: int, payload: bytes
) -> None:
    inner = bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02") / IP(tos=inner_tos) / UDP() / payload)
    flags = TunnelFlag.KEY | (TunnelFlag.CSUM if csum else 0) | (TunnelFlag.DF if df else 0)
    t = tun(tun_id=tun_id, tos=tos, ttl=ttl, flags=int(flags), tp_dst=tp_dst)
    outer = encap(inner, t)
    port = tp_dst or PORT
    res = decap(outer, vport_dst_port=port)
    assert isinstance(res, tuple)
    got, meta = res
    assert got == inner
    outer_tos = Ether(outer)[IP].tos
    assert outer_tos >> 2 == tos >> 2
    assert meta == TunnelInfo(
        tun_id=tun_id & 0xFFFFFF,
        ipv4_src=LOCAL,
        ipv4_dst=REMOTE,
        tos=outer_tos,
        ttl=ttl or 64,
        tp_src=Ether(outer)[UDP].sport,
        tp_dst=port,
        flags=int(TunnelFlag.KEY | (TunnelFlag.CSUM if csum else 0)),
    )
