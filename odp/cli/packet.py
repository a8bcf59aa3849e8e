"""``odp packet``: execute, inject (simulator)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from odp.cli.base import CommandError, Ctx, UsageError, _port_no, _setup_dp
from odp.cli.goodp import _flow_errors, _parse_actions_text, _parse_key_text
from odp.cli.output import _summary, parse_packet, write_pcap_header, write_pcap_record
from odp.cli.trace import Tracer, _run_traced
from odp.errors import NotFoundError
from odp.keys import InPort, KeyAttr, Match
from odp.records import VportKind
from odp.text import format_actions

if TYPE_CHECKING:
    pass


def _cmd_packet_inject(ctx: Ctx, a: argparse.Namespace) -> int:
    if ctx.state is None:
        raise CommandError(
            "packet inject needs the simulator (--backend sim): on the kernel, send the packet into the port's"
            " network device instead (e.g. scapy's sendp)"
        )
    dp = ctx.datapath(a.dp)
    port_no = _port_no(dp, a.port)
    sim_dp = ctx.state.host.datapaths[dp.name]
    vport = sim_dp.vports.get(port_no)
    if vport is None:
        raise NotFoundError(f"datapath {dp.name} has no port {port_no}")
    if vport.kind not in (VportKind.NETDEV, VportKind.INTERNAL):
        raise CommandError(
            f"port {vport.name} is a {vport.kind.value} vport: inject into a netdev or internal port"
            " (tunnel ports receive from the underlay)"
        )
    frame = parse_packet(a.packet)
    if a.pcap == "-":
        ctx.out = sys.stderr  # stdout is the pcap
    tracer = _run_traced(ctx, lambda tracer: vport.interface.inject(frame))
    if a.pcap is not None:
        _save_outputs(tracer, a.pcap)
    return 0


def _save_outputs(tracer: Tracer, target: str) -> None:
    """``--pcap FILE``: the frames that came out of ports (a ``{port}`` in FILE: one file per port name)."""
    when = time.time()
    frames: dict[str, list[bytes]] = {}
    for e in tracer.events:
        if e.event == "output" and e.data.get("tunnel") is None:
            name = str(e.data["port_name"])
            frames.setdefault(target.replace("{port}", name), []).append(bytes.fromhex(e.data["packet"]))
    if "{port}" not in target:
        frames.setdefault(target, [])  # the file is written even when nothing came out
    for path, items in frames.items():
        with open(sys.stdout.fileno(), "wb", closefd=False) if path == "-" else open(path, "wb") as f:
            write_pcap_header(f)
            for frame in items:
                write_pcap_record(f, frame, when)


def _cmd_packet_execute(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    frame = parse_packet(a.packet)
    actions = _parse_actions_text(a.actions, dp)
    key: Match | None = None
    attrs: list[KeyAttr] = []
    if a.key is not None:
        key, _ = _parse_key_text(a.key, dp)
        attrs.extend(key.attrs)
    if a.in_port is not None:
        if any(isinstance(x, InPort) for x in attrs):
            raise UsageError("in_port given twice (--in-port and in --key)")
        attrs.append(InPort(_port_no(dp, a.in_port, "--in-port")))
    if attrs:
        key = Match(*attrs)
    if ctx.state is None:
        with _flow_errors():
            dp.execute(frame, actions, key=key)
        if ctx.json:
            ctx.print_json({"executed": True, "datapath": dp.name, "bytes": len(frame)})
        return 0

    def run(tracer: Tracer) -> None:
        tracer.add(0, "execute", datapath=dp.name, bytes=len(frame), packet=frame.hex(), summary=_summary(frame))
        tracer.add(1, "actions", actions=format_actions(actions))
        tracer.depth = 1
        with _flow_errors():
            dp.execute(frame, actions, key=key)

    _run_traced(ctx, run)
    return 0


def _setup_packet_execute(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("packet", metavar="PACKET", help="hex bytes or a scapy expression")
    p.add_argument("actions", metavar="ACTIONS", help="actions, ODP text")
    p.add_argument("--in-port", metavar="PORT", help="the packet's input port (default: the local port)")
    p.add_argument("--key", metavar="MATCH", help="metadata for the packet, ODP text (in_port, skb_mark ...)")


def _setup_packet_inject(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("port", metavar="PORT", help="the vport the packet arrives on (name or number)")
    p.add_argument("packet", metavar="PACKET", help="hex bytes or a scapy expression")
    p.add_argument(
        "--pcap",
        metavar="FILE",
        help="save the frames that came out of ports to this pcap file ('{port}' in FILE: one file per port)",
    )
