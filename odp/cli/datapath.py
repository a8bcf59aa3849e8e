"""``odp datapath``: list, add, delete, show, listen."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from odp.cli.base import PROG, CommandError, Ctx, UsageError, _setup_dp, _setup_listen_limits
from odp.cli.output import _dp_json, _summary, _vport_json, write_pcap_header, write_pcap_record
from odp.constants import DpFeature
from odp.datapath import Datapath
from odp.errors import NotSupported
from odp.records import DEFAULT_TUNNEL_PORTS, Upcall, UpcallKind, VportInfo, VportKind
from odp.text import format_match

if TYPE_CHECKING:
    pass

# ===========================================================================
# datapath commands
# ===========================================================================


def _cmd_dp_list(ctx: Ctx, a: argparse.Namespace) -> int:
    infos = sorted(ctx.conn.backend.dp_list(), key=lambda i: i.name)
    if ctx.json:
        ctx.print_json([_dp_json(i) for i in infos])
    else:
        for info in infos:
            ctx.print(info.name)
    return 0


#: Datapath user features by name (OVS_DP_F_*), for --features.
FEATURES = {
    "unaligned": DpFeature.UNALIGNED,
    "vport-pids": DpFeature.VPORT_PIDS,
    "tc-recirc-sharing": DpFeature.TC_RECIRC_SHARING,
    "per-cpu": DpFeature.DISPATCH_UPCALL_PER_CPU,
}


def _features(text: str) -> int:
    """``NAME[,NAME...]`` (unaligned, vport-pids, tc-recirc-sharing, per-cpu) or a number."""
    value = 0
    for word in (w.strip() for w in text.split(",") if w.strip()):
        if word in FEATURES:
            value |= int(FEATURES[word])
            continue
        try:
            value |= int(word, 0)
        except ValueError:
            raise CommandError(f"--features: {word!r} is neither a number nor one of {', '.join(FEATURES)}") from None
    return value


def _feature_names(value: int) -> str:
    names = [name for name, bit in FEATURES.items() if value & bit]
    rest = value & ~sum(int(b) for b in FEATURES.values())
    return ",".join([*names, *([f"{rest:#x}"] if rest else [])]) or "none"


def _cmd_dp_add(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.conn.create_datapath(a.dp, features=0 if a.features is None else _features(a.features))
    for spec in a.ifaces:  # ovs-dpctl add-dp DP IFACE...: NAME[,type=TYPE][,port_no=N][,dst_port=P]
        name, *opts = spec.split(",")
        options = dict(o.partition("=")[::2] for o in opts)
        unknown = set(options) - {"type", "port_no", "dst_port"}
        if unknown or not name:
            raise CommandError(f"interface {spec!r}: NAME[,type=TYPE][,port_no=N][,dst_port=P] (not {sorted(unknown)})")
        kind = VportKind.parse(options.get("type", "netdev"))
        if kind == VportKind.NETDEV and ctx.state is not None and name not in ctx.state.host.interfaces:
            ctx.state.host.add_interface(name)  # as 'vport add netdev' on the simulator
        try:
            port_no = int(options["port_no"]) if "port_no" in options else None
            dst_port = int(options["dst_port"]) if "dst_port" in options else None
        except ValueError:
            raise CommandError(f"interface {spec!r}: port_no and dst_port are numbers") from None
        dp.add_vport(name, kind, port_no=port_no, dst_port=dst_port)
    if ctx.json:
        ctx.print_json(_dp_json(dp.info()))
    return 0


def _cmd_dp_set(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    if a.features is None and a.masks_cache_size is None:
        raise UsageError("datapath set: give --features and/or --masks-cache-size")
    info = ctx.conn.backend.dp_set(
        dp.name,
        features=None if a.features is None else _features(a.features),
        masks_cache_size=a.masks_cache_size,
    )
    if ctx.json:
        ctx.print_json(_dp_json(info))
    return 0


def _cmd_dp_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    dp.delete()  # (the simulator's store drops the upcalls queued for it)
    if ctx.json:
        ctx.print_json({"deleted": dp.name})
    return 0


def _port_desc(v: VportInfo) -> str:
    """ovs-dpctl's ``port N: name (type: options)`` (a netdev, OVS's "system" type, has no parenthesis)."""
    text = f"port {v.port_no}: {v.name}"
    if v.kind == VportKind.NETDEV:
        return text
    opts = []
    if v.dst_port is not None and v.dst_port != DEFAULT_TUNNEL_PORTS.get(v.kind):
        opts.append(f"dst_port={v.dst_port}")
    if v.extensions:
        opts.append(f"exts={','.join(v.extensions)}")
    return f"{text} ({v.kind.value}{': ' + ', '.join(opts) if opts else ''})"


def _human_size(value: int) -> str:
    for limit, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= limit:
            return f" ({value / limit:.1f} {unit})"
    return ""


def _port_stats_lines(v: VportInfo) -> list[str]:
    """``ovs-dpctl show -s``'s counters of one port ('?': the backend does not report it)."""
    st = v.stats
    return [
        f"    RX packets:{st.rx_packets} errors:{st.rx_errors} dropped:{st.rx_dropped} overruns:? frame:?",
        f"    TX packets:{st.tx_packets} errors:{st.tx_errors} dropped:{st.tx_dropped} aborted:? carrier:?",
        "    collisions:?",
        f"    RX bytes:{st.rx_bytes}{_human_size(st.rx_bytes)}  TX bytes:{st.tx_bytes}{_human_size(st.tx_bytes)}",
    ]


def _cmd_dp_show(ctx: Ctx, a: argparse.Namespace) -> int:
    if a.dp:
        dps = [ctx.datapath(ref) for ref in a.dp]
    else:
        dps = sorted(ctx.conn.datapaths(), key=lambda d: d.name)
    shown: list[dict[str, Any]] = []
    for dp in dps:
        info = dp.info()
        vports = dp.vports()
        if ctx.json:
            shown.append({**_dp_json(info), "ports": [_vport_json(dp.name, v) for v in vports]})
            continue
        s, m = info.stats, info.megaflow
        packets = s.hit + s.missed
        ctx.print(f"system@{info.name}:")
        if a.features_shown:
            ctx.print(f"  features: {_feature_names(info.features)}  masks cache size: {info.masks_cache_size}")
        ctx.print(f"  lookups: hit:{s.hit} missed:{s.missed} lost:{s.lost}")
        ctx.print(f"  flows: {s.flows}")
        ctx.print(f"  masks: hit:{m.mask_hit} total:{m.masks} hit/pkt:{(m.mask_hit / packets if packets else 0.0):.2f}")
        for v in vports:
            ctx.print(f"  {_port_desc(v)}")
            if a.statistics:
                for line in _port_stats_lines(v):
                    ctx.print(line)
    if ctx.json:
        ctx.print_json(shown)
    return 0


def _upcall_json(dp_name: str, up: Upcall, names: dict[int, str], when: float) -> dict[str, Any]:
    port = up.in_port
    return {
        "datapath": dp_name,
        "kind": "miss" if up.kind == UpcallKind.MISS else "action",
        "time": when,
        "in_port": port,
        "port_name": names.get(port) if port is not None else None,
        "bytes": len(up.packet),
        "packet": up.packet.hex(),
        "summary": _summary(up.packet),
        "key": format_match(up.key),
        "userdata": None if up.userdata is None else up.userdata.hex(),
    }


def _upcall_line(n: int, up: Upcall) -> str:
    """The kernel selftest tool's (ovs-dpctl.py) line: ``MISS upcall[N]: <key>``; userspace() ones with userdata."""
    if up.kind == UpcallKind.MISS:
        return f"MISS upcall[{n}]: {format_match(up.key)}"
    userdata = "" if up.userdata is None else f", userdata({up.userdata.hex()})"
    return f"USERSPACE upcall[{n}]: {format_match(up.key)}{userdata}"


def _print_upcall(
    ctx: Ctx, n: int, dp_name: str, up: Upcall, names: dict[int, str], summary: bool, when: float
) -> None:
    if ctx.json:
        ctx.print_json_line({"seq": n, **_upcall_json(dp_name, up, names, when)})
        return
    ctx.print(_upcall_line(n, up))
    if summary:
        port = up.in_port
        where = f"port {port} ({names[port]})" if port in names else f"port {port}"
        ctx.print(f"  {dp_name}: {where}, {len(up.packet)} bytes: {_summary(up.packet)}")


class _Pcap:
    """``--pcap FILE``, or ``--pcap -``: the pcap on stdout (and then the text lines on stderr)."""

    def __init__(self, ctx: Ctx, target: str | None) -> None:
        self.file: Any = None
        if target == "-":
            self.file = sys.stdout.buffer
            ctx.out = sys.stderr
        elif target:
            self.file = open(target, "wb")  # noqa: SIM115 - closed by close()
        if self.file is not None:
            write_pcap_header(self.file)
            self.file.flush()
        self.owned = target not in (None, "", "-")

    def write(self, frame: bytes, when: float, length: int | None) -> None:
        if self.file is not None:
            write_pcap_record(self.file, frame, when, length)
            self.file.flush()

    def close(self) -> None:
        if self.file is not None and self.owned:
            self.file.close()


def _ready(dp: Datapath, pids: str) -> None:
    """The line scripts wait for (on stderr): printed once the upcalls are pointed at us."""
    sys.stderr.write(f"{PROG}: listening on {dp.name}: netlink pid {pids}\n")
    sys.stderr.flush()


def _cmd_dp_listen(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    if a.dispatch != "auto" and ctx.state is not None:
        raise NotSupported("--dispatch: the simulator's listen prints queued upcalls, it has no dispatch mode")
    pcap = _Pcap(ctx, a.pcap)
    try:
        if ctx.state is not None:
            queued = ctx.state.take_upcalls(dp.name, a.count)  # the rest is left for the next listen
            names = dp.port_names()  # (no ready line: nothing is listened to, the queue is printed)
            for n, q in enumerate(queued, 1):
                _print_upcall(ctx, n, dp.name, q.upcall, names, a.summary, q.time)
                pcap.write(q.upcall.packet, q.time, q.upcall.length)
            if not queued and not ctx.json:
                sys.stderr.write(
                    f"{PROG}: no upcalls queued for {dp.name}: the simulator only moves packets while a command runs;"
                    f" '{PROG} packet inject' prints the misses it causes and queues them for this command\n"
                )
            return 0
        return _listen_kernel(ctx, dp, a, pcap)
    finally:
        pcap.close()


def _listen_kernel(ctx: Ctx, dp: Datapath, a: argparse.Namespace, pcap: _Pcap) -> int:
    names = dp.port_names()
    seen = 0
    deadline = None if a.timeout is None else time.monotonic() + a.timeout
    listener_of: Any = ctx.conn.backend.upcall_listener  # the kernel's takes the dispatch mode
    with listener_of(dp.name, dispatch=a.dispatch) if a.dispatch != "auto" else dp.listen() as listener:
        if a.ready:
            # The listener's creation pointed the datapath's and vports' upcall pids at it.
            _ready(dp, str(getattr(listener, "pid", "?")))
        try:
            while a.count is None or seen < a.count:
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                for up in listener.receive(timeout=wait, max_count=None if a.count is None else a.count - seen):
                    now = time.time()
                    if up.in_port is not None and up.in_port not in names:
                        names = dp.port_names()
                    seen += 1
                    _print_upcall(ctx, seen, dp.name, up, names, a.summary, now)
                    pcap.write(up.packet, now, up.length)
                    ctx.out.flush()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass
    return 0


def _setup_dp_add(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument(
        "ifaces", metavar="IFACE", nargs="*", help="vports to add (ovs-dpctl add-dp): NAME[,type=TYPE][,port_no=N]"
    )
    p.add_argument("--features", metavar="LIST", help=f"user features: {', '.join(FEATURES)} or a number")


def _setup_dp_set(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("--features", metavar="LIST", help=f"user features: {', '.join(FEATURES)} or a number")
    p.add_argument("--masks-cache-size", type=int, metavar="N", help="the mask cache's size (0 or a power of two)")


def _setup_dp_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("dp", metavar="DP", nargs="*", help="datapaths to show (default: all)")
    p.add_argument("-s", "--statistics", action="store_true", help="print each port's packet counters")
    p.add_argument(
        "-f", "--features", dest="features_shown", action="store_true", help="print the user features and cache size"
    )


def _setup_dp_listen(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("--summary", action="store_true", help="also print each packet's port, length and layers")
    p.add_argument("--keys", action="store_true", help=argparse.SUPPRESS)  # the key is always printed now
    p.add_argument("--pcap", metavar="FILE", help="also write the packets to this pcap file ('-': stdout, as a stream)")
    p.add_argument(
        "--dispatch",
        choices=("auto", "per-vport", "per-cpu"),
        default="auto",
        help="kernel: upcalls through the vports' pids, or the datapath's per-CPU pids (default: what the kernel has)",
    )
    p.add_argument(
        "--no-ready", dest="ready", action="store_false", help="no 'listening on DP: netlink pid N' line on stderr"
    )
    _setup_listen_limits(p)
