"""GRE encapsulation/decapsulation of the simulator (odp.sim.vport_gre), checked with scapy,
and GRE traffic between two simulated hosts."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, IP, TCP
from scapy.layers.l2 import Ether

from odp.constants import TunnelFlag
from odp.datapath import Connection
from odp.errors import ExistsError
from odp.sim import Network
from odp.sim import vport_gre as gr
from odp.sim.datapath import SimBackend
from odp.sim.packet import TunnelInfo, checksum

LOCAL = int(ipaddress.IPv4Address("192.168.0.1"))
REMOTE = int(ipaddress.IPv4Address("192.168.0.2"))
INNER = bytes(
    Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2", tos=0x2A)
    / TCP(sport=1234, dport=80)
    / b"payload"
)
KEY, CSUM, DF = int(TunnelFlag.KEY), int(TunnelFlag.CSUM), int(TunnelFlag.DF)


def tun(**kw: Any) -> TunnelInfo:
    base: dict[str, Any] = dict(tun_id=0x12345678, ipv4_dst=REMOTE, ttl=64, flags=KEY, egress=True)
    base.update(kw)
    return TunnelInfo(**base)


def encap(t: TunnelInfo, inner: bytes = INNER) -> bytes:
    out = gr.encapsulate(inner, t, src_mac=1, dst_mac=2, src_ip=LOCAL)
    assert out is not None
    return out


def test_encapsulation_as_scapy_reads_it() -> None:
    p = Ether(encap(tun(flags=KEY | CSUM | DF)))
    assert (p[IP].proto, p[IP].flags, p[IP].ttl) == (47, "DF", 64)
    g = p[GRE]
    assert (g.chksum_present, g.key_present, g.seqnum_present, g.proto, g.key) == (1, 1, 0, 0x6558, 0x12345678)
    assert checksum(bytes(p[IP].payload)) == 0
    assert bytes(g.payload) == INNER


def test_tos_one_inherits_the_inner_dscp() -> None:
    assert Ether(encap(tun(tos=1)))[IP].tos == 0x2A
    assert Ether(encap(tun(tos=0x40)))[IP].tos == 0x42


def test_ipv6_metadata_or_no_source_is_not_sent() -> None:
    assert gr.encapsulate(INNER, tun(ipv4_dst=0, ipv6_dst=1), src_mac=1, dst_mac=2, src_ip=LOCAL) is None
    assert gr.encapsulate(INNER, tun(), src_mac=1, dst_mac=2) is None


@settings(max_examples=50, deadline=None)
@given(tun_id=st.integers(0, 0xFFFFFFFF), key=st.booleans(), tos=st.sampled_from([0, 0x20, 0xB8]))
def test_round_trip(tun_id: int, key: bool, tos: int) -> None:
    result = gr.decapsulate(encap(tun(tun_id=tun_id, flags=KEY if key else 0, tos=tos)), local_ips={REMOTE})
    assert isinstance(result, tuple)
    inner, md = result
    assert inner == INNER
    assert (md.tun_id, md.flags, md.ipv4_src, md.tos & ~3, md.tp_src, md.tp_dst) == (
        tun_id if key else 0, KEY if key else 0, LOCAL, tos, 0, 0
    )  # fmt: skip


def test_checksummed_packets_are_dropped_as_errors() -> None:
    sent = encap(tun(flags=KEY | CSUM))
    assert gr.decapsulate(sent, local_ips={REMOTE}) == gr.DROP_CHECKSUMMED
    bad = sent[:-1] + bytes([sent[-1] ^ 1])
    assert gr.decapsulate(bad, local_ips={REMOTE}) == gr.DROP_BAD_CHECKSUM


@pytest.mark.parametrize(
    ("offset", "patch", "expected"),
    [(0, b"\x20\x01", gr.DROP_VERSION), (0, b"\x60\x00", gr.DROP_VERSION), (2, b"\x08\x00", gr.DROP_NOT_ETHERNET)],
)
def test_gre_layer_drops(offset: int, patch: bytes, expected: object) -> None:
    sent = encap(tun())
    at = 34 + offset
    # The IP header is unchanged, so the frame still reaches GRE.
    assert gr.decapsulate(sent[:at] + patch + sent[at + len(patch) :], local_ips={REMOTE}) == expected


def test_two_hosts_end_to_end_and_one_gre_vport_per_host() -> None:
    net = Network()
    a, b = net.host("a", "172.16.0.1"), net.host("b", "172.16.0.2")
    dp_a = Connection(SimBackend(a)).create_datapath("dpa")
    dp_b = Connection(SimBackend(b)).create_datapath("dpb")
    a.add_interface("veth-a")
    b.add_interface("veth-b")
    pa = dp_a.add_vport("veth-a").port_no
    ga = dp_a.add_vport("gre", "gre").port_no
    pb = dp_b.add_vport("veth-b").port_no
    gb = dp_b.add_vport("gre", "gre").port_no
    with pytest.raises(ExistsError):
        dp_b.add_vport("gre2", "gre")
    dp_a.add_flow(
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64)),{ga}"
    )
    dp_b.add_flow(
        f"tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2,flags(+key)),in_port({gb}),eth(),eth_type(0x0800),ipv4()",
        f"{pb}",
    )
    a.interface("veth-a").inject(INNER)
    assert b.interface("veth-b").receive() == [INNER]
    assert dp_b.flows()[0].stats.packets == 1
