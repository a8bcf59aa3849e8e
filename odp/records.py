"""The plain records of the datapath API: what backends return and take.

Values only (datapaths, vports, flows, upcalls, meters) and the argument
checks both backends make; no backend and no I/O.  This module sits below
everything that builds or reads these records (the netlink codec, the
simulator's vports and meters, the backends, the API handles in
:mod:`odp.datapath`), so it imports nothing of odp above the key and action
models.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from odp.actions import Actions
from odp.constants import DP_MAX_BANDS, DP_MAX_PORTS, MeterBandType, PacketCmd, VportType
from odp.errors import FieldError, InvalidArgument, InvalidFlow
from odp.keys import Match

if TYPE_CHECKING:
    from odp.text import FlowLine


class VportKind(str, enum.Enum):
    """Vport types by name (the CLI and the ODP text use these names)."""

    NETDEV = "netdev"
    INTERNAL = "internal"
    GRE = "gre"
    VXLAN = "vxlan"
    GENEVE = "geneve"

    @property
    def number(self) -> int:
        return int(VportType[self.name])

    @classmethod
    def from_number(cls, number: int) -> VportKind:
        try:
            return cls[VportType(number).name]
        except ValueError:
            raise FieldError(f"unknown vport type number {number}") from None

    @classmethod
    def parse(cls, value: str | VportKind) -> VportKind:
        if isinstance(value, VportKind):
            return value
        try:
            return cls(value.lower())
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise FieldError(f"unknown vport type {value!r} (one of {names})") from None


#: Default UDP ports of the tunnel vports (IANA), as go-odp and OVS use them.
DEFAULT_TUNNEL_PORTS = {VportKind.VXLAN: 4789, VportKind.GENEVE: 6081}


#: The longest network device name (IFNAMSIZ - 1).
IFNAMSIZ_MAX = 15


def check_ifname(name: str, what: str = "interface") -> None:
    """The kernel's dev_valid_name(): datapaths and vports are network devices."""
    if not name or len(name) > IFNAMSIZ_MAX or name in (".", "..") or any(c.isspace() or c in "/:" for c in name):
        raise FieldError(f"{what} name {name!r}: must be 1 to {IFNAMSIZ_MAX} characters, no spaces, '/' or ':'")


def check_ufid(ufid: bytes | None) -> None:
    """A UFID is 1 to 16 bytes.  (The kernel silently ignores a longer one and
    keys the flow by its key instead: refused here, on both backends.)"""
    if ufid is not None and not 1 <= len(ufid) <= 16:
        raise InvalidFlow(f"a ufid is 1 to 16 bytes, got {len(ufid)}", rule="ufid-length")


#: Vport extensions by name (OVS_TUNNEL_ATTR_EXTENSION) and the kinds that take them.
VPORT_EXTENSIONS: dict[str, VportKind] = {"gbp": VportKind.VXLAN}


def check_vport_args(
    kind: VportKind | str,
    name: str,
    port_no: int | None,
    dst_port: int | None,
    extensions: tuple[str, ...] = (),
) -> VportKind:
    """The checks both backends make before creating a vport; returns the parsed kind.

    A VXLAN or Geneve vport needs its UDP port (the kernel's vxlan_configure /
    geneve_configure answer EINVAL without OVS_TUNNEL_ATTR_DST_PORT); other
    types take none; port numbers are 1 .. DP_MAX_PORTS - 1 (0 is the local port);
    ``extensions`` are names of :data:`VPORT_EXTENSIONS` for their kind (VXLAN's gbp).
    """
    kind = VportKind.parse(kind)
    check_ifname(name, "vport")
    if kind in (VportKind.VXLAN, VportKind.GENEVE):
        if dst_port is None:
            raise InvalidArgument(f"a {kind.value} vport needs a UDP destination port (dst_port)")
        if not 0 <= dst_port <= 0xFFFF:
            raise FieldError(f"UDP port {dst_port} is out of range 0..65535")
    elif dst_port is not None:
        raise FieldError(f"a {kind.value} vport takes no UDP port (dst_port)")
    if port_no is not None and not 0 < port_no < DP_MAX_PORTS:
        raise FieldError(f"port number {port_no} is out of range 1..{DP_MAX_PORTS - 1}")
    for ext in extensions:
        if ext not in VPORT_EXTENSIONS:
            raise FieldError(f"unknown vport extension {ext!r} (known: {', '.join(VPORT_EXTENSIONS)})")
        if VPORT_EXTENSIONS[ext] != kind:
            raise FieldError(f"extension {ext!r} is for {VPORT_EXTENSIONS[ext].value} vports, not {kind.value}")
    return kind


@dataclass(frozen=True, slots=True)
class DatapathStats:
    hit: int = 0
    missed: int = 0
    lost: int = 0
    flows: int = 0


@dataclass(frozen=True, slots=True)
class MegaflowStats:
    mask_hit: int = 0
    masks: int = 0
    cache_hit: int = 0


@dataclass(frozen=True, slots=True)
class DatapathInfo:
    name: str
    ifindex: int
    stats: DatapathStats = field(default_factory=DatapathStats)
    megaflow: MegaflowStats = field(default_factory=MegaflowStats)
    features: int = 0
    masks_cache_size: int | None = None


@dataclass(frozen=True, slots=True)
class VportStats:
    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True, slots=True)
class VportUpcallStats:
    """OVS_VPORT_ATTR_UPCALL_STATS: upcalls of packets received on the vport that
    reached their netlink socket (``success``) or were lost there (``fail``)."""

    success: int = 0
    fail: int = 0


@dataclass(frozen=True, slots=True)
class VportInfo:
    port_no: int
    kind: VportKind
    name: str
    dp_ifindex: int = 0
    #: UDP port of a vxlan/geneve vport (OVS_TUNNEL_ATTR_DST_PORT), else None.
    dst_port: int | None = None
    upcall_pids: tuple[int, ...] = ()
    stats: VportStats = field(default_factory=VportStats)
    ifindex: int | None = None
    #: Upcall counters, on kernels that report them (see odp.kernels.Feature.VPORT_UPCALL_STATS), else None.
    upcall_stats: VportUpcallStats | None = None
    #: Tunnel extensions (OVS_TUNNEL_ATTR_EXTENSION), by name: ("gbp",) for VXLAN GBP.
    extensions: tuple[str, ...] = ()

    def __str__(self) -> str:
        opts = f", dst_port={self.dst_port}" if self.dst_port is not None else ""
        opts += "".join(f", {ext}" for ext in self.extensions)
        return f"port {self.port_no}: {self.name} (type: {self.kind.value}{opts})"


@dataclass(frozen=True, slots=True)
class FlowStats:
    packets: int = 0
    bytes: int = 0


#: Statistics of a flow that has seen nothing (immutable, so shared).
NO_STATS = FlowStats()


@dataclass(frozen=True, slots=True)
class Flow:
    """A flow as a backend reports it.

    ``match`` and ``actions`` are None when omitted on request (UFID OMIT
    flags).  ``used`` is in milliseconds of the monotonic clock (None: never
    used); ``tcp_flags`` the OR of the TCP flags seen.
    """

    match: Match | None
    actions: Actions | None
    ufid: bytes | None = None
    stats: FlowStats = NO_STATS
    used: int | None = None
    tcp_flags: int = 0

    def to_line(self, now_ms: int | None = None) -> FlowLine:
        """The flow as an ``ovs-dpctl dump-flows`` line; ``used`` is relative to ``now_ms``
        (default: the monotonic clock, which is the clock the kernel reports in)."""
        from odp.text import FlowLine

        if now_ms is None:
            now_ms = int(time.monotonic() * 1000)
        used = None if self.used is None else max(0, now_ms - self.used) / 1000
        return FlowLine(
            match=self.match if self.match is not None else Match(),
            actions=self.actions if self.actions is not None else Actions(),
            packets=self.stats.packets,
            bytes=self.stats.bytes,
            used=used,
            tcp_flags=self.tcp_flags or None,
        )

    def __str__(self) -> str:
        return str(self.to_line())

    # Written out rather than generated so that a subclass that decodes its
    # fields lazily (odp.netlink.messages.WireFlow) compares, hashes and
    # prints as the Flow it stands for: the generated ones require the same class.
    def _values(self) -> tuple[object, ...]:
        return (self.match, self.actions, self.ufid, self.stats, self.used, self.tcp_flags)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Flow):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Flow(" + ", ".join(f"{n}={v!r}" for n, v in zip(_FLOW_FIELDS, self._values(), strict=True)) + ")"


#: Flow's fields in order: what ``_values`` returns and ``flow_constructor`` sets.
_FLOW_FIELDS = ("match", "actions", "ufid", "stats", "used", "tcp_flags")


FlowT = TypeVar("FlowT", bound=Flow)


def flow_constructor(
    cls: type[FlowT],
) -> Callable[[Match | None, Actions | None, bytes | None, int, int, int | None, int], FlowT]:
    """A fast constructor of ``cls`` (Flow or a subclass) for backends: built through Flow's
    slot descriptors, because a frozen dataclass's ``__init__`` costs an
    ``object.__setattr__`` call per field and backends build one Flow per flow
    installed and per flow dumped (100k of them for a large dump).  The values
    come from the backend, so nothing needs coercing; the plain constructor is
    used if Flow's fields ever change."""
    fields = _FLOW_FIELDS
    if tuple(f.name for f in dataclasses.fields(Flow)) != fields:  # pragma: no cover
        return lambda m, a, u, p, b, used, tf: cls(m, a, u, FlowStats(p, b) if p or b else NO_STATS, used, tf)
    new = object.__new__
    set_match, set_actions, set_ufid, set_stats, set_used, set_tcp_flags = (Flow.__dict__[n].__set__ for n in fields)
    set_packets, set_bytes = (FlowStats.__dict__[n].__set__ for n in ("packets", "bytes"))

    def make_flow(
        match: Match | None,
        actions: Actions | None,
        ufid: bytes | None,
        packets: int,
        nbytes: int,
        used: int | None,
        tcp_flags: int,
    ) -> FlowT:
        flow = new(cls)
        set_match(flow, match)
        set_actions(flow, actions)
        set_ufid(flow, ufid)
        if packets or nbytes:
            stats = new(FlowStats)
            set_packets(stats, packets)
            set_bytes(stats, nbytes)
            set_stats(flow, stats)
        else:
            set_stats(flow, NO_STATS)
        set_used(flow, used)
        set_tcp_flags(flow, tcp_flags)
        return flow

    return make_flow


#: ``make_flow(match, actions, ufid, packets, bytes, used, tcp_flags)``: a Flow
#: without the dataclass constructor's cost (for backends).
make_flow = flow_constructor(Flow)


class UpcallKind(enum.IntEnum):
    MISS = PacketCmd.MISS
    ACTION = PacketCmd.ACTION


@dataclass(frozen=True, slots=True)
class Upcall:
    """A packet sent to userspace: a flow-table miss or a userspace() action."""

    kind: UpcallKind
    dp_ifindex: int
    packet: bytes
    key: Match
    userdata: bytes | None = None
    actions: Actions | None = None
    #: The tunnel key the packet would leave with (userspace(tunnel_out_port)).
    egress_tun_key: Match | None = None
    mru: int | None = None
    #: Original length when the packet was truncated.
    length: int | None = None
    hash: int | None = None
    #: The netlink port id the upcall was sent to.
    pid: int = 0

    @property
    def in_port(self) -> int | None:
        from odp.keys import InPort

        attr = self.key.get(InPort)
        return None if attr is None else attr.port.value


_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF


def _check_uint(value: object, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FieldError(f"{what} {value!r} is not an integer in 0..{limit}")
    return value


@dataclass(frozen=True, slots=True)
class MeterBand:
    """One band of a meter: past ``rate`` (packets/s, or kbit/s for a kbps meter)
    with a bucket of ``burst`` packets (or kilobits), packets count against the
    band and a DROP band drops them.

    The kernel accepts any band type number; only DROP (1) acts, others are
    counted in the band's stats and pass.
    """

    rate: int
    burst: int
    type: int = MeterBandType.DROP

    def __post_init__(self) -> None:
        _check_uint(self.rate, _U32_MAX, "meter band rate")
        _check_uint(self.burst, _U32_MAX, "meter band burst")
        _check_uint(self.type, _U32_MAX, "meter band type")


@dataclass(frozen=True, slots=True)
class MeterStats:
    """What the kernel reports of a meter (GET, DEL, and SET for the replaced meter).

    The kernel reports counters only, not the configuration: ``packets`` and
    ``bytes`` (``skb->len``) the meter saw, ``used`` (milliseconds of the
    monotonic clock: creation or the last packet) and, per band in order,
    the packets and bytes that exceeded it.
    """

    meter_id: int
    packets: int = 0
    bytes: int = 0
    used: int = 0
    bands: tuple[FlowStats, ...] = ()


@dataclass(frozen=True, slots=True)
class MeterFeatures:
    """OVS_METER_CMD_FEATURES: meters per datapath the kernel allows (it refuses
    the meter that would make the count reach ``max_meters``), bands per meter,
    and the band types it implements."""

    max_meters: int
    max_bands: int
    band_types: tuple[int, ...] = (MeterBandType.DROP,)


@dataclass(frozen=True, slots=True)
class CtTuple:
    """One direction of a tracked connection: addresses (text), IP protocol, and
    the ports (TCP, UDP) or ICMP id, type and code (0 where they do not apply)."""

    src: str
    dst: str
    proto: int
    src_port: int = 0
    dst_port: int = 0
    icmp_id: int = 0
    icmp_type: int = 0
    icmp_code: int = 0


#: Conntrack's TCP state names by number (enum tcp_conntrack), as ctnetlink reports them.
TCP_STATE_NAMES = (
    "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
    "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """A connection in the host's conntrack table (ctnetlink's view of an ``nf_conn``).

    ``family`` is 4 or 6; ``timeout`` the whole seconds left; ``tcp_state``
    conntrack's TCP state name (``"ESTABLISHED"``), None for other protocols;
    ``labels`` the 128-bit label as an int (the big-endian ``ct_label``).
    """

    family: int
    orig: CtTuple
    reply: CtTuple
    zone: int = 0
    mark: int = 0
    labels: int = 0
    timeout: int = 0
    tcp_state: str | None = None
    seen_reply: bool = False
    assured: bool = False


def check_ct_zone(zone: int | None) -> None:
    if zone is not None:
        _check_uint(zone, 0xFFFF, "conntrack zone")


def check_meter_request(meter_id: int, bands: tuple[MeterBand, ...], stats: FlowStats | None = None) -> None:
    """Refuse what the kernel's OVS_METER_CMD_SET would refuse as EINVAL, with a reason.

    Both backends call this before doing anything, so the errors are the same.
    """
    _check_uint(meter_id, _U32_MAX, "meter id")
    for band in bands:
        if not isinstance(band, MeterBand):
            raise FieldError(f"meter {meter_id}: bands must be MeterBand values, got {band!r}")
    if len(bands) > DP_MAX_BANDS:
        raise InvalidArgument(
            f"meter {meter_id}: {len(bands)} bands, the kernel allows at most {DP_MAX_BANDS} (DP_MAX_BANDS)"
        )
    for i, band in enumerate(bands):
        if band.rate == 0:
            raise InvalidArgument(f"meter {meter_id}: band {i} has rate 0 (the kernel requires a non-zero rate)")
    if stats is not None:
        _check_uint(stats.packets, _U64_MAX, "meter stats packets")
        _check_uint(stats.bytes, _U64_MAX, "meter stats bytes")


#: A datapath is named by its name or its ifindex.
DpRef = str | int
#: A vport is named by its name or its port number.
PortRef = str | int


class FlowCreate(enum.Enum):
    """What NEW does when the flow exists (the kernel's NLM_F_CREATE semantics)."""

    #: NLM_F_CREATE|NLM_F_EXCL: EEXIST when the flow exists.
    EXCLUSIVE = "exclusive"
    #: No create flags: insert, or replace the actions of an identical flow
    #: (ENOENT when an overlapping but different flow exists).
    OR_REPLACE = "or-replace"
