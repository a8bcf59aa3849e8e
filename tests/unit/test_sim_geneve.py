"""Geneve encapsulation/decapsulation of the simulator (odp.sim.vport_geneve), checked with
scapy, and Geneve traffic between two simulated hosts."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from odp.constants import TunnelFlag
from odp.datapath import Connection
from odp.sim import Network
from odp.sim import vport_geneve as gn
from odp.sim.datapath import SimBackend
from odp.sim.packet import TunnelInfo, checksum
from odp.sim.udp_tunnel import DecapDrop, TunnelDrop
from odp.validate import swkey

LOCAL = int(ipaddress.IPv4Address("192.168.0.1"))
REMOTE = int(ipaddress.IPv4Address("192.168.0.2"))
HOST_MAC, NEXT_MAC, DEV_MAC = 0x020000000001, 0x020000000002, 0x0A0000000099
PORT = 6081
OPT_CRIT = struct.pack("!HBB", 0x102, 0x80, 1) + b"\xa1\xb2\xc3\xd4"
OPT_PLAIN = struct.pack("!HBB", 0xFFFF, 0x01, 2) + bytes(range(8))
INNER = bytes(
    Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=1234, dport=80)
    / b"payload"
)


def tun(**kw: Any) -> TunnelInfo:
    base: dict[str, Any] = dict(tun_id=0x123456, ipv4_dst=REMOTE, ttl=64, flags=int(TunnelFlag.KEY), egress=True)
    base.update(kw)
    return TunnelInfo(**base)


def encap(t: TunnelInfo, inner: bytes = INNER) -> bytes:
    out = gn.encapsulate(inner, t, vport_dst_port=PORT, src_mac=HOST_MAC, dst_mac=NEXT_MAC, src_ip=LOCAL)
    assert out is not None
    return out


def decap(outer: bytes) -> Any:
    # Addressed back to LOCAL: swap the addresses of an encapsulated frame.
    return gn.decapsulate(outer, local_ips={REMOTE}, vport_dst_port=PORT, device_mac=DEV_MAC)


def test_encapsulation_as_scapy_reads_it() -> None:
    p = Ether(encap(tun(geneve=OPT_CRIT + OPT_PLAIN, flags=int(TunnelFlag.KEY | TunnelFlag.OAM))))
    assert p[IP].src == "192.168.0.1" and p[IP].dst == "192.168.0.2" and p[IP].ttl == 64
    assert checksum(bytes(p[IP])[:20]) == 0
    assert p[UDP].dport == PORT and p[UDP].chksum == 0 and 1 <= p[UDP].sport < 0xFFFF
    g = GENEVE(bytes(p[UDP].payload))
    assert (g.version, g.optionlen, g.oam, g.critical, g.proto, g.vni) == (0, 5, 1, 1, 0x6558, 0x123456)
    assert bytes(p[UDP].payload)[8:28] == OPT_CRIT + OPT_PLAIN
    assert bytes(p[UDP].payload)[28:] == INNER


@pytest.mark.parametrize(("opts", "critical"), [(b"", 0), (OPT_PLAIN, 0), (OPT_PLAIN + OPT_CRIT, 1)])
def test_critical_bit_follows_the_option_types(opts: bytes, critical: int) -> None:
    payload = bytes(Ether(encap(tun(geneve=opts)))[UDP].payload)
    assert payload[1] & 0x40 == critical << 6


def test_metadata_destination_port_is_not_used() -> None:
    assert Ether(encap(tun(tp_dst=4790)))[UDP].dport == PORT


def test_no_ipv4_destination_or_source_is_a_failed_route() -> None:
    assert gn.encapsulate(INNER, tun(ipv4_dst=0), vport_dst_port=PORT, src_mac=1, dst_mac=2, src_ip=LOCAL) is None
    assert gn.encapsulate(INNER, tun(), vport_dst_port=PORT, src_mac=1, dst_mac=2) is None


@settings(max_examples=50, deadline=None)
@given(
    vni=st.integers(0, 0xFFFFFF),
    opts=st.lists(st.binary(min_size=0, max_size=12).map(lambda b: b + bytes(-len(b) % 4)), max_size=4),
    csum=st.booleans(),
)
def test_round_trip(vni: int, opts: list[bytes], csum: bool) -> None:
    raw = b"".join(struct.pack("!HBB", 0x100 + i, i, len(o) // 4) + o for i, o in enumerate(opts))
    flags = int(TunnelFlag.KEY) | (int(TunnelFlag.CSUM) if csum else 0)
    result = decap(encap(tun(tun_id=vni, geneve=raw, flags=flags)))
    assert isinstance(result, tuple)
    inner, md = result
    assert inner == INNER
    assert (md.tun_id, md.ipv4_src, md.ipv4_dst, md.geneve, md.flags, md.egress) == (
        vni, LOCAL, REMOTE, raw, flags, False
    )  # fmt: skip
    assert TunnelInfo.from_key(md.key_bits()) == md


def test_key_bits_flag_the_options_as_geneve() -> None:
    key = tun(geneve=OPT_CRIT, egress=False).key_bits()
    assert swkey.get(key, "tun_flags") & swkey.TUN_GENEVE_OPT
    assert swkey.get(key, "tun_opts_len") == 8
    assert not swkey.get(tun(egress=False).key_bits(), "tun_flags") & swkey.TUN_GENEVE_OPT


def _rewrite(outer: bytes, offset: int, data: bytes) -> bytes:
    return outer[:offset] + data + outer[offset + len(data) :]


GENEVE_OFF = 14 + 20 + 8


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (b"\x40", gn.DROP_VERSION),
        (b"\x00\x00\x12\x34", gn.DROP_PROTOCOL),
        (b"\x00\x00\x08\x00", gn.DROP_NOT_ETHERNET),
        (b"\x3f", gn.DROP_SHORT_OPTIONS),
    ],
)
def test_driver_drops(patch: bytes, expected: TunnelDrop) -> None:
    assert decap(_rewrite(encap(tun()), GENEVE_OFF, patch)) == expected


def test_loop_and_short_drops() -> None:
    looped = INNER[:6] + DEV_MAC.to_bytes(6, "big") + INNER[12:]
    assert decap(encap(tun(), looped)) == gn.DROP_LOOP
    sent = encap(tun(flags=int(TunnelFlag.KEY | TunnelFlag.CSUM)))
    assert decap(sent[:-1] + bytes([sent[-1] ^ 1])) == DecapDrop("bad UDP checksum")


def test_two_hosts_end_to_end_with_options() -> None:
    net = Network()
    a, b = net.host("a", "172.16.0.1"), net.host("b", "172.16.0.2")
    dp_a = Connection(SimBackend(a)).create_datapath("dpa")
    dp_b = Connection(SimBackend(b)).create_datapath("dpb")
    a.add_interface("veth-a")
    b.add_interface("veth-b")
    pa = dp_a.add_vport("veth-a").port_no
    ga = dp_a.add_vport("gnv", "geneve").port_no
    pb = dp_b.add_vport("veth-b").port_no
    gb = dp_b.add_vport("gnv", "geneve").port_no
    opt = "geneve({class=0x102,type=0x80,len=4,0xa1b2c3d4})"
    dp_a.add_flow(
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64,{opt})),{ga}"
    )
    dp_b.add_flow(
        f"tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2,{opt},flags(+key)),in_port({gb}),eth(),"
        "eth_type(0x0800),ipv4()",
        f"{pb}",
    )
    a.interface("veth-a").inject(INNER)
    assert b.interface("veth-b").receive() == [INNER]
    assert dp_b.flows()[0].stats.packets == 1
    assert dp_a.vport(ga).stats().tx_packets == 1


def test_two_hosts_over_ipv6() -> None:
    net = Network()
    a = net.host("a", "172.16.0.1", ip6="2001:db8::a")
    b = net.host("b", "172.16.0.2", ip6="2001:db8::b")
    dp_a = Connection(SimBackend(a)).create_datapath("dpa")
    dp_b = Connection(SimBackend(b)).create_datapath("dpb")
    a.add_interface("veth-a")
    b.add_interface("veth-b")
    pa = dp_a.add_vport("veth-a").port_no
    ga = dp_a.add_vport("gnv", "geneve").port_no
    pb = dp_b.add_vport("veth-b").port_no
    gb = dp_b.add_vport("gnv", "geneve").port_no
    # Geneve's IPv6 socket wants UDP checksums: the sender must set csum.
    dp_a.add_flow(
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x2a,ipv6_dst=2001:db8::b,ttl=64,flags(csum))),{ga}",
    )
    dp_b.add_flow(
        f"tunnel(tun_id=0x2a,ipv6_src=2001:db8::a,ipv6_dst=2001:db8::b,flags(+key)),in_port({gb}),eth(),"
        "eth_type(0x0800),ipv4()",
        f"{pb}",
    )
    a.interface("veth-a").inject(INNER)
    assert b.interface("veth-b").receive() == [INNER]
    assert Ether(net.log[0]).haslayer("IPv6")
    # Without csum the zero-checksum frame is dropped by b's UDP layer, not delivered.
    dp_a.modify_flow(
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x2a,ipv6_dst=2001:db8::b,ttl=64)),{ga}"
    )
    a.interface("veth-a").inject(INNER)
    assert b.interface("veth-b").receive() == []
    assert dp_b.flows()[0].stats.packets == 1


@pytest.mark.parametrize("opts", ["vxlan(gbp(id=10,flags=0))", "erspan(ver=1,idx=0x7)"])
def test_non_geneve_options_to_a_geneve_vport_are_refused(opts: str) -> None:
    from odp.errors import NotSupported
    from odp.sim.network import Host

    host = Host("h")
    dp = Connection(SimBackend(host)).create_datapath("dp")
    host.add_interface("a")
    pa = dp.add_vport("a").port_no
    gn_port = dp.add_vport("gnv", "geneve").port_no
    match = f"in_port({pa}),eth(),eth_type(0x0800),ipv4()"
    with pytest.raises(NotSupported, match="uninitialised Geneve option bytes"):
        dp.add_flow(match, f"set(tunnel(tun_id=0x1,dst=10.0.0.2,ttl=64,{opts})),{gn_port}")
    assert dp.flows() == []
    dp.add_flow(
        match, f"set(tunnel(tun_id=0x1,dst=10.0.0.2,ttl=64,geneve({{class=0x1,type=0x2,len=4,0x3}}))),{gn_port}"
    )
