"""Simulator state on disk: a simulated host saved between ``odp --backend sim`` invocations.

The simulator lives in memory; the command line gives it a life across
processes by loading a :class:`~odp.sim.network.Host` from a JSON file,
running one command on it and saving it again.  Everything the kernel would
remember is kept:

* the host: name, underlay IPv4 address and MAC, neighbour entries, the next
  ifindex and netlink pid to hand out (the kernel never reuses them either),
  and its network devices (name, ifindex, MAC, whether a vport created it);
* each datapath: name, ifindex, features, masks cache size, the lookup
  counters (hit, missed, lost, mask hits, cache hits);
* each vport: number, name, type, UDP port of tunnel vports, upcall pids and
  the eight packet/byte/error counters;
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

Concurrency: :func:`locked_state` holds an exclusive ``fcntl`` lock on a
sidecar file (``<state>.lock``) around load, modify and save, and
:func:`save_host` writes a temporary file in the same directory, fsyncs it
and renames it over the state (``os.replace``), so readers never see a
partial file and concurrent invocations never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odp.datapath import Upcall, UpcallKind, VportKind
from odp.errors import OdpError
from odp.fields import format_mac, parse_mac
from odp.keys import Encap, EthType, KeyAttr, Match
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
    "load_host",
    "load_state",
    "lock_path",
    "locked_state",
    "match_text",
    "new_host",
    "save_host",
    "save_state",
    "state_from_json",
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

    def queue_upcall(self, dp_name: str, upcall: Upcall, when: float | None = None) -> None:
        queue = self.upcalls.setdefault(dp_name, [])
        queue.append(QueuedUpcall(time.time() if when is None else when, upcall))
        del queue[:-MAX_QUEUED_UPCALLS]

    def take_upcalls(self, dp_name: str) -> list[QueuedUpcall]:
        return self.upcalls.pop(dp_name, [])


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/odp/sim.json``, else ``~/.local/state/odp/sim.json``."""
    base = os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "odp" / "sim.json"


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
    return format_key_attr(attr)


def match_text(match: Match) -> str:
    """ODP text for ``match`` that keeps fully wildcarded attributes (``ipv4()``).

    ``format_match`` writes what ``ovs-dpctl dump-flows`` shows, which omits
    them; but their presence matters (a key with ``eth_type(0x0800)`` needs
    an ``ipv4`` attribute), so the state keeps them.
    """
    parts = [_attr_text(a) for a in match.attrs]
    parts += [f"eth_type(0/0x{a.value.mask:04x})" for a in match.mask_only if isinstance(a, EthType)]
    return ",".join(parts)


def _upcall_to_json(q: QueuedUpcall) -> dict[str, Any]:
    u = q.upcall
    return {
        "time": q.time,
        "kind": "miss" if u.kind == UpcallKind.MISS else "action",
        "packet": u.packet.hex(),
        "key": match_text(u.key),
        "userdata": None if u.userdata is None else u.userdata.hex(),
        "pid": u.pid,
    }


def _upcall_from_json(data: dict[str, Any], dp_ifindex: int) -> QueuedUpcall:
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


def _flow_to_json(f: SimFlow, now_mono: int, now_wall: float) -> dict[str, Any]:
    used = None if f.used is None else round(now_wall * 1000 - (now_mono - f.used))
    return {
        "match": match_text(f.match),
        "actions": format_actions(f.actions),
        "ufid": None if f.ufid is None else f.ufid.hex(),
        "packets": f.packets,
        "bytes": f.bytes,
        "used": used,
        "tcp_flags": f.tcp_flags,
    }


def _flow_from_json(data: dict[str, Any], now_mono: int, now_wall: float) -> SimFlow:
    from odp.validate import validate_actions, validate_match

    match = parse_match(data["match"])
    actions = parse_actions(data["actions"])
    validate_match(match)
    validate_actions(actions, match)
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


def state_to_json(state: SimState) -> dict[str, Any]:
    """The JSON document for ``state`` (see the module doc for what it holds)."""
    host = state.host
    next_ifindex, next_pid = host.next_ifindex, host.next_pid
    now_mono, now_wall = host.clock(), time.time()
    datapaths = []
    for d in host.datapaths.values():
        datapaths.append(
            {
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
                "flows": [_flow_to_json(f, now_mono, now_wall) for f in d.table.flows()],
                "meters": _meters_to_json(d.meters, now_mono, now_wall),
                "upcalls": [_upcall_to_json(q) for q in state.upcalls.get(d.name, [])],
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "host": {
            "name": host.name,
            "ip": None if host.ip is None else _ip_text(host.ip),
            "mac": format_mac(host.mac),
            "seed": host.seed,
            "next_ifindex": next_ifindex,
            "next_pid": next_pid,
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
        },
        "datapaths": datapaths,
    }


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


def _build(doc: dict[str, Any]) -> SimState:
    h = doc["host"]
    host = Host(str(h["name"]), seed=int(h.get("seed", 0)))
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
    state = SimState(host)
    now_mono, now_wall = host.clock(), time.time()
    for dd in doc.get("datapaths", []):
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
                counters=counters,
                extensions=tuple(str(e) for e in vd.get("extensions", [])),
            )
            iface.attached = (d, port_no)
            d.vports[port_no] = vport
        if 0 not in d.vports:
            raise StateError(f"datapath {name!r} has no local port 0")
        for fd in dd.get("flows", []):
            d.table.insert(_flow_from_json(fd, now_mono, now_wall))
        if len(d.table) != len(dd.get("flows", [])):
            raise StateError(f"datapath {name!r}: two flows have the same mask and key")
        if "meters" in dd:
            _meters_from_json(d.meters, dd["meters"], now_mono, now_wall)
        host.datapaths[name] = d
        queued = [_upcall_from_json(u, d.ifindex) for u in dd.get("upcalls", [])]
        if queued:
            state.upcalls[name] = queued
    return state


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def load_state(path: str | os.PathLike[str]) -> SimState:
    """The state saved at ``path``; a fresh host (:func:`new_host`) when the file does not exist."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SimState(new_host())
    if not text.strip():
        return SimState(new_host())  # created but never written (e.g. by hand with touch)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{p}: not valid JSON ({exc})") from None
    return state_from_json(doc, str(p))


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


def load_host(path: str | os.PathLike[str]) -> Host:
    """The host saved at ``path`` (a fresh one if there is no file)."""
    return load_state(path).host


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar file :func:`locked_state` locks: ``<path>.lock``."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


@contextlib.contextmanager
def locked_state(path: str | os.PathLike[str], *, write: bool = True) -> Iterator[SimState]:
    """Load the state under a lock, yield it, and save it when the block ends without an exception.

    ``write=False`` takes a shared lock and never saves (for commands that
    only read).  The lock is an ``fcntl.flock`` on ``<path>.lock``, so
    concurrent invocations (processes or threads with their own file
    descriptors) run one load-modify-save after the other.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(p), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        state = load_state(p)
        yield state
        if write:
            save_state(state, p)
    finally:
        os.close(fd)
