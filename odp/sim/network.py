"""The simulated world around datapaths: hosts, interfaces and an IPv4/IPv6 underlay.

Nothing here touches the real machine.  A :class:`Host` is one simulated
machine with named network interfaces (as ``ip link`` would list them), an
underlay IPv4 address and MAC, and the datapaths created on it.  Hosts on the
same :class:`Network` reach each other by IPv4: an encapsulated packet sent by
host A's VXLAN vport is delivered to the host owning the outer destination
address, whose VXLAN vport on the right UDP port decapsulates it, as the
go-odp/Weave use case needs.  A host may also have an IPv6 underlay address
(``ip6``): tunnel metadata with IPv6 addresses is carried the same way.

An :class:`Interface` is the simulated counterpart of a veth end: a test
``inject``s frames into it (they arrive on the device, so a datapath with a
netdev vport on it receives them) and ``receive``s what the datapath sent
out of it.

Nothing here keeps frames forever.  An interface's ``sent`` is a queue the
test drains with ``receive()``: bounded (:data:`DEFAULT_QUEUE_LIMIT` frames),
a frame that finds it full is dropped and counted, and the next ``receive()``
warns.  ``Network.log`` and ``Host.underlay_sent`` are captures, rings that keep
the newest :data:`DEFAULT_CAPTURE_LIMIT` frames and count the ones they let go.
Both limits are arguments of :class:`Host` and :class:`Network` (None: no limit).
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from odp.errors import ExistsError, InvalidArgument, NotFoundError
from odp.kernels import TESTED, Kernel, KernelLike
from odp.records import check_ifname
from odp.sim.conntrack import ConntrackTable

if TYPE_CHECKING:
    from odp.sim.datapath import SimDatapath, SimUpcallListener


_monotonic = time.monotonic  # bound once: read for every packet a flow matches


def monotonic_ms() -> int:
    return int(_monotonic() * 1000)


#: Frames an interface's ``sent`` queue holds until ``receive()`` takes them:
#: more than a test leaves unread, and 1.5 MB of full-size frames at most.
DEFAULT_QUEUE_LIMIT = 1024
#: Newest frames ``Network.log`` and ``Host.underlay_sent`` keep (older ones are counted, not kept).
DEFAULT_CAPTURE_LIMIT = 1024


class FrameQueue(deque[bytes]):
    """Frames waiting to be read: at most ``maxlen``; one that finds the queue full is dropped.

    A queue keeps what the reader has not taken yet, so it drops the newest
    frame (a full device's tail drop), never an unread older one.
    ``dropped`` counts the frames lost since the queue was made.
    """

    def __init__(self, maxlen: int | None = DEFAULT_QUEUE_LIMIT) -> None:
        super().__init__()
        self.limit = maxlen  # not deque's maxlen: that would drop the oldest frame silently
        self.dropped = 0

    def append(self, frame: bytes, _append: Callable[[deque[bytes], bytes], None] = deque.append) -> None:
        if self.limit is not None and len(self) >= self.limit:
            self.dropped += 1
            return
        _append(self, frame)


class Capture(deque[bytes]):
    """A record of the newest ``maxlen`` frames (a ring); ``total`` counts every frame recorded,
    ``dropped`` the ones the ring let go."""

    def __init__(self, maxlen: int | None = DEFAULT_CAPTURE_LIMIT) -> None:
        super().__init__(maxlen=maxlen)
        self.total = 0
        self.dropped = 0

    def record(self, frame: bytes) -> None:
        if len(self) == self.maxlen:
            self.dropped += 1
        self.append(frame)
        self.total += 1

    def since(self, total: int) -> list[bytes]:
        """The frames recorded after the first ``total`` ones that are still kept (oldest first)."""
        n = min(self.total - total, len(self))
        return list(itertools.islice(self, len(self) - n, None)) if n > 0 else []


@dataclass(eq=False)
class Interface:
    """A simulated network device on a host."""

    host: Host
    name: str
    ifindex: int
    mac: int
    #: (datapath, port number) of the vport attached to this device, if any.
    attached: tuple[SimDatapath, int] | None = None
    #: Frames the datapath sent out of this device (oldest first) until ``receive()`` takes them.
    sent: FrameQueue = field(default_factory=FrameQueue)
    #: Whether the device was created by a vport (internal, tunnel) and goes with it.
    owned_by_vport: bool = False
    #: ``sent.dropped`` when ``receive()`` last warned about it.
    _dropped_seen: int = field(default=0, init=False, repr=False)

    def inject(self, frame: bytes) -> None:
        """A frame arrives on this device (as if sent by its veth peer)."""
        if self.attached is None:
            return  # no datapath on this device: the host stack would take it
        dp, port_no = self.attached
        dp.receive(port_no, bytes(frame))

    def receive(self) -> list[bytes]:
        """Take every frame sent out of this device so far (warns if the full queue dropped some)."""
        sent = self.sent
        frames = list(sent)
        sent.clear()
        if sent.dropped > self._dropped_seen:
            lost, self._dropped_seen = sent.dropped - self._dropped_seen, sent.dropped
            warnings.warn(
                f"{lost} frame(s) sent out of {self.name} on host {self.host.name} were dropped: its queue holds "
                f"{sent.limit} unread frames (Host(queue_limit=...) changes it)",
                RuntimeWarning,
                stacklevel=2,
            )
        return frames


class Host:
    """One simulated machine: interfaces, datapaths, an underlay address."""

    _ids = itertools.count(1)

    def __init__(
        self,
        name: str = "host",
        *,
        network: Network | None = None,
        ip: str | None = None,
        ip6: str | None = None,
        clock: Callable[[], int] = monotonic_ms,
        seed: int = 0,
        kernel: KernelLike = TESTED,
        queue_limit: int | None = DEFAULT_QUEUE_LIMIT,
        capture_limit: int | None = DEFAULT_CAPTURE_LIMIT,
    ) -> None:
        self.name = name
        #: The Linux version this machine runs: its datapaths behave as that kernel's.
        self.kernel = Kernel.parse(kernel)
        self.id = next(self._ids)
        self.clock = clock
        self.seed = seed
        #: The host's conntrack table: one per network namespace, shared by its datapaths.
        self.conntrack = ConntrackTable(clock, seed)
        #: CPUs of the simulated machine (the kernel allows one upcall pid per CPU).
        self.cpus = os.cpu_count() or 1
        self.interfaces: dict[str, Interface] = {}
        self.datapaths: dict[str, SimDatapath] = {}
        #: The ifindex the next interface gets (1 is lo), and the next netlink
        #: port id a listener gets: public so a saved host can resume them.
        self.next_ifindex = 2
        self.next_pid = 1000 + 100 * self.id
        #: Upcall listeners by netlink port id (pid): the host's netlink sockets.
        self.listeners: dict[int, SimUpcallListener] = {}
        self.mac = 0x020000000000 | (self.id << 8)
        self.ip: int | None = None
        #: Static neighbour entries of the underlay: IPv4 -> MAC.
        self.neighbors: dict[int, int] = {}
        #: The IPv6 underlay address, if any, and its neighbour entries (IPv6 -> MAC).
        self.ip6: int | None = None
        self.neighbors6: dict[int, int] = {}
        self.network: Network | None = None
        #: Frames each new interface's ``sent`` queue holds unread (None: no limit).
        self.queue_limit = queue_limit
        #: The newest frames this host put on the underlay (outer frames), for tests.
        self.underlay_sent = Capture(capture_limit)
        if network is not None:
            network.attach(self, ip, ip6)

    def boot(self, kernel: KernelLike) -> None:
        """Run ``kernel`` from now on; refused while datapaths exist (they were
        created by the running kernel)."""
        new = Kernel.parse(kernel)
        if new != self.kernel and self.datapaths:
            raise InvalidArgument(
                f"host {self.name} runs Linux {self.kernel} and has datapaths: it cannot behave as Linux {new}"
            )
        self.kernel = new

    # interfaces -------------------------------------------------------------
    def add_interface(self, name: str, *, mac: int | None = None, owned_by_vport: bool = False) -> Interface:
        check_ifname(name)
        if name in self.interfaces:
            raise ExistsError(f"a network device named {name!r} already exists on host {self.name}")
        ifindex = self.next_ifindex
        self.next_ifindex += 1
        iface = Interface(
            self,
            name,
            ifindex,
            mac if mac is not None else (0x0A0000000000 | (self.id << 16) | ifindex),
            sent=FrameQueue(self.queue_limit),
            owned_by_vport=owned_by_vport,
        )
        self.interfaces[name] = iface
        return iface

    def interface(self, name: str) -> Interface:
        try:
            return self.interfaces[name]
        except KeyError:
            raise NotFoundError(f"no network device named {name!r} on host {self.name}") from None

    def remove_interface(self, name: str) -> None:
        self.interfaces.pop(name, None)

    def new_pid(self) -> int:
        pid = self.next_pid
        self.next_pid += 1
        return pid

    # underlay ---------------------------------------------------------------
    def send_underlay(self, frame: bytes, dst_ip: int, *, ipv6: bool = False) -> None:
        """Put an outer frame on the underlay towards ``dst_ip`` (an IPv6 address with ``ipv6``)."""
        self.underlay_sent.record(frame)
        if self.network is not None:
            self.network.deliver(frame, dst_ip, sender=self, ipv6=ipv6)

    def receive_underlay(self, frame: bytes) -> None:
        """An outer frame addressed to this host: offer it to each vport's
        underlay receive (tunnel vports take the frames for their UDP port)."""
        for dp in list(self.datapaths.values()):
            for vport in list(dp.vports.values()):
                if vport.receive_underlay(dp, frame):
                    return


class Network:
    """An IPv4/IPv6 underlay connecting hosts (a perfect L3 network: no loss, no MTU)."""

    def __init__(self, *, capture_limit: int | None = DEFAULT_CAPTURE_LIMIT) -> None:
        self.hosts: dict[int, Host] = {}
        self.hosts6: dict[int, Host] = {}
        self._next = itertools.count(1)
        #: The newest frames delivered on the underlay, for tests to inspect.
        self.log = Capture(capture_limit)

    def attach(self, host: Host, ip: str | None = None, ip6: str | None = None) -> None:
        import ipaddress

        if ip6 is not None:
            addr6 = int(ipaddress.IPv6Address(ip6))
            if addr6 in self.hosts6:
                raise ExistsError(f"underlay address {ip6} is already used")
            host.ip6 = addr6
            self.hosts6[addr6] = host
            for other in self.hosts6.values():
                other.neighbors6[addr6] = host.mac
                host.neighbors6[other.ip6 or 0] = other.mac

        addr = int(ipaddress.IPv4Address(ip)) if ip else int(ipaddress.IPv4Address("192.168.0.0")) + next(self._next)
        if addr in self.hosts:
            raise ExistsError(f"underlay address {ipaddress.IPv4Address(addr)} is already used")
        host.ip = addr
        host.network = self
        self.hosts[addr] = host
        for other in self.hosts.values():
            other.neighbors[addr] = host.mac
            host.neighbors[other.ip or 0] = other.mac

    def host(self, name: str, ip: str | None = None, **kwargs: object) -> Host:
        """Create a host on this network (``ip6=...`` gives it an IPv6 address too)."""
        return Host(name, network=self, ip=ip, **kwargs)  # type: ignore[arg-type]

    def deliver(self, frame: bytes, dst_ip: int, sender: Host, *, ipv6: bool = False) -> None:
        self.log.record(frame)
        target = (self.hosts6 if ipv6 else self.hosts).get(dst_ip)
        if target is not None:
            target.receive_underlay(frame)
