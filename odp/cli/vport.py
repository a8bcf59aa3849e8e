"""``odp vport``: list, add, delete, listen."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from odp.cli.base import CommandError, Ctx, UsageError, _setup_dp, _setup_listen_limits
from odp.cli.output import _vport_json
from odp.constants import OVSP_LOCAL
from odp.datapath import Datapath
from odp.errors import NotFoundError, NotSupported
from odp.records import DEFAULT_TUNNEL_PORTS, VportInfo, VportKind

if TYPE_CHECKING:
    pass

# ===========================================================================
# vport commands
# ===========================================================================


def _vport_spec(dp_name: str, v: VportInfo) -> str:
    """The vport as go-odp lists it: the arguments of ``vport add`` that recreate it."""
    text = f"{v.kind.value} {dp_name} {v.name}"
    if v.dst_port is not None and v.kind in DEFAULT_TUNNEL_PORTS:
        text += f" --port={v.dst_port}"
    text += "".join(f" --{ext}" for ext in v.extensions)
    return f"{text} --port-no={v.port_no}"


def _cmd_vport_list(ctx: Ctx, a: argparse.Namespace) -> int:
    dps = [ctx.datapath(a.dp)] if a.dp else sorted(ctx.conn.datapaths(), key=lambda d: d.name)
    rows: list[dict[str, Any]] = []
    for dp in dps:
        for v in dp.vports():
            if ctx.json:
                rows.append(_vport_json(dp.name, v))
            elif v.port_no != OVSP_LOCAL:  # the local port comes with "datapath add"
                ctx.print(_vport_spec(dp.name, v))
    if ctx.json:
        ctx.print_json(rows)
    return 0


def _cmd_vport_add(ctx: Ctx, a: argparse.Namespace) -> int:
    kind = VportKind.parse(a.kind)
    dp = ctx.datapath(a.dp)
    if a.port is not None and kind not in DEFAULT_TUNNEL_PORTS:
        raise UsageError(f"--port (a UDP port) is only for vxlan and geneve vports, not {kind.value}")
    if kind == VportKind.NETDEV and ctx.state is not None and a.name not in ctx.state.host.interfaces:
        # The simulator's convenience: the device a netdev vport attaches to is created on demand.
        ctx.state.host.add_interface(a.name)
    vport = dp.add_vport(a.name, kind, port_no=a.port_no, dst_port=a.port, extensions=["gbp"] if a.gbp else [])
    _sim_event(ctx, "add", dp.name, vport.info())
    if ctx.json:
        ctx.print_json(_vport_json(dp.name, vport.info()))
    return 0


def _sim_event(ctx: Ctx, event: str, dp_name: str, info: VportInfo) -> None:
    """The simulator's ovs_vport multicast group: the event is queued for 'odp vport listen'."""
    if ctx.state is not None:
        ctx.state.queue_vport_event({"event": event, **_vport_json(dp_name, info)})


def _cmd_vport_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    """``[DP] NAME...`` (ovs-dpctl del-if DP IFACE...): with DP first, its vports by name or number."""
    words: list[str] = list(a.args)
    dp: Datapath | None = None
    first_is_dp = len(words) >= 2 and any(d.name == words[0] for d in ctx.conn.datapaths())
    if first_is_dp or (len(words) == 2 and words[1].isdigit()):
        dp = ctx.datapath(words.pop(0))
    deleted = []
    for word in words:
        target, ref = _vport_owner(ctx, dp, word)
        try:
            info = target.delete_vport(ref)
        except NotFoundError:
            raise NotFoundError(f"datapath {target.name} has no vport {ref!r}") from None
        _sim_event(ctx, "delete", target.name, info)
        deleted.append(_vport_json(target.name, info))
    if ctx.json:
        ctx.print_json(deleted[0] if len(deleted) == 1 else deleted)
    return 0


def _vport_owner(ctx: Ctx, dp: Datapath | None, word: str) -> tuple[Datapath, str | int]:
    if dp is not None:
        return dp, int(word) if word.isdigit() else word
    owners = [d for d in ctx.conn.datapaths() if word in d.port_numbers()]
    if not owners:
        raise NotFoundError(f"no vport named {word!r} in any datapath")
    return owners[0], word


def _cmd_vport_set(ctx: Ctx, a: argparse.Namespace) -> int:
    """ovs-dpctl set-if: a vport's upcall pids (the only option a vport may change after creation)."""
    target, ref = _vport_owner(ctx, ctx.datapath(a.dp) if a.dp else None, a.name)
    if a.upcall_pids is None:
        raise UsageError("vport set: give --upcall-pids=PID[,PID...] (what a vport may change after creation)")
    try:
        pids = tuple(int(p, 0) for p in a.upcall_pids.split(","))
    except ValueError:
        raise CommandError(f"--upcall-pids={a.upcall_pids}: comma-separated numbers") from None
    port_no = ref if isinstance(ref, int) else target.port_numbers()[ref]
    info = target.backend.vport_set_upcall_pids(target.name, port_no, pids)
    _sim_event(ctx, "set", target.name, info)
    if ctx.json:
        ctx.print_json(_vport_json(target.name, info))
    return 0


def _cmd_vport_listen(ctx: Ctx, a: argparse.Namespace) -> int:
    if ctx.state is not None:
        # The simulator's vports change only while a command runs: those commands queued their events.
        dp_name = ctx.datapath(a.dp).name if a.dp else None
        for ev in ctx.state.take_vport_events(dp_name, a.count):
            if ctx.json:
                ctx.print_json_line(ev)
            else:
                ctx.print(f"{ev['event']} {ev['type']} {ev['datapath']} {ev['name']} --port-no={ev['port_no']}")
        return 0
    events_of = getattr(ctx.conn.backend, "vport_events", None)
    if events_of is None:
        raise NotSupported(f"vport listen is not available on the {ctx.backend} backend")
    dp_ifindex = ctx.datapath(a.dp).ifindex if a.dp else None
    names: dict[int, str] = {}
    seen = 0
    deadline = None if a.timeout is None else time.monotonic() + a.timeout
    with events_of(dp_ifindex) as events:
        try:
            while a.count is None or seen < a.count:
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                for ev in events.receive(timeout=wait):
                    ifindex = ev.vport.dp_ifindex
                    if ifindex not in names:
                        try:
                            names[ifindex] = ctx.conn.backend.dp_get(ifindex).name
                        except NotFoundError:
                            names[ifindex] = str(ifindex)
                    prefix = {"new": "add", "del": "delete"}.get(ev.kind, ev.kind)
                    if ctx.json:
                        ctx.print_json_line({"event": prefix, **_vport_json(names[ifindex], ev.vport)})
                    else:
                        ctx.print(f"{prefix} {_vport_spec(names[ifindex], ev.vport)}")
                    ctx.out.flush()
                    seen += 1
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass
    return 0


def _setup_vport_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", nargs="?", help="datapath (default: all)")


def _setup_vport_listen(p: argparse.ArgumentParser) -> None:
    _setup_vport_list(p)
    _setup_listen_limits(p)


def _setup_vport_add(kind_name: str) -> Callable[[argparse.ArgumentParser], None]:
    kind = VportKind.parse(kind_name)

    def setup(p: argparse.ArgumentParser) -> None:
        p.set_defaults(kind=kind.value)
        _setup_dp(p)
        p.add_argument("name", metavar="NAME", help="vport (and network device) name")
        if kind in DEFAULT_TUNNEL_PORTS:
            p.add_argument("--port", type=int, metavar="UDP", help=f"UDP port (default {DEFAULT_TUNNEL_PORTS[kind]})")
        else:
            p.set_defaults(port=None)
        if kind == VportKind.VXLAN:
            p.add_argument("--gbp", action="store_true", help="the Group Based Policy extension (VXLAN GBP)")
        else:
            p.set_defaults(gbp=False)
        p.add_argument("--port-no", type=int, metavar="N", help="vport number (default: the lowest free)")

    return setup


def _setup_vport_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", metavar="[DP] NAME", nargs="+", help="the vports (names, or numbers with DP)")


def _setup_vport_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", nargs="?", help="datapath (default: the one with a vport NAME)")
    p.add_argument("name", metavar="NAME", help="the vport (name, or number with DP)")
    p.add_argument("--upcall-pids", metavar="PID[,PID...]", help="netlink pids for its misses (0: none)")
