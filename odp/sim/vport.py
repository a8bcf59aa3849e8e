"""Simulated vports: the kernel's vport.c, vport-netdev.c, vport-internal_dev.c and
vport-vxlan.c / vport-gre.c / vport-geneve.c (creation side).

The packet side of each type (what output does, what input looks like) is in
odp.sim.datapath, which owns the host and the underlay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from odp.records import VportInfo, VportKind, VportStats, VportUpcallStats
from odp.sim.network import Interface


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
    port_no: int
    name: str
    kind: VportKind
    interface: Interface
    upcall_pids: tuple[int, ...] = (0,)
    dst_port: int | None = None
    counters: Counters = field(default_factory=Counters)
    #: Where frames output to this vport go when it is a device (netdev,
    #: internal): its interface's ``sent`` queue; None for tunnel vports.
    #: Lets the packet path's fast path output without a method call.
    sink: deque[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.kind in (VportKind.NETDEV, VportKind.INTERNAL):
            self.sink = self.interface.sent

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
        )
