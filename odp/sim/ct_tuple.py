"""Conntrack tuples: a packet's tuple and its inverse (nf_conntrack_core.c's
``nf_ct_get_tuple()`` / ``get_l4proto()`` and ``nf_ct_invert_tuple()`` with the
per-protocol ``invert_tuple`` of nf_conntrack_proto_icmp{,v6}.c).

Shared by conntrack (odp.sim.conntrack) and NAT (odp.sim.nat), which both
read and build tuples.
"""

from __future__ import annotations

import struct

_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_VLAN_TPID_BYTES = (b"\x81\x00", b"\x88\xa8")
_TCP, _UDP, _ICMP, _ICMPV6 = 6, 17, 1, 58
#: ICMP type -> the type of its answer (invmap of nf_conntrack_proto_icmp.c).
_ICMP_INVMAP = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
_ICMPV6_INVMAP = {128: 129, 129: 128, 139: 140, 140: 139}

#: A tuple: (src, dst, proto, a, b): a/b are the ports (TCP/UDP), the ICMP id and
#: ``type << 8 | code`` (ICMP), 0 and 0 (generic).
Tuple = tuple[int, int, int, int, int]


class _L3:
    """What conntrack reads of a packet: offsets, addresses, protocol."""

    __slots__ = ("dataoff", "dst", "end", "family", "later_frag", "nh", "proto", "src")

    def __init__(self, family: int, nh: int, src: int, dst: int, proto: int, dataoff: int, end: int, later: bool):
        self.family = family
        self.nh = nh
        self.src = src
        self.dst = dst
        self.proto = proto
        self.dataoff = dataoff
        self.end = end
        self.later_frag = later


#: version/IHL, total length, fragment offset, protocol, addresses.
_IPV4 = struct.Struct("!BxH2xH1xB2xII")


def _parse_l3(frame: bytes, nh: int, eth_type: int) -> _L3 | None:
    """The IPv4/IPv6 header at ``nh`` (get_l4proto()); None if unusable."""
    if eth_type == _ETH_P_IP:
        if len(frame) < nh + 20:
            return None
        vihl, tot, frag, proto, src, dst = _IPV4.unpack_from(frame, nh)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or tot < ihl or len(frame) < nh + tot:
            return None
        return _L3(4, nh, src, dst, proto, nh + ihl, nh + tot, bool(frag & 0x1FFF))
    if eth_type == _ETH_P_IPV6:
        if len(frame) < nh + 40:
            return None
        end = nh + 40 + int.from_bytes(frame[nh + 4 : nh + 6], "big")
        if len(frame) < end:
            return None
        return _ipv6(frame, nh, end)
    return None


def _skip_exthdrs(frame: bytes, nexthdr: int, off: int, end: int) -> tuple[int, int, bool] | None:
    """ipv6_skip_exthdr(): the upper-layer protocol, its offset, and whether a
    fragment header says this is not the first fragment; None when cut short."""
    later = False
    while nexthdr in (0, 43, 44, 51, 60):
        if off + 8 > end:
            return None
        if nexthdr == 44:
            later = later or bool(int.from_bytes(frame[off + 2 : off + 4], "big") & 0xFFF8)
            hdrlen = 8
        elif nexthdr == 51:
            hdrlen = (frame[off + 1] + 2) * 4
        else:
            hdrlen = (frame[off + 1] + 1) * 8
        nexthdr = frame[off]
        off += hdrlen
    if off > end:
        return None
    return nexthdr, off, later


def _ipv6(frame: bytes, nh: int, end: int) -> _L3 | None:
    """The IPv6 header at ``nh`` of a packet (or the part of one an ICMPv6 error
    carries) ending at ``end``."""
    skipped = _skip_exthdrs(frame, frame[nh + 6], nh + 40, end)
    if skipped is None:
        return None
    nexthdr, off, later = skipped
    src = int.from_bytes(frame[nh + 8 : nh + 24], "big")
    return _L3(6, nh, src, int.from_bytes(frame[nh + 24 : nh + 40], "big"), nexthdr, off, end, later)


def _network_offset(frame: bytes) -> int:
    nh = 14
    while frame[nh - 2 : nh] in _VLAN_TPID_BYTES and len(frame) >= nh + 4:
        nh += 4
    return nh


def _pkt_to_tuple(frame: bytes, p: _L3, dataoff: int, proto: int) -> Tuple | None:
    """nf_ct_get_tuple(): None when the L4 header is cut short."""
    if proto in (_TCP, _UDP, 132, 33, 136):  # ports (TCP, UDP, SCTP, DCCP, UDP-Lite)
        if p.end < dataoff + 4:
            return None
        sport = int.from_bytes(frame[dataoff : dataoff + 2], "big")
        dport = int.from_bytes(frame[dataoff + 2 : dataoff + 4], "big")
        if proto in (_TCP, _UDP):
            return (p.src, p.dst, proto, sport, dport)
        return (p.src, p.dst, proto, 0, 0)  # generic tracker in the simulator
    if (proto == _ICMP and p.family == 4) or (proto == _ICMPV6 and p.family == 6):
        if p.end < dataoff + 8:
            return None
        icmp_id = int.from_bytes(frame[dataoff + 4 : dataoff + 6], "big")
        return (p.src, p.dst, proto, icmp_id, frame[dataoff] << 8 | frame[dataoff + 1])
    return (p.src, p.dst, proto, 0, 0)


def _invert(t: Tuple, family: int) -> Tuple | None:
    """nf_ct_invert_tuple(); None for ICMP types without an answer."""
    src, dst, proto, a, b = t
    if (proto == _ICMP and family == 4) or (proto == _ICMPV6 and family == 6):
        inv = (_ICMP_INVMAP if proto == _ICMP else _ICMPV6_INVMAP).get(b >> 8)
        if inv is None:
            return None
        return (dst, src, proto, a, inv << 8 | (b & 0xFF))
    return (dst, src, proto, b, a)
