"""Interoperability with Debian's ovs-dpctl (Open vSwitch 3.1), the reference client.

Flows installed here must be dumped by ``ovs-dpctl dump-flows`` exactly as odp
formats its own dump of them, and flows ``ovs-dpctl add-flow`` installs must
read back here with the same text.  Datapaths and vports must look the same
from both sides too.
"""

from __future__ import annotations

import re

import pytest
from kernel_helpers import ovs_dpctl, ovs_dpctl_version, unique

from odp.datapath import Connection, Datapath
from odp.records import Flow
from odp.text import format_actions, format_match, parse_actions, parse_match

# Flows both odp and ovs-dpctl 3.1 can install: (match, actions) in ovs-dpctl's
# canonical form, as dump-flows prints them.
FLOWS = [
    ("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no)", "2"),
    ("in_port(2),eth(src=00:11:22:33:44:55,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(tip=10.0.0.1)", "1,3"),
    (
        "skb_priority(0x3),in_port(3),skb_mark(0x7),eth(),eth_type(0x86dd),"
        "ipv6(dst=fe80::1,proto=58,frag=no),icmpv6(type=128,code=0)",
        "1",
    ),
    (
        "recirc_id(0x5),in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80),tcp_flags(syn)",
        "push_vlan(vid=10,pcp=3),2",
    ),
    (
        "in_port(4),eth(),eth_type(0x8100),vlan(vid=10,pcp=0),"
        "encap(eth_type(0x0800),ipv4(src=192.168.1.1,proto=17,frag=no),udp(src=53))",
        "pop_vlan,1",
    ),
    (
        "in_port(5),eth(dst=01:00:00:00:00:00/01:00:00:00:00:00),eth_type(0x0800),ipv4(frag=no)",
        "userspace(pid=1234,userdata(0102030405060708))",
    ),
    (
        "in_port(6),eth(),eth_type(0x0800),ipv4(src=10.1.1.1,ttl=64,frag=no)",
        "set(ipv4(src=10.2.2.2,dst=10.3.3.3,ttl=63)),1",
    ),
    ("in_port(7),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8)", "sample(sample=50.0%,actions(1)),2"),
    (
        "tunnel(tun_id=0x5,src=1.1.1.1,dst=2.2.2.2,ttl=64,flags(-df+csum+key)),in_port(8),eth(),eth_type(0x0800),"
        "ipv4(frag=no)",
        "1",
    ),
    (
        "in_port(10),eth(),eth_type(0x0800),ipv4(frag=no)",
        "set(tunnel(tun_id=0x7,dst=10.0.0.9,ttl=64,tp_dst=4789,flags(df|key))),trunc(100),clone(1)",
    ),
    ("in_port(11),eth(),eth_type(0x0800),ipv4(frag=no)", "check_pkt_len(size=200,gt(2),le(3)),ct(commit,zone=5),1"),
    (  # a SET_MASKED of mpls: only the label of the top LSE changes
        "in_port(14),eth(),eth_type(0x8847),mpls(label=100/0xfffff,tc=0/0,ttl=0/0x0,bos=1/1)",
        "set(mpls(label=7/0xfffff,tc=0/0,ttl=0/0x0,bos=0/0)),1",
    ),
]

# Flows only odp can install (ovs-dpctl 3.1 cannot parse recirc(), hash() or dec_ttl(), and
# prints a wildcarded tcp() away although the kernel needs it): (match given, actions given,
# canonical match, canonical actions).
ODP_ONLY = [
    (
        "ct_state(+new+trk),in_port(9),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(),tcp_flags(0/0)",
        "ct(commit,zone=5),1",
        "in_port(9),ct_state(+new+trk),eth(),eth_type(0x0800),ipv4(proto=6,frag=no)",
        "ct(commit,zone=5),1",
    ),
    (
        "in_port(12),eth(),eth_type(0x0800),ipv4(frag=no)",
        "hash(l4(0)),recirc(0x3)",
        "in_port(12),eth(),eth_type(0x0800),ipv4(frag=no)",
        "hash(l4(0)),recirc(0x3)",
    ),
]

# ovs-dpctl 3.1 does not know OVS_KEY_ATTR_IPV6_EXTHDRS (32), which Linux 5.18+ dumps for
# every IPv6 flow, and prints it raw: "key32(00 00/00 00)".  odp knows it as ipv6_exthdrs()
# and, wildcarded, omits it as OVS does for every wildcarded attribute it knows.
_UNKNOWN_TO_OVS = re.compile(r",key32\([0-9a-f /]*\)")


def dump_lines(dp_name: str) -> list[str]:
    return [line.strip() for line in ovs_dpctl("dump-flows", dp_name).splitlines() if line.strip()]


def split_line(line: str) -> tuple[str, str]:
    """(match, actions) of a dump-flows line."""
    m = re.match(r"^(?:ufid:\S+, )?(.*?), packets:\d+, bytes:\d+, used:\S+(?:, flags:\S+)?, actions:(.*)$", line)
    assert m, f"not a dump-flows line: {line}"
    return _UNKNOWN_TO_OVS.sub("", m.group(1)), m.group(2)


def odp_text(flow: Flow) -> tuple[str, str]:
    assert flow.match is not None and flow.actions is not None
    return format_match(flow.match), format_actions(flow.actions)


def test_ovs_dpctl_sees_datapaths_and_vports(conn: Connection, dp: Datapath) -> None:
    dp.add_vport(unique("kin"), "internal")
    dp.add_vport(unique("kvx"), "vxlan", dst_port=4790)
    dps = ovs_dpctl("dump-dps").split()
    assert f"system@{dp.name}" in dps
    show = ovs_dpctl("show", dp.name)
    for v in dp.vports():
        # (ovs-dpctl prints a tunnel's options from its own defaults, not the kernel's dst_port)
        assert f"port {v.port_no}: {v.name} ({v.kind.value}" in show


def test_datapath_made_by_ovs_dpctl_is_seen_here(conn: Connection) -> None:
    name = unique("kod")
    ovs_dpctl("add-dp", name)
    try:
        dp = conn.datapath(name)
        assert dp.info().features  # ovs-dpctl turns on unaligned (and vport pids)
        ovs_dpctl("add-if", name, f"{unique('koi')},type=internal")
        assert len(dp.vports()) == 2
    finally:
        ovs_dpctl("del-dp", name)


@pytest.mark.parametrize(("match", "actions"), FLOWS, ids=[f"flow{i}" for i in range(len(FLOWS))])
def test_flows_installed_here_dump_identically_in_ovs_dpctl(dp: Datapath, match: str, actions: str) -> None:
    dp.add_flow(parse_match(match), parse_actions(actions))
    (line,) = dump_lines(dp.name)
    theirs = split_line(line)
    (flow,) = dp.flows()
    assert odp_text(flow) == theirs
    assert theirs == (match, actions)


@pytest.mark.parametrize(("given", "actions", "match", "canonical"), ODP_ONLY, ids=["ct", "recirc"])
def test_flows_only_odp_can_install_dump_identically(
    dp: Datapath, given: str, actions: str, match: str, canonical: str
) -> None:
    dp.add_flow(parse_match(given), parse_actions(actions))
    (line,) = dump_lines(dp.name)
    (flow,) = dp.flows()
    assert odp_text(flow) == split_line(line) == (match, canonical)


@pytest.mark.parametrize(("match", "actions"), FLOWS, ids=[f"flow{i}" for i in range(len(FLOWS))])
def test_flows_installed_by_ovs_dpctl_read_back_identically(dp: Datapath, match: str, actions: str) -> None:
    ovs_dpctl("add-flow", dp.name, match, actions)
    (line,) = dump_lines(dp.name)
    (flow,) = dp.flows()
    assert odp_text(flow) == split_line(line) == (match, actions)
    assert flow.match == parse_match(match)
    assert flow.actions == parse_actions(actions)


def test_dec_ttl_in_dumps(dp: Datapath) -> None:
    # Linux 5.13's OVS_ACTION_ATTR_DEC_TTL (23) is a userspace-only action number in OVS 3.1,
    # which prints it as a tnl_push(); OVS 3.5 (Debian 13's, beside 6.12) prints it as odp does.
    # odp reads the kernel's dump correctly either way.
    dp.add_flow("in_port(13),eth(),eth_type(0x0800),ipv4()", "dec_ttl(le_1(userspace(pid=7))),1")
    (flow,) = dp.flows()
    assert odp_text(flow) == ("in_port(13),eth(),eth_type(0x0800)", "dec_ttl(le_1(userspace(pid=7))),1")
    theirs = split_line(dump_lines(dp.name)[0])[1]
    version = ovs_dpctl_version()
    if version <= (3, 1):
        assert "tnl_push" in theirs
    else:
        assert theirs == odp_text(flow)[1], f"ovs-dpctl {version}"


def test_ovs_dpctl_pads_userdata_to_eight_bytes(dp: Datapath) -> None:
    # The kernel stores the userdata it is given: odp's 4 bytes stay 4 bytes...
    flow = dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "userspace(pid=1,userdata(01020304))")
    assert split_line(dump_lines(dp.name)[0])[1] == "userspace(pid=1,userdata(01020304))"
    assert flow.actions == parse_actions("userspace(pid=1,userdata(01020304))")
    dp.flush_flows()
    # ...while ovs-dpctl's own parser pads them to 8.
    ovs_dpctl(
        "add-flow", dp.name, "in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)", "userspace(pid=1,userdata(01020304))"
    )
    (flow,) = dp.flows()
    assert flow.actions == parse_actions("userspace(pid=1,userdata(0102030400000000))")


def test_ufid_flow_from_ovs_dpctl(dp: Datapath) -> None:
    ufid = "11111111-2222-3333-4444-555555555555"
    ovs_dpctl("add-flow", dp.name, f"ufid:{ufid},in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)", "1")
    (flow,) = dp.flows()
    assert flow.ufid is not None and len(flow.ufid) == 16
    assert odp_text(flow) == split_line(dump_lines(dp.name)[0])
    assert dp.get_flow(ufid=flow.ufid).actions == parse_actions("1")


def test_many_flows_both_ways(dp: Datapath) -> None:
    matches = [
        f"in_port({1 + i % 50}),eth(),eth_type(0x0800),ipv4(dst=10.0.{i // 250}.{i % 250},frag=no)" for i in range(500)
    ]
    n = dp.backend.flow_new_many(dp.name, [(parse_match(m), parse_actions("1")) for m in matches])
    assert n == 500
    theirs = sorted(split_line(line) for line in dump_lines(dp.name))
    ours = sorted(odp_text(f) for f in dp.flows())
    assert ours == theirs
    assert sorted(m for m, _ in theirs) == sorted(matches)
