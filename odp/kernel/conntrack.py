"""Listing and flushing the kernel's connections through ctnetlink (pyroute2's NFCTSocket).

Conntrack is per network namespace, not per datapath: these act on the
namespace the backend runs in.  Zones are filtered here (a dump returns every
zone; a zone flush deletes each of the zone's connections by its original
tuple), which works on every kernel whatever its ctnetlink filter support.
"""

from __future__ import annotations

import socket
from typing import Any

from pyroute2 import NFCTSocket
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from odp.records import TCP_STATE_NAMES, ConntrackEntry, CtTuple

__all__ = ["conntrack_dump", "conntrack_flush"]

_IPS_SEEN_REPLY = 1 << 1
_IPS_ASSURED = 1 << 2
_FAMILIES = {socket.AF_INET: 4, socket.AF_INET6: 6}


def _tuple(nla: Any, family: int) -> CtTuple:
    ip = nla.get_attr("CTA_TUPLE_IP")
    proto = nla.get_attr("CTA_TUPLE_PROTO")
    v = "V4" if family == 4 else "V6"
    num = proto.get_attr("CTA_PROTO_NUM")
    icmp = "CTA_PROTO_ICMP" if family == 4 else "CTA_PROTO_ICMPV6"
    return CtTuple(
        src=str(ip.get_attr(f"CTA_IP_{v}_SRC")),
        dst=str(ip.get_attr(f"CTA_IP_{v}_DST")),
        proto=num,
        src_port=proto.get_attr("CTA_PROTO_SRC_PORT") or 0,
        dst_port=proto.get_attr("CTA_PROTO_DST_PORT") or 0,
        icmp_id=proto.get_attr(f"{icmp}_ID") or 0,
        icmp_type=proto.get_attr(f"{icmp}_TYPE") or 0,
        icmp_code=proto.get_attr(f"{icmp}_CODE") or 0,
    )


def _entry(msg: Any) -> ConntrackEntry | None:
    family = _FAMILIES.get(msg["nfgen_family"])
    if family is None:
        return None
    status = msg.get_attr("CTA_STATUS") or 0
    tcp_state = None
    info = msg.get_attr("CTA_PROTOINFO")
    if info is not None:
        tcp = info.get_attr("CTA_PROTOINFO_TCP")
        if tcp is not None:
            state = tcp.get_attr("CTA_PROTOINFO_TCP_STATE")
            tcp_state = TCP_STATE_NAMES[state] if state is not None and state < len(TCP_STATE_NAMES) else None
    labels = msg.get_attr("CTA_LABELS")
    return ConntrackEntry(
        family=family,
        orig=_tuple(msg.get_attr("CTA_TUPLE_ORIG"), family),
        reply=_tuple(msg.get_attr("CTA_TUPLE_REPLY"), family),
        zone=msg.get_attr("CTA_ZONE") or 0,
        mark=msg.get_attr("CTA_MARK") or 0,
        labels=_labels(labels),
        timeout=msg.get_attr("CTA_TIMEOUT") or 0,
        tcp_state=tcp_state,
        seen_reply=bool(status & _IPS_SEEN_REPLY),
        assured=bool(status & _IPS_ASSURED),
    )


def _labels(value: Any) -> int:
    """CTA_LABELS as the big-endian int of its 16 bytes (pyroute2 decodes them as two
    native-endian u64s, low one first: that is the little-endian int of the bytes)."""
    if hasattr(value, "get") and not isinstance(value, int):
        value = value.get("value")
    if isinstance(value, tuple):
        value = (value[0] & 0xFFFFFFFFFFFFFFFF) | (value[1] << 64)
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    if isinstance(value, int):
        return int.from_bytes(value.to_bytes(16, "little"), "big")
    return 0


def conntrack_dump(zone: int | None = None) -> list[ConntrackEntry]:
    sock = NFCTSocket(nfgen_family=socket.AF_UNSPEC)
    try:
        entries = [e for e in map(_entry, sock.dump()) if e is not None]
    finally:
        sock.close()
    return [e for e in entries if zone is None or e.zone == zone]


def conntrack_flush(zone: int | None = None) -> None:
    if zone is None:
        sock = NFCTSocket(nfgen_family=socket.AF_UNSPEC)
        try:
            sock.flush()
        finally:
            sock.close()
        return
    for e in conntrack_dump(zone):
        af = socket.AF_INET if e.family == 4 else socket.AF_INET6
        t = e.orig
        icmp = t.proto == (1 if e.family == 4 else 58)
        orig = NFCTAttrTuple(
            family=af,
            saddr=t.src,
            daddr=t.dst,
            proto=t.proto,
            sport=None if icmp else t.src_port,
            dport=None if icmp else t.dst_port,
            icmp_id=t.icmp_id if icmp else None,
            icmp_type=t.icmp_type if icmp else None,
            icmp_code=t.icmp_code if icmp else None,
        )
        sock = NFCTSocket(nfgen_family=af)
        try:
            sock.entry("del", tuple_orig=orig, zone=zone)
        except Exception as exc:
            if getattr(exc, "code", None) != 2:  # ENOENT
                raise
        finally:
            sock.close()
