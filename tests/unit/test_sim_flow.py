"""odp.sim.flow.extract: packet bytes -> swkey int, checked rule by rule against the kernel's flow.c."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet, Raw

from odp.sim import flow
from odp.sim.flow import Extracted, extract
from odp.validate import swkey

SRC = "00:11:22:33:44:55"
DST = "66:77:88:99:aa:bb"
ETH = Ether(src=SRC, dst=DST)
PAYLOAD = Raw(b"\x00" * 32)


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


L2 = {"eth_src": mac(SRC), "eth_dst": mac(DST)}


def ex(frame: Packet | bytes, meta: int = 0) -> Extracted:
    result = extract(bytes(frame), meta)
    assert result is not None
    return result


def nonzero(key: int) -> dict[str, int]:
    return {name: value for name, value in swkey.fields(key).items() if value}


def assert_key(result: Extracted, **expected: int) -> None:
    """The key holds exactly ``expected`` (plus the Ethernet addresses); every other field is zero."""
    want = {**L2, **expected}
    assert nonzero(result.key) == {name: value for name, value in want.items() if value}


def ipv4_tcp_fields(**overrides: int) -> dict[str, int]:
    fields = {
        "eth_type": 0x0800,
        "ip_proto": 6,
        "ip_ttl": 64,
        "ipv4_src": ip4("10.0.0.1"),
        "ipv4_dst": ip4("10.0.0.2"),
    }
    fields.update(overrides)
    return fields


IP4 = IP(src="10.0.0.1", dst="10.0.0.2")
IP6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
IP6_FIELDS = {
    "eth_type": 0x86DD,
    "ip_ttl": 64,
    "ipv6_src": ip6("2001:db8::1"),
    "ipv6_dst": ip6("2001:db8::2"),
}


# ---------------------------------------------------------------------------
# Frame length


@pytest.mark.parametrize("length", range(14))
def test_frames_shorter_than_14_bytes_are_dropped(length: int) -> None:
    assert extract(bytes(ETH)[:length]) is None
    assert extract(b"\xff" * length) is None


def test_14_byte_frame() -> None:
    result = ex(Ether(src=SRC, dst=DST, type=0x0800))
    assert_key(result, eth_type=0x0800)  # IPv4 header missing: ip fields zero
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, 14)
    assert (result.l4_len, result.l4_hdr_len) == (0, 0)


def test_14_byte_frame_unknown_ethertype() -> None:
    result = ex(Ether(src=SRC, dst=DST, type=0x1234))
    assert_key(result, eth_type=0x1234)
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, None)


def test_metadata_survives() -> None:
    meta = swkey.build(
        {
            "recirc_id": 7,
            "dp_hash": 0xDEADBEEF,
            "priority": 3,
            "skb_mark": 0x55,
            "in_port": 9,
            "tun_proto": 2,
            "tun_id": 42,
            "tun_ipv4_src": ip4("192.0.2.1"),
            "tun_ipv4_dst": ip4("192.0.2.2"),
            "tun_ttl": 64,
            "ct_state": 0x21,
            "ct_zone": 5,
            "ct_mark": 0x77,
        }
    )
    frame = bytes(ETH / IP4 / TCP(sport=1, dport=2) / PAYLOAD)
    result = ex(frame, meta)
    assert result.key == meta | ex(frame).key
    fields = swkey.fields(result.key)
    assert (fields["in_port"], fields["recirc_id"], fields["ct_zone"], fields["tun_id"]) == (9, 7, 5, 42)
    assert (fields["tp_src"], fields["tp_dst"]) == (1, 2)
    # The same holds on the slow paths.
    for frame in (bytes(ETH / Dot1Q(vlan=3) / IP4 / UDP()), bytes(ETH / IP6 / UDP()), bytes(ETH / ARP())):
        assert ex(frame, meta).key == meta | ex(frame).key


# ---------------------------------------------------------------------------
# IPv4 and its transport layer


def test_ipv4_tcp() -> None:
    frame = ETH / IP(src="10.0.0.1", dst="10.0.0.2", tos=0xB9, ttl=17) / TCP(sport=1234, dport=80, flags="S")
    result = ex(frame / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_tos=0xB9, ip_ttl=17, tp_src=1234, tp_dst=80, tcp_flags=0x002))
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, 34)
    assert (result.l4_len, result.l4_hdr_len) == (20 + 32, 20)


@pytest.mark.parametrize("payload", [b"", bytes(PAYLOAD)], ids=["54 bytes", "with payload"])
@pytest.mark.parametrize(
    ("tcp", "flags"),
    [
        (TCP(flags="FSRPAUECN"), 0x1FF),
        (TCP(flags="A"), 0x010),
        (TCP(flags="PA"), 0x018),
        (TCP(reserved=7, flags=0x1FF), 0xFFF),  # 12 bits: the 3 reserved bits are kept
        (TCP(reserved=5, flags=0), 0xA00),
    ],
)
def test_tcp_flags_are_12_bits(tcp: TCP, flags: int, payload: bytes) -> None:
    result = ex(ETH / IP4 / tcp / payload)
    assert swkey.get(result.key, "tcp_flags") == flags


def test_tcp_with_options() -> None:
    tcp = TCP(sport=5, dport=6, flags="S", options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])
    result = ex(ETH / IP4 / tcp)
    assert tcp.__class__(bytes(tcp)).dataofs == 7
    assert_key(result, **ipv4_tcp_fields(tp_src=5, tp_dst=6, tcp_flags=2))
    assert result.l4_hdr_len == 28


@pytest.mark.parametrize("cut", [0, 1, 13, 14, 19])
def test_short_tcp_header_gives_zero_ports_and_flags(cut: int) -> None:
    frame = bytes(ETH / IP4 / TCP(sport=1, dport=2, flags="S"))[: 34 + cut]
    result = ex(frame)
    assert_key(result, **ipv4_tcp_fields())
    assert (result.transport_offset, result.l4_len, result.l4_hdr_len) == (34, cut, 0)


@pytest.mark.parametrize("dataofs", [0, 4])
def test_tcp_data_offset_below_5_gives_zero_ports(dataofs: int) -> None:
    result = ex(ETH / IP4 / TCP(sport=1, dport=2, flags="S", dataofs=dataofs) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields())


def test_tcp_data_offset_past_the_frame_gives_zero_ports() -> None:
    result = ex(ETH / IP4 / TCP(sport=1, dport=2, flags="S", dataofs=15) / Raw(b"\x00" * 39))
    assert_key(result, **ipv4_tcp_fields())
    # ... but with all 60 bytes present it is fine.
    result = ex(ETH / IP4 / TCP(sport=1, dport=2, flags="S", dataofs=15) / Raw(b"\x00" * 40))
    assert_key(result, **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2))


def test_ipv4_udp() -> None:
    result = ex(ETH / IP4 / UDP(sport=53, dport=5353) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_proto=17, tp_src=53, tp_dst=5353))
    assert result.l4_hdr_len == 8
    result = ex(ETH / IP4 / UDP(sport=53, dport=5353))  # 42 bytes: the slow path
    assert_key(result, **ipv4_tcp_fields(ip_proto=17, tp_src=53, tp_dst=5353))


def test_short_udp_header_gives_zero_ports() -> None:
    result = ex(bytes(ETH / IP4 / UDP(sport=53, dport=5353))[:41])
    assert_key(result, **ipv4_tcp_fields(ip_proto=17))
    assert result.l4_hdr_len == 0


def test_ipv4_sctp() -> None:
    result = ex(ETH / IP4 / SCTP(sport=2905, dport=2906) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_proto=132, tp_src=2905, tp_dst=2906))
    result = ex(bytes(ETH / IP4 / SCTP(sport=2905, dport=2906))[:45])  # needs 12 bytes
    assert_key(result, **ipv4_tcp_fields(ip_proto=132))


def test_ipv4_icmp_type_and_code_in_the_ports() -> None:
    result = ex(ETH / IP4 / ICMP(type=3, code=1) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_proto=1, tp_src=3, tp_dst=1))
    result = ex(ETH / IP4 / ICMP(type=8, code=0))  # 42 bytes: the slow path
    assert_key(result, **ipv4_tcp_fields(ip_proto=1, tp_src=8))


def test_short_icmp_header_gives_zero() -> None:
    # struct icmphdr is 8 bytes: type and code alone are not enough.
    result = ex(bytes(ETH / IP4 / ICMP(type=3, code=1))[:41])
    assert_key(result, **ipv4_tcp_fields(ip_proto=1))


def test_ipv4_other_protocol_has_no_l4() -> None:
    result = ex(ETH / IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_proto=47))
    assert (result.transport_offset, result.l4_hdr_len) == (34, 0)


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_ihl_below_5_zeroes_the_ip_fields(ihl: int) -> None:
    result = ex(ETH / IP(src="10.0.0.1", dst="10.0.0.2", ihl=ihl) / TCP(sport=1, dport=2) / PAYLOAD)
    assert_key(result, eth_type=0x0800)
    assert (result.network_offset, result.transport_offset, result.l4_hdr_len) == (14, 14, 0)


@pytest.mark.parametrize("length", [14, 15, 33])
def test_truncated_ipv4_header_zeroes_the_ip_fields(length: int) -> None:
    result = ex(bytes(ETH / IP4 / TCP())[:length])
    assert_key(result, eth_type=0x0800)
    assert result.transport_offset == 14


def test_ihl_past_the_frame_zeroes_the_ip_fields() -> None:
    frame = bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", ihl=15) / Raw(b"\x00" * 39))
    assert_key(ex(frame), eth_type=0x0800)
    assert_key(ex(frame + b"\x00"), **ipv4_tcp_fields(ip_proto=0))  # all 60 bytes: fine


def test_ipv4_options_move_the_transport_header() -> None:
    ip = IP(src="10.0.0.1", dst="10.0.0.2", options=[b"\x01\x01\x01\x00"] * 2)
    result = ex(ETH / ip / TCP(sport=7, dport=8, flags="A") / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(tp_src=7, tp_dst=8, tcp_flags=0x10))
    assert result.transport_offset == 14 + 28


def test_ipv4_version_and_total_length_are_not_checked() -> None:
    frame = bytearray(bytes(ETH / IP4 / TCP(sport=1, dport=2, flags="S") / PAYLOAD))
    frame[14] = 0x65  # version 6, IHL 5
    struct.pack_into("!H", frame, 16, 3)  # tot_len 3
    assert_key(ex(bytes(frame)), **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2))


def test_ipv4_first_fragment_parses_l4() -> None:
    result = ex(ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0) / UDP(sport=1, dport=2) / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_proto=17, ip_frag=1, tp_src=1, tp_dst=2))


@pytest.mark.parametrize("flags", ["", "MF"])
def test_ipv4_later_fragment_has_no_l4(flags: str) -> None:
    frame = ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags=flags, frag=185, proto=6) / TCP(sport=1, dport=2)
    result = ex(frame / PAYLOAD)
    assert_key(result, **ipv4_tcp_fields(ip_frag=2))
    assert (result.transport_offset, result.l4_hdr_len) == (34, 0)
    result = ex(bytes(frame)[:40])  # the slow path
    assert_key(result, **ipv4_tcp_fields(ip_frag=2))


def test_ipv4_df_is_not_a_fragment() -> None:
    result = ex(ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / TCP(sport=1, dport=2, flags="S"))
    assert_key(result, **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2))


# ---------------------------------------------------------------------------
# VLAN


def test_vlan() -> None:
    result = ex(ETH / Dot1Q(prio=5, vlan=10) / IP4 / TCP(sport=1, dport=2, flags="S") / PAYLOAD)
    tci = 0x1000 | 5 << 13 | 10
    assert_key(result, vlan_tci=tci, vlan_tpid=0x8100, **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2))
    assert (result.mac_len, result.network_offset, result.transport_offset) == (18, 18, 38)


def test_vlan_with_cfi_already_set() -> None:
    result = ex(ETH / Dot1Q(prio=1, dei=1, vlan=4095) / Raw(b"\x00" * 8))
    assert swkey.get(result.key, "vlan_tci") == 0x3FFF


def test_vlan_88a8_alone() -> None:
    result = ex(ETH / Dot1AD(vlan=7) / IP4 / UDP(sport=1, dport=2))
    assert_key(result, vlan_tci=0x1007, vlan_tpid=0x88A8, **ipv4_tcp_fields(ip_proto=17, tp_src=1, tp_dst=2))


def test_qinq() -> None:
    frame = ETH / Dot1AD(prio=3, vlan=100) / Dot1Q(prio=1, vlan=200) / IP4 / TCP(sport=1, dport=2, flags="S")
    result = ex(frame)
    assert_key(
        result,
        vlan_tci=0x1000 | 3 << 13 | 100,
        vlan_tpid=0x88A8,
        cvlan_tci=0x1000 | 1 << 13 | 200,
        cvlan_tpid=0x8100,
        **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2),
    )
    assert (result.mac_len, result.network_offset, result.transport_offset) == (22, 22, 42)


def test_only_two_tags_are_parsed() -> None:
    result = ex(ETH / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP4 / TCP())
    assert_key(result, vlan_tci=0x1001, vlan_tpid=0x8100, cvlan_tci=0x1002, cvlan_tpid=0x8100, eth_type=0x8100)
    assert (result.mac_len, result.transport_offset) == (22, None)


@pytest.mark.parametrize("length", [14, 15, 16, 17])
def test_truncated_vlan_tag(length: int) -> None:
    # A tag needs 4 bytes plus a 2-byte ethertype after the MACs: else eth_type is the TPID, TCI 0.
    result = ex(bytes(ETH / Dot1Q(vlan=10) / IP4)[:length])
    assert_key(result, eth_type=0x8100)
    assert result.mac_len == 14


@pytest.mark.parametrize("length", [18, 19, 20, 21])
def test_truncated_inner_vlan_tag(length: int) -> None:
    result = ex(bytes(ETH / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP4)[:length])
    assert_key(result, vlan_tci=0x100A, vlan_tpid=0x88A8, eth_type=0x8100)
    assert result.mac_len == 18


def test_vlan_tag_then_short_ipv4() -> None:
    result = ex(bytes(ETH / Dot1Q(vlan=10) / IP4)[:18])
    assert_key(result, vlan_tci=0x100A, vlan_tpid=0x8100, eth_type=0x0800)
    assert result.transport_offset == 18


# ---------------------------------------------------------------------------
# 802.3


def test_llc_without_snap_is_802_2() -> None:
    result = ex(Dot3(src=SRC, dst=DST) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(b"\x00" * 40))
    assert_key(result, eth_type=0x0004)
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, None)


def test_snap_with_oui_0_uses_the_snap_type() -> None:
    frame = Dot3(src=SRC, dst=DST) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
    result = ex(frame / IP4 / TCP(sport=1, dport=2, flags="S"))
    assert_key(result, **ipv4_tcp_fields(tp_src=1, tp_dst=2, tcp_flags=2))
    assert (result.mac_len, result.network_offset, result.transport_offset) == (22, 22, 42)


def test_snap_with_another_oui_is_802_2() -> None:
    frame = Dot3(src=SRC, dst=DST) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0x00000C, code=0x0800)
    result = ex(frame / IP4)
    assert_key(result, eth_type=0x0004)
    assert result.mac_len == 14


def test_snap_with_an_802_3_type_is_802_2_past_the_snap_header() -> None:
    frame = Dot3(src=SRC, dst=DST) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0100)
    result = ex(frame / Raw(b"\x00" * 20))
    assert_key(result, eth_type=0x0004)
    assert result.mac_len == 22


def test_short_llc_is_802_2() -> None:
    frame = bytes(Dot3(src=SRC, dst=DST) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800))
    result = ex(frame[:21])  # 7 bytes of LLC/SNAP
    assert_key(result, eth_type=0x0004)
    assert result.mac_len == 14


def test_vlan_then_snap() -> None:
    frame = ETH / Dot1Q(vlan=5, type=30) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0806)
    result = ex(frame / ARP(psrc="1.2.3.4", pdst="5.6.7.8", hwsrc=SRC))
    assert swkey.get(result.key, "eth_type") == 0x0806
    assert swkey.get(result.key, "ipv4_src") == ip4("1.2.3.4")
    assert result.mac_len == 26


# ---------------------------------------------------------------------------
# ARP


@pytest.mark.parametrize("op", [1, 2])
def test_arp(op: int) -> None:
    arp = ARP(op=op, hwsrc=SRC, psrc="10.0.0.1", hwdst=DST, pdst="10.0.0.2")
    result = ex(ETH / arp)
    assert_key(
        result,
        eth_type=0x0806,
        arp_op=op,
        ipv4_src=ip4("10.0.0.1"),
        ipv4_dst=ip4("10.0.0.2"),
        arp_sha=mac(SRC),
        arp_tha=mac(DST),
    )
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, None)


def test_rarp() -> None:
    result = ex(Ether(src=SRC, dst=DST, type=0x8035) / ARP(op=3, hwsrc=SRC, hwdst=SRC, psrc="0.0.0.0", pdst="0.0.0.0"))
    assert_key(
        result,
        eth_type=0x8035,
        arp_op=3,
        ipv4_src=ip4("0.0.0.0"),
        arp_sha=mac(SRC),
        arp_tha=mac(SRC),
    )


def test_arp_op_above_0xff_is_zero() -> None:
    result = ex(ETH / ARP(op=0x100, hwsrc=SRC, psrc="10.0.0.1", pdst="10.0.0.2", hwdst="00:00:00:00:00:00"))
    assert_key(result, eth_type=0x0806, arp_sha=mac(SRC), ipv4_src=ip4("10.0.0.1"), ipv4_dst=ip4("10.0.0.2"))


@pytest.mark.parametrize(
    "arp",
    [
        ARP(hwlen=8, hwsrc=SRC, psrc="10.0.0.1"),
        ARP(plen=16, hwsrc=SRC, psrc="10.0.0.1"),
        ARP(hwtype=6, hwsrc=SRC, psrc="10.0.0.1"),
        ARP(ptype=0x86DD, hwsrc=SRC, psrc="10.0.0.1"),
    ],
    ids=["hln", "pln", "hrd", "pro"],
)
def test_arp_with_bad_header_is_zero(arp: ARP) -> None:
    frame = bytes(Ether(src=SRC, dst=DST, type=0x0806)) + bytes(arp)[:28]
    assert_key(ex(frame), eth_type=0x0806)


def test_truncated_arp_is_zero() -> None:
    frame = bytes(ETH / ARP(hwsrc=SRC, psrc="10.0.0.1"))
    assert_key(ex(frame[: 14 + 27]), eth_type=0x0806)
    assert swkey.get(ex(frame[: 14 + 28]).key, "arp_sha") == mac(SRC)


# ---------------------------------------------------------------------------
# IPv6


def test_ipv6_tcp() -> None:
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0xB9, fl=0xABCDE, hlim=9)
    result = ex(ETH / ip / TCP(sport=1000, dport=22, flags="PA") / PAYLOAD)
    assert_key(
        result,
        **{**IP6_FIELDS, "ip_ttl": 9},
        ip_tos=0xB9,
        ipv6_label=0xABCDE,
        ip_proto=6,
        tp_src=1000,
        tp_dst=22,
        tcp_flags=0x18,
    )
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, 54)
    assert result.l4_hdr_len == 20


def test_ipv6_udp_and_sctp() -> None:
    assert_key(ex(ETH / IP6 / UDP(sport=1, dport=2)), **IP6_FIELDS, ip_proto=17, tp_src=1, tp_dst=2)
    assert_key(ex(ETH / IP6 / SCTP(sport=3, dport=4)), **IP6_FIELDS, ip_proto=132, tp_src=3, tp_dst=4)


def test_ipv6_short_tcp() -> None:
    result = ex(bytes(ETH / IP6 / TCP(sport=1, dport=2))[:73])
    assert_key(result, **IP6_FIELDS, ip_proto=6)


@pytest.mark.parametrize("length", [14, 20, 53])
def test_truncated_ipv6_header_is_zero(length: int) -> None:
    result = ex(bytes(ETH / IP6 / TCP())[:length])
    assert_key(result, eth_type=0x86DD)
    assert result.transport_offset == 14


def test_ipv6_hop_by_hop_and_dest_opts() -> None:
    frame = ETH / IP6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=1, dport=2, flags="S")
    result = ex(frame)
    assert_key(
        result,
        **IP6_FIELDS,
        ip_proto=6,
        ipv6_exthdrs=flow.EXTHDR_HOP | flow.EXTHDR_DEST,
        tp_src=1,
        tp_dst=2,
        tcp_flags=2,
    )
    assert result.transport_offset == 54 + 16


def test_ipv6_routing_header() -> None:
    frame = ETH / IP6 / IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / UDP(sport=1, dport=2)
    result = ex(frame)
    assert_key(result, **IP6_FIELDS, ip_proto=17, ipv6_exthdrs=flow.EXTHDR_ROUTER, tp_src=1, tp_dst=2)
    assert result.transport_offset == 54 + 24


def test_ipv6_ah_length_is_in_4_byte_units() -> None:
    # ipv6_find_hdr() skips AH by (hdrlen + 2) * 4 = 12 bytes here.
    result = ex(ETH / IP6 / AH(nh=6, payloadlen=1) / TCP(sport=1, dport=2, seq=0x06000000))
    assert swkey.get(result.key, "ip_proto") == 6
    assert (swkey.get(result.key, "tp_src"), swkey.get(result.key, "tp_dst")) == (1, 2)
    assert result.transport_offset == 54 + 12
    # get_ipv6_ext_hdrs() steps by (hdrlen + 1) * 8 = 16 bytes for every header, AH too:
    # it lands on the TCP sequence number's first byte (6, not an extension header).
    assert swkey.get(result.key, "ipv6_exthdrs") == flow.EXTHDR_AUTH


@pytest.mark.parametrize(
    ("headers", "exthdrs"),
    [
        ([IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(), IPv6ExtHdrDestOpt()], flow.EXTHDR_DEST | flow.EXTHDR_ROUTER),
        ([IPv6ExtHdrDestOpt(), IPv6ExtHdrHopByHop()], flow.EXTHDR_DEST | flow.EXTHDR_UNSEQ),
        (
            [IPv6ExtHdrHopByHop(), IPv6ExtHdrHopByHop()],
            flow.EXTHDR_HOP | flow.EXTHDR_UNREP | flow.EXTHDR_UNSEQ,
        ),
        (
            [IPv6ExtHdrDestOpt(), IPv6ExtHdrDestOpt(), IPv6ExtHdrDestOpt()],
            flow.EXTHDR_DEST | flow.EXTHDR_UNREP,
        ),
        (
            [IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(), IPv6ExtHdrFragment(), IPv6ExtHdrDestOpt()],
            flow.EXTHDR_HOP | flow.EXTHDR_ROUTER | flow.EXTHDR_FRAG | flow.EXTHDR_DEST | flow.EXTHDR_UNSEQ,
        ),
        ([IPv6ExtHdrFragment(), IPv6ExtHdrRouting()], flow.EXTHDR_FRAG | flow.EXTHDR_ROUTER | flow.EXTHDR_UNSEQ),
    ],
    ids=["dest-rt-dest", "hbh-not-first", "hbh-twice", "dest-thrice", "hbh-rt-frag-dest", "rt-after-frag"],
)
def test_ipv6_exthdrs_flags(headers: list[Packet], exthdrs: int) -> None:
    packet: Packet = ETH / IP6
    for header in headers:
        packet = packet / header
    result = ex(packet / UDP(sport=1, dport=2))
    assert swkey.get(result.key, "ipv6_exthdrs") == exthdrs
    assert swkey.get(result.key, "ip_proto") == 17
    assert swkey.get(result.key, "tp_dst") == 2


AH_, DEST_, FRAG_, HOP_, ROUTER_ = 51, 60, 44, 0, 43


@pytest.mark.parametrize(
    ("chain", "exthdrs"),
    [
        ([AH_, AH_], flow.EXTHDR_AUTH | flow.EXTHDR_UNREP | flow.EXTHDR_UNSEQ),
        ([FRAG_, AH_], flow.EXTHDR_FRAG | flow.EXTHDR_AUTH),  # see _exthdrs(): the fixed kernel masks
        ([DEST_, DEST_, AH_], flow.EXTHDR_DEST | flow.EXTHDR_AUTH | flow.EXTHDR_UNSEQ),
        ([DEST_, HOP_, DEST_], flow.EXTHDR_DEST | flow.EXTHDR_UNSEQ),
        ([FRAG_, FRAG_], flow.EXTHDR_FRAG | flow.EXTHDR_UNREP | flow.EXTHDR_UNSEQ),
        ([ROUTER_, ROUTER_], flow.EXTHDR_ROUTER | flow.EXTHDR_UNREP | flow.EXTHDR_UNSEQ),
        ([HOP_, DEST_, DEST_, FRAG_], flow.EXTHDR_HOP | flow.EXTHDR_DEST | flow.EXTHDR_FRAG | flow.EXTHDR_UNSEQ),
    ],
    ids=["ah-twice", "frag-ah", "dest-dest-ah", "dest-hbh-dest", "frag-twice", "rt-twice", "frag-after-2-dests"],
)
def test_ipv6_exthdrs_flags_raw(chain: list[int], exthdrs: int) -> None:
    # 8-byte headers with a length byte of 0, so that both kernel walks agree on their size
    # (AH: (0 + 2) * 4 = 8; the others: (0 + 1) * 8 = 8).
    headers = b"".join(bytes([nxt, 0]) + bytes(6) for nxt in [*chain[1:], 17])
    frame = bytes(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=chain[0])) + headers
    frame += bytes(UDP(sport=1, dport=2))
    result = ex(frame)
    frag = 1 if FRAG_ in chain else 0
    assert_key(result, **IP6_FIELDS, ip_proto=17, ip_frag=frag, ipv6_exthdrs=exthdrs, tp_src=1, tp_dst=2)
    assert result.transport_offset == 54 + 8 * len(chain)


def test_ipv6_no_next_header() -> None:
    result = ex(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=59) / PAYLOAD)
    assert_key(result, **IP6_FIELDS, ip_proto=59, ipv6_exthdrs=flow.EXTHDR_NONEXT)
    assert result.transport_offset == 54


def test_ipv6_atomic_fragment_is_a_first_fragment() -> None:
    frame = ETH / IP6 / IPv6ExtHdrFragment(offset=0, m=0) / UDP(sport=1, dport=2)
    assert_key(ex(frame), **IP6_FIELDS, ip_proto=17, ip_frag=1, ipv6_exthdrs=flow.EXTHDR_FRAG, tp_src=1, tp_dst=2)


def test_ipv6_first_fragment() -> None:
    frame = ETH / IP6 / IPv6ExtHdrFragment(offset=0, m=1, id=7) / TCP(sport=1, dport=2, flags="S") / PAYLOAD
    result = ex(frame)
    assert_key(
        result,
        **IP6_FIELDS,
        ip_proto=6,
        ip_frag=1,
        ipv6_exthdrs=flow.EXTHDR_FRAG,
        tp_src=1,
        tp_dst=2,
        tcp_flags=2,
    )
    assert result.transport_offset == 62


@pytest.mark.parametrize("m", [0, 1])
def test_ipv6_later_fragment(m: int) -> None:
    frame = ETH / IP6 / IPv6ExtHdrFragment(offset=100, m=m, nh=6) / TCP(sport=1, dport=2, flags="S")
    result = ex(frame)
    assert_key(result, **IP6_FIELDS, ip_proto=44, ip_frag=2, ipv6_exthdrs=flow.EXTHDR_FRAG)
    assert result.transport_offset is None


def test_ipv6_later_fragment_followed_by_an_extension_header() -> None:
    # ipv6_find_hdr() gives -ENOENT with frag_off 0: frag=first, proto stays NEXTHDR_NONE, no L4.
    frame = ETH / IP6 / IPv6ExtHdrFragment(offset=100, nh=60) / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2)
    result = ex(frame)
    assert_key(
        result,
        **IP6_FIELDS,
        ip_proto=59,
        ip_frag=1,
        ipv6_exthdrs=flow.EXTHDR_FRAG | flow.EXTHDR_DEST | flow.EXTHDR_UNSEQ,
    )
    assert result.transport_offset == 14


@pytest.mark.parametrize("cut", [0, 1])
def test_ipv6_broken_chain_keeps_addresses_and_skips_l4(cut: int) -> None:
    frame = bytes(ETH / IP6 / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2))[: 54 + cut]
    result = ex(frame)
    assert_key(result, **IP6_FIELDS, ip_proto=59, ipv6_exthdrs=flow.EXTHDR_HOP)
    assert result.transport_offset == 14


@pytest.mark.parametrize("cut", [2, 3])
def test_ipv6_truncated_fragment_header(cut: int) -> None:
    frame = bytes(ETH / IP6 / IPv6ExtHdrFragment(offset=0) / TCP(sport=1, dport=2))[: 54 + cut]
    result = ex(frame)
    assert_key(result, **IP6_FIELDS, ip_proto=59, ip_frag=1, ipv6_exthdrs=flow.EXTHDR_FRAG)


def test_ipv6_chain_pointing_past_the_frame() -> None:
    # ipv6_find_hdr(): "if (skb->len - start < hdrlen) return -EBADMSG": a header that runs off the
    # frame stops the walk, proto stays NEXTHDR_NONE and there is no L4 (the kernel oracle saw it with a
    # fragment header cut short; the simulator used to walk on and report the next header).
    frame = bytearray(bytes(ETH / IP6 / IPv6ExtHdrHopByHop(nh=6) / TCP(sport=1, dport=2)))
    frame[55] = 20  # HBH length (20 + 1) * 8 = 168 bytes
    result = ex(bytes(frame))
    assert_key(result, **IP6_FIELDS, ip_proto=59, ipv6_exthdrs=flow.EXTHDR_HOP)
    assert result.l4_hdr_len == 0


def test_icmpv6_echo() -> None:
    result = ex(ETH / IP6 / ICMPv6EchoRequest())
    assert_key(result, **IP6_FIELDS, ip_proto=58, tp_src=128)
    assert result.l4_hdr_len == 8


def test_icmpv6_short() -> None:
    result = ex(bytes(ETH / IP6 / ICMPv6EchoRequest())[:61])
    assert_key(result, **IP6_FIELDS, ip_proto=58)


ND_FIELDS = {**IP6_FIELDS, "ip_ttl": 255, "ip_proto": 58}
TARGET = "2001:db8::99"


def test_nd_ns_with_sll() -> None:
    frame = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    result = ex(frame / ICMPv6NDOptSrcLLAddr(lladdr=SRC))
    assert_key(result, **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET), nd_sll=mac(SRC))


def test_nd_na_with_tll() -> None:
    frame = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NA(tgt=TARGET, R=0, S=1, O=1)
    result = ex(frame / ICMPv6NDOptDstLLAddr(lladdr=DST))
    assert_key(result, **ND_FIELDS, tp_src=136, nd_target=ip6(TARGET), nd_tll=mac(DST))


def test_nd_with_both_options_and_no_options() -> None:
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    result = ex(ns / ICMPv6NDOptSrcLLAddr(lladdr=SRC) / ICMPv6NDOptDstLLAddr(lladdr=DST))
    assert_key(result, **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET), nd_sll=mac(SRC), nd_tll=mac(DST))
    assert_key(ex(ns), **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET))


@pytest.mark.parametrize("option", [ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr])
def test_nd_repeated_option_zeroes_target_and_lladdrs(option: type[Packet]) -> None:
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    other = ICMPv6NDOptDstLLAddr if option is ICMPv6NDOptSrcLLAddr else ICMPv6NDOptSrcLLAddr
    frame = ns / other(lladdr=SRC) / option(lladdr=SRC) / option(lladdr=DST)
    assert_key(ex(frame), **ND_FIELDS, tp_src=135)


def test_nd_repeated_all_zero_option_is_not_detected() -> None:
    # The kernel detects a repeat by a non-zero stored address.
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    frame = ns / ICMPv6NDOptSrcLLAddr(lladdr="00:00:00:00:00:00") / ICMPv6NDOptSrcLLAddr(lladdr=SRC)
    assert_key(ex(frame), **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET), nd_sll=mac(SRC))


@pytest.mark.parametrize("bad_len", [0, 3])
def test_nd_bad_option_length_stops_and_keeps_what_was_found(bad_len: int) -> None:
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    frame = bytes(ns / ICMPv6NDOptSrcLLAddr(lladdr=SRC)) + bytes([2, bad_len, 1, 2, 3, 4, 5, 6])
    assert_key(ex(frame), **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET), nd_sll=mac(SRC))


def test_nd_long_lladdr_option_is_ignored() -> None:
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET)
    frame = bytes(ns) + bytes([1, 2]) + bytes(range(1, 15))
    assert_key(ex(frame), **ND_FIELDS, tp_src=135, nd_target=ip6(TARGET))


def test_nd_with_nonzero_code_is_plain_icmpv6() -> None:
    ns = ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET, code=1)
    assert_key(ex(ns / ICMPv6NDOptSrcLLAddr(lladdr=SRC)), **ND_FIELDS, tp_src=135, tp_dst=1)


def test_nd_shorter_than_24_bytes_has_no_target() -> None:
    ns = bytes(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255) / ICMPv6ND_NS(tgt=TARGET))
    assert_key(ex(ns[:-1]), **ND_FIELDS, tp_src=135)


def test_nd_in_a_first_fragment() -> None:
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255)
    frame = ETH / ip / IPv6ExtHdrFragment(m=1) / ICMPv6ND_NS(tgt=TARGET) / ICMPv6NDOptSrcLLAddr(lladdr=SRC)
    result = ex(frame)
    assert_key(
        result,
        **ND_FIELDS,
        ip_frag=1,
        ipv6_exthdrs=flow.EXTHDR_FRAG,
        tp_src=135,
        nd_target=ip6(TARGET),
        nd_sll=mac(SRC),
    )


# ---------------------------------------------------------------------------
# MPLS


def lse(label: int, tc: int = 0, s: int = 0, ttl: int = 0) -> int:
    return label << 12 | tc << 9 | s << 8 | ttl


def test_mpls_one_label_and_nothing_below() -> None:
    result = ex(Ether(src=SRC, dst=DST, type=0x8847) / MPLS(label=100, cos=5, s=1, ttl=63) / IP4 / TCP())
    assert_key(result, eth_type=0x8847, mpls_labels=1, mpls_lse0=lse(100, 5, 1, 63))
    assert (result.mac_len, result.network_offset, result.transport_offset) == (14, 14, None)


def test_mpls_three_labels() -> None:
    stack = MPLS(label=1, s=0) / MPLS(label=2, s=0) / MPLS(label=3, s=1)
    result = ex(Ether(src=SRC, dst=DST, type=0x8847) / stack / IP4)
    assert_key(result, eth_type=0x8847, mpls_labels=7, mpls_lse0=lse(1), mpls_lse1=lse(2), mpls_lse2=lse(3, s=1))


def test_mpls_four_labels_keeps_the_first_three() -> None:
    stack = MPLS(label=1, s=0) / MPLS(label=2, s=0) / MPLS(label=3, s=0) / MPLS(label=4, s=1)
    result = ex(Ether(src=SRC, dst=DST, type=0x8848) / stack / IP4)
    assert_key(result, eth_type=0x8848, mpls_labels=7, mpls_lse0=lse(1), mpls_lse1=lse(2), mpls_lse2=lse(3))


def test_mpls_without_bottom_of_stack_has_count_0() -> None:
    # key_extract_l3l4() returns before setting num_labels_mask; the labels read stay.
    stack = MPLS(label=1, s=0) / MPLS(label=2, s=0)
    result = ex(Ether(src=SRC, dst=DST, type=0x8847) / stack)
    assert_key(result, eth_type=0x8847, mpls_lse0=lse(1), mpls_lse1=lse(2))
    assert_key(ex(bytes(Ether(src=SRC, dst=DST, type=0x8847)) + b"\x00\x01\x41"), eth_type=0x8847)


def test_mpls_under_vlan() -> None:
    result = ex(ETH / Dot1Q(vlan=9) / MPLS(label=77, s=1))
    assert_key(result, vlan_tci=0x1009, vlan_tpid=0x8100, eth_type=0x8847, mpls_labels=1, mpls_lse0=lse(77, s=1))
    assert result.network_offset == 18


# ---------------------------------------------------------------------------
# NSH: parse_nsh() fills the nsh fields, and the kernel drops what it rejects


def nsh(version: int = 0, length_words: int = 2, mdtype: int = 2, np: int = 1, extra: int = 0, flags: int = 0) -> bytes:
    first = version << 14 | flags << 12 | 63 << 6 | length_words
    head = bytes(Ether(src=SRC, dst=DST, type=0x894F)) + struct.pack("!HBBI", first, mdtype, np, 0x100FF)
    return head + bytes(range(1, extra + 1))


def test_nsh_valid() -> None:
    base = {"eth_type": 0x894F, "nsh_ttl": 63, "nsh_np": 1, "nsh_path_hdr": 0x100FF}
    # MD type 2: the context words stay zero.
    assert_key(ex(nsh(flags=2)), **base, nsh_mdtype=2, nsh_flags=2)
    context = {"nsh_c1": 0x01020304, "nsh_c2": 0x05060708, "nsh_c3": 0x090A0B0C, "nsh_c4": 0x0D0E0F10}
    assert_key(ex(nsh(length_words=6, mdtype=1, extra=16)), **base, nsh_mdtype=1, **context)


@pytest.mark.parametrize(
    "frame",
    [
        nsh(version=1),
        nsh(mdtype=3),
        nsh(mdtype=1, length_words=6, extra=15),  # MD1 header not all there
        nsh(mdtype=1, length_words=5, extra=16),  # MD1 must be 24 bytes
        nsh()[:21],  # short base header
    ],
    ids=["version", "mdtype", "md1-short", "md1-length", "base-short"],
)
def test_nsh_rejected_drops_the_packet(frame: bytes) -> None:
    assert extract(frame) is None


# ---------------------------------------------------------------------------
# Robustness and the fast path


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(frame: bytes) -> None:
    result = extract(frame)
    assert result is None or isinstance(result, Extracted)
    if len(frame) < 14:
        assert result is None


ETHERTYPES = [0x0800, 0x86DD, 0x0806, 0x8035, 0x8100, 0x88A8, 0x8847, 0x8848, 0x894F, 0x0040, 0x1234]
NEXT_HEADERS = [0, 6, 17, 43, 44, 51, 58, 59, 60, 132]


@st.composite
def structured_frames(draw: st.DrawFn) -> bytes:
    """Frames whose headers are mostly plausible, to reach the deep paths with garbage in them."""
    frame = bytearray(draw(st.binary(min_size=12, max_size=12)))
    for _ in range(draw(st.integers(0, 3))):
        frame += struct.pack("!HH", draw(st.sampled_from([0x8100, 0x88A8])), draw(st.integers(0, 0xFFFF)))
    etype = draw(st.sampled_from(ETHERTYPES))
    frame += struct.pack("!H", etype)
    if etype == 0x0800:
        frame += bytes([draw(st.sampled_from([0x45, 0x46, 0x44, 0x4F])), 0, 0, 0, 0, 0])
        fragment = draw(st.sampled_from([0, 0x2000, 0x0010, 0x4000]))
        frame += struct.pack("!HBB", fragment, 64, draw(st.sampled_from([1, 6, 17, 132, 47])))
    elif etype == 0x86DD:
        frame += bytes(6) + bytes([draw(st.sampled_from(NEXT_HEADERS)), 64]) + bytes(32)
        for _ in range(draw(st.integers(0, 4))):
            frame += bytes([draw(st.sampled_from(NEXT_HEADERS)), draw(st.integers(0, 3))])
            frame += draw(st.binary(min_size=6, max_size=6))
        if draw(st.booleans()):
            frame += bytes([draw(st.sampled_from([135, 136, 128])), 0]) + bytes(22)
            for _ in range(draw(st.integers(0, 3))):
                frame += bytes([draw(st.integers(1, 3)), draw(st.integers(0, 2))]) + bytes(6)
    frame += draw(st.binary(max_size=80))
    cut = draw(st.integers(0, len(frame)))
    return bytes(frame[: len(frame) - cut if draw(st.booleans()) else len(frame)])


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(structured_frames(), st.integers(0, (1 << 32) - 1))
def test_structured_frames_never_raise_and_keep_meta(frame: bytes, in_port: int) -> None:
    meta = swkey.build({"in_port": in_port & 0xFFFF, "skb_mark": in_port})
    result = extract(frame, meta)
    if result is None:
        assert len(frame) < 14 or extract(frame) is None
        return
    plain = extract(frame)
    assert plain is not None
    assert result.key == meta | plain.key
    assert result.network_offset == result.mac_len
    assert 14 <= result.mac_len <= len(frame)
    assert result.l4_len >= 0


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=34, max_size=34), st.binary(min_size=14, max_size=60), st.integers(0, 2))
def test_fast_path_agrees_with_the_general_path(header: bytes, rest: bytes, variant: int) -> None:
    frame = bytearray(header + rest)
    frame[12:14] = b"\x08\x00"
    if variant:
        frame[14] = (frame[14] & 0xF0) | 5  # IHL 5: the fast path applies
        frame[23] = (6, 17)[variant - 1]  # TCP or UDP
    assert extract(bytes(frame)) == flow._extract(bytes(frame), len(frame), 0)


def test_fast_path_agrees_on_scapy_packets() -> None:
    packets: list[Packet] = [
        ETH / IP4 / TCP(sport=1, dport=2, flags="S") / PAYLOAD,
        ETH / IP4 / TCP(dataofs=4) / PAYLOAD,
        ETH / IP4 / UDP(sport=1, dport=2) / PAYLOAD,
        ETH / IP4 / SCTP(sport=1, dport=2) / PAYLOAD,
        ETH / IP4 / ICMP(type=11, code=1) / PAYLOAD,
        ETH / IP(src="10.0.0.1", dst="10.0.0.2", frag=3) / PAYLOAD,
        ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / TCP() / PAYLOAD,
        ETH / IP(src="10.0.0.1", dst="10.0.0.2", proto=99) / PAYLOAD,
    ]
    for packet in packets:
        frame = bytes(packet)
        for length in range(48, len(frame) + 1):
            assert extract(frame[:length]) == flow._extract(frame[:length], length, 0), (packet.summary(), length)


def test_buffer_types() -> None:
    frame = bytes(ETH / IP6 / TCP(sport=1, dport=2))
    expected = extract(frame)
    assert extract(bytearray(frame)) == expected
    assert extract(memoryview(frame)) == expected
    assert extract(memoryview(b"\x00" + frame)[1:]) == expected
