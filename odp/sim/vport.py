"""Simulated vports: the kernel's vport.c with its ``struct vport_ops``, and the
device types, vport-netdev.c and vport-internal_dev.c.

Each vport type is a subclass of :class:`SimVport` registered for its
:class:`VportKind` with :func:`vport_type`; the subclass is the type's ops:

* :meth:`SimVport.device` (``ops->create``): the network device the vport
  sits on, an existing one (netdev) or one of its own (every other type);
* :meth:`SimVport.send` (``ops->send``, via ``ovs_vport_send()``): what an
  output to the vport does with the frame;
* :meth:`SimVport.receive_underlay` (a tunnel's UDP/IP receive handler):
  offered each outer frame that reaches the host; a tunnel vport that takes
  it hands the inner frame to ``SimDatapath.receive`` (``ovs_vport_receive()``).

Tunnel types live in their own modules (vport_vxlan.py, vport_geneve.py); adding one is a new
module with a subclass decorated ``@vport_type(VportKind.X)``, imported by
odp.sim.datapath.  A type the simulator cannot carry traffic through yet is a
:class:`CarriesNoTraffic` vport: it is created (its configuration works as on
the kernel) but flows and EXECUTEs that output to it are refused with
NotSupported when they are installed or run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

from odp.errors import ExistsError, NotFoundError
from odp.records import VportInfo, VportKind, VportStats, VportUpcallStats
from odp.sim.network import Host, Interface
from odp.sim.packet import TunnelInfo
from odp.sim.trace import Drop, Output, Underlay

if TYPE_CHECKING:
    from odp.sim.datapath import SimDatapath

__all__ = [
    "CarriesNoTraffic",
    "Counters",
    "InternalVport",
    "NetdevVport",
    "SimVport",
    "TunnelVport",
    "make_vport",
    "vport_type",
]


@dataclass(slots=True)
class Counters:
    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    #: Upcalls of packets received on this vport that reached their socket or
    #: were lost there (the kernel's vport upcall_stats; reported from 6.2).
    upcall_success: int = 0
    upcall_fail: int = 0

    def freeze(self) -> VportStats:
        return VportStats(
            self.rx_packets, self.tx_packets, self.rx_bytes, self.tx_bytes,
            self.rx_errors, self.tx_errors, self.rx_dropped, self.tx_dropped,
        )  # fmt: skip


@dataclass(slots=True, eq=False)
class SimVport:
    """A vport; the base of every type (use :func:`make_vport` to create one)."""

    port_no: int
    name: str
    kind: VportKind
    interface: Interface
    upcall_pids: tuple[int, ...] = (0,)
    dst_port: int | None = None
    counters: Counters = field(default_factory=Counters)
    #: Tunnel extensions by name (OVS_TUNNEL_ATTR_EXTENSION): ("gbp",) for VXLAN GBP.
    extensions: tuple[str, ...] = ()
    #: Where frames output to this vport go when it is a device (netdev,
    #: internal): its interface's ``sent`` queue; None for tunnel vports.
    #: Lets the packet path's fast path output without a method call.
    sink: deque[bytes] | None = field(init=False, default=None)

    #: Whether the simulator can send traffic through this type.
    carries_traffic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        pass

    @classmethod
    def device(cls, host: Host, name: str) -> Interface:
        """``ops->create``: a device of its own, named as the vport (the check
        that the name is free is the caller's)."""
        return host.add_interface(name, owned_by_vport=True)

    def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
        """``ops->send``: ``frame`` is output to this vport with egress ``tunnel`` metadata."""
        raise NotImplementedError

    def receive_underlay(self, dp: SimDatapath, outer: bytes) -> bool:
        """Offered an outer frame that reached the host; True if this vport took it."""
        return False

    def info(self, dp_ifindex: int, all_pids: bool = True, upcall_stats: bool = False) -> VportInfo:
        """``all_pids`` False: report only the first upcall pid, as the kernel does
        unless the datapath has the VPORT_PIDS feature; ``upcall_stats``: the
        kernel reports them (Feature.VPORT_UPCALL_STATS)."""
        return VportInfo(
            port_no=self.port_no,
            kind=self.kind,
            name=self.name,
            dp_ifindex=dp_ifindex,
            dst_port=self.dst_port,
            upcall_pids=self.upcall_pids if all_pids else self.upcall_pids[:1],
            stats=self.counters.freeze(),
            ifindex=self.interface.ifindex,
            upcall_stats=VportUpcallStats(self.counters.upcall_success, self.counters.upcall_fail)
            if upcall_stats
            else None,
            extensions=self.extensions,
        )


_V = TypeVar("_V", bound=type[SimVport])
_TYPES: dict[VportKind, type[SimVport]] = {}


def vport_type(kind: VportKind) -> Callable[[_V], _V]:
    """Register a :class:`SimVport` subclass as the ops of ``kind`` (``ovs_vport_ops_register()``)."""

    def register(cls: _V) -> _V:
        _TYPES[kind] = cls
        return cls

    return register


def make_vport(
    port_no: int,
    name: str,
    kind: VportKind,
    interface: Interface,
    *,
    upcall_pids: tuple[int, ...] = (0,),
    dst_port: int | None = None,
    counters: Counters | None = None,
    extensions: tuple[str, ...] = (),
) -> SimVport:
    """A vport of ``kind`` with its type's ops."""
    return vport_class(kind)(
        port_no,
        name,
        kind,
        interface,
        upcall_pids,
        dst_port,
        counters if counters is not None else Counters(),
        extensions,
    )


def vport_class(kind: VportKind) -> type[SimVport]:
    return _TYPES.get(kind, CarriesNoTraffic)


class _DeviceVport(SimVport):
    """A vport on a network device: output puts the frame on the device."""

    __slots__ = ()

    def __post_init__(self) -> None:
        self.sink = self.interface.sent

    def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
        obs = dp.observer
        if obs is not None:
            obs.emit(Output(obs.depth, dp.name, self.port_no, self.name, self.kind, frame))
        counters = self.counters
        counters.tx_packets += 1
        counters.tx_bytes += len(frame)
        self.interface.sent.append(frame)


@vport_type(VportKind.NETDEV)
class NetdevVport(_DeviceVport):
    """vport-netdev.c: an existing device attached to the datapath."""

    __slots__ = ()

    @classmethod
    def device(cls, host: Host, name: str) -> Interface:
        iface = host.interfaces.get(name)
        if iface is None:
            raise NotFoundError(f"no network device named {name!r} (create it first)")
        if iface.attached is not None:
            raise ExistsError(f"network device {name!r} is already attached to a datapath")
        return iface


@vport_type(VportKind.INTERNAL)
class InternalVport(_DeviceVport):
    """vport-internal_dev.c: a device of the datapath's own (the local port is one)."""

    __slots__ = ()


class TunnelVport(SimVport):
    """The shared ``ops->send`` and underlay receive of tunnel types: a subclass
    gives :meth:`encapsulate` and :meth:`decapsulate` (its driver's work)."""

    __slots__ = ()

    #: The device counter its driver bumps for an output without TX metadata.
    no_metadata_counter: ClassVar[str] = "tx_dropped"
    #: The driver's transmit function, named in traces.
    xmit_name: ClassVar[str] = "xmit"

    @property
    def udp_port(self) -> int | None:
        """The UDP port the trace reports for an output (None: not a UDP tunnel)."""
        return None

    def encapsulate(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> tuple[bytes, int, bool] | None:
        """(outer frame, underlay destination, whether it is IPv6), or None where
        the driver fails (no route or source for the metadata)."""
        raise NotImplementedError

    def fill_metadata_dst(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> TunnelInfo | None:
        """``ndo_fill_metadata_dst()``: egress ``tunnel`` completed as the driver would
        send ``frame`` (the OVS_PACKET_ATTR_EGRESS_TUN_KEY of ``userspace(...,
        tunnel_out_port=N)``), or None where it fails."""
        raise NotImplementedError

    def decapsulate(self, host: Host, outer: bytes) -> tuple[bytes, TunnelInfo] | tuple[str, str | None] | None:
        """None: not this vport's; (reason, device counter or None): dropped by the
        kernel; else the inner frame and its ingress metadata."""
        raise NotImplementedError

    def drop(self, dp: SimDatapath, counter: str | None, reason: str, *, output: bool = False) -> None:
        """Count (``counter``: a device counter or None) and trace a drop; ``output``
        for a frame output to the vport, else one received from the underlay."""
        if counter is not None:
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        obs = dp.observer
        if obs is not None:
            where = "output to port" if output else "port"
            obs.emit(Drop(obs.depth, dp.name, f"{where} {self.port_no} ({self.name}): {reason}"))

    def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
        if tunnel is None:
            self.drop(dp, self.no_metadata_counter, "no tunnel metadata (set(tunnel(...)))", output=True)
            return
        host = dp.host
        obs = dp.observer
        if obs is not None:
            obs.emit(Output(obs.depth, dp.name, self.port_no, self.name, self.kind, frame, tunnel, self.udp_port))
        sent = self.encapsulate(host, frame, tunnel)
        if sent is None:
            self.drop(dp, "tx_errors", f"no underlay route for the tunnel metadata ({self.xmit_name}())", output=True)
            return
        outer, dst, ipv6 = sent
        self.counters.tx_packets += 1
        self.counters.tx_bytes += len(frame)
        if obs is None:
            host.send_underlay(outer, dst, ipv6=ipv6)
            return
        obs.depth += 1
        try:
            obs.emit(Underlay(obs.depth, dp.name, outer, dst))
            host.send_underlay(outer, dst, ipv6=ipv6)
        finally:
            obs.depth -= 1

    def receive_underlay(self, dp: SimDatapath, outer: bytes) -> bool:
        result = self.decapsulate(dp.host, outer)
        if result is None:
            return False
        inner, meta = result
        if isinstance(meta, TunnelInfo):
            assert isinstance(inner, bytes)
            dp.receive(self.port_no, inner, meta)
        else:
            assert isinstance(inner, str)
            self.drop(dp, meta, inner)
        return True


class CarriesNoTraffic(SimVport):
    """A type the simulator creates but cannot send through (every kind carries traffic today).

    Flows and EXECUTEs with an output to one are refused (NotSupported) before
    they can run, so :meth:`send` is reached only with a flow restored from a
    saved state: it drops the frame rather than raise out of the packet path.
    """

    __slots__ = ()
    carries_traffic: ClassVar[bool] = False

    def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
        self.counters.tx_dropped += 1
        obs = dp.observer
        if obs is not None:
            reason = f"output to port {self.port_no} ({self.name}): {self.kind.value} vports carry no traffic"
            obs.emit(Drop(obs.depth, dp.name, reason))
