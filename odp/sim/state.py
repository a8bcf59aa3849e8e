"""Simulator state on disk: a simulated host saved between ``odp --backend sim`` invocations.

The simulator lives in memory; the command line gives it a life across
processes by loading a :class:`~odp.sim.network.Host`, running one command
on it and saving what changed.  The command line's store is a database
(:mod:`odp.sim.store`, which loads only what a command needs); this module
holds the records it keeps and the JSON document that is the readable
export format (``odp state export|import``).  Everything the kernel would
remember is kept:

* the host: name, the Linux version it behaves as, underlay IPv4 address and
  MAC, neighbour entries, the next
  ifindex and netlink pid to hand out (the kernel never reuses them either),
  and its network devices (name, ifindex, MAC, whether a vport created it);
* each datapath: name, ifindex, features, masks cache size, the lookup
  counters (hit, missed, lost, mask hits, cache hits);
* each vport: number, name, type, UDP port of tunnel vports, upcall pids and
  the eight packet/byte/error counters and the two upcall counters;
* each flow, in table order (which decides which overlapping flow a packet
  finds first): the match and actions as ODP text (the interchange format;
  readable and editable), the UFID, packets, bytes, tcp flags and ``used``,
  stored as wall-clock milliseconds so that it survives a reboot (the
  simulator's clock is the monotonic clock, like the kernel's);
* each meter: id, its slot in the meter array (and the array size: slots
  decide which ids collide), kbps, whether it keeps stats, packets, bytes,
  ``used`` (wall-clock ms, like flows, so that buckets refill by the real
  time between invocations) and per band type, rate, burst, bucket, packets
  and bytes;
* the upcalls queued for ``odp datapath listen`` (see :class:`SimState`).

Not kept: frames waiting in a device's ``sent`` queue, open upcall
listeners (their pids stay in the vports, so upcalls to them are lost, as
with a netlink socket that was closed), the exact-match cache
(rebuilt by the next lookups) and the sample() random generator's position.

Concurrency: :func:`odp.sim.store.open_state` runs a command in one database
transaction (see :mod:`odp.sim.store`); :func:`save_state` writes a JSON
document to a temporary file in the same directory, fsyncs it and renames it
over the target (``os.replace``), so readers never see a partial file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odp.errors import OdpError
from odp.fields import format_mac, parse_mac
from odp.kernels import TESTED, Kernel
from odp.keys import Encap, EthType, KeyAttr, Match
from odp.records import Upcall, UpcallKind, VportKind
from odp.sim.datapath import SimDatapath
from odp.sim.flow_table import SimFlow
from odp.sim.meter import MeterTable, SimBand, SimMeter
from odp.sim.network import Host, Network
from odp.sim.vport import Counters, make_vport
from odp.text import format_actions, format_key_attr, parse_actions, parse_match
from odp.validate.fastpath import from_match

__all__ = [
    "DEFAULT_HOST_IP",
    "DEFAULT_HOST_MAC",
    "FORMAT",
    "MAX_QUEUED_UPCALLS",
    "VERSION",
    "QueuedUpcall",
    "SimState",
    "StateError",
    "default_state_path",
    "match_text",
    "new_host",
    "save_host",
    "save_state",
    "state_from_json",
    "state_from_text",
    "state_to_json",
]

#: The ``format`` field of a state file.
FORMAT = "odp-sim-state"
#: The ``version`` field; a file of another version is refused.
VERSION = 1
#: The underlay address of a fresh simulated host (tunnel vports use it).
DEFAULT_HOST_IP = "172.16.0.1"
#: The underlay MAC of a fresh simulated host.
DEFAULT_HOST_MAC = 0x020000000100
#: Upcalls kept per datapath for ``odp datapath listen``; older ones are dropped.
MAX_QUEUED_UPCALLS = 256

_COUNTER_FIELDS = (
    "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
    "upcall_success", "upcall_fail",
)  # fmt: skip


class StateError(OdpError):
    """A state file cannot be read: not JSON, another format or version, or inconsistent."""


@dataclass(slots=True)
class QueuedUpcall:
    """An upcall kept in the state until ``odp datapath listen`` prints it; ``time`` is Unix seconds."""

    time: float
    upcall: Upcall


@dataclass(slots=True)
class SimState:
    """What a state file holds: the host, and the upcalls queued per datapath name.

    The simulator is synchronous: upcalls only happen while a command runs a
    packet through it (``odp packet inject``/``execute``).  The command line
    receives them, prints them, and queues them here so that a later
    ``odp datapath listen`` can print them again (and write them to a pcap).
    """

    host: Host
    upcalls: dict[str, list[QueuedUpcall]] = field(default_factory=dict)
    #: Vport events (``{"event": "add"|"delete"|"set", "datapath": ..., ...}``) for ``odp vport listen``.
    vport_events: list[dict[str, Any]] = field(default_factory=list)

    def queue_upcall(self, dp_name: str, upcall: Upcall, when: float | None = None) -> None:
        queue = self.upcalls.setdefault(dp_name, [])
        queue.append(QueuedUpcall(time.time() if when is None else when, upcall))
        del queue[:-MAX_QUEUED_UPCALLS]

    def queue_vport_event(self, event: dict[str, Any]) -> None:
        self.vport_events.append(event)
        del self.vport_events[:-MAX_QUEUED_UPCALLS]

    def take_vport_events(self, dp_name: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """The oldest ``count`` events (of datapath ``dp_name``), removed from the queue."""
        taken = [e for e in self.vport_events if dp_name is None or e.get("datapath") == dp_name][:count]
        self.vport_events = [e for e in self.vport_events if not any(e is t for t in taken)]
        return taken

    def take_upcalls(self, dp_name: str, count: int | None = None) -> list[QueuedUpcall]:
        """The oldest ``count`` (default: all) upcalls queued for ``dp_name``, removed from the queue."""
        queue = self.upcalls.pop(dp_name, [])
        if count is not None and queue[count:]:
            self.upcalls[dp_name] = queue[count:]
            queue = queue[:count]
        return queue


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/odp/sim.db``, else ``~/.local/state/odp/sim.db``."""
    base = os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "odp" / "sim.db"


def new_host(name: str = "sim", ip: str = DEFAULT_HOST_IP) -> Host:
    """A fresh simulated host on an underlay of its own, with a fixed MAC (so traces are reproducible)."""
    host = Host(name)
    host.mac = DEFAULT_HOST_MAC
    Network().attach(host, ip)
    return host


# ---------------------------------------------------------------------------
# Host <-> JSON
# ---------------------------------------------------------------------------


def _ip_text(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def _attr_text(attr: KeyAttr) -> str:
    if isinstance(attr, Encap):
        return f"encap({','.join(_attr_text(a) for a in attr.attrs)})"
    return format_key_attr(attr, exact=True)  # the state reads back what it wrote


def match_text(match: Match) -> str:
    """ODP text for ``match`` that keeps fully wildcarded attributes (``ipv4()``).

    ``format_match`` writes what ``ovs-dpctl dump-flows`` shows, which omits
    them; but their presence matters (a key with ``eth_type(0x0800)`` needs
    an ``ipv4`` attribute), so the state keeps them.
    """
    parts = [_attr_text(a) for a in match.attrs]
    parts += [f"eth_type(0/0x{a.value.mask:04x})" for a in match.mask_only if isinstance(a, EthType)]
    return ",".join(parts)


def upcall_to_json(q: QueuedUpcall) -> dict[str, Any]:
    u = q.upcall
    return {
        "time": q.time,
        "kind": "miss" if u.kind == UpcallKind.MISS else "action",
        "packet": u.packet.hex(),
        "key": match_text(u.key),
        "userdata": None if u.userdata is None else u.userdata.hex(),
        "pid": u.pid,
    }


def upcall_from_json(data: dict[str, Any], dp_ifindex: int) -> QueuedUpcall:
    userdata = data.get("userdata")
    upcall = Upcall(
        kind=UpcallKind.MISS if data["kind"] == "miss" else UpcallKind.ACTION,
        dp_ifindex=dp_ifindex,
        packet=bytes.fromhex(data["packet"]),
        key=parse_match(data["key"]),
        userdata=None if userdata is None else bytes.fromhex(userdata),
        pid=int(data.get("pid", 0)),
    )
    return QueuedUpcall(float(data["time"]), upcall)


def flow_to_json(f: SimFlow, now_mono: int, now_wall: float) -> dict[str, Any]:
    used = None if f.used is None else round(now_wall * 1000 - (now_mono - f.used))
    return {
        "match": match_text(f.match),
        "actions": format_actions(f.actions, exact=True),
        "ufid": None if f.ufid is None else f.ufid.hex(),
        "packets": f.packets,
        "bytes": f.bytes,
        "used": used,
        "tcp_flags": f.tcp_flags,
    }


def flow_from_json(data: dict[str, Any], now_mono: int, now_wall: float, kernel: Kernel | None = None) -> SimFlow:
    """A flow record back as a flow, checked again as ``kernel`` checks flows
    (None: the newest rules; the flow was checked as its host's kernel when
    it was installed)."""
    from odp.validate import validate_actions, validate_match

    match = parse_match(data["match"])
    actions = parse_actions(data["actions"])
    validate_match(match)
    validate_actions(actions, match, kernel=kernel)
    sw = from_match(match)
    ufid = data.get("ufid")
    used = data.get("used")
    return SimFlow(
        sw=sw,
        unmasked_key=sw.key,
        match=match,
        actions=actions,
        ufid=None if ufid is None else bytes.fromhex(ufid),
        packets=int(data.get("packets", 0)),
        bytes=int(data.get("bytes", 0)),
        used=None if used is None else now_mono - max(0, round(now_wall * 1000 - int(used))),
        tcp_flags=int(data.get("tcp_flags", 0)),
    )


def _wall(mono: int, now_mono: int, now_wall: float) -> int:
    return round(now_wall * 1000 - (now_mono - mono))


def _mono(wall: int, now_mono: int, now_wall: float) -> int:
    return now_mono - max(0, round(now_wall * 1000 - wall))


def _meters_to_json(table: MeterTable, now_mono: int, now_wall: float) -> dict[str, Any]:
    return {
        "slots": len(table.slots),
        "meters": [
            {
                "slot": i,
                "id": m.id,
                "kbps": m.kbps,
                "keep_stats": m.keep_stats,
                "used": _wall(m.used, now_mono, now_wall),
                "packets": m.n_packets,
                "bytes": m.n_bytes,
                "bands": [
                    {
                        "type": b.type,
                        "rate": b.rate,
                        "burst": b.burst,
                        "bucket": b.bucket,
                        "packets": b.n_packets,
                        "bytes": b.n_bytes,
                    }
                    for b in m.bands
                ],
            }
            for i, m in enumerate(table.slots)
            if m is not None
        ],
    }


def _meters_from_json(table: MeterTable, data: dict[str, Any], now_mono: int, now_wall: float) -> None:
    size = int(data["slots"])
    if size < len(table.slots) or size & (size - 1):
        raise StateError(f"meter array size {size} is not a power of two of at least {len(table.slots)}")
    table.slots = [None] * size
    for md in data.get("meters", []):
        slot = int(md["slot"])
        if not 0 <= slot < size or table.slots[slot] is not None:
            raise StateError(f"meter {md.get('id')}: slot {slot} is out of range or taken")
        meter = SimMeter(
            int(md["id"]),
            bool(md["kbps"]),
            bool(md["keep_stats"]),
            _mono(int(md["used"]), now_mono, now_wall),
            n_packets=int(md["packets"]),
            n_bytes=int(md["bytes"]),
        )
        for bd in md.get("bands", []):
            rate = int(bd["rate"])
            if rate <= 0:
                raise StateError(f"meter {meter.id}: band rate {rate} must be positive")
            band = SimBand(
                int(bd["type"]), rate, int(bd["burst"]), int(bd["bucket"]), int(bd["packets"]), int(bd["bytes"])
            )
            meter.bands.append(band)
            meter.max_delta_t = max(meter.max_delta_t, (band.burst * 1000 // rate) & 0xFFFFFFFF)
        table.slots[slot] = meter
        table.count += 1


def host_to_json(host: Host) -> dict[str, Any]:
    """The ``host`` record of a state document: the host without its datapaths."""
    return {
        "name": host.name,
        "kernel": str(host.kernel),
        "ip": None if host.ip is None else _ip_text(host.ip),
        "mac": format_mac(host.mac),
        "seed": host.seed,
        "next_ifindex": host.next_ifindex,
        "next_pid": host.next_pid,
        "neighbors": {_ip_text(ip): format_mac(mac) for ip, mac in sorted(host.neighbors.items())},
        **(
            {
                "ip6": str(ipaddress.IPv6Address(host.ip6)),
                "neighbors6": {
                    str(ipaddress.IPv6Address(ip)): format_mac(mac) for ip, mac in sorted(host.neighbors6.items())
                },
            }
            if host.ip6 is not None
            else {}
        ),
        "interfaces": [
            {"name": i.name, "ifindex": i.ifindex, "mac": format_mac(i.mac), "owned_by_vport": i.owned_by_vport}
            for i in sorted(host.interfaces.values(), key=lambda i: i.ifindex)
        ],
    }


def datapath_to_json(d: SimDatapath, now_mono: int, now_wall: float) -> dict[str, Any]:
    """A datapath's record without its flows and queued upcalls (which a state keeps one by one)."""
    return {
        "name": d.name,
        "ifindex": d.ifindex,
        "features": d.features,
        "masks_cache_size": d.masks_cache_size,
        "hit": d.counters.hit,
        "missed": d.counters.missed,
        "lost": d.counters.lost,
        "mask_hit": d.table.stats.mask_hit,
        "cache_hit": d.table.stats.cache_hit,
        "vports": [
            {
                "port_no": v.port_no,
                "name": v.name,
                "type": v.kind.value,
                "dst_port": v.dst_port,
                **({"extensions": list(v.extensions)} if v.extensions else {}),
                "upcall_pids": list(v.upcall_pids),
                "stats": {name: getattr(v.counters, name) for name in _COUNTER_FIELDS},
            }
            for v in sorted(d.vports.values(), key=lambda v: v.port_no)
        ],
        "meters": _meters_to_json(d.meters, now_mono, now_wall),
    }


def state_to_json(state: SimState) -> dict[str, Any]:
    """The JSON document for ``state`` (see the module doc for what it holds)."""
    host = state.host
    now_mono, now_wall = host.clock(), time.time()
    datapaths = []
    for d in host.datapaths.values():
        record = datapath_to_json(d, now_mono, now_wall)
        record["flows"] = [flow_to_json(f, now_mono, now_wall) for f in d.table.flows()]
        record["upcalls"] = [upcall_to_json(q) for q in state.upcalls.get(d.name, [])]
        datapaths.append(record)
    return {"format": FORMAT, "version": VERSION, "host": host_to_json(host), "datapaths": datapaths}


def state_from_json(doc: object, where: str = "state") -> SimState:
    """Rebuild a :class:`SimState` from :func:`state_to_json`'s document (StateError if it is not one)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f'{where}: not an odp simulator state file (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise StateError(f"{where}: state version {doc.get('version')!r} is not supported (expected {VERSION})")
    try:
        return _build(doc)
    except StateError:
        raise
    except (OdpError, ValueError, KeyError, TypeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise StateError(f"{where}: inconsistent state: {detail}") from None


def host_from_json(h: dict[str, Any]) -> Host:
    """The host of a ``host`` record (:func:`host_to_json`), without datapaths."""
    # A state written before the kernel was saved is the default kernel's.
    host = Host(str(h["name"]), seed=int(h.get("seed", 0)), kernel=str(h.get("kernel", TESTED)))
    host.mac = parse_mac(h["mac"])
    if h.get("ip"):
        Network().attach(host, h["ip"])
    for ip, mac in h.get("neighbors", {}).items():
        host.neighbors[int(ipaddress.IPv4Address(ip))] = parse_mac(mac)
    if h.get("ip6"):
        host.ip6 = int(ipaddress.IPv6Address(h["ip6"]))
    for ip, mac in h.get("neighbors6", {}).items():
        host.neighbors6[int(ipaddress.IPv6Address(ip))] = parse_mac(mac)
    for i in h.get("interfaces", []):
        iface = host.add_interface(i["name"], mac=parse_mac(i["mac"]), owned_by_vport=bool(i["owned_by_vport"]))
        iface.ifindex = int(i["ifindex"])
    host.next_ifindex = int(h["next_ifindex"])
    host.next_pid = int(h["next_pid"])
    return host


def datapath_from_json(host: Host, dd: dict[str, Any], now_mono: int, now_wall: float) -> SimDatapath:
    """A datapath record (:func:`datapath_to_json`) rebuilt on ``host``, with an empty flow table.

    The caller adds it to ``host.datapaths`` (and its flows to its table).
    """
    name = str(dd["name"])
    d = SimDatapath(host, name, int(dd["ifindex"]), int(dd.get("features", 0)), 0)
    d.masks_cache_size = int(dd.get("masks_cache_size", 256))
    d.counters.hit, d.counters.missed, d.counters.lost = int(dd["hit"]), int(dd["missed"]), int(dd["lost"])
    d.table.stats.mask_hit = int(dd.get("mask_hit", 0))
    d.table.stats.cache_hit = int(dd.get("cache_hit", 0))
    for vd in dd["vports"]:
        vname = str(vd["name"])
        if vname not in host.interfaces:
            raise StateError(f"vport {vname!r} of datapath {name!r} has no network device")
        iface = host.interfaces[vname]
        if iface.attached is not None:
            raise StateError(f"network device {vname!r} is attached to two vports")
        counters = Counters(**{k: int(vd.get("stats", {}).get(k, 0)) for k in _COUNTER_FIELDS})
        port_no = int(vd["port_no"])
        dst_port = vd.get("dst_port")
        vport = make_vport(
            port_no,
            vname,
            VportKind.parse(vd["type"]),
            iface,
            upcall_pids=tuple(int(p) for p in vd.get("upcall_pids", [0])) or (0,),
            dst_port=None if dst_port is None else int(dst_port),
            extensions=tuple(str(e) for e in vd.get("extensions", [])),
            counters=counters,
        )
        iface.attached = (d, port_no)
        d.vports[port_no] = vport
    if 0 not in d.vports:
        raise StateError(f"datapath {name!r} has no local port 0")
    if "meters" in dd:
        _meters_from_json(d.meters, dd["meters"], now_mono, now_wall)
    return d


def _build(doc: dict[str, Any]) -> SimState:
    host = host_from_json(doc["host"])
    state = SimState(host)
    now_mono, now_wall = host.clock(), time.time()
    for dd in doc.get("datapaths", []):
        d = datapath_from_json(host, dd, now_mono, now_wall)
        for fd in dd.get("flows", []):
            d.table.insert(flow_from_json(fd, now_mono, now_wall, host.kernel))
        if len(d.table) != len(dd.get("flows", [])):
            raise StateError(f"datapath {d.name!r}: two flows have the same mask and key")
        host.datapaths[d.name] = d
        queued = [upcall_from_json(u, d.ifindex) for u in dd.get("upcalls", [])]
        if queued:
            state.upcalls[d.name] = queued
    return state


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def state_from_text(data: bytes, where: str) -> SimState:
    """A state from the bytes of a JSON document (StateError naming ``where`` if it is not one)."""
    if not data.strip():
        raise StateError(f"{where}: an empty file, not an odp simulator state")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StateError(f"{where}: not valid JSON (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise StateError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise StateError(f"{where}: not valid JSON (nested too deeply)") from None
    return state_from_json(doc, where)


def save_state(state: SimState, path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file in the same directory, fsync, rename)."""
    p = Path(path)
    text = json.dumps(state_to_json(state), indent=1) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_host(host: Host, path: str | os.PathLike[str]) -> None:
    """Save ``host`` (its datapaths, vports, flows, counters and devices) to ``path`` atomically."""
    save_state(SimState(host), path)
