"""The datapath API shared by both backends.

A :class:`Backend` implements the kernel's commands one for one (datapath,
vport, flow and packet families) on plain values; :class:`Connection`,
:class:`Datapath` and :class:`Vport` are the handles users hold, written once
on top of any backend.  Code written against the simulator therefore runs
unchanged against the kernel::

    conn = odp.connect("sim")            # or odp.connect("kernel")
    dp = conn.create_datapath("dp0")
    p1 = dp.add_vport("v1")              # netdev by default
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    for flow in dp.flows():
        print(flow)

Errors are the shared exceptions of :mod:`odp.errors` on both backends.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from odp.actions import Actions
from odp.constants import DP_MAX_BANDS, DP_MAX_PORTS, DpFeature, MeterBandType, PacketCmd, UfidFlags, VportType
from odp.errors import FieldError, InvalidArgument, InvalidFlow, NotFoundError
from odp.keys import Match

if TYPE_CHECKING:
    from odp.text import FlowLine

# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------


class UpcallListener(abc.ABC):
    """A source of upcalls for one datapath.

    Creating it points the datapath's and every vport's upcall pids at the
    listener (and follows vports created later); closing it restores pid 0.
    """

    @abc.abstractmethod
    def receive(self, timeout: float | None = 0.0, max_count: int | None = None) -> list[Upcall]:
        """The upcalls waiting now, waiting up to ``timeout`` seconds for the first."""

    @property
    @abc.abstractmethod
    def lost(self) -> int:
        """Upcalls this listener lost (socket buffer overruns)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> UpcallListener:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Backend(abc.ABC):
    """The kernel's commands, one method each.  Both backends implement this."""

    name: str = "abstract"

    # datapaths -------------------------------------------------------------
    @abc.abstractmethod
    def dp_new(self, name: str, *, features: int = 0, upcall_pid: int = 0) -> DatapathInfo: ...

    @abc.abstractmethod
    def dp_get(self, dp: DpRef) -> DatapathInfo: ...

    @abc.abstractmethod
    def dp_list(self) -> list[DatapathInfo]: ...

    @abc.abstractmethod
    def dp_del(self, dp: DpRef) -> None: ...

    @abc.abstractmethod
    def dp_set(
        self,
        dp: DpRef,
        *,
        features: int | None = None,
        upcall_pid: int | None = None,
        masks_cache_size: int | None = None,
    ) -> DatapathInfo: ...

    # vports ----------------------------------------------------------------
    @abc.abstractmethod
    def vport_new(
        self,
        dp: DpRef,
        name: str,
        kind: VportKind,
        *,
        port_no: int | None = None,
        dst_port: int | None = None,
        upcall_pids: tuple[int, ...] = (0,),
        extensions: tuple[str, ...] = (),
    ) -> VportInfo: ...

    @abc.abstractmethod
    def vport_get(self, dp: DpRef, port: PortRef) -> VportInfo: ...

    @abc.abstractmethod
    def vport_list(self, dp: DpRef) -> list[VportInfo]: ...

    @abc.abstractmethod
    def vport_del(self, dp: DpRef, port: PortRef) -> VportInfo: ...

    @abc.abstractmethod
    def vport_set_upcall_pids(self, dp: DpRef, port: PortRef, pids: tuple[int, ...]) -> VportInfo: ...

    # flows -----------------------------------------------------------------
    @abc.abstractmethod
    def flow_new(
        self,
        dp: DpRef,
        match: Match,
        actions: Actions,
        *,
        ufid: bytes | None = None,
        create: FlowCreate = FlowCreate.EXCLUSIVE,
    ) -> Flow: ...

    @abc.abstractmethod
    def flow_set(
        self,
        dp: DpRef,
        *,
        match: Match | None = None,
        ufid: bytes | None = None,
        actions: Actions | None = None,
        clear_stats: bool = False,
    ) -> Flow: ...

    @abc.abstractmethod
    def flow_get(
        self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None, ufid_flags: int = 0
    ) -> Flow: ...

    @abc.abstractmethod
    def flow_del(self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None) -> Flow: ...

    @abc.abstractmethod
    def flow_flush(self, dp: DpRef) -> None: ...

    @abc.abstractmethod
    def flow_dump(self, dp: DpRef, *, ufid_flags: int = 0) -> Iterator[Flow]: ...

    def flow_new_many(
        self, dp: DpRef, flows: Iterable[tuple[Match, Actions]], *, create: FlowCreate = FlowCreate.EXCLUSIVE
    ) -> int:
        """Install many flows; the kernel backend batches the requests.  Returns the count."""
        n = 0
        for match, actions in flows:
            self.flow_new(dp, match, actions, create=create)
            n += 1
        return n

    # meters ----------------------------------------------------------------
    @abc.abstractmethod
    def meter_features(self, dp: DpRef) -> MeterFeatures: ...

    @abc.abstractmethod
    def meter_set(
        self,
        dp: DpRef,
        meter_id: int,
        bands: tuple[MeterBand, ...],
        *,
        kbps: bool = False,
        clear: bool = False,
        stats: FlowStats | None = None,
    ) -> MeterStats | None:
        """Create or replace a meter.  Returns the replaced meter's stats, None when
        there was none or it was created with ``clear`` (which keeps a meter's
        stats out of the reply that replaces it); ``stats`` preloads the new
        meter's counters unless ``clear`` is set."""

    @abc.abstractmethod
    def meter_get(self, dp: DpRef, meter_id: int) -> MeterStats:
        """The meter's stats (NotFoundError when there is no such meter)."""

    @abc.abstractmethod
    def meter_del(self, dp: DpRef, meter_id: int) -> MeterStats | None:
        """Delete a meter and return its last stats; a missing meter is not an error (None)."""

    # packets ---------------------------------------------------------------
    @abc.abstractmethod
    def packet_execute(
        self, dp: DpRef, packet: bytes, actions: Actions, *, key: Match | None = None, mru: int | None = None
    ) -> None: ...

    @abc.abstractmethod
    def upcall_listener(self, dp: DpRef) -> UpcallListener: ...

    def close(self) -> None:  # noqa: B027 - optional hook: backends without sockets need nothing
        """Release sockets; the backend's objects stay as they are."""


# ---------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------


def _as_match(match: Match | str) -> Match:
    if isinstance(match, Match):
        return match
    from odp.text import parse_match

    return parse_match(match)


def _as_actions(actions: Actions | str | Iterable[object]) -> Actions:
    if isinstance(actions, Actions):
        return actions
    if isinstance(actions, str):
        from odp.text import parse_actions

        return parse_actions(actions)
    from odp.actions import Action

    items = list(actions)
    if not all(isinstance(a, Action) for a in items):
        raise FieldError(f"actions: expected Action values, got {items!r}")
    return Actions([a for a in items if isinstance(a, Action)])


class Vport:
    """A handle on one vport of a datapath."""

    def __init__(self, dp: Datapath, info: VportInfo) -> None:
        self.datapath = dp
        self.port_no = info.port_no
        self.name = info.name
        self.kind = info.kind

    def info(self) -> VportInfo:
        return self.datapath.backend.vport_get(self.datapath.name, self.port_no)

    def stats(self) -> VportStats:
        return self.info().stats

    def delete(self) -> None:
        self.datapath.backend.vport_del(self.datapath.name, self.port_no)

    def set_upcall_pids(self, pids: tuple[int, ...]) -> VportInfo:
        return self.datapath.backend.vport_set_upcall_pids(self.datapath.name, self.port_no, pids)

    def __repr__(self) -> str:
        return f"<Vport {self.datapath.name}:{self.port_no} {self.name} ({self.kind.value})>"


class Datapath:
    """A handle on one datapath.  Flows accept Match/Actions values or ODP text."""

    def __init__(self, backend: Backend, info: DatapathInfo) -> None:
        self.backend = backend
        self.name = info.name
        self.ifindex = info.ifindex

    # life cycle --------------------------------------------------------------
    def info(self) -> DatapathInfo:
        return self.backend.dp_get(self.name)

    def stats(self) -> DatapathStats:
        return self.info().stats

    def delete(self) -> None:
        self.backend.dp_del(self.name)

    def set_features(self, features: int) -> DatapathInfo:
        return self.backend.dp_set(self.name, features=features)

    # vports ------------------------------------------------------------------
    def add_vport(
        self,
        name: str,
        kind: VportKind | str = VportKind.NETDEV,
        *,
        port_no: int | None = None,
        dst_port: int | None = None,
        upcall_pids: tuple[int, ...] = (0,),
        extensions: Iterable[str] = (),
    ) -> Vport:
        """A new vport; ``extensions`` for a VXLAN vport: ``["gbp"]`` (Group Based Policy)."""
        k = VportKind.parse(kind)
        if dst_port is None:
            dst_port = DEFAULT_TUNNEL_PORTS.get(k)
        info = self.backend.vport_new(
            self.name,
            name,
            k,
            port_no=port_no,
            dst_port=dst_port,
            upcall_pids=upcall_pids,
            extensions=tuple(dict.fromkeys(extensions)),
        )
        return Vport(self, info)

    def vport(self, port: PortRef) -> Vport:
        return Vport(self, self.backend.vport_get(self.name, port))

    def vports(self) -> list[VportInfo]:
        return sorted(self.backend.vport_list(self.name), key=lambda v: v.port_no)

    def port_names(self) -> dict[int, str]:
        return {v.port_no: v.name for v in self.vports()}

    def port_numbers(self) -> dict[str, int]:
        return {v.name: v.port_no for v in self.vports()}

    def delete_vport(self, port: PortRef) -> VportInfo:
        return self.backend.vport_del(self.name, port)

    # flows -------------------------------------------------------------------
    def add_flow(
        self,
        match: Match | str,
        actions: Actions | str | Iterable[object],
        *,
        ufid: bytes | None = None,
        replace: bool = False,
    ) -> Flow:
        """Install a flow (EEXIST if it exists, unless ``replace`` is set)."""
        create = FlowCreate.OR_REPLACE if replace else FlowCreate.EXCLUSIVE
        return self.backend.flow_new(self.name, self._match(match), _as_actions(actions), ufid=ufid, create=create)

    def modify_flow(
        self,
        match: Match | str | None = None,
        actions: Actions | str | Iterable[object] | None = None,
        *,
        ufid: bytes | None = None,
        clear_stats: bool = False,
    ) -> Flow:
        return self.backend.flow_set(
            self.name,
            match=None if match is None else self._match(match),
            ufid=ufid,
            actions=None if actions is None else _as_actions(actions),
            clear_stats=clear_stats,
        )

    def get_flow(self, match: Match | str | None = None, *, ufid: bytes | None = None, ufid_flags: int = 0) -> Flow:
        return self.backend.flow_get(
            self.name, match=None if match is None else self._match(match), ufid=ufid, ufid_flags=ufid_flags
        )

    def delete_flow(self, match: Match | str | None = None, *, ufid: bytes | None = None) -> Flow:
        if match is None and ufid is None:
            raise FieldError("delete_flow needs a match or a ufid (use flush_flows to delete all)")
        return self.backend.flow_del(self.name, match=None if match is None else self._match(match), ufid=ufid)

    def flush_flows(self) -> None:
        self.backend.flow_flush(self.name)

    def flows(self, *, ufid_flags: int | UfidFlags = 0) -> list[Flow]:
        return list(self.backend.flow_dump(self.name, ufid_flags=int(ufid_flags)))

    def _match(self, match: Match | str) -> Match:
        if isinstance(match, Match):
            return match
        from odp.text import parse_match

        return parse_match(match, self.port_numbers())

    # meters ------------------------------------------------------------------
    def meter_features(self) -> MeterFeatures:
        return self.backend.meter_features(self.name)

    def set_meter(
        self,
        meter_id: int,
        bands: MeterBand | Iterable[MeterBand],
        *,
        kbps: bool = False,
        clear: bool = False,
        stats: FlowStats | None = None,
    ) -> MeterStats | None:
        """Create or replace meter ``meter_id``; returns the replaced meter's stats (see Backend.meter_set)."""
        seq = (bands,) if isinstance(bands, MeterBand) else tuple(bands)
        return self.backend.meter_set(self.name, meter_id, seq, kbps=kbps, clear=clear, stats=stats)

    def get_meter(self, meter_id: int) -> MeterStats:
        return self.backend.meter_get(self.name, meter_id)

    def delete_meter(self, meter_id: int) -> MeterStats | None:
        return self.backend.meter_del(self.name, meter_id)

    # packets -----------------------------------------------------------------
    def execute(
        self,
        packet: bytes,
        actions: Actions | str | Iterable[object],
        *,
        key: Match | str | None = None,
        mru: int | None = None,
    ) -> None:
        """Run ``actions`` on ``packet`` (EXECUTE); ``key`` supplies metadata such as in_port."""
        self.backend.packet_execute(
            self.name, packet, _as_actions(actions), key=None if key is None else self._match(key), mru=mru
        )

    def listen(self) -> UpcallListener:
        """Receive this datapath's misses and userspace() upcalls."""
        return self.backend.upcall_listener(self.name)

    def __repr__(self) -> str:
        return f"<Datapath {self.name} ifindex={self.ifindex}>"


class Connection:
    """The entry point: datapaths of one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def create_datapath(self, name: str, *, features: int | DpFeature = 0, upcall_pid: int = 0) -> Datapath:
        return Datapath(self.backend, self.backend.dp_new(name, features=int(features), upcall_pid=upcall_pid))

    def datapath(self, dp: DpRef) -> Datapath:
        """The datapath with this name or ifindex (NotFoundError if none)."""
        return Datapath(self.backend, self.backend.dp_get(dp))

    def datapaths(self) -> list[Datapath]:
        return [Datapath(self.backend, info) for info in self.backend.dp_list()]

    def delete_datapath(self, dp: DpRef) -> None:
        self.backend.dp_del(dp)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(backend: str = "sim", **options: object) -> Connection:
    """Open a backend: ``"sim"`` (in-memory simulator) or ``"kernel"`` (openvswitch.ko).

    Simulator options: ``host`` (an :class:`odp.sim.Host`; a fresh one by default).
    """
    if backend == "sim":
        from odp.sim.datapath import SimBackend

        return Connection(SimBackend(**options))  # type: ignore[arg-type]
    if backend == "kernel":
        from odp.kernel.backend import KernelBackend

        return Connection(KernelBackend(**options))  # type: ignore[arg-type]
    raise NotFoundError(f"unknown backend {backend!r} (use 'sim' or 'kernel')")
