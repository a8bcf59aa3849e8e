"""Whole generic netlink messages of the ovs families, built and parsed without sockets.

Layout: ``nlmsghdr {u32 len; u16 type; u16 flags; u32 seq; u32 pid}``, then
``genlmsghdr {u8 cmd; u8 version; u16 reserved}``, then for the ovs families
``struct ovs_header {s32 dp_ifindex}``, then 4-byte aligned attributes.  The
nlmsg type of a generic netlink message is the family id the kernel assigned
(resolve it with :func:`build_get_family` / :func:`decode_family`).

Building
--------

- :func:`build_request` ``(family_id, cmd, version, flags, seq, dp_ifindex, attrs)``
  -> bytes, where ``attrs`` is a list of ``(type, payload)`` (payloads of
  nested attributes are the packed inner attributes, e.g. :func:`~odp.netlink.codec.encode_key`).
- :func:`build_get_family` ``(name, seq)``: a ``CTRL_CMD_GETFAMILY`` request
  to the generic netlink controller.
- Attribute list helpers: :func:`flow_attrs`, :func:`datapath_attrs`,
  :func:`vport_attrs`, :func:`execute_attrs`, :func:`meter_attrs`.
- Flags: ``NLM_F_REQUEST``, ``NLM_F_ACK``, ``NLM_F_ECHO``, ``NLM_F_DUMP``,
  ``NLM_F_CREATE``, ``NLM_F_EXCL``, ``NLM_F_REPLACE``, ``NLM_F_MULTI``.

Parsing
-------

- :func:`parse_messages` ``(data)`` -> ``list[Message]``: every message in a
  datagram.  :class:`Message` (frozen) has ``type``, ``flags``, ``seq``,
  ``pid``, ``cmd``, ``version``, ``dp_ifindex``, ``attrs`` (tuple of
  ``(type, payload)``, flag bits stripped), ``error`` (``NLMSG_ERROR``: the
  kernel's value, ``0`` for an ACK or a negative errno such as ``-EEXIST``;
  ``NLMSG_DONE``: its status, normally 0; None otherwise), ``extack`` (the
  extended ACK message text when the kernel sent one) and ``done`` (True
  for ``NLMSG_DONE``).  Messages of the controller family (type 16) have no
  ovs_header (``dp_ifindex`` 0).

Typed decoders of ovs replies (each raises only :class:`~odp.errors.DecodeError`):

- :func:`decode_flow` -> :class:`FlowInfo` (``match`` from KEY+MASK,
  ``actions``, ``ufid``, ``n_packets``, ``n_bytes``, ``used`` in ms or None,
  ``tcp_flags``, raw ``key``/``mask`` bytes);
- :func:`decode_datapath` -> :class:`odp.records.DatapathInfo`, the record
  the backends return (``name``, ``stats``, ``megaflow``, ``features``,
  ``masks_cache_size``);
- :func:`decode_vport` -> :class:`odp.records.VportInfo` (``port_no``,
  ``kind``, ``name``, ``dst_port`` from OPTIONS, ``upcall_pids``, ``stats``,
  ``ifindex``, ``upcall_stats`` on kernels that report them);
- :func:`decode_packet` -> :class:`PacketInfo` (upcall: ``cmd``,
  ``packet``, exact ``key`` Match, ``userdata``, ``actions``,
  ``egress_tun_key``, ``mru``, ``length`` (OVS_PACKET_ATTR_LEN), ``hash``,
  ``upcall_pid``);
- :func:`decode_meter` -> :class:`MeterInfo` (``ovs_meter`` replies: ``meter_id``,
  ``stats`` (packets, bytes) or None, ``used`` in ms or None, ``bands`` (one
  :class:`MeterBandInfo` per nested band: type/rate/burst as sent, stats as
  replied), ``max_meters``/``max_bands`` of a FEATURES reply);
- :func:`decode_family` -> :class:`FamilyInfo` (controller replies).

Absent optional attributes decode as None (counters as 0 where the kernel
omits zero values: flow stats, tcp_flags).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from odp._codegen import define
from odp.actions import Actions
from odp.constants import BandAttr, DpAttr, FlowAttr, MeterAttr, PacketAttr, TunnelOptAttr, VportAttr, VxlanExtAttr
from odp.errors import DecodeError
from odp.keys import Match, Tunnel
from odp.netlink.attrs import (
    BytesLike,
    as_bytes,
    attr_list,
    get_flag,
    get_s32,
    get_string,
    get_u8,
    get_u16,
    get_u32,
    get_u64,
    pack_attr,
)
from odp.netlink.codec import decode_actions, decode_match, decode_tunnel, encode_actions, encode_key, encode_mask
from odp.records import (
    DatapathInfo,
    DatapathStats,
    Flow,
    MegaflowStats,
    VportInfo,
    VportKind,
    VportStats,
    VportUpcallStats,
    flow_constructor,
)

__all__ = [
    "GENL_ID_CTRL",
    "NLMSG_DONE",
    "NLMSG_ERROR",
    "NLMSG_NOOP",
    "NLMSG_OVERRUN",
    "NLM_F_ACK",
    "NLM_F_ACK_TLVS",
    "NLM_F_APPEND",
    "NLM_F_ATOMIC",
    "NLM_F_CAPPED",
    "NLM_F_CREATE",
    "NLM_F_DUMP",
    "NLM_F_DUMP_INTR",
    "NLM_F_ECHO",
    "NLM_F_EXCL",
    "NLM_F_MATCH",
    "NLM_F_MULTI",
    "NLM_F_REPLACE",
    "NLM_F_REQUEST",
    "NLM_F_ROOT",
    "DatapathInfo",
    "DatapathStats",
    "FamilyInfo",
    "FlowInfo",
    "MegaflowStats",
    "Message",
    "MeterBandInfo",
    "MeterInfo",
    "PacketInfo",
    "VportInfo",
    "VportStats",
    "WireFlow",
    "build_get_family",
    "build_message",
    "build_request",
    "datapath_attrs",
    "decode_datapath",
    "decode_family",
    "decode_flow",
    "decode_meter",
    "decode_packet",
    "decode_vport",
    "execute_attrs",
    "flow_attrs",
    "make_wire_flow",
    "meter_attrs",
    "parse_messages",
    "vport_attrs",
    "walk_flow_dump",
]

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 16
GENL_ID_CTRL = 16

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100  # in NLMSG_ERROR: the original payload was cut
NLM_F_ACK_TLVS = 0x200  # in NLMSG_ERROR / NLMSG_DONE: extended ACK attributes follow

NLMSGERR_ATTR_MSG = 1

CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
CTRL_ATTR_HDRSIZE = 4
CTRL_ATTR_MAXATTR = 5
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

_NLMSGHDR = struct.Struct("=IHHII")
_GENLHDR = struct.Struct("=BBH")
_OVSHDR = struct.Struct("=i")
_REQUEST_HDR = struct.Struct("=IHHIIBBHi")  # nlmsghdr, genlmsghdr, ovs_header
_S32 = struct.Struct("=i")
_FLOW_STATS_ST = struct.Struct("=QQ")
_DP_STATS_ST = struct.Struct("=QQQQ")
_MEGAFLOW_HEAD = struct.Struct("=QI")
_VPORT_STATS_ST = struct.Struct("=8Q")
_NLA_HDR = struct.Struct("=HH")

Attrs = tuple[tuple[int, bytes], ...]


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed netlink message (see the module docstring)."""

    type: int
    flags: int
    seq: int
    pid: int
    cmd: int = 0
    version: int = 0
    dp_ifindex: int = 0
    attrs: Attrs = ()
    error: int | None = None
    extack: str | None = None
    done: bool = False

    def get(self, type_: int) -> bytes | None:
        """The payload of the first attribute of this type, or None."""
        for t, p in self.attrs:
            if t == type_:
                return p
        return None

    @property
    def is_error(self) -> bool:
        """An ``NLMSG_ERROR`` carrying a non-zero error (not a plain ACK)."""
        return self.type == NLMSG_ERROR and bool(self.error)


def build_message(type_: int, flags: int, seq: int, payload: bytes, pid: int = 0) -> bytes:
    """A raw netlink message: header (length computed) and payload."""
    return _NLMSGHDR.pack(16 + len(payload), type_, flags, seq, pid) + payload


def _pack_attrs(attrs: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join([pack_attr(t, p) for t, p in attrs])


def build_request(
    family_id: int,
    cmd: int,
    version: int,
    flags: int,
    seq: int,
    dp_ifindex: int,
    attrs: Iterable[tuple[int, bytes]] = (),
    pid: int = 0,
) -> bytes:
    """A generic netlink request to an ovs family: headers, ovs_header and ``attrs``.

    ``flags`` usually includes ``NLM_F_REQUEST`` (plus ``NLM_F_ACK``,
    ``NLM_F_ECHO``, ``NLM_F_DUMP``, ``NLM_F_CREATE``/``NLM_F_EXCL`` as needed).
    """
    body = _pack_attrs(attrs)
    return _REQUEST_HDR.pack(24 + len(body), family_id, flags, seq, pid, cmd, version, 0, dp_ifindex) + body


def build_get_family(name: str, seq: int, flags: int = NLM_F_REQUEST | NLM_F_ACK) -> bytes:
    """``CTRL_CMD_GETFAMILY`` for ``name`` (e.g. ``"ovs_flow"``); decode the reply with :func:`decode_family`."""
    payload = _GENLHDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + pack_attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
    return build_message(GENL_ID_CTRL, flags, seq, payload)


def _parse_extack(data: bytes) -> str | None:
    try:
        for t, p in attr_list(data, "extended ack"):
            if t == NLMSGERR_ATTR_MSG:
                return get_string(p, "extended ack message")
    except DecodeError:
        return None  # the error code matters more than a garbled message
    return None


def _parse_one(type_: int, flags: int, seq: int, pid: int, body: bytes, off: int) -> Message:
    if type_ == NLMSG_ERROR:
        if len(body) < 4:
            raise DecodeError(
                f"netlink message at offset {off}: NLMSG_ERROR payload is {len(body)} byte(s), expected >= 4"
            )
        (err,) = _S32.unpack_from(body)
        extack = None
        if flags & NLM_F_ACK_TLVS and len(body) >= 20:
            (orig_len,) = struct.unpack_from("=I", body, 4)
            skip = 16 if flags & NLM_F_CAPPED else max(16, (orig_len + 3) & ~3)
            extack = _parse_extack(body[4 + skip :])
        return Message(type_, flags, seq, pid, error=err, extack=extack)
    if type_ == NLMSG_DONE:
        status = _S32.unpack_from(body)[0] if len(body) >= 4 else 0
        extack = _parse_extack(body[4:]) if flags & NLM_F_ACK_TLVS and len(body) > 4 else None
        return Message(type_, flags, seq, pid, error=status, extack=extack, done=True)
    if type_ < NLMSG_MIN_TYPE:
        return Message(type_, flags, seq, pid)
    if len(body) < 4:
        raise DecodeError(f"netlink message at offset {off}: {len(body)} byte(s) of payload, no room for genlmsghdr")
    cmd, version, _ = _GENLHDR.unpack_from(body)
    if type_ == GENL_ID_CTRL:
        return Message(type_, flags, seq, pid, cmd, version, 0, tuple(attr_list(body[4:], "controller attributes")))
    if len(body) < 8:
        raise DecodeError(f"netlink message at offset {off}: {len(body)} byte(s) of payload, no room for ovs_header")
    (dp_ifindex,) = _OVSHDR.unpack_from(body, 4)
    return Message(
        type_, flags, seq, pid, cmd, version, dp_ifindex, tuple(attr_list(body[8:], f"message type {type_} attributes"))
    )


def parse_messages(data: BytesLike) -> list[Message]:
    """Every netlink message in ``data`` (one datagram from a netlink socket)."""
    data = as_bytes(data)
    out: list[Message] = []
    n = len(data)
    off = 0
    while off < n:
        if n - off < 16:
            raise DecodeError(f"netlink message at offset {off}: {n - off} byte(s) left, less than a 16-byte header")
        length, type_, flags, seq, pid = _NLMSGHDR.unpack_from(data, off)
        if length < 16:
            raise DecodeError(f"netlink message at offset {off}: nlmsg_len {length} is less than its 16-byte header")
        if off + length > n:
            raise DecodeError(
                f"netlink message at offset {off}: nlmsg_len {length} but only {n - off} byte(s) remain (truncated)"
            )
        out.append(_parse_one(type_, flags, seq, pid, data[off + 16 : off + length], off))
        off += (length + 3) & ~3
    return out


# Plain-int copies of the enum members compared in the decoding loops (IntEnum compares ~5x slower).
_FLOW_KEY = int(FlowAttr.KEY)
_FLOW_MASK = int(FlowAttr.MASK)
_FLOW_ACTIONS = int(FlowAttr.ACTIONS)
_FLOW_STATS = int(FlowAttr.STATS)
_FLOW_USED = int(FlowAttr.USED)
_FLOW_TCP_FLAGS = int(FlowAttr.TCP_FLAGS)
_FLOW_UFID = int(FlowAttr.UFID)
_DP_NAME = int(DpAttr.NAME)
_DP_STATS = int(DpAttr.STATS)
_DP_MEGAFLOW_STATS = int(DpAttr.MEGAFLOW_STATS)
_DP_USER_FEATURES = int(DpAttr.USER_FEATURES)
_DP_MASKS_CACHE_SIZE = int(DpAttr.MASKS_CACHE_SIZE)
_DP_PER_CPU_PIDS = int(DpAttr.PER_CPU_PIDS)
_DP_UPCALL_PID = int(DpAttr.UPCALL_PID)
_DP_IFINDEX = int(DpAttr.IFINDEX)
_VPORT_PORT_NO = int(VportAttr.PORT_NO)
_VPORT_TYPE = int(VportAttr.TYPE)
_VPORT_NAME = int(VportAttr.NAME)
_VPORT_OPTIONS = int(VportAttr.OPTIONS)
_TUNNEL_OPT_DST_PORT = int(TunnelOptAttr.DST_PORT)
_TUNNEL_OPT_EXTENSION = int(TunnelOptAttr.EXTENSION)
#: Vport extension names and their flags in OVS_TUNNEL_ATTR_EXTENSION (vxlan_configure_exts()).
_VPORT_EXTENSION_FLAGS: dict[str, int] = {"gbp": int(VxlanExtAttr.GBP)}
_VPORT_UPCALL_PID = int(VportAttr.UPCALL_PID)
_VPORT_STATS = int(VportAttr.STATS)
_VPORT_IFINDEX = int(VportAttr.IFINDEX)
_VPORT_NETNSID = int(VportAttr.NETNSID)
_VPORT_UPCALL_STATS = int(VportAttr.UPCALL_STATS)
_PACKET_PACKET = int(PacketAttr.PACKET)
_PACKET_KEY = int(PacketAttr.KEY)
_PACKET_USERDATA = int(PacketAttr.USERDATA)
_PACKET_ACTIONS = int(PacketAttr.ACTIONS)
_PACKET_EGRESS_TUN_KEY = int(PacketAttr.EGRESS_TUN_KEY)
_PACKET_MRU = int(PacketAttr.MRU)
_PACKET_LEN = int(PacketAttr.LEN)
_PACKET_HASH = int(PacketAttr.HASH)
_PACKET_UPCALL_PID = int(PacketAttr.UPCALL_PID)
_PACKET_PROBE = int(PacketAttr.PROBE)
_METER_ID = int(MeterAttr.ID)
_METER_KBPS = int(MeterAttr.KBPS)
_METER_STATS = int(MeterAttr.STATS)
_METER_BANDS = int(MeterAttr.BANDS)
_METER_USED = int(MeterAttr.USED)
_METER_CLEAR = int(MeterAttr.CLEAR)
_METER_MAX_METERS = int(MeterAttr.MAX_METERS)
_METER_MAX_BANDS = int(MeterAttr.MAX_BANDS)
_BAND_TYPE = int(BandAttr.TYPE)
_BAND_RATE = int(BandAttr.RATE)
_BAND_BURST = int(BandAttr.BURST)
_BAND_STATS = int(BandAttr.STATS)


# ---------------------------------------------------------------------------
# Typed replies
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """An ``ovs_flow`` reply or dump entry (or a NEW/SET echo)."""

    cmd: int
    dp_ifindex: int
    match: Match | None
    actions: Actions | None
    ufid: bytes | None
    n_packets: int = 0
    n_bytes: int = 0
    used: int | None = None
    tcp_flags: int = 0
    key: bytes | None = None
    mask: bytes | None = None


def decode_flow(msg: Message) -> FlowInfo:
    """A FlowInfo from an ``ovs_flow`` message.

    ``match`` is None when the reply has no KEY (``OVS_UFID_F_OMIT_KEY``);
    with KEY but no MASK the match is exact; ``actions`` is None without
    ACTIONS (``OMIT_ACTIONS``), an empty Actions for drop.
    """
    key = mask = acts = ufid = None
    n_packets = n_bytes = tcp_flags = 0
    used = None
    for t, p in msg.attrs:
        if t == _FLOW_KEY:
            key = p
        elif t == _FLOW_MASK:
            mask = p
        elif t == _FLOW_ACTIONS:
            acts = p
        elif t == _FLOW_STATS:
            if len(p) != 16:
                raise DecodeError(f"flow stats: payload is {len(p)} byte(s), expected 16")
            n_packets, n_bytes = _FLOW_STATS_ST.unpack(p)
        elif t == _FLOW_USED:
            used = get_u64(p, "flow used")
        elif t == _FLOW_TCP_FLAGS:
            tcp_flags = get_u8(p, "flow tcp_flags")
        elif t == _FLOW_UFID:
            ufid = p
    return FlowInfo(
        cmd=msg.cmd,
        dp_ifindex=msg.dp_ifindex,
        match=decode_match(key, mask) if key is not None else None,
        actions=decode_actions(acts) if acts is not None else None,
        ufid=ufid,
        n_packets=n_packets,
        n_bytes=n_bytes,
        used=used,
        tcp_flags=tcp_flags,
        key=key,
        mask=mask,
    )


class WireFlow(Flow):
    """A :class:`~odp.datapath.Flow` read from a dump, whose ``match`` and
    ``actions`` are decoded from their netlink bytes on first access.

    A dump of 100k flows spends most of its time building match and action
    objects; a caller that reads only stats, ``used`` or the UFID (a
    revalidator, a counter) never pays for them.  It is a Flow in every other
    way: equal to (and hashing as) the eagerly built Flow with the same values,
    immutable, and it pickles and copies as a plain Flow.  Decoding errors
    (DecodeError) surface on that first access.
    """

    __slots__ = ("_wire",)
    _wire: tuple[bytes | None, bytes | None, bytes | None]

    @property
    def match(self) -> Match | None:
        value = _get_flow_match(self)
        if value is _PENDING:
            key, mask, _ = self._wire
            value = decode_match(key, mask) if key is not None else None
            _set_flow_match(self, value)
        return value  # type: ignore[no-any-return]

    @match.setter
    def match(self, value: Match | None) -> None:  # Flow's constructor and dataclasses.replace
        _set_flow_match(self, value)

    @property
    def actions(self) -> Actions | None:
        value = _get_flow_actions(self)
        if value is _PENDING:
            acts = self._wire[2]
            value = decode_actions(acts) if acts is not None else None
            _set_flow_actions(self, value)
        return value  # type: ignore[no-any-return]

    @actions.setter
    def actions(self, value: Actions | None) -> None:
        _set_flow_actions(self, value)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return Flow, self._values()


#: What a WireFlow's match and actions slots hold until first access.
_PENDING = object()
# Flow's own slot descriptors, which WireFlow's properties shadow.
_get_flow_match = Flow.__dict__["match"].__get__
_set_flow_match = Flow.__dict__["match"].__set__
_get_flow_actions = Flow.__dict__["actions"].__get__
_set_flow_actions = Flow.__dict__["actions"].__set__


_make_pending_flow = flow_constructor(WireFlow)
_set_wire = WireFlow.__dict__["_wire"].__set__


def make_wire_flow(
    wire: tuple[bytes | None, bytes | None, bytes | None],
    ufid: bytes | None,
    packets: int,
    nbytes: int,
    used: int | None,
    tcp_flags: int,
) -> WireFlow:
    """A WireFlow from ``(key, mask, actions)`` bytes (each None when omitted) and the other fields."""
    flow = _make_pending_flow(_PENDING, _PENDING, ufid, packets, nbytes, used, tcp_flags)  # type: ignore[arg-type]
    _set_wire(flow, wire)
    return flow


_USED_ST = struct.Struct("=Q")


def _bad_message(off: int, left: int, length: int | None) -> DecodeError:
    where = f"netlink message at offset {off}"
    if length is None:
        return DecodeError(f"{where}: {left} byte(s) left, less than a 16-byte header")
    if length < 16:
        return DecodeError(f"{where}: nlmsg_len {length} is less than its 16-byte header")
    if length > left:
        return DecodeError(f"{where}: nlmsg_len {length} but only {left} byte(s) remain (truncated)")
    room = "genlmsghdr" if length < 20 else "ovs_header"
    return DecodeError(f"{where}: {length - 16} byte(s) of payload, no room for {room}")


#: A compiled message layout: ``fast(data, off)`` is the WireFlow of the
#: message at ``off`` when it has the learnt layout, else None.
_FastFlow = Callable[[bytes, int], "WireFlow | None"]
#: Message length -> the layout of the first message of that length that decoded.
_LAYOUTS: dict[int, _FastFlow] = {}
_MAX_LAYOUTS = 64


def _compile_layout(data: bytes, off: int, end: int) -> _FastFlow:
    """The layout of the (well-formed) ovs_flow message at ``data[off:end]``, compiled.

    Flows of one shape give messages of one layout: the same attributes with
    the same lengths, in the kernel's order.  The compiled function reads
    every attribute header (nla_len and nla_type as one u32) and the stats,
    used and tcp_flags values in one ``struct`` call, and slices the key,
    mask, actions and UFID at fixed offsets; a message of the same length
    whose headers differ is left to the general loop.  Equal headers mean
    equal attribute boundaries, so the general loop's checks hold.
    """
    fmt = ["=24x"]
    headers: list[int] = []
    slices: dict[int, str] = {}
    values: dict[int, str] = {}
    index = 0
    a = off + 24
    while a < end:
        alen, t = _NLA_HDR.unpack_from(data, a)
        aend = a + alen
        nxt = min((aend + 3) & ~3, end)
        fmt.append("I")
        headers.append(index)
        index += 1
        t &= 0x3FFF
        if t == _FLOW_STATS:
            fmt.append("QQ")
            values[t] = f"v[{index}], v[{index + 1}]"
            index += 2
        elif t == _FLOW_USED:
            fmt.append("Q")
            values[t] = f"v[{index}]"
            index += 1
        elif t == _FLOW_TCP_FLAGS:
            fmt.append("B")
            values[t] = f"v[{index}]"
            index += 1
        else:
            fmt.append(f"{alen - 4}x")
            slices[t] = f"data[off + {a + 4 - off} : off + {aend - off}]"
        fmt.append(f"{nxt - aend}x")
        a = nxt
    unpack = struct.Struct("".join(fmt)).unpack_from
    # itemgetter() needs one index at least: a message without attributes has no header to check
    check: Callable[[tuple[Any, ...]], object] = itemgetter(*headers) if headers else (lambda v: ())
    expected = check(unpack(data, off))

    def part(t: int, absent: str = "None") -> str:
        return slices.get(t, values.get(t, absent))

    source = f"""
def fast(data, off):
    v = unpack(data, off)
    if check(v) != expected:
        return None
    return make(({part(_FLOW_KEY)}, {part(_FLOW_MASK)}, {part(_FLOW_ACTIONS)}), {part(_FLOW_UFID)},
                {part(_FLOW_STATS, "0, 0")}, {part(_FLOW_USED)}, {part(_FLOW_TCP_FLAGS, "0")})
"""
    ns = define(source, {"unpack": unpack, "check": check, "expected": expected, "make": make_wire_flow})
    fast: _FastFlow = ns["fast"]
    return fast


def walk_flow_dump(data: BytesLike, seq: int, family: int, out: list[Flow]) -> tuple[int, bool]:
    """Add the flows of one datagram of a flow dump (request ``seq``) to ``out``, as :class:`WireFlow`.

    Returns the offset of the message that ends the dump (``NLMSG_DONE`` or
    ``NLMSG_ERROR`` of ``seq``; -1 when the dump goes on) and whether one of
    the dump's messages was flagged ``NLM_F_DUMP_INTR`` (the dump must then be
    restarted).  Messages of other requests are skipped.

    This is the hot path of a 100k-flow dump, so the datagram is walked once,
    as it arrives: message headers, then each flow's attributes, with the
    checks :func:`parse_messages` and :func:`decode_flow` make (malformed
    input raises DecodeError); only the match and actions wait for
    :class:`WireFlow`'s first access.  A message laid out as the first one of
    its length that decoded is read by that layout's compiled function
    (:func:`_compile_layout`) instead of attribute by attribute.
    """
    head = _NLMSGHDR.unpack_from
    nla = _NLA_HDR.unpack_from
    stats = _FLOW_STATS_ST.unpack_from
    u64 = _USED_ST.unpack_from
    add = out.append
    wire_flow = make_wire_flow
    layouts = _LAYOUTS
    data = as_bytes(data)  # WireFlow keeps slices of it: a bytearray would make them mutable
    interrupted = False
    n = len(data)
    off = 0
    while off < n:
        if n - off < 16:
            raise _bad_message(off, n - off, None)
        length, type_, flags, mseq, _pid = head(data, off)
        end = off + length
        if length < 16 or end > n:
            raise _bad_message(off, n - off, length)
        if mseq != seq:
            off = (end + 3) & ~3
            continue
        if flags & NLM_F_DUMP_INTR:
            interrupted = True
        if type_ != family:
            if type_ in (NLMSG_DONE, NLMSG_ERROR):
                return off, interrupted
            off = (end + 3) & ~3
            continue
        if length < 24:
            raise _bad_message(off, n - off, length)
        fast = layouts.get(length)
        if fast is not None:
            flow = fast(data, off)
            if flow is not None:
                add(flow)
                off = (end + 3) & ~3
                continue
        key = mask = acts = ufid = used = None
        n_packets = n_bytes = tcp_flags = 0
        a = base = off + 24
        while a < end:
            if end - a < 4:
                raise DecodeError(
                    f"message type {type_} attributes: {end - a} trailing byte(s) at offset {a - base}, "
                    "too short for an attribute header (4 bytes)"
                )
            alen, t = nla(data, a)
            aend = a + alen
            if alen < 4 or aend > end:
                if alen < 4:
                    raise DecodeError(
                        f"message type {type_} attributes: attribute at offset {a - base} has nla_len {alen}, "
                        "less than its 4-byte header"
                    )
                raise DecodeError(
                    f"message type {type_} attributes: attribute type {t & 0x3FFF} at offset {a - base} "
                    f"has nla_len {alen} but only {end - a} byte(s) remain (truncated)"
                )
            t &= 0x3FFF
            if t == _FLOW_KEY:
                key = data[a + 4 : aend]
            elif t == _FLOW_MASK:
                mask = data[a + 4 : aend]
            elif t == _FLOW_ACTIONS:
                acts = data[a + 4 : aend]
            elif t == _FLOW_STATS:
                if alen != 20:
                    raise DecodeError(f"flow stats: payload is {alen - 4} byte(s), expected 16")
                n_packets, n_bytes = stats(data, a + 4)
            elif t == _FLOW_USED:
                used = u64(data, a + 4)[0] if alen == 12 else get_u64(data[a + 4 : aend], "flow used")
            elif t == _FLOW_TCP_FLAGS:
                tcp_flags = data[a + 4] if alen == 5 else get_u8(data[a + 4 : aend], "flow tcp_flags")
            elif t == _FLOW_UFID:
                ufid = data[a + 4 : aend]
            a = (aend + 3) & ~3
        add(wire_flow((key, mask, acts), ufid, n_packets, n_bytes, used, tcp_flags))
        if fast is None:  # the first of its length (another layout of a known length stays on this path)
            if len(layouts) >= _MAX_LAYOUTS:
                layouts.clear()
            layouts[length] = _compile_layout(data, off, end)
        off = (end + 3) & ~3
    return -1, interrupted


def _u32_array(p: bytes, what: str) -> tuple[int, ...]:
    if len(p) % 4:
        raise DecodeError(f"{what}: payload is {len(p)} byte(s), not a multiple of 4")
    return struct.unpack(f"={len(p) // 4}I", p)


def decode_datapath(msg: Message) -> DatapathInfo:
    """The :class:`~odp.records.DatapathInfo` of an ``ovs_datapath`` reply (absent
    counters read as zero, as the kernel reports a datapath that saw nothing).

    The per-CPU and legacy upcall pids (PER_CPU_PIDS, UPCALL_PID) are not part
    of the record and are checked for shape only."""
    name = ""
    stats = _NO_DP_STATS
    megaflow = _NO_MEGAFLOW_STATS
    features = 0
    cache_size = None
    for t, p in msg.attrs:
        if t == _DP_NAME:
            name = get_string(p, "datapath name")
        elif t == _DP_STATS:
            if len(p) != 32:
                raise DecodeError(f"datapath stats: payload is {len(p)} byte(s), expected 32")
            stats = DatapathStats(*_DP_STATS_ST.unpack(p))
        elif t == _DP_MEGAFLOW_STATS:
            if len(p) < 12:
                raise DecodeError(f"datapath megaflow stats: payload is {len(p)} byte(s), expected 32")
            mask_hit, n_masks = _MEGAFLOW_HEAD.unpack_from(p)
            cache_hit = struct.unpack_from("=Q", p, 16)[0] if len(p) >= 24 else 0
            megaflow = MegaflowStats(mask_hit, n_masks, cache_hit)
        elif t == _DP_USER_FEATURES:
            features = get_u32(p, "datapath user_features")
        elif t == _DP_MASKS_CACHE_SIZE:
            cache_size = get_u32(p, "datapath masks_cache_size")
        elif t == _DP_PER_CPU_PIDS:
            _u32_array(p, "datapath per_cpu_pids")
        elif t == _DP_UPCALL_PID:
            _u32_array(p, "datapath upcall_pid")
    return DatapathInfo(name, msg.dp_ifindex, stats, megaflow, features, cache_size)


_NO_DP_STATS = DatapathStats()
_NO_MEGAFLOW_STATS = MegaflowStats()
_NO_VPORT_STATS = VportStats()


def decode_vport(msg: Message) -> VportInfo:
    """The :class:`~odp.records.VportInfo` of an ``ovs_vport`` reply or event.

    A reply without its port number, type or name is a DecodeError; a type
    number odp does not know is a FieldError (from :meth:`VportKind.from_number`)."""
    port_no = vtype = dst_port = ifindex = up_ok = up_fail = None
    name = None
    pids: tuple[int, ...] = ()
    extensions: tuple[str, ...] = ()
    stats = _NO_VPORT_STATS
    for t, p in msg.attrs:
        if t == _VPORT_PORT_NO:
            port_no = get_u32(p, "vport port_no")
        elif t == _VPORT_TYPE:
            vtype = get_u32(p, "vport type")
        elif t == _VPORT_NAME:
            name = get_string(p, "vport name")
        elif t == _VPORT_OPTIONS:
            options = attr_list(p, "vport options")
            for ot, op in options:
                if ot == _TUNNEL_OPT_DST_PORT:
                    dst_port = get_u16(op, "vport options dst_port")
            extensions = vport_extensions(tuple(options))
        elif t == _VPORT_UPCALL_PID:
            pids = _u32_array(p, "vport upcall_pid")
        elif t == _VPORT_STATS:
            if len(p) != 64:
                raise DecodeError(f"vport stats: payload is {len(p)} byte(s), expected 64")
            stats = VportStats(*_VPORT_STATS_ST.unpack(p))
        elif t == _VPORT_IFINDEX:
            ifindex = get_u32(p, "vport ifindex")
        elif t == _VPORT_NETNSID:
            get_s32(p, "vport netnsid")
        elif t == _VPORT_UPCALL_STATS:
            up_ok = up_fail = 0
            for st, sp in attr_list(p, "vport upcall_stats"):
                if st == 0:
                    up_ok = get_u64(sp, "vport upcall_stats success")
                elif st == 1:
                    up_fail = get_u64(sp, "vport upcall_stats fail")
    if port_no is None or vtype is None or name is None:
        raise DecodeError(
            f"a vport reply lacks its port number, type or name (port {port_no}, type {vtype}, name {name!r})"
        )
    return VportInfo(
        port_no,
        VportKind.from_number(vtype),
        name,
        msg.dp_ifindex,
        dst_port,
        pids,
        stats,
        ifindex,
        None if up_ok is None or up_fail is None else VportUpcallStats(up_ok, up_fail),
        extensions,
    )


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """An ``ovs_packet`` message: an upcall (MISS / ACTION) or an EXECUTE request."""

    cmd: int
    dp_ifindex: int
    packet: bytes | None
    key: Match | None
    userdata: bytes | None = None
    actions: Actions | None = None
    egress_tun_key: Tunnel | None = None
    mru: int | None = None
    length: int | None = None
    hash: int | None = None
    upcall_pid: int | None = None
    probe: bool = False


def decode_packet(msg: Message) -> PacketInfo:
    """A PacketInfo; the key is decoded exact (``decode_match(key, None)``)."""
    packet = key = userdata = acts = egress = None
    mru = length = hash_ = upcall_pid = None
    probe = False
    for t, p in msg.attrs:
        if t == _PACKET_PACKET:
            packet = p
        elif t == _PACKET_KEY:
            key = p
        elif t == _PACKET_USERDATA:
            userdata = p
        elif t == _PACKET_ACTIONS:
            acts = p
        elif t == _PACKET_EGRESS_TUN_KEY:
            egress = p
        elif t == _PACKET_MRU:
            mru = get_u16(p, "packet mru")
        elif t == _PACKET_LEN:
            length = get_u32(p, "packet len")
        elif t == _PACKET_HASH:
            hash_ = get_u64(p, "packet hash")
        elif t == _PACKET_UPCALL_PID:
            upcall_pid = get_u32(p, "packet upcall_pid")
        elif t == _PACKET_PROBE:
            probe = get_flag(p, "packet probe")
    return PacketInfo(
        cmd=msg.cmd,
        dp_ifindex=msg.dp_ifindex,
        packet=packet,
        key=decode_match(key) if key is not None else None,
        userdata=userdata,
        actions=decode_actions(acts) if acts is not None else None,
        egress_tun_key=decode_tunnel(egress) if egress is not None else None,
        mru=mru,
        length=length,
        hash=hash_,
        upcall_pid=upcall_pid,
        probe=probe,
    )


@dataclass(frozen=True, slots=True)
class MeterBandInfo:
    """One band nested in ``OVS_METER_ATTR_BANDS``.

    Requests carry type, rate and burst; replies to GET/DEL/SET carry only the
    band's stats, and a FEATURES reply only the supported type.
    """

    type: int | None = None
    rate: int | None = None
    burst: int | None = None
    n_packets: int = 0
    n_bytes: int = 0
    has_stats: bool = False


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """An ``ovs_meter`` message (request or reply)."""

    cmd: int
    dp_ifindex: int
    meter_id: int | None = None
    kbps: bool = False
    clear: bool = False
    #: (n_packets, n_bytes) of OVS_METER_ATTR_STATS, None when absent.
    stats: tuple[int, int] | None = None
    used: int | None = None
    bands: tuple[MeterBandInfo, ...] | None = None
    max_meters: int | None = None
    max_bands: int | None = None


def _flow_stats(p: bytes, what: str) -> tuple[int, int]:
    if len(p) != 16:
        raise DecodeError(f"{what}: payload is {len(p)} byte(s), expected 16 (struct ovs_flow_stats)")
    n_packets, n_bytes = _FLOW_STATS_ST.unpack(p)
    return int(n_packets), int(n_bytes)


def _decode_band(p: bytes) -> MeterBandInfo:
    type_ = rate = burst = None
    stats: tuple[int, int] | None = None
    for t, v in attr_list(p, "meter band"):
        if t == _BAND_TYPE:
            type_ = get_u32(v, "meter band type")
        elif t == _BAND_RATE:
            rate = get_u32(v, "meter band rate")
        elif t == _BAND_BURST:
            burst = get_u32(v, "meter band burst")
        elif t == _BAND_STATS:
            stats = _flow_stats(v, "meter band stats")
    n_packets, n_bytes = stats if stats is not None else (0, 0)
    return MeterBandInfo(type_, rate, burst, n_packets, n_bytes, stats is not None)


def decode_meter(msg: Message) -> MeterInfo:
    """A MeterInfo from an ``ovs_meter`` message (PAD and unknown attributes are skipped).

    The kernel's DEL of a meter that does not exist replies with no attribute
    at all, so every field may be absent.
    """
    meter_id = used = max_meters = max_bands = None
    stats: tuple[int, int] | None = None
    bands: tuple[MeterBandInfo, ...] | None = None
    kbps = clear = False
    for t, p in msg.attrs:
        if t == _METER_ID:
            meter_id = get_u32(p, "meter id")
        elif t == _METER_KBPS:
            kbps = get_flag(p, "meter kbps")
        elif t == _METER_STATS:
            stats = _flow_stats(p, "meter stats")
        elif t == _METER_BANDS:
            bands = tuple(_decode_band(bp) for _, bp in attr_list(p, "meter bands"))
        elif t == _METER_USED:
            used = get_u64(p, "meter used")
        elif t == _METER_CLEAR:
            clear = get_flag(p, "meter clear")
        elif t == _METER_MAX_METERS:
            max_meters = get_u32(p, "meter max_meters")
        elif t == _METER_MAX_BANDS:
            max_bands = get_u32(p, "meter max_bands")
    return MeterInfo(msg.cmd, msg.dp_ifindex, meter_id, kbps, clear, stats, used, bands, max_meters, max_bands)


@dataclass(frozen=True, slots=True)
class FamilyInfo:
    """A generic netlink family as the controller describes it."""

    id: int
    name: str
    version: int = 0
    hdrsize: int = 0
    maxattr: int = 0
    mcast_groups: tuple[tuple[str, int], ...] = ()

    def group(self, name: str) -> int | None:
        """The id of the multicast group ``name`` or None."""
        for n, gid in self.mcast_groups:
            if n == name:
                return gid
        return None


def decode_family(msg: Message) -> FamilyInfo:
    """A FamilyInfo from a ``CTRL_CMD_NEWFAMILY`` reply."""
    fid = None
    name = None
    version = hdrsize = maxattr = 0
    groups: list[tuple[str, int]] = []
    for t, p in msg.attrs:
        if t == CTRL_ATTR_FAMILY_ID:
            fid = get_u16(p, "family id")
        elif t == CTRL_ATTR_FAMILY_NAME:
            name = get_string(p, "family name")
        elif t == CTRL_ATTR_VERSION:
            version = get_u32(p, "family version")
        elif t == CTRL_ATTR_HDRSIZE:
            hdrsize = get_u32(p, "family hdrsize")
        elif t == CTRL_ATTR_MAXATTR:
            maxattr = get_u32(p, "family maxattr")
        elif t == CTRL_ATTR_MCAST_GROUPS:
            for _, gp in attr_list(p, "family mcast groups"):
                gname = None
                gid = None
                for gt, gv in attr_list(gp, "family mcast group"):
                    if gt == CTRL_ATTR_MCAST_GRP_NAME:
                        gname = get_string(gv, "mcast group name")
                    elif gt == CTRL_ATTR_MCAST_GRP_ID:
                        gid = get_u32(gv, "mcast group id")
                if gname is not None and gid is not None:
                    groups.append((gname, gid))
    if fid is None or name is None:
        raise DecodeError("controller reply without family id or name")
    return FamilyInfo(fid, name, version, hdrsize, maxattr, tuple(groups))


# ---------------------------------------------------------------------------
# Request attribute helpers
# ---------------------------------------------------------------------------

_U32 = struct.Struct("=I")


def flow_attrs(
    match: Match | None = None,
    actions: Actions | None = None,
    *,
    ufid: bytes | None = None,
    ufid_flags: int | None = None,
    mask: bool = True,
    clear: bool = False,
    probe: bool = False,
) -> list[tuple[int, bytes]]:
    """Attributes of an ``ovs_flow`` request.

    ``mask=False`` sends the key without OVS_FLOW_ATTR_MASK (an exact flow,
    or GET/DEL by key).
    """
    out: list[tuple[int, bytes]] = []
    if match is not None:
        out.append((_FLOW_KEY, encode_key(match)))
        if mask:
            out.append((_FLOW_MASK, encode_mask(match)))
    if actions is not None:
        out.append((_FLOW_ACTIONS, encode_actions(actions)))
    if ufid is not None:
        out.append((_FLOW_UFID, ufid))
    if ufid_flags is not None:
        out.append((int(FlowAttr.UFID_FLAGS), _U32.pack(ufid_flags)))
    if clear:
        out.append((int(FlowAttr.CLEAR), b""))
    if probe:
        out.append((int(FlowAttr.PROBE), b""))
    return out


def _cstr(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape") + b"\0"


def datapath_attrs(
    name: str | None = None,
    *,
    upcall_pid: int | None = None,
    user_features: int | None = None,
    masks_cache_size: int | None = None,
    per_cpu_pids: Sequence[int] | None = None,
) -> list[tuple[int, bytes]]:
    """Attributes of an ``ovs_datapath`` request (NEW needs ``upcall_pid``, 0 for none)."""
    out: list[tuple[int, bytes]] = []
    if name is not None:
        out.append((int(DpAttr.NAME), _cstr(name)))
    if upcall_pid is not None:
        out.append((int(DpAttr.UPCALL_PID), _U32.pack(upcall_pid)))
    if user_features is not None:
        out.append((int(DpAttr.USER_FEATURES), _U32.pack(user_features)))
    if masks_cache_size is not None:
        out.append((int(DpAttr.MASKS_CACHE_SIZE), _U32.pack(masks_cache_size)))
    if per_cpu_pids is not None:
        out.append((int(DpAttr.PER_CPU_PIDS), b"".join(_U32.pack(p) for p in per_cpu_pids)))
    return out


def vport_extension_options(extensions: Iterable[str]) -> list[tuple[int, bytes]]:
    """OVS_TUNNEL_ATTR_EXTENSION (nested flags) for vport ``extensions`` (names), or nothing."""
    flags = [(_VPORT_EXTENSION_FLAGS[e], b"") for e in extensions]
    return [(_TUNNEL_OPT_EXTENSION, _pack_attrs(flags))] if flags else []


def vport_extensions(options: Attrs) -> tuple[str, ...]:
    """The extension names a vport's decoded OPTIONS report (``vxlan_get_options()``)."""
    names = {flag: name for name, flag in _VPORT_EXTENSION_FLAGS.items()}
    found: list[str] = []
    for t, p in options:
        if t == _TUNNEL_OPT_EXTENSION:
            found.extend(names[ft] for ft, _ in attr_list(p, "vport extensions") if ft in names)
    return tuple(found)


def vport_attrs(
    name: str | None = None,
    type_: int | None = None,
    *,
    port_no: int | None = None,
    upcall_pids: Sequence[int] | None = None,
    dst_port: int | None = None,
    options: Iterable[tuple[int, bytes]] = (),
) -> list[tuple[int, bytes]]:
    """Attributes of an ``ovs_vport`` request; ``dst_port`` goes into OPTIONS (host-order u16)."""
    out: list[tuple[int, bytes]] = []
    if port_no is not None:
        out.append((int(VportAttr.PORT_NO), _U32.pack(port_no)))
    if type_ is not None:
        out.append((int(VportAttr.TYPE), _U32.pack(type_)))
    if name is not None:
        out.append((int(VportAttr.NAME), _cstr(name)))
    opts = list(options)
    if dst_port is not None:
        opts.insert(0, (int(TunnelOptAttr.DST_PORT), struct.pack("=H", dst_port)))
    if opts:
        out.append((int(VportAttr.OPTIONS), _pack_attrs(opts)))
    if upcall_pids is not None:
        out.append((int(VportAttr.UPCALL_PID), b"".join(_U32.pack(p) for p in upcall_pids)))
    return out


def execute_attrs(
    packet: bytes,
    key: Match,
    actions: Actions,
    *,
    probe: bool = False,
    mru: int | None = None,
    hash: int | None = None,
) -> list[tuple[int, bytes]]:
    """Attributes of ``OVS_PACKET_CMD_EXECUTE`` (``key`` gives the metadata: in_port, tunnel...)."""
    out = [
        (int(PacketAttr.PACKET), packet),
        (int(PacketAttr.KEY), encode_key(key)),
        (int(PacketAttr.ACTIONS), encode_actions(actions)),
    ]
    if probe:
        out.append((int(PacketAttr.PROBE), b""))
    if mru is not None:
        out.append((int(PacketAttr.MRU), struct.pack("=H", mru)))
    if hash is not None:
        out.append((int(PacketAttr.HASH), struct.pack("=Q", hash)))
    return out


def meter_attrs(
    meter_id: int | None = None,
    *,
    bands: Sequence[tuple[int, int, int]] | None = None,
    kbps: bool = False,
    clear: bool = False,
    stats: tuple[int, int] | None = None,
) -> list[tuple[int, bytes]]:
    """Attributes of an ``ovs_meter`` request.

    ``bands`` is ``(type, rate, burst)`` per band, sent as the nested
    ``OVS_METER_ATTR_BANDS`` list (each entry type 0, OVS_BAND_ATTR_UNSPEC, as
    the kernel itself nests them); SET needs it even when empty.  ``stats``
    (packets, bytes) preloads the new meter's counters (ignored by the kernel
    with ``clear``).
    """
    out: list[tuple[int, bytes]] = []
    if meter_id is not None:
        out.append((_METER_ID, _U32.pack(meter_id)))
    if kbps:
        out.append((_METER_KBPS, b""))
    if stats is not None:
        out.append((_METER_STATS, _FLOW_STATS_ST.pack(*stats)))
    if bands is not None:
        nested = b"".join(
            pack_attr(
                0, _pack_attrs([(_BAND_TYPE, _U32.pack(t)), (_BAND_RATE, _U32.pack(r)), (_BAND_BURST, _U32.pack(b))])
            )
            for t, r, b in bands
        )
        out.append((_METER_BANDS, nested))
    if clear:
        out.append((_METER_CLEAR, b""))
    return out
