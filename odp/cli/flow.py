"""``odp flow``: list, add, mod, get, delete, clear, flush."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from odp.cli.base import PROG, Ctx, UsageError, _setup_dp
from odp.cli.goodp import _add_action_flags, _add_key_flags, _flow_errors, _flow_spec, _goodp_match
from odp.cli.output import _flow_json, _flow_line
from odp.errors import NotFoundError

if TYPE_CHECKING:
    pass

# ===========================================================================
# flow commands
# ===========================================================================


def _cmd_flow_list(ctx: Ctx, a: argparse.Namespace) -> int:
    words: list[str] = list(a.args)
    if len(words) > 2:
        raise UsageError("flow list takes [DP] [FILTER]")
    filter_text = None
    if words and (words[-1].startswith("filter=") or len(words) == 2):
        filter_text = words.pop()
    dp = ctx.datapath(words[0]) if words else ctx.only_datapath()
    flow_filter = None
    if filter_text is not None:
        from odp.cli.flow_filter import parse_filter

        flow_filter = parse_filter(filter_text, dp.port_numbers())
    names = dp.port_names() if a.names else None
    flows = ctx.conn.backend.flow_dump(dp.name)  # one at a time: the first line shows before the dump ends
    if flow_filter is not None:
        flows = (f for f in flows if flow_filter.matches(f.match))
    if ctx.json:
        ctx.print_json([_flow_json(f, names) for f in flows])
        return 0
    for i, f in enumerate(flows):
        ctx.print(_flow_line(f, names, a.ufid or a.more, more=a.more))
        if i == 0:
            ctx.out.flush()
    return 0


def _cmd_flow_add(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=True)
    if spec.match is None:
        raise UsageError("flow add needs MATCH and ACTIONS, or go-odp flags")
    if spec.actions is None:
        raise UsageError("flow add needs ACTIONS after MATCH ('drop' for none)")
    with _flow_errors():
        flow = dp.add_flow(spec.match, spec.actions, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_mod(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=True)
    if spec.match is None and spec.ufid is None:
        raise UsageError("flow mod needs MATCH (or --ufid) and ACTIONS")
    with _flow_errors():
        try:
            flow = dp.modify_flow(spec.match, spec.actions, ufid=spec.ufid, clear_stats=a.clear)
        except NotFoundError:
            if not a.may_create or spec.match is None or spec.actions is None:
                raise
            flow = dp.add_flow(spec.match, spec.actions, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_get(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        raise UsageError("flow get needs MATCH or --ufid")
    with _flow_errors():
        flow = dp.get_flow(spec.match, ufid=spec.ufid)
    names = dp.port_names() if a.names else None
    if ctx.json:
        ctx.print_json(_flow_json(flow, names))
    else:
        ctx.print(_flow_line(flow, names, with_ufid=spec.ufid is not None))
    return 0


def _cmd_flow_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        raise UsageError(f"flow delete needs MATCH, go-odp key flags or --ufid ('{PROG} flow flush DP' deletes all)")
    with _flow_errors():
        flow = dp.delete_flow(spec.match, ufid=spec.ufid)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_clear(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    spec = _flow_spec(a, dp, actions=False)
    if spec.match is None and spec.ufid is None:
        spec.match = _goodp_match(a, dp)  # go-odp: the key is at least eth()
    with _flow_errors():
        flow = dp.modify_flow(spec.match, ufid=spec.ufid, clear_stats=True)
    if ctx.json:
        ctx.print_json(_flow_json(flow))
    return 0


def _cmd_flow_flush(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    dp.flush_flows()
    if ctx.json:
        ctx.print_json({"flushed": dp.name})
    return 0


def _setup_flow_list(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "args",
        metavar="[DP] [FILTER]",
        nargs="*",
        help="datapath (optional with one datapath); [filter=]FILTER as ovs-dpctl: OpenFlow fields, e.g."
        " 'in_port=1,tcp,nw_dst=10.0.0.0/24,tp_dst=80'",
    )
    p.add_argument("--names", action="store_true", help="print port names instead of numbers")
    p.add_argument("--ufid", action="store_true", help="print each flow's ufid:<uuid> first (as ovs-dpctl -m)")
    p.add_argument(
        "-m", "--more", action="store_true", help="ovs-dpctl -m: the UFID, and the attributes the flow wildcards whole"
    )
    p.add_argument("--stats", action="store_true", help="go-odp compatibility: the lines always carry statistics")


def _setup_flow(*, actions: bool, names: bool = False, mod: bool = False) -> Callable[[argparse.ArgumentParser], None]:
    def setup(p: argparse.ArgumentParser) -> None:
        _setup_dp(p)
        p.add_argument("match", metavar="MATCH", nargs="?", help="flow key, ODP text (port names allowed)")
        if actions:
            p.add_argument("actions", metavar="ACTIONS", nargs="?", help="actions, ODP text ('drop' for none)")
        p.add_argument("--ufid", metavar="UUID", help="the flow's UFID (ufid:<uuid> as ovs-dpctl prints it)")
        if names:
            p.add_argument("--names", action="store_true", help="print port names instead of numbers")
        if mod:
            p.add_argument("--clear", action="store_true", help="also clear the flow's statistics")
            p.add_argument("--may-create", action="store_true", help="create the flow if it does not exist")
        _add_key_flags(p)
        if actions:
            _add_action_flags(p)

    return setup
