"""Flows matching tunnel options and NSH in the simulator, matched as the kernel matches them.

The kernel keeps Geneve TLVs, the VXLAN GBP word and ERSPAN metadata in
``sw_flow_key.tun_opts`` with their length in ``tun_opts_len`` (which a flow
with options always matches exactly) and a TUNNEL_*_OPT flag; NSH in
``sw_flow_key.nsh``.  A flow naming them must hit only packets that carry
them, and dumps and miss upcalls must report them as ``__ovs_nla_put_key`` does.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import nsh, tunnels

import odp
from odp.actions import Actions, Output
from odp.constants import TunnelFlag
from odp.errors import InvalidFlow
from odp.fields import Masked
from odp.keys import Ethernet, EthType, InPort, Ipv4, MaskedBytes, Match, Nsh, Tunnel
from odp.sim import Host
from odp.sim.flow import extract
from odp.sim.flow_table import FlowTable, SimFlow
from odp.sim.packet import TunnelInfo
from odp.text import format_match, parse_match
from odp.validate import swkey
from odp.validate.fastpath import from_match
from odp.validate.get_match import sw_match
from odp.validate.put_key import flow_match, packet_match

DST = int(ipaddress.IPv4Address("172.16.0.1"))
SRC = int(ipaddress.IPv4Address("172.16.0.2"))
#: One Geneve TLV: class 0x0102, type 0x80, one 4-byte word of data 0x0000000a.
OPT_A = bytes.fromhex("010280010000000a")
OPT_B = bytes.fromhex("010280010000000b")
GENEVE_FLOW = (
    "tunnel(tun_id=0x2a,dst=172.16.0.1,ttl=64,geneve({class=0x102,type=0x80,len=4,0xa}),flags(+key)),"
    "in_port(1),eth(),eth_type(0x0800),ipv4()"
)
FRAME = bytes.fromhex("0200000000020200000000010800") + bytes.fromhex(
    "4500001c00000000401100000a0000010a0000020035003500080000"
)


def tunnel_meta(opts: bytes = b"", flags: int = int(TunnelFlag.KEY)) -> int:
    """The metadata of a packet a Geneve vport received (ovs_flow_key_extract from tun_info)."""
    if opts:
        flags |= swkey.TUN_GENEVE_OPT
    return swkey.build(
        {
            "in_port": 1,
            "tun_proto": 2,
            "tun_id": 0x2A,
            "tun_ipv4_src": SRC,
            "tun_ipv4_dst": DST,
            "tun_ttl": 64,
            "tun_flags": flags,
            "tun_opts": int.from_bytes(opts, "big"),
            "tun_opts_len": len(opts),
        }
    )


def packet_key(meta: int) -> int:
    ext = extract(FRAME, meta)
    assert ext is not None
    return ext.key


def table_with(match: Match) -> tuple[FlowTable, SimFlow]:
    sw = from_match(match)
    flow = SimFlow(sw=sw, unmasked_key=sw.key, match=match, actions=Actions([Output(2)]))
    table = FlowTable()
    table.insert(flow)
    return table, flow


def test_geneve_option_flow_hits_only_packets_with_those_options() -> None:
    table, flow = table_with(parse_match(GENEVE_FLOW))
    assert table.lookup(packet_key(tunnel_meta(OPT_A))) is flow
    assert table.lookup(packet_key(tunnel_meta(OPT_B))) is None  # other option data
    assert table.lookup(packet_key(tunnel_meta())) is None  # no options at all
    assert table.lookup(packet_key(tunnel_meta(OPT_A + OPT_B))) is None  # more options: another tun_opts_len


def test_wildcarded_geneve_option_data_still_matches_the_options_length() -> None:
    base = parse_match(GENEVE_FLOW)
    tunnel = base.attrs[0]
    assert isinstance(tunnel, Tunnel)
    wild = Tunnel(
        geneve=MaskedBytes(OPT_A, b"\xff\xff\xff\xff\x00\x00\x00\x00"),
        **{spec.name: getattr(tunnel, spec.name) for spec in Tunnel.FIELDS},
    )
    table, flow = table_with(Match(wild, *base.attrs[1:]))
    assert table.lookup(packet_key(tunnel_meta(OPT_A))) is flow
    assert table.lookup(packet_key(tunnel_meta(OPT_B))) is flow  # the data is wildcarded
    # The kernel's mask has tun_opts_len 0xff: a packet without options misses.
    assert table.lookup(packet_key(tunnel_meta())) is None


def test_dumps_and_miss_keys_report_geneve_options() -> None:
    match = parse_match(GENEVE_FLOW)
    _, flow = table_with(match)
    dumped = format_match(flow_match(flow.unmasked_key, flow.sw))
    assert "geneve({class=0x102,type=0x80,len=4,0xa})" in dumped
    missed = packet_match(packet_key(tunnel_meta(OPT_B)))
    tunnel = missed.attrs[[type(a) for a in missed.attrs].index(Tunnel)]
    assert isinstance(tunnel, Tunnel)
    assert tunnel.geneve == MaskedBytes(OPT_B, b"\xff" * len(OPT_B))
    assert "geneve({class=0x102,type=0x80,len=4,0xb})" in format_match(missed)
    # A packet without options reports none.
    plain = packet_match(packet_key(tunnel_meta()))
    assert "geneve" not in format_match(plain)


def test_erspan_flow_matches_its_metadata() -> None:
    erspan = struct.pack("=I", 1) + bytes.fromhex("000000ab00000000")
    flow_text = GENEVE_FLOW.replace("geneve({class=0x102,type=0x80,len=4,0xa})", f"erspan(raw={erspan.hex()})")
    table, flow = table_with(parse_match(flow_text))

    def meta(opts: bytes) -> int:
        key = tunnel_meta(opts)
        flags = swkey.get(key, "tun_flags") & ~swkey.TUN_GENEVE_OPT
        return swkey.put(key, "tun_flags", flags | (swkey.TUN_ERSPAN_OPT if opts else 0))

    assert table.lookup(packet_key(meta(erspan))) is flow
    assert table.lookup(packet_key(meta(erspan[:-1] + b"\x01"))) is None
    assert table.lookup(packet_key(meta(b""))) is None
    assert "erspan(" in format_match(flow_match(flow.unmasked_key, flow.sw))


def _vxlan_key(gbp: int) -> int:
    info = TunnelInfo(tun_id=0x2A, ipv4_src=SRC, ipv4_dst=DST, ttl=64, flags=int(TunnelFlag.KEY), gbp=gbp)
    return packet_key(swkey.put(0, "in_port", 1) | info.key_bits())


def test_vxlan_gbp_flow_hits_only_packets_with_that_gbp() -> None:
    text = GENEVE_FLOW.replace("geneve({class=0x102,type=0x80,len=4,0xa})", "vxlan(gbp(id=10,flags=0x1))")
    table, flow = table_with(parse_match(text))
    assert table.lookup(_vxlan_key(0x1000A)) is flow
    assert table.lookup(_vxlan_key(0x1000B)) is None
    assert table.lookup(_vxlan_key(0)) is None  # no GBP header: no VXLAN options
    assert "vxlan(gbp(id=10,flags=0x1))" in format_match(packet_match(_vxlan_key(0x1000A)))
    # The metadata survives the key round trip (what userspace() and recirculation read back).
    info = TunnelInfo.from_key(_vxlan_key(0x1000A))
    assert info is not None
    assert (info.gbp, info.flags) == (0x1000A, int(TunnelFlag.KEY))


def test_tunnel_flows_without_options_ignore_the_options() -> None:
    """As in the kernel: only a flow that names options masks tun_opts_len
    (genev_tun_opt_from_nlattr), so a flow without them hits packets with or without."""
    table, flow = table_with(parse_match(GENEVE_FLOW.replace("geneve({class=0x102,type=0x80,len=4,0xa}),", "")))
    assert table.lookup(packet_key(tunnel_meta())) is flow
    assert table.lookup(packet_key(tunnel_meta(OPT_A))) is flow


def _nsh_frame(spi: int, c1: int) -> bytes:
    head = struct.pack("!HBBI", 63 << 6 | 6, 1, 3, spi << 8 | 255)
    return bytes.fromhex("020000000002020000000001894f") + head + struct.pack("!IIII", c1, 0, 0, 0)


@pytest.mark.parametrize(("spi", "c1", "hit"), [(0x100, 1, True), (0x101, 1, False), (0x100, 2, False)])
def test_nsh_flow_matches_injected_nsh_frames(spi: int, c1: int, hit: bool) -> None:
    host = Host("n")
    conn = odp.connect("sim", host=host)
    dp = conn.create_datapath("d")
    host.add_interface("v1")
    host.add_interface("v2")
    dp.add_vport("v1")
    dp.add_vport("v2")
    dp.add_flow("in_port(1),eth(),eth_type(0x894f),nsh(flags=0,ttl=63,mdtype=1,np=3,spi=0x100,si=255,c1=0x1)", "2")
    with dp.listen() as listener:
        host.interface("v1").inject(_nsh_frame(spi, c1))
        upcalls = listener.receive()
    (flow,) = dp.flows()
    assert flow.stats.packets == (1 if hit else 0)
    assert "nsh(flags=0,ttl=63,mdtype=1,np=3,spi=0x100,si=255,c1=0x1)" in format_match(flow.match)
    # A miss reports the packet's NSH fields in the upcall's key, exactly.
    keys = [format_match(up.key) for up in upcalls]
    assert keys == ([] if hit else [keys[0]])
    if not hit:
        assert f"nsh(flags=0,ttl=63,mdtype=1,np=3,spi={spi:#x},si=255,c1={c1:#x},c2=0x0,c3=0x0,c4=0x0)" in keys[0]


# ---------------------------------------------------------------------------
# Properties: what put_key reports, get_match stores again unchanged.


def _plausible_tunnel(t: Tunnel, dst: int, option: int) -> Tunnel:
    """A tunnel the kernel accepts: an IPv4 destination and at most one kind of options."""
    kw = {spec.name: getattr(t, spec.name) for spec in Tunnel.FIELDS}
    kw["ipv6_src"] = kw["ipv6_dst"] = Masked(0, 0)
    kw["ipv4_dst"] = Masked(dst, kw["ipv4_dst"].mask)
    if option != 2:
        kw["vxlan_gbp"] = Masked(0, 0)
    # (The kernel does not round-trip two kinds of options: ERSPAN options of
    # another length than struct erspan_metadata's 12 bytes are stored but
    # dumped as 12, and empty Geneve options are matched but not dumped.)
    erspan = t.erspan if option == 1 and t.erspan is not None and len(t.erspan.value) == 12 else None
    geneve = t.geneve if option == 0 and t.geneve is not None and t.geneve.value else None
    return Tunnel(geneve=geneve, erspan=erspan, **kw)


def _plausible_nsh(n: Nsh) -> Nsh:
    kw = {spec.name: getattr(n, spec.name) for spec in Nsh.FIELDS}
    kw["mdtype"] = Masked(1, kw["mdtype"].mask)
    return Nsh(**kw)


_IP = (InPort(1), Ethernet(), EthType(0x0800), Ipv4())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.builds(_plausible_tunnel, tunnels(), st.integers(1, 0xFFFFFFFF), st.integers(0, 2)).map(
            lambda t: Match(t, *_IP)
        ),
        nsh().map(lambda n: Match(InPort(1), Ethernet(), EthType(0x894F), _plausible_nsh(n))),
    )
)
def test_a_dumped_flow_installs_as_the_same_flow(match: Match) -> None:
    """Tunnel options and NSH survive __ovs_nla_put_key then ovs_nla_get_match: the
    dump of a stored flow, installed again, stores the same key and mask."""
    try:
        sw = sw_match(match)
    except InvalidFlow:
        return
    assert sw_match(flow_match(sw.key, sw)) == sw
    assert from_match(match) == sw  # the general path serves these shapes
