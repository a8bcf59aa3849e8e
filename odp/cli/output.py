"""Output: JSON views of datapaths, vports and flows, UFIDs, packets (parsing, summaries) and pcap."""

from __future__ import annotations

import re
import struct
import uuid
from typing import TYPE_CHECKING, Any

from odp.cli.base import CommandError
from odp.records import DatapathInfo, Flow, VportInfo
from odp.text import format_actions, format_flow_line, format_match

if TYPE_CHECKING:
    pass

# ===========================================================================
# JSON views
# ===========================================================================


def _dp_json(info: DatapathInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "ifindex": info.ifindex,
        "features": info.features,
        "masks_cache_size": info.masks_cache_size,
        "stats": {
            "hit": info.stats.hit,
            "missed": info.stats.missed,
            "lost": info.stats.lost,
            "flows": info.stats.flows,
        },
        "megaflow": {
            "mask_hit": info.megaflow.mask_hit,
            "masks": info.megaflow.masks,
            "cache_hit": info.megaflow.cache_hit,
        },
    }


def _vport_json(dp_name: str, v: VportInfo) -> dict[str, Any]:
    s = v.stats
    return {
        "datapath": dp_name,
        "port_no": v.port_no,
        "name": v.name,
        "type": v.kind.value,
        "dst_port": v.dst_port,
        **({"extensions": list(v.extensions)} if v.extensions else {}),
        "upcall_pids": list(v.upcall_pids),
        "ifindex": v.ifindex,
        "stats": {
            "rx_packets": s.rx_packets,
            "tx_packets": s.tx_packets,
            "rx_bytes": s.rx_bytes,
            "tx_bytes": s.tx_bytes,
            "rx_errors": s.rx_errors,
            "tx_errors": s.tx_errors,
            "rx_dropped": s.rx_dropped,
            "tx_dropped": s.tx_dropped,
        },
    }


def ufid_to_uuid(ufid: bytes) -> uuid.UUID | None:
    """A 16-byte UFID as the UUID ovs-dpctl prints (``ufid:<uuid>``): four host-order u32 words."""
    if len(ufid) != 16:
        return None
    w = struct.unpack("=4I", ufid)
    return uuid.UUID(int=(w[0] << 96) | (w[1] << 64) | (w[2] << 32) | w[3])


def ufid_from_text(text: str) -> bytes:
    """``[ufid:]<uuid>`` (or 32 hex digits) as UFID bytes (the inverse of :func:`ufid_to_uuid`)."""
    t = text.strip()
    if t.startswith("ufid:"):
        t = t[5:]
    try:
        u = uuid.UUID(t)
    except ValueError:
        raise CommandError(f"UFID {text!r}: expected a UUID (8-4-4-4-12 hex digits) or 32 hex digits") from None
    n = u.int
    return struct.pack("=4I", n >> 96, (n >> 64) & 0xFFFFFFFF, (n >> 32) & 0xFFFFFFFF, n & 0xFFFFFFFF)


def _ufid_text(ufid: bytes | None) -> str | None:
    if ufid is None:
        return None
    u = ufid_to_uuid(ufid)
    return str(u) if u is not None else ufid.hex()


def _flow_line(flow: Flow, names: dict[int, str] | None, with_ufid: bool = False, *, more: bool = False) -> str:
    line = flow.to_line()
    text = format_flow_line(line, names)
    if more and flow.match is not None:
        # -m: the fully wildcarded attributes too (ipv4() after eth_type(0x0800)), as the state keeps them.
        from odp.sim.state import match_text

        head = format_match(flow.match, names)
        if text.startswith(head):
            text = match_text(flow.match) + text[len(head) :]
    if with_ufid and flow.ufid is not None:
        text = f"ufid:{_ufid_text(flow.ufid)}, {text}"
    return text


def _flow_json(flow: Flow, names: dict[int, str] | None = None) -> dict[str, Any]:
    line = flow.to_line()
    return {
        # exact: a script reads back the values ("line" is ovs-dpctl's text, which rounds a few)
        "match": None if flow.match is None else format_match(flow.match, names, exact=True),
        "actions": None if flow.actions is None else format_actions(flow.actions, names, exact=True),
        "ufid": _ufid_text(flow.ufid),
        "packets": flow.stats.packets,
        "bytes": flow.stats.bytes,
        "used": line.used,
        "tcp_flags": flow.tcp_flags,
        "line": format_flow_line(line, names),
    }


# ===========================================================================
# Packets: parsing, summaries, pcap
# ===========================================================================

_HEX_PACKET = re.compile(r"(0x)?[0-9a-fA-F][0-9a-fA-F:\s]*")


def _scapy_layers() -> dict[str, Any]:
    from scapy.layers import all as layers
    from scapy.packet import Packet

    return {k: v for k, v in vars(layers).items() if isinstance(v, type) and issubclass(v, Packet)}


def parse_packet(text: str) -> bytes:
    """PACKET: hex bytes (``0x`` prefix, ``:`` and blanks allowed) or a scapy expression.

    The expression is evaluated with scapy's layer classes as the only names
    (no builtins): ``Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/UDP(dport=53)``.
    It runs with the caller's privileges like any command line argument; it
    is not a sandbox.
    """
    t = text.strip()
    if _HEX_PACKET.fullmatch(t):
        digits = re.sub(r"[:\s]", "", t[2:] if t[:2].lower() == "0x" else t)
        if len(digits) % 2:
            raise CommandError(f"packet {text!r}: an odd number of hex digits")
        return bytes.fromhex(digits)
    try:
        value = eval(t, {"__builtins__": {}}, _scapy_layers())  # documented: PACKET may be a scapy expression
    except Exception as exc:  # a user expression may fail any way
        raise CommandError(f"packet {text!r}: neither hex bytes nor a scapy expression ({exc})") from None
    from scapy.packet import Packet

    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Packet):
        return bytes(value)
    raise CommandError(f"packet {text!r}: the expression gives {type(value).__name__}, not a packet")


def _summary(frame: bytes) -> str:
    try:
        import scapy.layers.all  # noqa: F401 - binds every layer, so summaries decode IP, UDP ...
        from scapy.layers.l2 import Ether

        return str(Ether(frame).summary())
    except Exception:  # scapy missing or confused: the length is still useful
        return f"{len(frame)} bytes"


def write_pcap_header(f: Any, snaplen: int = 262144) -> None:
    """The classic pcap global header (microsecond timestamps, Ethernet link type)."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))


def write_pcap_record(f: Any, frame: bytes, when: float, orig_len: int | None = None) -> None:
    sec = int(when)
    usec = round((when - sec) * 1_000_000)
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    f.write(struct.pack("<IIII", sec, usec, len(frame), max(orig_len or 0, len(frame))) + frame)
