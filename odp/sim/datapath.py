"""The simulated datapath and the simulator backend: the kernel's datapath.c.

``SimDatapath`` glues the pieces the way datapath.c does: a frame received on
a vport has its key extracted (odp.sim.flow), is looked up in the flow table
(odp.sim.flow_table), and either runs the flow's actions (odp.sim.actions)
with the flow's stats updated, or becomes a MISS upcall.  ``SimBackend``
implements the shared :class:`odp.datapath.Backend` commands on top, with
the kernel's error semantics.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import odp.validate.swkey as sk
from odp.actions import Action, Actions, Ct, Output, SetMasked, Userspace
from odp.actions import Set as SetAction
from odp.constants import DP_MAX_PORTS, OVSP_LOCAL, DpFeature, UfidFlags
from odp.datapath import Backend, UpcallListener
from odp.errors import ExistsError, FieldError, InvalidArgument, InvalidFlow, NotFoundError, NotSupported
from odp.kernels import SINCE, TESTED, Feature, Kernel, KernelLike
from odp.keys import CtLabels, CtMark, CtState, CtZone, DpHash, InPort, Match, Priority, RecircId, SkbMark, Tunnel
from odp.records import (
    ConntrackEntry,
    DatapathInfo,
    DatapathStats,
    DpRef,
    Flow,
    FlowCreate,
    FlowStats,
    MegaflowStats,
    MeterBand,
    MeterFeatures,
    MeterStats,
    PortRef,
    Upcall,
    UpcallKind,
    VportInfo,
    VportKind,
    check_ifname,
    check_meter_request,
    check_ufid,
    check_vport_args,
    make_flow,
)
from odp.sim.actions import NO_CUT, check_supported, execute_actions
from odp.sim.conntrack import check_ct_supported
from odp.sim.flow import extract
from odp.sim.flow_table import FlowTable, SimFlow, outputs_only
from odp.sim.meter import MeterTable
from odp.sim.network import Host
from odp.sim.packet import TunnelInfo
from odp.sim.trace import (
    ActionExecuted,
    Drop,
    Event,
    Extract,
    Hit,
    Miss,
    Observer,
    Receive,
    Recirculate,
    Tracer,
    observing,
)
from odp.sim.trace import Conntrack as ConntrackEvent
from odp.sim.trace import Upcall as UpcallEvent
from odp.sim.vport import SimVport, TunnelVport, make_vport, vport_class
from odp.sim.vport_geneve import GeneveVport  # noqa: F401  registers its vport type (vport_type)
from odp.sim.vport_gre import GreVport  # noqa: F401  registers its vport type (vport_type)
from odp.sim.vport_vxlan import VxlanVport  # noqa: F401  registers its vport type (vport_type)
from odp.validate import validate_actions, validate_match
from odp.validate.fastpath import from_match
from odp.validate.put_key import flow_match, packet_match

#: How deep recirculation may nest before the packet is dropped (the kernel's
#: OVS_RECURSION_LIMIT-style guard).
RECURSION_LIMIT = 8
#: Upcalls queued per listener before further ones are lost (netlink ENOBUFS).
UPCALL_QUEUE_MAX = 4096
_IN_PORT_SHIFT = sk.GEOMETRY["in_port"][0]
_VLAN_TPIDS = (b"\x81\x00", b"\x88\xa8")
_TCP_FLAGS_SHIFT = sk.GEOMETRY["tcp_flags"][0]


@dataclass(slots=True)
class _DpCounters:
    hit: int = 0
    missed: int = 0
    lost: int = 0


class SimDatapath:
    """One simulated datapath on a host."""

    def __init__(self, host: Host, name: str, ifindex: int, features: int, upcall_pid: int) -> None:
        self.host = host
        self.name = name
        self.ifindex = ifindex
        self.features = features
        self.masks_cache_size = 256
        self.table = FlowTable()
        self.vports: dict[int, SimVport] = {}
        self.counters = _DpCounters()
        self.listeners: list[SimUpcallListener] = []
        self.random = random.Random(host.seed)
        self.meters = MeterTable(host.clock)
        #: Told what happens to each packet (odp.sim.trace), when set.
        self.observer: Observer | None = None
        self._depth = 0
        self._context = _Context(self)
        self._tracing_context = _TracingContext(self)

    # -- vports ---------------------------------------------------------------
    def vport_info(self, vport: SimVport) -> VportInfo:
        return vport.info(
            self.ifindex,
            all_pids=bool(self.features & DpFeature.VPORT_PIDS),
            upcall_stats=self.host.kernel.has(Feature.VPORT_UPCALL_STATS),
        )

    def vport_by_ref(self, port: PortRef) -> SimVport:
        if isinstance(port, int):
            vp = self.vports.get(port)
        else:
            vp = next((v for v in self.vports.values() if v.name == port), None)
        if vp is None:
            raise NotFoundError(f"datapath {self.name} has no vport {port!r}")
        return vp

    # -- packet path ----------------------------------------------------------
    def trace(self, port: PortRef, frame: bytes) -> list[Event]:
        """Receive ``frame`` on ``port`` and return what happened to it, as
        odp.sim.trace events (every datapath on this host's network observed)."""
        vport = self.vport_by_ref(port)
        hosts = self.host.network.hosts.values() if self.host.network is not None else (self.host,)
        with observing(hosts, Tracer()) as tracer:
            self.receive(vport.port_no, bytes(frame))
        return tracer.events

    def receive(self, port_no: int, frame: bytes, tunnel: TunnelInfo | None = None) -> None:
        """A frame arrives on vport ``port_no`` (ovs_vport_receive)."""
        vport = self.vports.get(port_no)
        obs = self.observer
        if vport is None:
            return
        if obs is not None:
            # Undone at the end without try/finally (which would cost every
            # packet): the packet path does not raise, and a trace cut short
            # by an error is not resumed.
            obs.emit(Receive(obs.depth, self.name, port_no, vport.name, frame, tunnel))
            obs.depth += 1
        if len(frame) < 20 and frame[12:14] in _VLAN_TPIDS:
            # The stack's skb_vlan_untag() frees a frame whose outer tag, and the
            # two bytes after it (the encapsulated ethertype it peeks at), are cut
            # short, before any rx_handler (the datapath) sees it.
            if obs is not None:
                obs.emit(Drop(obs.depth, self.name, "VLAN tag cut short (skb_vlan_untag())"))
        else:
            counters = vport.counters
            counters.rx_packets += 1
            counters.rx_bytes += len(frame)
            meta = port_no << _IN_PORT_SHIFT
            if tunnel is not None:
                meta |= tunnel.key_bits()
            ext = extract(frame, meta)
            if ext is None:
                # Shorter than an Ethernet header: dropped silently.
                if obs is not None:
                    obs.emit(Drop(obs.depth, self.name, "shorter than an Ethernet header"))
            else:
                if obs is not None:
                    obs.emit(Extract(obs.depth, self.name, packet_match(ext.key)))
                self.process(frame, ext.key, tunnel)
        if obs is not None:
            obs.depth -= 1

    def process(self, frame: bytes, key: int, tunnel: TunnelInfo | None = None, cutlen: int = NO_CUT) -> None:
        """ovs_dp_process_packet: lookup, then actions or a MISS upcall.

        ``cutlen`` is a ``trunc`` still pending on a recirculated packet."""
        flow = self.table.lookup(key)
        obs = self.observer
        if flow is None:
            self.counters.missed += 1
            if obs is not None:
                obs.emit(Miss(obs.depth, self.name))
            self.upcall(UpcallKind.MISS, frame, key, port_no=(key >> _IN_PORT_SHIFT) & 0xFFFF)
            return
        if obs is not None:
            match = flow_match(flow.unmasked_key, flow.sw, masked_key=flow.ufid is not None)
            obs.emit(Hit(obs.depth, self.name, match, flow.ufid, flow.actions))
        self.counters.hit += 1
        flow.packets += 1
        flow.bytes += len(frame)
        flow.used = self.host.clock()
        # Extraction leaves tcp_flags zero for anything but TCP.
        flow.tcp_flags |= (key >> _TCP_FLAGS_SHIFT) & 0xFFFF
        outputs = flow.outputs if cutlen == NO_CUT else None
        if outputs is not None:
            # Fast path for flows whose actions are only outputs (no copy needed:
            # frames are immutable bytes); devices are written to directly.
            vports = self.vports
            for port in outputs:
                vport = vports.get(port)
                sink = vport.sink if vport is not None and obs is None else None
                if sink is None:
                    if obs is not None:
                        obs.emit(ActionExecuted(obs.depth, self.name, Output(port)))
                    self.output(port, frame, None)
                    continue
                counters = vport.counters  # type: ignore[union-attr]  # sink implies vport
                counters.tx_packets += 1
                counters.tx_bytes += len(frame)
                sink.append(frame)
            return
        self.run_actions(frame, key, flow.actions, tunnel, cutlen=cutlen)

    def run_actions(
        self,
        frame: bytes,
        key: int,
        actions: Actions,
        tunnel: TunnelInfo | None = None,
        mru: int = 0,
        cutlen: int = NO_CUT,
    ) -> None:
        obs = self.observer
        if self._depth >= RECURSION_LIMIT:
            if obs is not None:
                obs.emit(Drop(obs.depth, self.name, f"recursion limit ({RECURSION_LIMIT}) reached"))
            return
        self._depth += 1
        try:
            ctx = self._context if obs is None else self._tracing_context
            execute_actions(ctx, frame, key, actions, tunnel=tunnel, mru=mru, cutlen=cutlen)
        finally:
            self._depth -= 1

    def upcall(
        self,
        kind: UpcallKind,
        frame: bytes,
        key: int,
        *,
        port_no: int,
        userdata: bytes | None = None,
        pid: int | None = None,
        actions: Actions | None = None,
        egress_tun_key: Match | None = None,
    ) -> None:
        vport = self.vports.get(port_no)
        if pid is None:
            pids = vport.upcall_pids if vport is not None else (0,)
            if len(pids) > 1 and self.features & DpFeature.VPORT_PIDS:
                pid = pids[zlib.crc32(frame[:64]) % len(pids)]
            else:
                pid = pids[0] if pids else 0
        listener = self.host.listeners.get(pid) if pid else None
        obs = self.observer
        if listener is None:
            self.counters.lost += 1
            if pid != 0 and vport is not None:  # pid 0 fails before ovs_vport_update_upcall_stats
                vport.counters.upcall_fail += 1
            if obs is not None:
                obs.emit(UpcallEvent(obs.depth, self.name, kind, pid, False))
            return
        upcall = Upcall(
            kind=kind,
            dp_ifindex=self.ifindex,
            packet=frame,
            key=packet_match(key),
            userdata=userdata,
            actions=actions,
            pid=pid,
            egress_tun_key=egress_tun_key,
        )
        delivered = listener.deliver(upcall)
        if not delivered:
            self.counters.lost += 1
        if vport is not None:
            if delivered:
                vport.counters.upcall_success += 1
            else:
                vport.counters.upcall_fail += 1
        if obs is not None:
            obs.emit(UpcallEvent(obs.depth, self.name, kind, pid, delivered))

    def output(self, port_no: int, frame: bytes, tunnel: TunnelInfo | None) -> None:
        """do_output(): hand the frame to the vport's send op."""
        vport = self.vports.get(port_no)
        if vport is None:
            obs = self.observer
            if obs is not None:
                reason = f"output to port {port_no}: datapath {self.name} has no such port"
                obs.emit(Drop(obs.depth, self.name, reason))
            return  # the kernel silently drops output to a missing port
        vport.send(self, frame, tunnel)

    def check_actions(self, actions: Actions) -> None:
        """NotSupported for actions the simulator cannot run (actions it does not
        execute, outputs to vports without traffic, conntrack features): it refuses
        such a flow at install rather than accept it and fail on its packets."""
        self.check_output_vports(actions)
        if outputs_only(actions) is None:
            check_supported(actions, conntrack=True)
            check_ct_supported(actions)

    def check_output_vports(self, actions: Actions) -> None:
        """NotSupported if ``actions`` output to a vport the simulator cannot send through.

        Checked when a flow is installed or actions executed, so that the
        packet path never meets such an output (it must not raise)."""
        ports = outputs_only(actions)  # cached for actions shared by many flows
        vports = self.vports
        for port in ports if ports is not None else output_ports(actions):
            vport = vports.get(port)
            if vport is None:
                continue
            if not vport.carries_traffic:
                raise NotSupported(
                    f"the simulator does not send traffic through {vport.kind.value} vports yet"
                    f" (output to port {port} ({vport.name}))"
                )
            if vport.kind is VportKind.GENEVE:
                for attr in tunnel_sets(actions):
                    if attr.erspan is not None or attr.vxlan_gbp.mask:
                        # geneve_build_header(): opt_len counts them, their bytes are not copied.
                        raise NotSupported(
                            f"set(tunnel(...)) with vxlan or erspan options and an output to geneve port {port}"
                            f" ({vport.name}): the kernel sends uninitialised Geneve option bytes"
                        )


def output_ports(actions: Actions) -> Iterator[int]:
    """The ports of every output in ``actions``, nested action lists included."""
    for a in actions.items:
        if type(a) is Output:
            yield a.port
            continue
        if not is_dataclass(a):
            continue
        for f in fields(a):
            value = getattr(a, f.name)
            if isinstance(value, Actions):
                yield from output_ports(value)


def as_installed(actions: Actions) -> Actions:
    """``actions`` as the kernel holds (and dumps) them: each ``set_masked`` value ANDed with its mask.

    The kernel refuses value bits outside the mask (validate_set's
    validate_masked), so the codec sends ``value & mask``; the kernel stores and
    dumps those bytes.  The simulator stores the same, so that its dumps agree.
    Returns ``actions`` itself when nothing changes (the common case)."""
    items: list[Action] | None = None
    for i, a in enumerate(actions.items):
        b = a
        if type(a) is SetMasked:
            b = SetMasked(a.attr.masked())  # (attributes compare mask-aware: no cheap "unchanged" test)
        elif is_dataclass(a):
            changes = {}
            for f in fields(a):
                value = getattr(a, f.name)
                if isinstance(value, Actions) and (new := as_installed(value)) is not value:
                    changes[f.name] = new
            if changes:
                b = replace(a, **changes)
        if b is not a:
            if items is None:
                items = list(actions.items)
            items[i] = b
    return actions if items is None else Actions(items)


def tunnel_sets(actions: Actions) -> Iterator[Tunnel]:
    """The tunnel attribute of every ``set(tunnel(...))`` in ``actions``, nested lists included."""
    for a in actions.items:
        if type(a) is SetAction and isinstance(a.attr, Tunnel):
            yield a.attr
            continue
        if not is_dataclass(a):
            continue
        for f in fields(a):
            value = getattr(a, f.name)
            if isinstance(value, Actions):
                yield from tunnel_sets(value)


class _Context:
    """The ActionContext the action executor calls back into."""

    __slots__ = ("dp",)

    def __init__(self, dp: SimDatapath) -> None:
        self.dp = dp

    def output(self, port_no: int, frame: bytes, tunnel: Any) -> None:
        self.dp.output(port_no, frame, tunnel)

    def upcall_action(self, frame: bytes, key: int, action: Userspace, tunnel: Any = None) -> None:
        egress_key = None
        if action.egress_tun_port is not None and tunnel is not None:
            # output_userspace(): dev_fill_metadata_dst() on the tunnel vport's device
            vport = self.dp.vports.get(action.egress_tun_port)
            filled = vport.fill_metadata_dst(self.dp.host, frame, tunnel) if isinstance(vport, TunnelVport) else None
            if filled is not None:
                egress_key = Match(*(a for a in packet_match(filled.key_bits()).attrs if isinstance(a, Tunnel)))
        self.dp.upcall(
            UpcallKind.ACTION,
            frame,
            key,
            port_no=sk.get(key, "in_port"),
            userdata=action.userdata,
            pid=action.pid,
            egress_tun_key=egress_key,
        )

    def recirculate(self, frame: bytes, key: int, tunnel: Any = None, *, cutlen: int = NO_CUT) -> None:
        self.dp.process(frame, key, tunnel, cutlen)

    def meter(self, meter_id: int, frame_len: int) -> bool:
        return self.dp.meters.execute(meter_id, frame_len)

    #: Called with each action before it runs, when the datapath is observed.
    on_action: Callable[[Action], None] | None = None

    def random(self) -> float:
        return self.dp.random.random()

    def ct(self, frame: bytes, key: int, action: Ct) -> tuple[bytes, int] | None:
        return self.dp.host.conntrack.execute(frame, key, action)


class _TracingContext(_Context):
    """The context of an observed datapath: also reports actions, recirculations and meter drops."""

    __slots__ = ()

    def on_action(self, action: Action) -> None:
        obs = self.dp.observer
        if obs is not None:
            obs.emit(ActionExecuted(obs.depth, self.dp.name, action))

    def recirculate(self, frame: bytes, key: int, tunnel: Any = None, *, cutlen: int = NO_CUT) -> None:
        obs = self.dp.observer
        if obs is not None:
            obs.emit(Recirculate(obs.depth, self.dp.name, sk.get(key, "recirc_id"), packet_match(key)))
        self.dp.process(frame, key, tunnel, cutlen)

    def ct(self, frame: bytes, key: int, action: Ct) -> tuple[bytes, int] | None:
        result = self.dp.host.conntrack.execute(frame, key, action)
        obs = self.dp.observer
        if obs is not None:
            obs.emit(
                ConntrackEvent(obs.depth, self.dp.name, action, None if result is None else packet_match(result[1]))
            )
        return result

    def meter(self, meter_id: int, frame_len: int) -> bool:
        passed = self.dp.meters.execute(meter_id, frame_len)
        obs = self.dp.observer
        if not passed and obs is not None:
            obs.emit(Drop(obs.depth, self.dp.name, f"meter({meter_id}): over the rate of its drop band"))
        return passed


#: The conntrack key attributes EXECUTE takes as metadata, and their swkey fields.
_CT_META: dict[type, str] = {CtState: "ct_state", CtZone: "ct_zone", CtMark: "ct_mark", CtLabels: "ct_labels"}


class SimUpcallListener(UpcallListener):
    def __init__(self, backend: SimBackend, dp: SimDatapath) -> None:
        self.backend = backend
        self.dp = dp
        self.pid = dp.host.new_pid()
        self._queue: deque[Upcall] = deque()
        self._lost = 0
        self._closed = False
        dp.host.listeners[self.pid] = self
        dp.listeners.append(self)
        for vport in dp.vports.values():
            vport.upcall_pids = (self.pid,)

    def deliver(self, upcall: Upcall) -> bool:
        if len(self._queue) >= UPCALL_QUEUE_MAX:
            self._lost += 1
            return False
        self._queue.append(upcall)
        return True

    def vport_added(self, vport: SimVport) -> None:
        vport.upcall_pids = (self.pid,)

    def receive(self, timeout: float | None = 0.0, max_count: int | None = None) -> list[Upcall]:
        # The simulator is synchronous: everything that will arrive is here.
        out: list[Upcall] = []
        while self._queue and (max_count is None or len(out) < max_count):
            out.append(self._queue.popleft())
        return out

    @property
    def lost(self) -> int:
        return self._lost

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.dp.host.listeners.pop(self.pid, None)
        if self in self.dp.listeners:
            self.dp.listeners.remove(self)
        for vport in self.dp.vports.values():
            if vport.upcall_pids == (self.pid,):
                vport.upcall_pids = (0,)


class SimBackend(Backend):
    """The simulator: the shared Backend API over in-memory datapaths on a Host."""

    name = "sim"

    def __init__(self, host: Host | None = None, *, kernel: KernelLike | None = None) -> None:
        """``kernel``: the Linux version to behave as (see :mod:`odp.kernels`); a
        given host is set to it (refused once the host has datapaths: a machine
        does not change kernels under them).  Default: the host's, else TESTED."""
        if host is None:
            host = Host("sim", kernel=TESTED if kernel is None else kernel)
        elif kernel is not None:
            host.boot(kernel)
        self.host = host

    @property
    def kernel(self) -> Kernel:
        """The kernel this simulator behaves as (its host's)."""
        return self.host.kernel

    # -- helpers --------------------------------------------------------------
    def _dp(self, dp: DpRef) -> SimDatapath:
        if isinstance(dp, int):
            found = next((d for d in self.host.datapaths.values() if d.ifindex == dp), None)
        else:
            found = self.host.datapaths.get(dp)
        if found is None:
            raise NotFoundError(f"no datapath {dp!r}")
        return found

    def _dp_info(self, d: SimDatapath) -> DatapathInfo:
        return DatapathInfo(
            name=d.name,
            ifindex=d.ifindex,
            stats=DatapathStats(d.counters.hit, d.counters.missed, d.counters.lost, len(d.table)),
            megaflow=MegaflowStats(d.table.stats.mask_hit, d.table.mask_count, d.table.stats.cache_hit),
            features=d.features,
            masks_cache_size=d.masks_cache_size,
        )

    # -- datapaths ------------------------------------------------------------
    def dp_new(self, name: str, *, features: int = 0, upcall_pid: int = 0) -> DatapathInfo:
        check_ifname(name, "datapath")
        if name in self.host.datapaths or name in self.host.interfaces:
            raise ExistsError(
                f"datapath {name!r} already exists"
                if name in self.host.datapaths
                else f"a network device named {name!r} already exists"
            )
        known = int(
            DpFeature.UNALIGNED | DpFeature.VPORT_PIDS | DpFeature.TC_RECIRC_SHARING | DpFeature.DISPATCH_UPCALL_PER_CPU
        )
        if features & ~known:
            raise FieldError(f"unknown datapath feature bits {features & ~known:#x}")
        iface = self.host.add_interface(name, owned_by_vport=True)
        d = SimDatapath(self.host, name, iface.ifindex, features, upcall_pid)
        local = make_vport(OVSP_LOCAL, name, VportKind.INTERNAL, iface, upcall_pids=(upcall_pid,))
        iface.attached = (d, OVSP_LOCAL)
        d.vports[OVSP_LOCAL] = local
        self.host.datapaths[name] = d
        return self._dp_info(d)

    def dp_get(self, dp: DpRef) -> DatapathInfo:
        return self._dp_info(self._dp(dp))

    def dp_list(self) -> list[DatapathInfo]:
        return [self._dp_info(d) for d in self.host.datapaths.values()]

    def dp_del(self, dp: DpRef) -> None:
        d = self._dp(dp)
        for vport in list(d.vports.values()):
            self._detach(d, vport)
        for listener in list(d.listeners):
            listener.close()
        d.table.flush()
        del self.host.datapaths[d.name]

    def dp_set(
        self,
        dp: DpRef,
        *,
        features: int | None = None,
        upcall_pid: int | None = None,
        masks_cache_size: int | None = None,
    ) -> DatapathInfo:
        d = self._dp(dp)
        if masks_cache_size is not None and (masks_cache_size & (masks_cache_size - 1)) != 0:
            raise InvalidArgument(f"masks cache size {masks_cache_size} must be 0 or a power of two")
        if features is not None:
            d.features = features
        if upcall_pid is not None:
            d.vports[OVSP_LOCAL].upcall_pids = (upcall_pid,)
        if masks_cache_size is not None:
            d.masks_cache_size = masks_cache_size
        return self._dp_info(d)

    # -- vports ---------------------------------------------------------------
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
    ) -> VportInfo:
        d = self._dp(dp)
        kind = check_vport_args(kind, name, port_no, dst_port, extensions)
        if dst_port is not None:
            # The UDP socket is the host's: one tunnel vport per type and port.
            for other in self.host.datapaths.values():
                for v in other.vports.values():
                    if v.kind == kind and v.dst_port == dst_port:
                        raise ExistsError(f"UDP port {dst_port} is already used by {kind.value} vport {v.name!r}")
        if port_no is not None:
            if port_no in d.vports:
                raise ExistsError(f"datapath {d.name} already has a port {port_no}")
        else:
            port_no = next(n for n in range(1, DP_MAX_PORTS) if n not in d.vports)
        if len(upcall_pids) > self.host.cpus:
            raise InvalidArgument(
                f"upcall pids: {len(upcall_pids)} pids for a host with {self.host.cpus} CPUs (at most one per CPU)"
            )
        ops = vport_class(kind)
        if not ops.carries_traffic:
            # A flow already outputs to this port number: it would meet a vport
            # the simulator cannot send through (see check_output_vports).
            for f in d.table.flows():
                if port_no in output_ports(f.actions):
                    raise NotSupported(
                        f"the simulator does not send traffic through {kind.value} vports yet"
                        f" (an installed flow outputs to port {port_no})"
                    )
        iface = ops.device(self.host, name)
        vport = make_vport(
            port_no,
            name,
            kind,
            iface,
            upcall_pids=tuple(upcall_pids) or (0,),
            dst_port=dst_port,
            extensions=tuple(extensions),
        )
        iface.attached = (d, port_no)
        d.vports[port_no] = vport
        if vport.upcall_pids == (0,):
            # A listener follows new vports (through the vport multicast group on
            # the kernel); pids given explicitly are kept.
            for listener in d.listeners:
                listener.vport_added(vport)
        return d.vport_info(vport)

    def vport_get(self, dp: DpRef, port: PortRef) -> VportInfo:
        d = self._dp(dp)
        return d.vport_info(d.vport_by_ref(port))

    def vport_list(self, dp: DpRef) -> list[VportInfo]:
        d = self._dp(dp)
        return [d.vport_info(v) for v in sorted(d.vports.values(), key=lambda v: v.port_no)]

    def vport_del(self, dp: DpRef, port: PortRef) -> VportInfo:
        d = self._dp(dp)
        vport = d.vport_by_ref(port)
        if vport.port_no == OVSP_LOCAL:
            raise InvalidArgument("the datapath's local port 0 cannot be deleted (delete the datapath instead)")
        info = d.vport_info(vport)
        self._detach(d, vport)
        return info

    def _detach(self, d: SimDatapath, vport: SimVport) -> None:
        vport.interface.attached = None
        if vport.interface.owned_by_vport:
            self.host.remove_interface(vport.interface.name)
        d.vports.pop(vport.port_no, None)

    def vport_set_upcall_pids(self, dp: DpRef, port: PortRef, pids: tuple[int, ...]) -> VportInfo:
        d = self._dp(dp)
        vport = d.vport_by_ref(port)
        if not pids:
            raise FieldError("upcall pids: at least one pid (0 disables upcalls)")
        if len(pids) > self.host.cpus:
            raise InvalidArgument(
                f"upcall pids: {len(pids)} pids for a host with {self.host.cpus} CPUs (at most one per CPU)"
            )
        vport.upcall_pids = tuple(pids)
        return d.vport_info(vport)

    # -- flows ----------------------------------------------------------------
    def _compile(self, match: Match) -> Any:
        validate_match(match)
        return from_match(match)

    def _flow(self, f: SimFlow, ufid_flags: int = 0) -> Flow:
        omit_key = f.ufid is not None and ufid_flags & UfidFlags.OMIT_KEY
        omit_mask = f.ufid is not None and ufid_flags & UfidFlags.OMIT_MASK
        omit_actions = f.ufid is not None and ufid_flags & UfidFlags.OMIT_ACTIONS
        match: Match | None = None
        if not omit_key:
            full = flow_match(f.unmasked_key, f.sw, masked_key=f.ufid is not None)
            match = Match(*full.attrs) if omit_mask else full
        return Flow(
            match=match,
            actions=None if omit_actions else f.actions,
            ufid=f.ufid,
            stats=FlowStats(f.packets, f.bytes),
            used=f.used,
            tcp_flags=f.tcp_flags,
        )

    def flow_new(
        self,
        dp: DpRef,
        match: Match,
        actions: Actions,
        *,
        ufid: bytes | None = None,
        create: FlowCreate = FlowCreate.EXCLUSIVE,
    ) -> Flow:
        d = self._dp(dp)
        check_ufid(ufid)
        sw = self._compile(match)
        validate_actions(actions, match, kernel=self.host.kernel)
        d.check_actions(actions)
        actions = as_installed(actions)
        existing: SimFlow | None = None
        if ufid is not None:
            existing = d.table.find_ufid(ufid)
        if existing is None:
            existing = d.table.peek(sw.key)
        if existing is None:
            flow = SimFlow(sw=sw, unmasked_key=sw.key, match=match, actions=actions, ufid=ufid)
            d.table.insert(flow)
            # A new flow is reported as given (rebuilding the kernel's view of it
            # costs more than the insert; dumps and GET report that view).
            return make_flow(match, actions, ufid, 0, 0, None, 0)
        if create == FlowCreate.EXCLUSIVE:
            raise ExistsError("a flow matching this key already exists (use replace/modify to change its actions)")
        same = (
            existing.sw.masked_key == sw.masked_key and existing.sw.mask == sw.mask
            if existing.ufid is not None
            else existing.unmasked_key == sw.key
        )
        if not same:
            target = d.table.find_exact(sw.key) if existing.ufid is None else None
            if target is None:
                raise NotFoundError("an overlapping flow with a different key exists; the flow was not replaced")
            existing = target
        existing.set_actions(actions)
        return self._flow(existing)

    def _find(self, d: SimDatapath, match: Match | None, ufid: bytes | None) -> SimFlow:
        if ufid is not None:
            check_ufid(ufid)
            flow = d.table.find_ufid(ufid)
            if flow is None:
                raise NotFoundError(f"no flow with ufid {ufid.hex()}")
            return flow
        if match is None:
            raise InvalidFlow("a flow key or a ufid is needed", rule="missing-key")
        sw = self._compile(match)
        flow = d.table.find_exact(sw.key)
        if flow is None:
            raise NotFoundError(f"no flow with key {match}")
        return flow

    def flow_set(
        self,
        dp: DpRef,
        *,
        match: Match | None = None,
        ufid: bytes | None = None,
        actions: Actions | None = None,
        clear_stats: bool = False,
    ) -> Flow:
        d = self._dp(dp)
        flow = self._find(d, match, ufid)
        if actions is not None:
            validate_actions(actions, match if match is not None else flow.match, kernel=self.host.kernel)
            d.check_actions(actions)
            flow.set_actions(as_installed(actions))
        reply = self._flow(flow)  # the kernel replies with the stats from before clearing
        if clear_stats:
            flow.clear_stats()
        return reply

    def flow_get(
        self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None, ufid_flags: int = 0
    ) -> Flow:
        d = self._dp(dp)
        return self._flow(self._find(d, match, ufid), ufid_flags)

    def flow_del(self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None) -> Flow:
        d = self._dp(dp)
        if match is None and ufid is None:
            d.table.flush()
            return Flow(match=None, actions=None)
        flow = self._find(d, match, ufid)
        d.table.remove(flow)
        return self._flow(flow)

    def flow_flush(self, dp: DpRef) -> None:
        self._dp(dp).table.flush()

    def flow_dump(self, dp: DpRef, *, ufid_flags: int = 0) -> Iterator[Flow]:
        d = self._dp(dp)
        for f in d.table.iter_flows():
            yield self._flow(f, ufid_flags)

    # -- conntrack ------------------------------------------------------------
    def conntrack_dump(self, dp: DpRef, zone: int | None = None) -> list[ConntrackEntry]:
        table = self._dp(dp).host.conntrack
        now = table.clock()
        return [ct.entry(now) for ct in table.connections(zone)]

    def conntrack_flush(self, dp: DpRef, zone: int | None = None) -> None:
        self._dp(dp).host.conntrack.flush(zone)

    # -- meters ---------------------------------------------------------------
    def _meters(self, dp: DpRef) -> MeterTable:
        if not self.host.kernel.has(Feature.METER_FAMILY):
            raise NotSupported(
                f"Linux {self.host.kernel}'s openvswitch module has no ovs_meter generic netlink family "
                f"(meters need Linux {SINCE[Feature.METER_FAMILY]}+)"
            )
        return self._dp(dp).meters

    def meter_features(self, dp: DpRef) -> MeterFeatures:
        return self._meters(dp).features()

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
        bands = tuple(bands)
        check_meter_request(meter_id, bands, stats)
        return self._meters(dp).set(meter_id, bands, kbps=kbps, clear=clear, stats=stats)

    def meter_get(self, dp: DpRef, meter_id: int) -> MeterStats:
        check_meter_request(meter_id, ())
        stats = self._meters(dp).get(meter_id)
        if stats is None:
            raise NotFoundError(f"datapath {self._dp(dp).name} has no meter {meter_id}")
        return stats

    def meter_del(self, dp: DpRef, meter_id: int) -> MeterStats | None:
        check_meter_request(meter_id, ())
        return self._meters(dp).delete(meter_id)

    # -- packets --------------------------------------------------------------
    def packet_execute(
        self, dp: DpRef, packet: bytes, actions: Actions, *, key: Match | None = None, mru: int | None = None
    ) -> None:
        d = self._dp(dp)
        if len(packet) < 14:
            raise InvalidArgument(f"packet of {len(packet)} bytes is shorter than an Ethernet header (14 bytes)")
        meta = 0
        tunnel: Any = None
        in_port = OVSP_LOCAL
        if key is not None:
            for attr in key.attrs:
                if isinstance(attr, InPort):
                    in_port = attr.port.value
                elif isinstance(attr, Priority):
                    meta = sk.put(meta, "priority", attr.value.value)
                elif isinstance(attr, SkbMark):
                    meta = sk.put(meta, "skb_mark", attr.value.value)
                elif isinstance(attr, RecircId):
                    meta = sk.put(meta, "recirc_id", attr.value.value)
                elif isinstance(attr, DpHash):
                    meta = sk.put(meta, "dp_hash", attr.value.value)
                elif type(attr) in _CT_META:
                    # metadata_from_nlattrs(): what ct() finds an existing connection by.
                    meta = sk.put(meta, _CT_META[type(attr)], attr.value.value)  # type: ignore[attr-defined]
                elif isinstance(attr, Tunnel):
                    tunnel = TunnelInfo.from_attr(attr, egress=False)
                    meta |= tunnel.key_bits()
        if in_port >= DP_MAX_PORTS:
            raise InvalidFlow(f"in_port {in_port} exceeds the maximum port {DP_MAX_PORTS - 1}", rule="in-port-range")
        if in_port not in d.vports:
            in_port = OVSP_LOCAL
        meta = sk.put(meta, "in_port", in_port)
        ext = extract(packet, meta)
        if ext is None:
            raise InvalidArgument("packet is shorter than an Ethernet header (14 bytes)")
        # The kernel checks EXECUTE's actions against the packet's own key.
        validate_actions(actions, packet_match(ext.key), packet=True, kernel=self.host.kernel)
        d.check_actions(actions)
        d.run_actions(packet, ext.key, actions, tunnel, mru or 0)

    def upcall_listener(self, dp: DpRef) -> UpcallListener:
        return SimUpcallListener(self, self._dp(dp))


__all__ = ["SimBackend", "SimDatapath", "SimUpcallListener"]
