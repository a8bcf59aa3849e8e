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
from collections.abc import Iterable, Iterator
from types import TracebackType

from odp.actions import Actions
from odp.constants import DpFeature, UfidFlags
from odp.errors import FieldError
from odp.kernels import Kernel
from odp.keys import Match
from odp.records import (
    DEFAULT_TUNNEL_PORTS,
    ConntrackEntry,
    DatapathInfo,
    DatapathStats,
    DpRef,
    Flow,
    FlowCreate,
    FlowStats,
    MeterBand,
    MeterFeatures,
    MeterStats,
    PortRef,
    Upcall,
    VportInfo,
    VportKind,
    VportStats,
    check_ct_zone,
)

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

    @property
    @abc.abstractmethod
    def kernel(self) -> Kernel:
        """The Linux version whose behaviour this backend has (the running kernel,
        or the one the simulator was told to be; see :mod:`odp.kernels`)."""

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

    # conntrack -------------------------------------------------------------
    @abc.abstractmethod
    def conntrack_dump(self, dp: DpRef, zone: int | None = None) -> list[ConntrackEntry]:
        """The connections of the datapath's network namespace (all zones, or ``zone``)."""

    @abc.abstractmethod
    def conntrack_flush(self, dp: DpRef, zone: int | None = None) -> None:
        """Delete the connections of the datapath's network namespace (all zones, or ``zone``)."""

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

    # conntrack -------------------------------------------------------------
    def conntrack(self, zone: int | None = None) -> list[ConntrackEntry]:
        """The tracked connections (of the datapath's host/namespace: conntrack is
        not per datapath), every zone or only ``zone``."""
        check_ct_zone(zone)
        return self.backend.conntrack_dump(self.name, zone)

    def flush_conntrack(self, zone: int | None = None) -> None:
        """Forget the tracked connections of every zone, or of ``zone``."""
        check_ct_zone(zone)
        self.backend.conntrack_flush(self.name, zone)

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
