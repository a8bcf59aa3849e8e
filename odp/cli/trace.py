"""Trace rendering: what the simulator reports (odp.sim.trace) as printable events."""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from odp.cli.base import PROG, Ctx
from odp.cli.output import _summary, _ufid_text
from odp.errors import OdpError
from odp.records import UpcallKind, VportKind
from odp.text import format_actions, format_match

if TYPE_CHECKING:
    from odp.sim.network import Host
    from odp.sim.trace import Event as SimEvent

# ===========================================================================
# packet commands and the simulator trace
# ===========================================================================


@dataclass
class TraceEvent:
    depth: int
    event: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "event": self.event, **self.data}

    def text(self) -> str:
        d = self.data
        e = self.event
        if e == "receive":
            return f"{d['datapath']}: port {d['port']} ({d['port_name']}) received {d['bytes']} bytes: {d['summary']}"
        if e == "execute":
            return f"{d['datapath']}: execute on {d['bytes']} bytes: {d['summary']}"
        if e == "key":
            return f"key: {d['key']}"
        if e == "flow":
            return f"flow: {d['match']}"
        if e == "actions":
            return f"actions: {d['actions']}"
        if e == "miss":
            return "miss: no flow matches"
        if e == "recirculate":
            return f"recirculate: recirc_id({d['recirc_id']:#x})"
        if e == "upcall":
            what = "miss upcall" if d["kind"] == "miss" else f"userspace(pid={d['pid']}) upcall"
            if d["delivered"]:
                return f"upcall: {what} sent to userspace ('{PROG} datapath listen {d['datapath']}' prints it)"
            return f"upcall: {what} lost (no listener on pid {d['pid']})"
        if e == "output":
            head = f"output to port {d['port']} ({d['port_name']})"
            if d.get("tunnel") is not None:
                t = d["tunnel"]
                if t["tp_dst"] is None:  # GRE: no UDP port, the key
                    return f"{head}: {d['type'].upper()} to {t['dst']}, key {t['vni']:#x}"
                return f"{head}: {d['type'].upper()} to {t['dst']} port {t['tp_dst']}, vni {t['vni']}"
            return f"{head}: {d['bytes']} bytes: {d['summary']}"
        if e == "underlay":
            return f"underlay: {d['bytes']} bytes {d['src']}:{d['sport']} > {d['dst']}:{d['dport']}: {d['summary']}"
        if e == "drop":
            return f"dropped: {d['reason']}"
        return f"{e}: {d}"


class Tracer:
    """Renders what the simulated datapaths report (odp.sim.trace) as TraceEvents.

    The observer (odp.sim.trace.Observer) of every datapath on the host for
    the duration of a ``with`` block.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.events: list[TraceEvent] = []
        #: The depth of the events the simulator reports (it moves it).
        self.depth = 0
        self._observing: contextlib.AbstractContextManager[Tracer] | None = None

    def add(self, depth: int, event: str, **data: Any) -> None:
        self.events.append(TraceEvent(depth, event, data))

    @property
    def moved(self) -> bool:
        """Whether the packet got anywhere (received, output, upcalled) before an error."""
        return any(e.event in ("receive", "output", "upcall", "drop") for e in self.events)

    def __enter__(self) -> Tracer:
        from odp.sim.trace import observing

        self._observing = observing([self.host], self)
        return self._observing.__enter__()

    def __exit__(self, *exc: Any) -> None:
        assert self._observing is not None
        self._observing.__exit__(*exc)
        self._observing = None

    def emit(self, e: SimEvent) -> None:
        from odp.sim import trace

        n, dp = e.depth, e.datapath
        if isinstance(e, trace.Receive):
            frame = e.packet
            self.add(n, "receive", datapath=dp, port=e.port, port_name=e.port_name, bytes=len(frame),
                     packet=frame.hex(), summary=_summary(frame))  # fmt: skip
        elif isinstance(e, trace.Extract):
            self.add(n, "key", key=format_match(e.key))
        elif isinstance(e, trace.Hit):
            self.add(n, "flow", match=format_match(e.flow), ufid=_ufid_text(e.ufid))
            self.add(n, "actions", actions=format_actions(e.actions))
        elif isinstance(e, trace.Miss):
            self.add(n, "miss")
        elif isinstance(e, trace.Recirculate):
            self.add(n, "recirculate", recirc_id=e.recirc_id)
            self.add(n, "key", key=format_match(e.key))
        elif isinstance(e, trace.Upcall):
            kind = "miss" if e.kind == UpcallKind.MISS else "action"
            self.add(n, "upcall", datapath=dp, kind=kind, pid=e.pid, delivered=e.delivered)
        elif isinstance(e, trace.Output):
            frame, tun = e.packet, e.tunnel
            tunnel = None
            if tun is not None:
                # Only VXLAN sends to the metadata's tp_dst; Geneve uses its own port, GRE has none.
                dst = ipaddress.IPv6Address(tun.ipv6_dst) if tun.ipv6_dst else ipaddress.IPv4Address(tun.ipv4_dst)
                tp_dst = (tun.tp_dst or e.tp_dst) if e.kind == VportKind.VXLAN else e.tp_dst
                vni = tun.tun_id & (0xFFFFFFFF if tp_dst is None else 0xFFFFFF)
                tunnel = {"dst": str(dst), "tp_dst": tp_dst, "vni": vni}
            self.add(n, "output", port=e.port, port_name=e.port_name, type=e.kind.value, bytes=len(frame),
                     packet=frame.hex(), summary=_summary(frame), tunnel=tunnel)  # fmt: skip
        elif isinstance(e, trace.Underlay):
            self._underlay(n, e.packet)
        elif isinstance(e, trace.Drop):
            self.add(n, "drop", reason=e.reason)
        # ActionExecuted: the flow's actions are printed whole with the flow.

    def _underlay(self, depth: int, frame: bytes) -> None:
        data: dict[str, Any] = {"bytes": len(frame), "packet": frame.hex(), "summary": _summary(frame)}
        data.update(src="?", dst="?", sport="?", dport="?")
        try:
            from scapy.contrib.geneve import GENEVE  # binds UDP port 6081
            from scapy.layers.inet import IP, UDP
            from scapy.layers.inet6 import IPv6
            from scapy.layers.l2 import Ether
            from scapy.layers.vxlan import VXLAN

            pkt = Ether(frame)
            ip: Any = None
            for layer in (IP, IPv6):
                if layer in pkt:
                    ip = pkt[layer]
                    break
            if ip is not None and UDP in pkt:
                data.update(src=ip.src, dst=ip.dst, sport=pkt[UDP].sport, dport=pkt[UDP].dport)
                if VXLAN not in pkt and GENEVE not in pkt:
                    pkt[UDP].decode_payload_as(VXLAN)
                data["summary"] = str(pkt.summary())
        except Exception:  # the summary is a nicety
            pass
        self.add(depth, "underlay", **data)


@contextlib.contextmanager
def _listening(ctx: Ctx) -> Iterator[None]:
    """Listen on every datapath of the simulated host while a packet runs (see the module doc)."""
    state = ctx.state
    assert state is not None
    host = state.host
    saved = {(d.name, v.port_no): v.upcall_pids for d in host.datapaths.values() for v in d.vports.values()}
    listeners = {name: ctx.conn.backend.upcall_listener(name) for name in list(host.datapaths)}
    try:
        yield
    finally:
        now = time.time()
        for name, listener in listeners.items():
            for up in listener.receive():
                state.queue_upcall(name, up, now)
            listener.close()
        for d in host.datapaths.values():
            for v in d.vports.values():
                v.upcall_pids = saved.get((d.name, v.port_no), v.upcall_pids)
        for iface in host.interfaces.values():
            iface.sent.clear()  # printed in the trace; frames out of a device are not kept


def _print_trace(ctx: Ctx, tracer: Tracer) -> None:
    if ctx.json:
        ctx.print_json([e.to_json() for e in tracer.events])
    else:
        for e in tracer.events:
            ctx.print("  " * e.depth + e.text())


def _run_traced(ctx: Ctx, run: Callable[[Tracer], None]) -> Tracer:
    tracer = Tracer(ctx.host)
    try:
        with _listening(ctx), tracer:
            run(tracer)
    except OdpError:
        if tracer.moved:
            _print_trace(ctx, tracer)  # what the packet did before the error, then the error
        raise
    _print_trace(ctx, tracer)
    return tracer
