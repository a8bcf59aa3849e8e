"""odp.netlink.messages: building requests and parsing (hand-made) kernel replies."""

from __future__ import annotations

import errno
import struct

import pytest
import strategies as shared  # tests/unit/strategies.py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odp.actions import Actions, Output, Userspace
from odp.constants import (
    Cmd,
    DpAttr,
    FlowAttr,
    KeyAttrType,
    PacketAttr,
    PacketCmd,
    TunnelFlag,
    VportAttr,
    VportType,
)
from odp.errors import DecodeError
from odp.fields import Masked
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match, Tcp, TcpFlags, Tunnel
from odp.netlink.codec import encode_key, encode_mask
from odp.netlink.messages import (
    GENL_ID_CTRL,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_ECHO,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    Message,
    build_get_family,
    build_request,
    datapath_attrs,
    decode_datapath,
    decode_family,
    decode_flow,
    decode_packet,
    decode_vport,
    execute_attrs,
    flow_attrs,
    parse_messages,
    vport_attrs,
)
from odp.records import (
    DatapathInfo,
    DatapathStats,
    MegaflowStats,
    VportInfo,
    VportKind,
    VportStats,
    VportUpcallStats,
)

FLOW_FAMILY = 0x1E
DP_FAMILY = 0x1C
VPORT_FAMILY = 0x1D
PACKET_FAMILY = 0x1F


def nla(type_: int, payload: bytes = b"") -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, type_) + payload + b"\0" * (-length % 4)


def nlmsg(type_: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    """A netlink message written out independently of the module under test."""
    msg = struct.pack("=IHHII", 16 + len(payload), type_, flags, seq, pid) + payload
    return msg + b"\0" * (-len(msg) % 4)


def genl(cmd: int, version: int, dp_ifindex: int, attrs: bytes) -> bytes:
    return struct.pack("=BBHi", cmd, version, 0, dp_ifindex) + attrs


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def test_build_request_layout() -> None:
    data = build_request(FLOW_FAMILY, Cmd.GET, 1, NLM_F_REQUEST | NLM_F_DUMP, 42, 7, [(1, b"\x01\x02\x03")])
    length, type_, flags, seq, pid = struct.unpack_from("=IHHII", data)
    assert (length, type_, flags, seq, pid) == (len(data), FLOW_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 42, 0)
    assert data[16:20] == bytes([Cmd.GET, 1, 0, 0])
    assert struct.unpack_from("=i", data, 20) == (7,)
    assert data[24:] == nla(1, b"\x01\x02\x03")
    assert len(data) == 16 + 4 + 4 + 8


def test_build_parse_round_trip() -> None:
    attrs = [(1, b"abc"), (2, b""), (3, struct.pack("=Q", 99))]
    data = build_request(DP_FAMILY, Cmd.NEW, 2, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO, 9, -1, attrs, pid=1234)
    (msg,) = parse_messages(data)
    assert msg == Message(
        type=DP_FAMILY,
        flags=NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO,
        seq=9,
        pid=1234,
        cmd=Cmd.NEW,
        version=2,
        dp_ifindex=-1,
        attrs=tuple(attrs),
    )
    assert msg.get(2) == b"" and msg.get(4) is None
    assert not msg.is_error and not msg.done


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(16, 0xFFFF),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(-(2**31), 2**31 - 1),
    st.lists(st.tuples(st.integers(0, 0x3FFF), st.binary(max_size=40)), max_size=6),
)
def test_build_parse_property(
    family: int, cmd: int, version: int, flags: int, seq: int, ifindex: int, attrs: list[tuple[int, bytes]]
) -> None:
    if family == GENL_ID_CTRL:
        family += 1
    (msg,) = parse_messages(build_request(family, cmd, version, flags, seq, ifindex, attrs))
    assert (msg.type, msg.cmd, msg.version, msg.flags, msg.seq, msg.dp_ifindex) == (
        family,
        cmd,
        version,
        flags,
        seq,
        ifindex,
    )
    assert msg.attrs == tuple(attrs)


def test_flow_attrs_helper() -> None:
    m = Match(InPort(1), Ethernet(), EthType(0x0800))
    attrs = dict(flow_attrs(m, Actions.of(Output(2)), ufid=b"u" * 16, ufid_flags=3, clear=True))
    assert attrs[FlowAttr.KEY] == encode_key(m)
    assert attrs[FlowAttr.MASK] == encode_mask(m)
    assert attrs[FlowAttr.ACTIONS] == nla(1, struct.pack("=I", 2))
    assert attrs[FlowAttr.UFID] == b"u" * 16
    assert attrs[FlowAttr.UFID_FLAGS] == struct.pack("=I", 3)
    assert attrs[FlowAttr.CLEAR] == b""
    assert FlowAttr.MASK not in dict(flow_attrs(m, mask=False))


def test_datapath_vport_execute_helpers() -> None:
    dp = dict(datapath_attrs("dp0", upcall_pid=0, user_features=3))
    assert dp[DpAttr.NAME] == b"dp0\0"
    assert dp[DpAttr.UPCALL_PID] == struct.pack("=I", 0)
    vp = dict(vport_attrs("vx0", VportType.VXLAN, upcall_pids=[5, 6], dst_port=4789))
    assert vp[VportAttr.TYPE] == struct.pack("=I", VportType.VXLAN)
    assert vp[VportAttr.OPTIONS] == nla(1, struct.pack("=H", 4789))
    assert vp[VportAttr.UPCALL_PID] == struct.pack("=II", 5, 6)
    ex = dict(execute_attrs(b"\x00" * 14, Match(InPort(3)), Actions.of(Output(1)), probe=True))
    assert ex[PacketAttr.KEY] == encode_key(Match(InPort(3)))
    assert ex[PacketAttr.PROBE] == b""


def test_build_get_family_and_decode_reply() -> None:
    req = build_get_family("ovs_flow", seq=3)
    (msg,) = parse_messages(req)
    assert msg.type == GENL_ID_CTRL and msg.cmd == 3 and msg.get(2) == b"ovs_flow\0"
    groups = nla(1, nla(1, b"ovs_flow\0") + nla(2, struct.pack("=I", 7)))
    reply_attrs = (
        nla(1, struct.pack("=H", FLOW_FAMILY))
        + nla(2, b"ovs_flow\0")
        + nla(3, struct.pack("=I", 1))
        + nla(4, struct.pack("=I", 4))
        + nla(5, struct.pack("=I", 11))
        + nla(7, groups)
    )
    reply = nlmsg(GENL_ID_CTRL, 0, 3, 0, struct.pack("=BBH", 1, 2, 0) + reply_attrs)
    (rmsg,) = parse_messages(reply)
    fam = decode_family(rmsg)
    assert (fam.id, fam.name, fam.version, fam.hdrsize, fam.maxattr) == (FLOW_FAMILY, "ovs_flow", 1, 4, 11)
    assert fam.group("ovs_flow") == 7 and fam.group("nope") is None


# ---------------------------------------------------------------------------
# Hand-made kernel replies
# ---------------------------------------------------------------------------

# A flow dump entry written attribute by attribute from uapi.md.
KEY = (
    nla(20, struct.pack("=I", 0))  # recirc_id(0)
    + nla(2, struct.pack("=I", 0))  # skb_priority(0)
    + nla(3, struct.pack("=I", 1))  # in_port(1)
    + nla(4, bytes.fromhex("001122334455 66778899aabb"))  # eth
    + nla(6, bytes.fromhex("0800"))  # eth_type(0x0800)
    + nla(7, bytes.fromhex("0a000001 0a000002 06 00 40 00"))  # ipv4(proto=6, ttl=64)
    + nla(9, bytes.fromhex("0000 0050"))  # tcp(dst=80)
    + nla(18, bytes.fromhex("0000"))  # tcp_flags(0)
)
MASK = (
    nla(20, struct.pack("=I", 0xFFFFFFFF))
    + nla(2, struct.pack("=I", 0))
    + nla(3, struct.pack("=I", 0xFFFFFFFF))
    + nla(4, bytes.fromhex("000000000000 ffffffffffff"))
    + nla(6, bytes.fromhex("ffff"))
    + nla(7, bytes.fromhex("00000000 ffffff00 ff 00 00 ff"))
    + nla(9, bytes.fromhex("0000 ffff"))
    + nla(18, bytes.fromhex("0000"))
)
ACTIONS = nla(1, struct.pack("=I", 2)) + nla(2, nla(1, struct.pack("=I", 77)))
UFID = bytes(range(16))


def flow_reply(seq: int = 5) -> bytes:
    attrs = (
        nla(FlowAttr.UFID, UFID)
        + nla(FlowAttr.KEY, KEY)
        + nla(FlowAttr.MASK, MASK)
        + nla(FlowAttr.STATS, struct.pack("=QQ", 10, 1500))
        + nla(FlowAttr.USED, struct.pack("=Q", 123456))
        + nla(FlowAttr.TCP_FLAGS, b"\x12")
        + nla(FlowAttr.ACTIONS, ACTIONS)
    )
    return nlmsg(FLOW_FAMILY, NLM_F_MULTI, seq, 4321, genl(Cmd.GET, 1, 7, attrs))


def test_decode_flow_dump_entry() -> None:
    (msg,) = parse_messages(flow_reply())
    assert (msg.type, msg.flags, msg.seq, msg.pid, msg.cmd, msg.version, msg.dp_ifindex) == (
        FLOW_FAMILY,
        NLM_F_MULTI,
        5,
        4321,
        Cmd.GET,
        1,
        7,
    )
    flow = decode_flow(msg)
    assert flow.ufid == UFID
    assert (flow.n_packets, flow.n_bytes, flow.used, flow.tcp_flags) == (10, 1500, 123456, 0x12)
    assert flow.actions == Actions.of(Output(2), Userspace(77))
    assert flow.key == KEY and flow.mask == MASK
    m = flow.match
    assert m is not None
    assert m.get(InPort) == InPort(1)
    assert m.get(Ethernet) == Ethernet(dst="66:77:88:99:aa:bb")
    assert m.get(Ipv4) == Ipv4(dst="10.0.0.0/24", proto=6, frag=0)
    assert m.get(Tcp) == Tcp(dst=80)
    tf = m.get(TcpFlags)
    assert tf is not None and tf.is_wildcard()
    assert m.by_type(int(KeyAttrType.RECIRC_ID)) is not None
    # the same flow, built from the model, compares equal
    expected = Match(
        InPort(1),
        Ethernet(dst="66:77:88:99:aa:bb"),
        EthType(0x0800),
        Ipv4(dst="10.0.0.0/24", proto=6, frag=0),
        Tcp(dst=80),
    ).replace(*[a for a in m.attrs if a.TYPE in (20, 2, 18)])
    assert m == expected


def test_decode_flow_without_optional_attributes() -> None:
    data = nlmsg(FLOW_FAMILY, 0, 1, 0, genl(Cmd.NEW, 1, 3, nla(FlowAttr.KEY, KEY) + nla(FlowAttr.ACTIONS)))
    flow = decode_flow(parse_messages(data)[0])
    assert (flow.n_packets, flow.n_bytes, flow.used, flow.tcp_flags, flow.ufid, flow.mask) == (
        0,
        0,
        None,
        0,
        None,
        None,
    )
    assert flow.actions == Actions()  # drop
    assert flow.match is not None and flow.match.get(InPort) == InPort(1)  # exact without a mask
    ufid_only = nlmsg(FLOW_FAMILY, 0, 1, 0, genl(Cmd.GET, 1, 3, nla(FlowAttr.UFID, UFID)))
    f2 = decode_flow(parse_messages(ufid_only)[0])
    assert f2.match is None and f2.actions is None


def test_nlmsg_error_eexist() -> None:
    request = build_request(FLOW_FAMILY, Cmd.NEW, 1, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, 11, 7, [])
    data = nlmsg(NLMSG_ERROR, 0, 11, 999, struct.pack("=i", -errno.EEXIST) + request)
    (msg,) = parse_messages(data)
    assert msg.type == NLMSG_ERROR and msg.seq == 11 and msg.pid == 999
    assert msg.error == -errno.EEXIST and msg.is_error and msg.extack is None


def test_nlmsg_error_ack_and_extack() -> None:
    request = build_request(FLOW_FAMILY, Cmd.NEW, 1, NLM_F_REQUEST | NLM_F_ACK, 12, 7, [(1, b"x" * 8)])
    ack = nlmsg(NLMSG_ERROR, NLM_F_CAPPED, 12, 0, struct.pack("=i", 0) + request[:16])
    (msg,) = parse_messages(ack)
    assert msg.error == 0 and not msg.is_error
    # uncapped error with extended ACK TLVs after the whole original request
    tlvs = nla(1, b"Flow key attribute has unexpected length\0") + nla(2, struct.pack("=I", 24))
    err = nlmsg(NLMSG_ERROR, NLM_F_ACK_TLVS, 12, 0, struct.pack("=i", -errno.EINVAL) + request + tlvs)
    (emsg,) = parse_messages(err)
    assert emsg.error == -errno.EINVAL and emsg.extack == "Flow key attribute has unexpected length"
    capped = nlmsg(
        NLMSG_ERROR, NLM_F_ACK_TLVS | NLM_F_CAPPED, 12, 0, struct.pack("=i", -errno.EINVAL) + request[:16] + tlvs
    )
    assert parse_messages(capped)[0].extack == "Flow key attribute has unexpected length"


def test_nlmsg_done_and_multipart_datagram() -> None:
    done = nlmsg(NLMSG_DONE, NLM_F_MULTI, 5, 4321, struct.pack("=i", 0))
    msgs = parse_messages(flow_reply() + flow_reply() + done)
    assert len(msgs) == 3
    assert [m.done for m in msgs] == [False, False, True]
    assert msgs[2].type == NLMSG_DONE and msgs[2].error == 0
    assert decode_flow(msgs[1]).n_packets == 10
    # a dump interrupted by an error ends with NLMSG_DONE carrying the errno
    bad_done = nlmsg(NLMSG_DONE, NLM_F_MULTI, 5, 0, struct.pack("=i", -errno.ENOMEM))
    assert parse_messages(bad_done)[0].error == -errno.ENOMEM


def test_decode_datapath_reply() -> None:
    attrs = (
        nla(DpAttr.NAME, b"ovs-system\0")
        + nla(DpAttr.STATS, struct.pack("=QQQQ", 1, 2, 3, 4))
        + nla(DpAttr.MEGAFLOW_STATS, struct.pack("=QIIQQ", 5, 6, 0, 7, 0))
        + nla(DpAttr.USER_FEATURES, struct.pack("=I", 3))
        + nla(DpAttr.MASKS_CACHE_SIZE, struct.pack("=I", 256))
        + nla(DpAttr.PER_CPU_PIDS, struct.pack("=II", 10, 11))
    )
    (msg,) = parse_messages(nlmsg(DP_FAMILY, 0, 1, 0, genl(Cmd.GET, 2, 9, attrs)))
    dp = decode_datapath(msg)
    # The record the backends return, built by the decoder itself.
    assert dp == DatapathInfo(
        name="ovs-system",
        ifindex=9,
        stats=DatapathStats(hit=1, missed=2, lost=3, flows=4),
        megaflow=MegaflowStats(mask_hit=5, masks=6, cache_hit=7),
        features=3,
        masks_cache_size=256,
    )


def test_decode_vport_reply() -> None:
    attrs = (
        nla(VportAttr.PORT_NO, struct.pack("=I", 2))
        + nla(VportAttr.TYPE, struct.pack("=I", VportType.VXLAN))
        + nla(VportAttr.NAME, b"vxlan_sys_4789\0")
        + nla(VportAttr.OPTIONS, nla(1, struct.pack("=H", 4789)))
        + nla(VportAttr.UPCALL_PID, struct.pack("=II", 100, 101))
        + nla(VportAttr.STATS, struct.pack("=8Q", *range(1, 9)))
        + nla(VportAttr.IFINDEX, struct.pack("=I", 12))
        + nla(VportAttr.NETNSID, struct.pack("=i", -1))
    )
    upcall_stats = nla(VportAttr.UPCALL_STATS, nla(0, struct.pack("=Q", 5)) + nla(1, struct.pack("=Q", 6)))
    (msg,) = parse_messages(nlmsg(VPORT_FAMILY, 0, 1, 0, genl(Cmd.NEW, 1, 9, attrs + upcall_stats)))
    vp = decode_vport(msg)
    assert vp == VportInfo(
        port_no=2,
        kind=VportKind.VXLAN,
        name="vxlan_sys_4789",
        dp_ifindex=9,
        dst_port=4789,
        upcall_pids=(100, 101),
        stats=VportStats(*range(1, 9)),
        ifindex=12,
        upcall_stats=VportUpcallStats(success=5, fail=6),
    )
    # Without UPCALL_STATS (kernels before 6.2) the record has none.
    (old,) = parse_messages(nlmsg(VPORT_FAMILY, 0, 1, 0, genl(Cmd.NEW, 1, 9, attrs)))
    assert decode_vport(old).upcall_stats is None
    # A reply without its port number, type or name cannot be a record.
    (bare,) = parse_messages(
        nlmsg(VPORT_FAMILY, 0, 1, 0, genl(Cmd.NEW, 1, 9, nla(VportAttr.PORT_NO, struct.pack("=I", 2))))
    )
    with pytest.raises(DecodeError, match="lacks its port number"):
        decode_vport(bare)


def test_decode_miss_upcall() -> None:
    frame = bytes.fromhex("66778899aabb 001122334455 0800") + b"\x45" + b"\0" * 19
    tunnel = nla(
        16,
        nla(0, struct.pack("!Q", 5)) + nla(1, bytes([10, 0, 0, 9])) + nla(2, bytes([10, 0, 0, 1])) + nla(4, b"\x40"),
    )
    key = tunnel + nla(3, struct.pack("=I", 1)) + nla(4, frame[6:12] + frame[:6]) + nla(6, b"\x08\x00")
    attrs = (
        nla(PacketAttr.PACKET, frame)
        + nla(PacketAttr.KEY, key)
        + nla(PacketAttr.MRU, struct.pack("=H", 1500))
        + nla(PacketAttr.LEN, struct.pack("=I", 1514))
        + nla(PacketAttr.HASH, struct.pack("=Q", 0x1_2345_6789))
        + nla(PacketAttr.UPCALL_PID, struct.pack("=I", 77))
    )
    (msg,) = parse_messages(nlmsg(PACKET_FAMILY, 0, 0, 0, genl(PacketCmd.MISS, 1, 9, attrs)))
    pkt = decode_packet(msg)
    assert pkt.cmd == PacketCmd.MISS and pkt.packet == frame
    assert (pkt.mru, pkt.length, pkt.hash, pkt.upcall_pid) == (1500, 1514, 0x1_2345_6789, 77)
    assert pkt.key is not None
    assert pkt.key.get(InPort) == InPort(1)
    eth = pkt.key.get(Ethernet)
    assert eth is not None and eth.is_exact()
    tun = pkt.key.get(Tunnel)
    assert tun is not None
    assert tun.tun_id == Masked(5, (1 << 64) - 1)
    assert tun.flags == Masked(int(TunnelFlag.KEY), 0xF)
    assert tun.ttl == Masked(64, 0xFF)
    assert pkt.userdata is None and pkt.actions is None and pkt.egress_tun_key is None


def test_decode_action_upcall_with_userdata_actions_and_egress_tunnel() -> None:
    egress = nla(2, bytes([10, 0, 0, 2])) + nla(4, b"\x40") + nla(6)
    attrs = (
        nla(PacketAttr.PACKET, b"\0" * 14)
        + nla(PacketAttr.KEY, nla(3, struct.pack("=I", 4)))
        + nla(PacketAttr.USERDATA, b"cookie")
        + nla(PacketAttr.ACTIONS, nla(1, struct.pack("=I", 3)))
        + nla(PacketAttr.EGRESS_TUN_KEY, egress)
    )
    (msg,) = parse_messages(nlmsg(PACKET_FAMILY, 0, 0, 0, genl(PacketCmd.ACTION, 1, 9, attrs)))
    pkt = decode_packet(msg)
    assert pkt.userdata == b"cookie" and pkt.actions == Actions.of(Output(3))
    assert pkt.egress_tun_key == Tunnel(ipv4_dst="10.0.0.2", ttl=64, flags=(int(TunnelFlag.CSUM), 0xF))


# ---------------------------------------------------------------------------
# Malformed input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x10\x00\x00",  # shorter than a header
        struct.pack("=IHHII", 8, 30, 0, 0, 0),  # nlmsg_len below the header size
        struct.pack("=IHHII", 40, 30, 0, 0, 0) + b"\0" * 8,  # truncated
        struct.pack("=IHHII", 18, 30, 0, 0, 0) + b"\0\0",  # no room for genlmsghdr
        struct.pack("=IHHII", 22, 30, 0, 0, 0) + b"\0" * 6,  # no room for ovs_header
        struct.pack("=IHHII", 18, NLMSG_ERROR, 0, 0, 0) + b"\0\0",  # short error
        nlmsg(30, 0, 0, 0, genl(1, 1, 0, b"\x09\x00\x01\x00")),  # attribute overruns the message
    ],
)
def test_malformed_messages_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_messages(data)


@pytest.mark.parametrize(
    ("decoder", "attrs"),
    [
        (decode_flow, nla(FlowAttr.STATS, b"\0" * 12)),
        (decode_flow, nla(FlowAttr.USED, b"\0" * 4)),
        (decode_flow, nla(FlowAttr.KEY, nla(3, b"\0\0"))),
        (decode_flow, nla(FlowAttr.ACTIONS, nla(1, b"\0"))),
        (decode_datapath, nla(DpAttr.STATS, b"\0" * 8)),
        (decode_datapath, nla(DpAttr.PER_CPU_PIDS, b"\0" * 6)),
        (decode_vport, nla(VportAttr.PORT_NO, b"\0")),
        (decode_vport, nla(VportAttr.OPTIONS, nla(1, b"\0\0\0\0"))),
        (decode_vport, nla(VportAttr.STATS, b"\0" * 10)),
        (decode_packet, nla(PacketAttr.KEY, b"\x05\x00")),
        (decode_packet, nla(PacketAttr.MRU, b"\0")),
        (decode_packet, nla(PacketAttr.EGRESS_TUN_KEY, nla(2, b"\0"))),
    ],
)
def test_typed_decoders_raise_decode_error(decoder: object, attrs: bytes) -> None:
    (msg,) = parse_messages(nlmsg(30, 0, 0, 0, genl(1, 1, 0, attrs)))
    with pytest.raises(DecodeError):
        decoder(msg)  # type: ignore[operator]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120), st.integers(0, 3))
def test_fuzzed_replies_raise_only_decode_error(body: bytes, which: int) -> None:
    data = nlmsg(30, 0, 0, 0, genl(1, 1, 0, body))
    decoder = (decode_flow, decode_datapath, decode_vport, decode_packet)[which]
    try:
        for msg in parse_messages(data):
            decoder(msg)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_flow_reply_raises_only_decode_error(data: st.DataObject) -> None:
    raw = flow_reply()
    bad = data.draw(shared.corrupted(raw))
    try:
        for msg in parse_messages(bad):
            if msg.type == FLOW_FAMILY:
                decode_flow(msg)
    except DecodeError:
        pass
