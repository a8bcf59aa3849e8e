"""The kernel backend without a kernel: requests checked byte for byte, replies scripted.

A :class:`FakeKernel` stands in for the netlink sockets: it records every
datagram the backend sends and answers through a handler, so these tests see
exactly the bytes that would reach openvswitch.ko and can feed back any reply,
error, multi-part dump or ENOBUFS.
"""

from __future__ import annotations

import errno
import struct
from collections import deque
from collections.abc import Callable, Iterable

import pytest

from odp.actions import Actions, Output, Userspace
from odp.constants import Cmd, DpAttr, DpFeature, FlowAttr, PacketAttr, PacketCmd, VportAttr
from odp.errors import (
    BackendError,
    ExistsError,
    FieldError,
    InvalidArgument,
    InvalidFlow,
    ModuleNotLoaded,
    NotFoundError,
    NotSupported,
    PermissionDenied,
)
from odp.kernel.backend import KernelBackend
from odp.kernel.families import Families
from odp.kernel.netlink import NetlinkError, NetlinkSocket
from odp.kernel.upcall import KernelUpcallListener
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match
from odp.netlink.attrs import pack_attr
from odp.netlink.codec import encode_actions, encode_key, encode_mask
from odp.netlink.messages import Message, parse_messages
from odp.records import FlowCreate, UpcallKind, VportKind

FAM = Families.fixed()
DP_FAM, VPORT_FAM, FLOW_FAM, PACKET_FAM = 0x20, 0x21, 0x22, 0x23

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO, NLM_F_DUMP_INTR = 1, 2, 4, 8, 16
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3

Handler = Callable[["FakeKernel", Message], Iterable[bytes | OSError]]


# ---------------------------------------------------------------------------
# The fake kernel
# ---------------------------------------------------------------------------


def nlmsg(type_: int, flags: int, seq: int, body: bytes, pid: int = 0) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, type_, flags, seq, pid) + body + b"\0" * ((-length) & 3)


def genl(family: int, cmd: int, seq: int, dp_ifindex: int, attrs: bytes, flags: int = 0, version: int = 1) -> bytes:
    return nlmsg(family, flags, seq, struct.pack("=BBHi", cmd, version, 0, dp_ifindex) + attrs)


def ack(seq: int, error: int = 0, extack: str | None = None) -> bytes:
    """An NLMSG_ERROR (capped: only the request header echoed), optionally with an extended ACK message."""
    body = struct.pack("=i", -error) + struct.pack("=IHHII", 16, 0, 0, seq, 0)
    flags = 0x100  # NLM_F_CAPPED
    if extack is not None:
        body += pack_attr(1, extack.encode() + b"\0")
        flags |= 0x200  # NLM_F_ACK_TLVS
    return nlmsg(NLMSG_ERROR, flags, seq, body)


def done(seq: int) -> bytes:
    return nlmsg(NLMSG_DONE, NLM_F_MULTI, seq, struct.pack("=i", 0))


def u32(t: int, v: int) -> bytes:
    return pack_attr(t, struct.pack("=I", v))


def dp_reply(seq: int, name: str, ifindex: int, features: int = 0, flags: int = 0, cmd: int = Cmd.GET) -> bytes:
    attrs = (
        pack_attr(DpAttr.NAME, name.encode() + b"\0")
        + pack_attr(DpAttr.STATS, struct.pack("=4Q", 1, 2, 3, 4))
        + pack_attr(DpAttr.MEGAFLOW_STATS, struct.pack("=QIIQQ", 5, 6, 0, 7, 0))
        + u32(DpAttr.USER_FEATURES, features)
        + u32(DpAttr.MASKS_CACHE_SIZE, 256)
    )
    return genl(DP_FAM, cmd, seq, ifindex, attrs, flags, version=2)


def vport_reply(
    seq: int, dp_ifindex: int, port_no: int, name: str, vtype: int = 1, pids: tuple[int, ...] = (0,), flags: int = 0,
    cmd: int = Cmd.NEW, dst_port: int | None = None,
) -> bytes:  # fmt: skip
    attrs = (
        u32(VportAttr.PORT_NO, port_no)
        + u32(VportAttr.TYPE, vtype)
        + pack_attr(VportAttr.NAME, name.encode() + b"\0")
        + pack_attr(VportAttr.UPCALL_PID, b"".join(struct.pack("=I", p) for p in pids))
        + pack_attr(VportAttr.STATS, struct.pack("=8Q", *range(1, 9)))
    )
    if dst_port is not None:
        attrs += pack_attr(VportAttr.OPTIONS, pack_attr(1, struct.pack("=H", dst_port)))
    return genl(VPORT_FAM, cmd, seq, dp_ifindex, attrs, flags)


MATCH = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst="10.0.0.0/8"))
ACTIONS = Actions.of(Output(2))


def flow_reply(seq: int, dp_ifindex: int, match: Match = MATCH, flags: int = 0, cmd: int = Cmd.NEW) -> bytes:
    attrs = (
        pack_attr(FlowAttr.KEY, encode_key(match))
        + pack_attr(FlowAttr.MASK, encode_mask(match))
        + pack_attr(FlowAttr.STATS, struct.pack("=QQ", 3, 180))
        + pack_attr(FlowAttr.USED, struct.pack("=Q", 12345))
        + pack_attr(FlowAttr.ACTIONS, encode_actions(ACTIONS))
    )
    return genl(FLOW_FAM, cmd, seq, dp_ifindex, attrs, flags)


class FakeKernel:
    """A Transport: records what is sent, answers through ``handler``."""

    next_port = 1000

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.sent: list[bytes] = []
        self.queue: deque[bytes | OSError] = deque()
        self.groups: list[int] = []
        self.closed = False
        FakeKernel.next_port += 1
        self._port = FakeKernel.next_port

    @property
    def port_id(self) -> int:
        return self._port

    def send(self, data: bytes) -> None:
        self.sent.append(data)
        if self.handler is None:
            return
        for msg in parse_messages(data):
            self.queue.extend(self.handler(self, msg))

    def recv(self, timeout: float | None) -> bytes | None:
        if not self.queue:
            return None
        item = self.queue.popleft()
        if isinstance(item, OSError):
            raise item
        return item

    def fileno(self) -> int:
        return -1

    def add_membership(self, group: int) -> None:
        self.groups.append(group)

    def close(self) -> None:
        self.closed = True

    def requests(self) -> list[Message]:
        return [m for d in self.sent for m in parse_messages(d)]


def backend_with(handler: Handler) -> tuple[KernelBackend, FakeKernel]:
    fake = FakeKernel(handler)
    return KernelBackend(families=FAM, transport_factory=lambda: fake), fake


def acking(kernel: FakeKernel, msg: Message) -> list[bytes]:
    return [ack(msg.seq)]


def failing(code: int, extack: str | None = None) -> Handler:
    def handler(kernel: FakeKernel, msg: Message) -> list[bytes]:
        return [ack(msg.seq, code, extack)]

    return handler


# ---------------------------------------------------------------------------
# Request bytes
# ---------------------------------------------------------------------------


def test_dp_new_request_bytes_and_reply() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [dp_reply(m.seq, "dp0", 7, features=3, cmd=Cmd.NEW), ack(m.seq)]

    backend, fake = backend_with(handler)
    info = backend.dp_new("dp0", features=int(DpFeature.UNALIGNED | DpFeature.VPORT_PIDS), upcall_pid=0)
    attrs = pack_attr(1, b"dp0\0") + struct.pack("=HHI", 8, 2, 0) + struct.pack("=HHI", 8, 5, 3)
    body = struct.pack("=BBHi", Cmd.NEW, 2, 0, 0) + attrs
    expected = struct.pack("=IHHII", 16 + len(body), DP_FAM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO, 1, 0) + body
    assert fake.sent == [expected]
    assert (info.name, info.ifindex, info.features, info.masks_cache_size) == ("dp0", 7, 3, 256)
    assert (info.stats.hit, info.stats.missed, info.stats.lost, info.stats.flows) == (1, 2, 3, 4)
    assert (info.megaflow.mask_hit, info.megaflow.masks, info.megaflow.cache_hit) == (5, 6, 7)


def test_dp_get_by_name_and_by_ifindex() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [dp_reply(m.seq, "dp0", 7), ack(m.seq)]

    backend, fake = backend_with(handler)
    backend.dp_get("dp0")
    backend.dp_get(7)
    by_name, by_index = fake.requests()
    assert (by_name.cmd, by_name.dp_ifindex, by_name.attrs) == (Cmd.GET, 0, ((DpAttr.NAME, b"dp0\0"),))
    assert (by_index.cmd, by_index.dp_ifindex, by_index.attrs) == (Cmd.GET, 7, ())
    assert by_name.flags == NLM_F_REQUEST | NLM_F_ACK


def test_dp_set_always_sends_features_and_sets_local_port_pid() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        if m.type == DP_FAM:
            return [dp_reply(m.seq, "dp0", 7, features=3), ack(m.seq)]
        return [vport_reply(m.seq, 7, 0, "dp0", 2, (99,)), ack(m.seq)]

    backend, fake = backend_with(handler)
    backend.dp_set("dp0", masks_cache_size=512, upcall_pid=99)
    reqs = fake.requests()
    get, vport_set, dp_set, *_ = reqs
    assert get.cmd == Cmd.GET
    assert (vport_set.type, vport_set.cmd, vport_set.dp_ifindex) == (VPORT_FAM, Cmd.SET, 7)
    assert dict(vport_set.attrs) == {
        VportAttr.PORT_NO: struct.pack("=I", 0),
        VportAttr.UPCALL_PID: struct.pack("=I", 99),
    }
    assert (dp_set.type, dp_set.cmd, dp_set.dp_ifindex) == (DP_FAM, Cmd.SET, 7)
    # Without USER_FEATURES the kernel would reset them to 0: the current ones are sent.
    assert dict(dp_set.attrs) == {
        DpAttr.USER_FEATURES: struct.pack("=I", 3),
        DpAttr.MASKS_CACHE_SIZE: struct.pack("=I", 512),
    }


def test_vport_new_vxlan_sends_dst_port_as_two_host_order_bytes() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [vport_reply(m.seq, 7, 3, "vx0", 4, dst_port=4789), ack(m.seq)]

    backend, fake = backend_with(handler)
    info = backend.vport_new(7, "vx0", VportKind.VXLAN, dst_port=4789)
    (req,) = fake.requests()
    assert req.flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO
    attrs = dict(req.attrs)
    assert attrs[VportAttr.TYPE] == struct.pack("=I", 4)
    assert attrs[VportAttr.NAME] == b"vx0\0"
    assert attrs[VportAttr.OPTIONS] == struct.pack("=HHH", 6, 1, 4789) + b"\0\0"
    assert attrs[VportAttr.UPCALL_PID] == struct.pack("=I", 0)
    assert (info.port_no, info.kind, info.dst_port, info.stats.tx_dropped) == (3, VportKind.VXLAN, 4789, 8)


def test_vport_new_vxlan_gbp_sends_and_reads_the_extension() -> None:
    exts = pack_attr(2, pack_attr(1, b""))  # OVS_TUNNEL_ATTR_EXTENSION { OVS_VXLAN_EXT_GBP }

    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        reply = vport_reply(m.seq, 7, 3, "vx0", 4)
        reply_attrs = pack_attr(VportAttr.OPTIONS, pack_attr(1, struct.pack("=H", 4789)) + exts)
        return [genl(VPORT_FAM, Cmd.NEW, m.seq, 7, reply[24:] + reply_attrs, 0), ack(m.seq)]

    backend, fake = backend_with(handler)
    info = backend.vport_new(7, "vx0", VportKind.VXLAN, dst_port=4789, extensions=("gbp",))
    (req,) = fake.requests()
    assert dict(req.attrs)[VportAttr.OPTIONS] == struct.pack("=HHH", 6, 1, 4789) + b"\0\0" + exts
    assert info.extensions == ("gbp",)


def test_vport_extensions_are_checked_before_asking_the_kernel() -> None:
    backend, fake = backend_with(acking)
    with pytest.raises(FieldError, match="for vxlan vports, not geneve"):
        backend.vport_new(7, "gn", VportKind.GENEVE, dst_port=6081, extensions=("gbp",))
    with pytest.raises(FieldError, match="unknown vport extension 'gpe'"):
        backend.vport_new(7, "vx", VportKind.VXLAN, dst_port=4789, extensions=("gpe",))
    assert fake.sent == []


def test_vport_rules_checked_before_asking_the_kernel() -> None:
    backend, fake = backend_with(acking)
    with pytest.raises(InvalidArgument, match="UDP destination port"):
        backend.vport_new(7, "vx0", VportKind.GENEVE)
    with pytest.raises(FieldError):
        backend.vport_new(7, "i0", VportKind.INTERNAL, dst_port=5)
    with pytest.raises(FieldError):
        backend.vport_new(7, "x" * 16, VportKind.INTERNAL)
    with pytest.raises(FieldError):
        backend.vport_new(7, "i0", VportKind.INTERNAL, port_no=65535)
    assert fake.sent == []


def test_vport_get_by_name_and_number() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [vport_reply(m.seq, 7, 1, "eth1"), ack(m.seq)]

    backend, fake = backend_with(handler)
    backend.vport_get(7, "eth1")
    backend.vport_get(7, 1)
    a, b = fake.requests()
    assert a.attrs == ((VportAttr.NAME, b"eth1\0"),) and a.dp_ifindex == 7
    assert b.attrs == ((VportAttr.PORT_NO, struct.pack("=I", 1)),)


@pytest.mark.parametrize(
    ("create", "flags"),
    [
        (FlowCreate.EXCLUSIVE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO | NLM_F_CREATE | NLM_F_EXCL),
        (FlowCreate.OR_REPLACE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO),
    ],
)
def test_flow_new_flags_and_attrs(create: FlowCreate, flags: int) -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [flow_reply(m.seq, 7), ack(m.seq)]

    backend, fake = backend_with(handler)
    flow = backend.flow_new(7, MATCH, ACTIONS, ufid=b"\x01" * 16, create=create)
    (req,) = fake.requests()
    assert (req.type, req.cmd, req.flags, req.dp_ifindex) == (FLOW_FAM, Cmd.NEW, flags, 7)
    assert req.attrs == (
        (FlowAttr.KEY, encode_key(MATCH)),
        (FlowAttr.MASK, encode_mask(MATCH)),
        (FlowAttr.ACTIONS, encode_actions(ACTIONS)),
        (FlowAttr.UFID, b"\x01" * 16),
    )
    assert flow.match == MATCH and flow.actions == ACTIONS
    assert (flow.stats.packets, flow.stats.bytes, flow.used) == (3, 180, 12345)


def test_flow_get_del_flush_and_set() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        if m.cmd == Cmd.DEL and not m.attrs:
            return [ack(m.seq)]
        return [flow_reply(m.seq, 7), ack(m.seq)]

    backend, fake = backend_with(handler)
    backend.flow_get(7, match=MATCH)
    backend.flow_del(7, ufid=b"\x02" * 16)
    assert backend.flow_del(7).match is None  # neither key nor ufid: flush
    backend.flow_set(7, match=MATCH, clear_stats=True)
    get, delete, flush, set_ = fake.requests()
    assert get.attrs == ((FlowAttr.KEY, encode_key(MATCH)),)  # GET/DEL by the unmasked key, no mask
    assert get.flags == NLM_F_REQUEST | NLM_F_ACK
    assert delete.attrs == ((FlowAttr.UFID, b"\x02" * 16),) and delete.flags & NLM_F_ECHO
    assert (flush.cmd, flush.attrs) == (Cmd.DEL, ())
    assert set_.attrs == ((FlowAttr.KEY, encode_key(MATCH)), (FlowAttr.CLEAR, b""))


def test_flow_set_actions_by_ufid_fetches_the_key_first() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return [flow_reply(m.seq, 7, cmd=m.cmd), ack(m.seq)]

    backend, fake = backend_with(handler)
    backend.flow_set(7, ufid=b"\x03" * 16, actions=ACTIONS)
    get, set_ = fake.requests()
    assert get.cmd == Cmd.GET and get.attrs == ((FlowAttr.UFID, b"\x03" * 16),)
    assert set_.cmd == Cmd.SET
    assert [t for t, _ in set_.attrs] == [FlowAttr.KEY, FlowAttr.MASK, FlowAttr.ACTIONS, FlowAttr.UFID]


def test_flow_requests_need_a_key_or_ufid() -> None:
    backend, fake = backend_with(acking)
    with pytest.raises(InvalidFlow):
        backend.flow_get(7)
    with pytest.raises(InvalidFlow):
        backend.flow_set(7, actions=ACTIONS)
    with pytest.raises(InvalidFlow, match="ufid"):
        backend.flow_new(7, MATCH, ACTIONS, ufid=b"\x00" * 17)
    assert fake.sent == []


def test_packet_execute_request() -> None:
    backend, fake = backend_with(acking)
    frame = bytes(range(60))
    backend.packet_execute(7, frame, ACTIONS, key=Match(InPort(3)), mru=1400)
    (req,) = fake.requests()
    assert (req.type, req.cmd, req.dp_ifindex, req.flags) == (PACKET_FAM, PacketCmd.EXECUTE, 7, 5)
    assert req.attrs == (
        (PacketAttr.PACKET, frame),
        (PacketAttr.KEY, encode_key(Match(InPort(3)))),
        (PacketAttr.ACTIONS, encode_actions(ACTIONS)),
        (PacketAttr.MRU, struct.pack("=H", 1400)),
    )
    with pytest.raises(InvalidFlow, match="shorter than an Ethernet header"):
        backend.packet_execute(7, b"\x00" * 13, ACTIONS)


# ---------------------------------------------------------------------------
# Dumps
# ---------------------------------------------------------------------------


def test_dump_reassembles_several_datagrams() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        assert m.flags == NLM_F_REQUEST | NLM_F_DUMP
        part1 = b"".join(dp_reply(m.seq, f"dp{i}", 10 + i, flags=NLM_F_MULTI) for i in range(3))
        part2 = dp_reply(m.seq, "dp3", 13, flags=NLM_F_MULTI) + done(m.seq)
        return [part1, part2]

    backend, _fake = backend_with(handler)
    assert [(d.name, d.ifindex) for d in backend.dp_list()] == [(f"dp{i}", 10 + i) for i in range(4)]


def test_dump_interrupted_is_restarted() -> None:
    calls = []

    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        calls.append(m.seq)
        if len(calls) == 1:
            first = flow_reply(m.seq, 7, flags=NLM_F_MULTI)
            second = flow_reply(m.seq, 7, flags=NLM_F_MULTI | NLM_F_DUMP_INTR)
            return [first, second + done(m.seq)]
        return [b"".join(flow_reply(m.seq, 7, flags=NLM_F_MULTI) for _ in range(3)) + done(m.seq)]

    backend, _fake = backend_with(handler)
    flows = list(backend.flow_dump(7))
    assert len(calls) == 2 and calls[0] != calls[1]
    assert len(flows) == 3


def test_dump_ignores_stale_messages_and_passes_ufid_flags() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        stale = flow_reply(m.seq + 100, 7, flags=NLM_F_MULTI)
        return [stale, flow_reply(m.seq, 7, flags=NLM_F_MULTI) + done(m.seq)]

    backend, fake = backend_with(handler)
    assert len(list(backend.flow_dump(7, ufid_flags=5))) == 1
    (req,) = fake.requests()
    assert req.attrs == ((FlowAttr.UFID_FLAGS, struct.pack("=I", 5)),)


def test_dump_error_is_translated() -> None:
    backend, _fake = backend_with(failing(errno.ENODEV))
    with pytest.raises(NotFoundError, match="datapath"):
        list(backend.flow_dump(7))


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------


def test_flow_new_many_batches_requests_per_sendmsg() -> None:
    backend, fake = backend_with(acking)
    flows = [(Match(InPort(i), Ethernet(), EthType(0x0800), Ipv4()), ACTIONS) for i in range(1, 601)]
    assert backend.flow_new_many(7, flows) == 600
    assert [len(parse_messages(d)) for d in fake.sent] == [256, 256, 88]
    reqs = fake.requests()
    assert all(r.flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL for r in reqs)
    assert len({r.seq for r in reqs}) == 600


def test_flow_new_many_stops_after_the_batch_with_an_error() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        attrs = dict(m.attrs)
        in_port = struct.unpack_from("=I", attrs[FlowAttr.KEY], 4)[0]
        return [ack(m.seq, errno.EEXIST if in_port == 301 else 0)]

    backend, fake = backend_with(handler)
    flows = [(Match(InPort(i), Ethernet(), EthType(0x0800), Ipv4()), ACTIONS) for i in range(1, 1001)]
    with pytest.raises(ExistsError, match="#300"):
        backend.flow_new_many(7, flows)
    assert len(fake.sent) == 2  # the second batch held the failure: no third one


def test_flow_new_many_replace_mode_has_no_create_flags() -> None:
    backend, fake = backend_with(acking)
    backend.flow_new_many(7, [(MATCH, ACTIONS)], create=FlowCreate.OR_REPLACE)
    (req,) = fake.requests()
    assert req.flags == NLM_F_REQUEST | NLM_F_ACK


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exc", "text"),
    [
        (errno.EPERM, PermissionDenied, "CAP_NET_ADMIN"),
        (errno.EEXIST, ExistsError, "already exists"),
        (errno.ENOENT, NotFoundError, "overlapping flow.*ipv4"),
        (errno.ENODEV, NotFoundError, "datapath"),
        (errno.EOPNOTSUPP, NotSupported, "EOPNOTSUPP"),
        (errno.EMSGSIZE, BackendError, "EMSGSIZE"),
    ],
)
def test_flow_errno_mapping(code: int, exc: type[Exception], text: str) -> None:
    backend, _ = backend_with(failing(code))
    with pytest.raises(exc, match=text) as info:
        backend.flow_new(7, MATCH, ACTIONS)
    assert getattr(info.value, "errno", None) == code


def test_unknown_errno_keeps_the_errno() -> None:
    backend, _ = backend_with(failing(errno.ENOMEM))
    with pytest.raises(BackendError) as info:
        backend.dp_get("dp0")
    assert info.value.errno == errno.ENOMEM and "dp0" in str(info.value)


def test_einval_is_explained_by_validate() -> None:
    backend, _ = backend_with(failing(errno.EINVAL))
    bad = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(proto=6))  # tcp() missing
    with pytest.raises(InvalidFlow) as info:
        backend.flow_new(7, bad, ACTIONS)
    assert info.value.rule != "kernel-einval"
    assert "EINVAL" in str(info.value)


def test_einval_without_explanation_names_the_request_and_extack() -> None:
    backend, _ = backend_with(failing(errno.EINVAL, "Flow actions may not be safe"))
    with pytest.raises(InvalidFlow, match="Flow actions may not be safe") as info:
        backend.flow_new(7, MATCH, ACTIONS)
    assert info.value.rule == "kernel-einval"
    assert "adding a flow" in str(info.value)


def test_datapath_errors_name_the_datapath() -> None:
    backend, _ = backend_with(failing(errno.ENODEV))
    with pytest.raises(NotFoundError, match="no datapath 'nosuch'"):
        backend.dp_get("nosuch")
    with pytest.raises(NotFoundError, match="no datapath 'a b'"):
        backend.dp_del("a b")  # not even a valid name: not asked


def test_missing_vport_type_is_not_supported() -> None:
    backend, _ = backend_with(failing(errno.EAFNOSUPPORT))
    with pytest.raises(NotSupported, match="vxlan"):
        backend.vport_new(7, "vx0", VportKind.VXLAN, dst_port=4789)


def test_local_port_delete_is_refused() -> None:
    backend, _ = backend_with(failing(errno.EINVAL))
    with pytest.raises(InvalidFlow, match="local port") as info:
        backend.vport_del(7, 0)
    assert info.value.rule == "local-port"


def test_unsupported_feature_is_remembered() -> None:
    backend, fake = backend_with(failing(errno.EOPNOTSUPP))
    per_cpu = int(DpFeature.DISPATCH_UPCALL_PER_CPU)
    with pytest.raises(NotSupported, match="dispatch_upcall_per_cpu"):
        backend.dp_new("dp0", features=per_cpu)
    with pytest.raises(NotSupported, match="found out earlier"):
        backend.dp_new("dp1", features=per_cpu | int(DpFeature.UNALIGNED))
    assert len(fake.sent) == 1


def test_dp_new_exists_says_whether_a_datapath_or_a_device() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        if m.cmd == Cmd.NEW:
            return [ack(m.seq, errno.EEXIST)]
        return [ack(m.seq, errno.ENODEV)]

    backend, _ = backend_with(handler)
    with pytest.raises(ExistsError, match="network device named 'eth0'"):
        backend.dp_new("eth0")


def test_enobufs_on_a_request_socket_is_an_error_not_a_hang() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes | OSError]:
        return [OSError(errno.ENOBUFS, "No buffer space available")]

    backend, _ = backend_with(handler)
    with pytest.raises(BackendError):
        backend.dp_get("dp0")


def test_module_missing_is_module_not_loaded() -> None:
    # The controller answers ENOENT for ovs_datapath even after trying to load the module.
    fake = FakeKernel(lambda k, m: [ack(m.seq, errno.ENOENT)])
    with pytest.raises(ModuleNotLoaded, match=r"modprobe openvswitch"):
        KernelBackend(transport_factory=lambda: fake)
    (req,) = fake.requests()
    assert req.type == 16 and dict(req.attrs)[2] == b"ovs_datapath\0"  # GETFAMILY ovs_datapath first
    assert fake.closed


def test_families_are_resolved_through_the_controller() -> None:
    ids = {b"ovs_datapath\0": 40, b"ovs_vport\0": 41, b"ovs_flow\0": 42, b"ovs_packet\0": 43, b"ovs_meter\0": 44}

    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        name = dict(m.attrs)[2]
        attrs = struct.pack("=HHH", 6, 1, ids[name]) + b"\0\0" + pack_attr(2, name) + u32(3, 1)
        if name == b"ovs_vport\0":
            group = pack_attr(1, u32(2, 77) + pack_attr(1, b"ovs_vport\0"))
            attrs += pack_attr(7, group)
        return [nlmsg(16, 0, m.seq, struct.pack("=BBH", 1, 2, 0) + attrs), ack(m.seq)]

    fake = FakeKernel(handler)
    backend = KernelBackend(transport_factory=lambda: fake)
    f = backend.families
    assert (f.datapath.id, f.vport.id, f.flow.id, f.packet.id) == (40, 41, 42, 43)
    assert f.meter is not None and f.meter.id == 44
    assert f.vport.groups == {"ovs_vport": 77}
    assert f.datapath.version == 2 and f.flow.version == 1


def test_module_missing_via_pyroute2(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyroute2.netlink.generic as generic
    from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error

    class NoFamily:
        def __init__(self) -> None:
            self.asyncore = type("Core", (), {"marshal": type("M", (), {"msg_map": {}})()})()

        def discovery(self, name: str) -> object:
            raise Pyroute2Error(errno.ENOENT, "No such file or directory")

        def close(self) -> None:
            pass

    monkeypatch.setattr(generic, "GenericNetlinkSocket", NoFamily)
    with pytest.raises(ModuleNotLoaded, match=r"modprobe openvswitch"):
        KernelBackend(transport_factory=lambda: FakeKernel(), resolver="pyroute2")


def test_netlink_error_carries_extack() -> None:
    err = NetlinkError(errno.EINVAL, "bad attribute")
    assert err.errno == errno.EINVAL and "bad attribute" in str(err)


# ---------------------------------------------------------------------------
# Upcalls
# ---------------------------------------------------------------------------


def miss(dp_ifindex: int, packet: bytes, in_port: int) -> bytes:
    attrs = pack_attr(PacketAttr.KEY, encode_key(Match(InPort(in_port)))) + pack_attr(PacketAttr.PACKET, packet)
    return genl(PACKET_FAM, PacketCmd.MISS, 0, dp_ifindex, attrs)


def action_upcall(dp_ifindex: int, packet: bytes, userdata: bytes) -> bytes:
    attrs = (
        pack_attr(PacketAttr.KEY, encode_key(Match(InPort(2))))
        + pack_attr(PacketAttr.USERDATA, userdata)
        + pack_attr(PacketAttr.PACKET, packet)
    )
    return genl(PACKET_FAM, PacketCmd.ACTION, 0, dp_ifindex, attrs)


class UpcallKernel:
    """Three sockets: the backend's requests, the vport events, the upcalls."""

    def __init__(self) -> None:
        self.pids: dict[int, tuple[int, ...]] = {0: (0,), 1: (0,), 2: (0,)}
        self.sockets: list[FakeKernel] = []

    def factory(self) -> FakeKernel:
        sock = FakeKernel(self.handle if not self.sockets else None)
        self.sockets.append(sock)
        return sock

    def handle(self, k: FakeKernel, m: Message) -> list[bytes]:
        if m.type == DP_FAM:
            return [dp_reply(m.seq, "dp0", 7), ack(m.seq)]
        if m.type == VPORT_FAM and m.flags & NLM_F_DUMP == NLM_F_DUMP:
            body = b"".join(vport_reply(m.seq, 7, n, f"p{n}", pids=p, flags=NLM_F_MULTI) for n, p in self.pids.items())
            return [body + done(m.seq)]
        if m.type == VPORT_FAM and m.cmd == Cmd.NEW:
            attrs = dict(m.attrs)
            port = max(self.pids) + 1
            raw = attrs[VportAttr.UPCALL_PID]
            self.pids[port] = struct.unpack(f"={len(raw) // 4}I", raw)
            return [vport_reply(m.seq, 7, port, f"p{port}", pids=self.pids[port]), ack(m.seq)]
        if m.type == VPORT_FAM and m.cmd in (Cmd.SET, Cmd.GET):
            attrs = dict(m.attrs)
            port = struct.unpack("=I", attrs[VportAttr.PORT_NO])[0]
            if VportAttr.UPCALL_PID in attrs:
                raw = attrs[VportAttr.UPCALL_PID]
                self.pids[port] = struct.unpack(f"={len(raw) // 4}I", raw)
            return [vport_reply(m.seq, 7, port, f"p{port}", pids=self.pids[port]), ack(m.seq)]
        return [ack(m.seq, errno.EOPNOTSUPP)]


def test_upcall_listener_claims_vports_receives_counts_enobufs_and_restores() -> None:
    kernel = UpcallKernel()
    backend = KernelBackend(families=FAM, transport_factory=kernel.factory)
    listener = backend.upcall_listener("dp0")
    assert isinstance(listener, KernelUpcallListener)
    _requests, upcalls, events = kernel.sockets
    assert events.groups == [11]  # the ovs_vport multicast group
    assert listener.pid == upcalls.port_id
    assert kernel.pids == {0: (listener.pid,), 1: (listener.pid,), 2: (listener.pid,)}

    frame = bytes(range(64))
    upcalls.queue.extend(
        [miss(7, frame, 1), OSError(errno.ENOBUFS, "lost"), action_upcall(7, frame, b"\x01\x02\x03\x04")]
    )
    got = listener.receive(timeout=0.0)
    assert [u.kind for u in got] == [UpcallKind.MISS, UpcallKind.ACTION]
    assert got[0].packet == frame and got[0].in_port == 1 and got[0].pid == listener.pid
    assert got[1].userdata == b"\x01\x02\x03\x04"
    assert listener.lost == 1

    # A vport created later is announced on the multicast group and claimed.
    kernel.pids[5] = (0,)
    events.queue.append(vport_reply(0, 7, 5, "p5", pids=(0,), cmd=Cmd.NEW))
    assert listener.receive(timeout=0.0) == []
    assert kernel.pids[5] == (listener.pid,)

    # A vport this backend adds while listening gets the listener's pid in its NEW request.
    added = backend.vport_new(7, "late", VportKind.INTERNAL)
    assert added.upcall_pids == (listener.pid,)
    explicit = backend.vport_new(7, "mine", VportKind.INTERNAL, upcall_pids=(77,))
    assert explicit.upcall_pids == (77,)

    listener.close()
    assert kernel.pids[explicit.port_no] == (77,)
    del kernel.pids[explicit.port_no]
    assert set(kernel.pids.values()) == {(0,)}
    assert events.closed and upcalls.closed


def test_upcall_listener_max_count_keeps_the_rest() -> None:
    kernel = UpcallKernel()
    backend = KernelBackend(families=FAM, transport_factory=kernel.factory)
    listener = backend.upcall_listener("dp0")
    upcalls = kernel.sockets[1]
    upcalls.queue.extend(miss(7, bytes(60), 1) for _ in range(5))
    assert len(listener.receive(max_count=2)) == 2
    assert len(listener.receive(max_count=10)) == 3
    backend.close()
    assert upcalls.closed


def test_userspace_action_round_trip_in_request() -> None:
    backend, fake = backend_with(acking)
    backend.packet_execute(7, bytes(60), Actions.of(Userspace(pid=1234, userdata=b"ab")))
    (req,) = fake.requests()
    assert dict(req.attrs)[PacketAttr.ACTIONS] == encode_actions(Actions.of(Userspace(pid=1234, userdata=b"ab")))


def test_real_socket_type_is_a_transport() -> None:
    # Only the class is checked here: opening one needs AF_NETLINK, which the host may lack.
    assert hasattr(NetlinkSocket, "recv") and hasattr(NetlinkSocket, "port_id")


def test_real_netlink_socket_talks_to_the_controller() -> None:
    """The real socket against the host's generic netlink controller (no ovs needed)."""
    from odp.netlink.messages import build_get_family, decode_family

    try:
        sock = NetlinkSocket()
    except OSError as exc:
        pytest.skip(f"no AF_NETLINK here: {exc}")
    try:
        assert sock.port_id > 0
        sock.send(build_get_family("nlctrl", 1))
        replies = []
        while True:
            data = sock.recv(5.0)
            assert data is not None, "no answer from the controller"
            msgs = parse_messages(data)
            replies += [m for m in msgs if m.type == 16]
            if any(m.type == NLMSG_ERROR for m in msgs):
                break
        assert decode_family(replies[0]).id == 16
        assert sock.recv(0.0) is None  # nothing more: a zero timeout does not block
        # A missing family is ENOENT, the answer that means "module not loaded" for ovs.
        sock.send(build_get_family("odpnosuchfam", 2))
        data = sock.recv(5.0)
        assert data is not None
        (err,) = [m for m in parse_messages(data) if m.type == NLMSG_ERROR]
        assert err.error == -errno.ENOENT
    finally:
        sock.close()


def test_vport_events_filter_by_datapath_and_count_enobufs() -> None:
    from odp.kernel.upcall import VportEvents

    sockets: list[FakeKernel] = []

    def factory() -> FakeKernel:
        sockets.append(FakeKernel(acking if not sockets else None))
        return sockets[-1]

    backend = KernelBackend(families=FAM, transport_factory=factory)
    events = VportEvents(backend, 7)
    sock = sockets[1]
    assert sock.groups == [11]
    sock.queue.extend(
        [
            vport_reply(0, 7, 1, "a", cmd=Cmd.NEW),
            OSError(errno.ENOBUFS, "lost"),
            vport_reply(0, 8, 1, "other-dp", cmd=Cmd.NEW),
            vport_reply(0, 7, 1, "a", cmd=Cmd.DEL),
        ]
    )
    got = events.receive()
    assert [(e.kind, e.vport.name) for e in got] == [("new", "a"), ("del", "a")]
    assert events.lost == 1
    events.close()
    assert sock.closed
