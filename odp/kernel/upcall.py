"""Upcalls and vport events from the kernel.

:class:`KernelUpcallListener` owns a netlink socket of its own whose port id
(:attr:`~KernelUpcallListener.pid`) it makes the target of the datapath's
upcalls, in one of two ways:

- per-vport dispatch (the default, every kernel): the UPCALL_PID of every
  vport, the local port included (that is the datapath's own upcall pid), is
  set to the listener's pid; vports created later are followed through the
  ``ovs_vport`` multicast group (:class:`VportEvents`) and get the pid too;
- per-CPU dispatch (datapath feature DISPATCH_UPCALL_PER_CPU, Linux 5.14+):
  the datapath's PER_CPU_PIDS all name the listener; the kernel then ignores
  vport pids for misses, so no vport needs following.  Chosen when the
  datapath already has the feature (``dispatch="auto"``) or asked for
  (``dispatch="per-cpu"``, which turns the feature on and off again at close).

:meth:`~KernelUpcallListener.receive` decodes MISS and ACTION upcalls into
:class:`odp.datapath.Upcall`.  When the socket's receive buffer overflowed
the kernel drops upcalls and reports ENOBUFS: that is counted in
:attr:`~KernelUpcallListener.lost` (one per report, at least one upcall each)
and receiving goes on.  :meth:`~KernelUpcallListener.close` points every pid
it set back to 0.

Userspace actions (``userspace(pid=...)``) send ACTION upcalls straight to the
pid they name: use the listener's :attr:`~KernelUpcallListener.pid`.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import select
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from odp.constants import Cmd, DpFeature, PacketCmd
from odp.datapath import UpcallListener
from odp.errors import BackendError, DecodeError, FieldError, NotFoundError, OdpError
from odp.keys import Match
from odp.netlink import messages as nlm
from odp.records import DpRef, Upcall, UpcallKind, VportInfo

if TYPE_CHECKING:
    from odp.kernel.backend import KernelBackend

__all__ = ["KernelUpcallListener", "VportEvent", "VportEvents"]

#: Datagrams read per receive() call at most before returning (keeps latency bounded).
DRAIN_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class VportEvent:
    """A vport change the kernel announced: ``kind`` is "new", "del" or "set"."""

    kind: str
    vport: VportInfo

    @property
    def dp_ifindex(self) -> int:
        return self.vport.dp_ifindex


_EVENT_KINDS = {int(Cmd.NEW): "new", int(Cmd.DEL): "del", int(Cmd.SET): "set", int(Cmd.GET): "set"}


class VportEvents:
    """The ``ovs_vport`` multicast group: vport creations, deletions and changes.

    ``dp_ifindex`` limits the stream to one datapath.  Before
    ``Feature.REPLY_CMD_OF_REQUEST`` (Linux 4.19, :mod:`odp.kernels`) a SET was
    announced as NEW: a "new" event may be about a vport seen before.
    """

    def __init__(self, backend: KernelBackend, dp_ifindex: int | None = None) -> None:
        fam = backend.families.vport
        group = fam.groups.get("ovs_vport")
        if group is None:
            raise BackendError("the ovs_vport generic netlink family has no ovs_vport multicast group")
        self._family = fam.id
        self.dp_ifindex = dp_ifindex
        self._sock = backend.new_transport()
        try:
            self._sock.add_membership(group)
        except BaseException:
            self._sock.close()
            raise
        self.lost = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, timeout: float | None = 0.0) -> list[VportEvent]:
        """The events waiting now, waiting up to ``timeout`` seconds for the first."""
        out: list[VportEvent] = []
        wait = timeout
        while True:
            try:
                data = self._sock.recv(wait)
            except OSError as exc:
                if exc.errno == _errno.ENOBUFS:
                    self.lost += 1
                    continue
                raise
            if data is None:
                return out
            wait = 0.0
            for msg in nlm.parse_messages(data):
                if msg.type != self._family or msg.cmd not in _EVENT_KINDS:
                    continue
                if self.dp_ifindex is not None and msg.dp_ifindex != self.dp_ifindex:
                    continue
                try:
                    info = nlm.decode_vport(msg)
                except (DecodeError, FieldError):
                    continue  # a vport type odp does not know
                out.append(VportEvent(_EVENT_KINDS[msg.cmd], info))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> VportEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KernelUpcallListener(UpcallListener):
    """Upcalls of one datapath, received on a netlink socket of the listener's own."""

    def __init__(self, backend: KernelBackend, dp: DpRef, *, dispatch: str = "auto") -> None:
        if dispatch not in ("auto", "per-vport", "per-cpu"):
            raise FieldError(f"upcall dispatch {dispatch!r}: one of 'auto', 'per-vport', 'per-cpu'")
        self.backend = backend
        info = backend.dp_get(dp)
        self.dp_name = info.name
        self.dp_ifindex = info.ifindex
        self._packet_family = backend.families.packet.id
        self._sock = backend.new_transport()
        self.pid = self._sock.port_id
        self._lost = 0
        self._pending: deque[Upcall] = deque()
        self._events: VportEvents | None = None
        self._closed = False
        self._set_ports: set[int] = set()
        self._saved_features = info.features
        per_cpu = dispatch == "per-cpu" or (
            dispatch == "auto" and bool(info.features & DpFeature.DISPATCH_UPCALL_PER_CPU)
        )
        self.dispatch = "per-cpu" if per_cpu else "per-vport"
        try:
            if per_cpu:
                self._ncpu = os.cpu_count() or 1
                backend.dp_set(
                    self.dp_ifindex,
                    features=info.features | int(DpFeature.DISPATCH_UPCALL_PER_CPU),
                    per_cpu_pids=(self.pid,) * self._ncpu,
                )
            else:
                # Subscribe before listing, so no vport created in between is missed.
                self._events = VportEvents(backend, self.dp_ifindex)
                for vport in backend.vport_list(self.dp_ifindex):
                    self._claim(vport)
        except BaseException:
            self._teardown(restore=True)
            raise

    # -- pids --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def claimed(self, port_no: int) -> None:
        """The backend created vport ``port_no`` with this listener's pid already."""
        self._set_ports.add(port_no)

    def _claim(self, vport: VportInfo) -> None:
        if vport.upcall_pids == (self.pid,):
            self._set_ports.add(vport.port_no)
            return
        try:
            self.backend.vport_set_upcall_pids(self.dp_ifindex, vport.port_no, (self.pid,))
        except NotFoundError:
            return  # deleted meanwhile
        self._set_ports.add(vport.port_no)

    def _follow_vports(self) -> None:
        if self._events is None:
            return
        for event in self._events.receive(0.0):
            if event.kind == "del":
                self._set_ports.discard(event.vport.port_no)
            elif event.kind == "new" and event.vport.upcall_pids != (self.pid,):
                self._claim(event.vport)

    # -- receiving -----------------------------------------------------------------
    def receive(self, timeout: float | None = 0.0, max_count: int | None = None) -> list[Upcall]:
        """The upcalls waiting now, waiting up to ``timeout`` seconds (None: forever) for the first."""
        if self._closed:
            return []
        out: list[Upcall] = []
        limit = max_count if max_count is not None else 1 << 62
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self._follow_vports()
        while self._pending and len(out) < limit:
            out.append(self._pending.popleft())
        reads = 0
        while len(out) < limit and reads < DRAIN_LIMIT:
            if out:
                wait: float | None = 0.0
            elif deadline is None:
                wait = None
            else:
                wait = max(deadline - time.monotonic(), 0.0)
            if self._events is not None and wait != 0.0:
                # Wait on both sockets so that a vport created while waiting gets our pid.
                ready, _, _ = select.select([self._sock.fileno(), self._events.fileno()], [], [], wait)
                if self._events.fileno() in ready:
                    self._follow_vports()
                if self._sock.fileno() not in ready:
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    continue
                wait = 0.0
            try:
                data = self._sock.recv(wait)
            except OSError as exc:
                if exc.errno == _errno.ENOBUFS:
                    self._lost += 1
                    continue
                raise
            if data is None:
                break
            reads += 1
            for upcall in self._decode(data):
                if len(out) < limit:
                    out.append(upcall)
                else:
                    self._pending.append(upcall)
        return out

    def _decode(self, data: bytes) -> list[Upcall]:
        out: list[Upcall] = []
        for msg in nlm.parse_messages(data):
            if msg.type != self._packet_family:
                continue
            info = nlm.decode_packet(msg)
            try:
                kind = UpcallKind(info.cmd)
            except ValueError:
                kind = UpcallKind.ACTION if info.cmd == PacketCmd.EXECUTE else UpcallKind.MISS
            out.append(
                Upcall(
                    kind=kind,
                    dp_ifindex=info.dp_ifindex,
                    packet=info.packet or b"",
                    key=info.key if info.key is not None else Match(),
                    userdata=info.userdata,
                    actions=info.actions,
                    egress_tun_key=Match(info.egress_tun_key) if info.egress_tun_key is not None else None,
                    mru=info.mru,
                    length=info.length,
                    hash=info.hash,
                    pid=self.pid,
                )
            )
        return out

    @property
    def lost(self) -> int:
        return self._lost

    def fileno(self) -> int:
        """The upcall socket, for select/poll."""
        return self._sock.fileno()

    # -- closing -------------------------------------------------------------------
    def abandon(self) -> None:
        """Close without restoring pids (the datapath is gone)."""
        self._teardown(restore=False)

    def close(self) -> None:
        self._teardown(restore=True)

    def _teardown(self, *, restore: bool) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[OdpError] = []
        if restore:
            if self.dispatch == "per-cpu":
                try:
                    self.backend.dp_set(
                        self.dp_ifindex, features=self._saved_features, per_cpu_pids=(0,) * getattr(self, "_ncpu", 1)
                    )
                except NotFoundError:
                    pass
                except OdpError as exc:
                    errors.append(exc)
            else:
                if self._events is not None:
                    with contextlib.suppress(OdpError):
                        self._follow_vports()
                for port_no in sorted(self._set_ports):
                    try:
                        vport = self.backend.vport_get(self.dp_ifindex, port_no)
                        if vport.upcall_pids == (self.pid,):
                            self.backend.vport_set_upcall_pids(self.dp_ifindex, port_no, (0,))
                    except NotFoundError:
                        continue
                    except OdpError as exc:
                        errors.append(exc)
        self._set_ports.clear()
        if self._events is not None:
            self._events.close()
            self._events = None
        self._sock.close()
        self.backend._forget_listener(self)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        return f"<KernelUpcallListener {self.dp_name} pid={self.pid} ({self.dispatch})>"
