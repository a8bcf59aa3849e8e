"""``odp vport``: list, add, delete, listen."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from odp.cli.base import Ctx, UsageError, _setup_dp, _setup_listen_limits
from odp.cli.output import _vport_json
from odp.constants import OVSP_LOCAL
from odp.datapath import (
    DEFAULT_TUNNEL_PORTS,
    VportInfo,
    VportKind,
)
from odp.errors import NotFoundError, NotSupported

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
    vport = dp.add_vport(a.name, kind, port_no=a.port_no, dst_port=a.port)
    if ctx.json:
        ctx.print_json(_vport_json(dp.name, vport.info()))
    return 0


def _cmd_vport_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    _check_vport_delete(a)
    if len(a.args) == 2:
        dp = ctx.datapath(a.args[0])
        ref: str | int = a.args[1]
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
    else:
        name = a.args[0]
        owners = [d for d in ctx.conn.datapaths() if name in d.port_numbers()]
        if not owners:
            raise NotFoundError(f"no vport named {name!r} in any datapath")
        dp, ref = owners[0], name
    try:
        info = dp.delete_vport(ref)
    except NotFoundError:
        raise NotFoundError(f"datapath {dp.name} has no vport {ref!r}") from None
    if ctx.json:
        ctx.print_json(_vport_json(dp.name, info))
    return 0


def _cmd_vport_listen(ctx: Ctx, a: argparse.Namespace) -> int:
    events_of = getattr(ctx.conn.backend, "vport_events", None)
    if ctx.state is not None or events_of is None:
        raise NotSupported(
            f"vport listen is not available on the {ctx.backend} backend: vport events come from the kernel's"
            " ovs_vport multicast group (use --backend kernel)"
        )
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
        p.add_argument("--port-no", type=int, metavar="N", help="vport number (default: the lowest free)")

    return setup


def _setup_vport_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", metavar="[DP] NAME", nargs="+", help="the vport (name, or number with DP)")


def _check_vport_delete(a: argparse.Namespace) -> None:
    if len(a.args) > 2:
        raise UsageError("vport delete takes [DP] NAME")
