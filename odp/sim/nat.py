"""NAT for ``ct(nat...)``: conntrack.c's ovs_ct_nat() over netfilter's nf_nat_core.c (Linux 6.1).

A connection is NATed once, when it is set up (``nf_nat_setup_info()``: only
while unconfirmed, i.e. by the ``ct(commit,nat(...))`` that creates it): the
new tuple is chosen (``get_unique_tuple()``) and the connection's reply tuple
becomes its inverse, so that replies find the connection; ``IPS_SRC_NAT`` /
``IPS_DST_NAT`` record that the tuple changed, ``*_NAT_DONE`` that the
manipulation was set up.  Every packet of the connection then goes through
``nf_nat_packet()``: the original direction gets the new addresses/ports,
the reply direction the original ones back (IPv4 header checksum, TCP/UDP
checksum incl. the pseudo-header, ICMP echo id; a zero UDP checksum stays
zero).  ``ovs_nat_update_key()`` writes the packet's new addresses and
ports into the flow key and sets +snat/+dnat.

Choices follow the kernel: an address range picks its address with
``find_best_ips_proto()``'s jhash2 of the source address (and, unless
``persistent``, the destination address and zone); a source NAT first keeps
the original tuple if it is in range and unused, or reuses the mapping of an
earlier connection from the same source (``find_appropriate_src()``); ports
stay when in range (and unique, for a range of more than one port), else
``nf_nat_l4proto_unique_tuple()`` searches the range from a random offset
(``get_random_u16()`` in the kernel: the host's seeded generator here, so the
port chosen in a clash differs from the kernel's though it obeys the same
rules).  ``hash``/``random`` (NF_NAT_RANGE_PROTO_RANDOM_ALL) always search.

ICMPv4 errors related to a NATed connection get their embedded header
translated back and their outer header made a reply
(``nf_nat_icmp_reply_translation()``).  **Limitation**: ICMPv6 errors about a
NATed connection are left as they are (``nf_nat_icmpv6_reply_translation()``
is not transcribed).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from odp.actions import Nat
from odp.sim.ct_tuple import _ICMP, _ICMPV6, _TCP, _UDP, _invert, _parse_l3
from odp.sim.packet import checksum, csum_replace, jhash2

if TYPE_CHECKING:
    from odp.sim.conntrack import Conn, ConntrackTable
    from odp.sim.ct_tuple import Tuple

__all__ = ["IPS_DST_NAT", "IPS_DST_NAT_DONE", "IPS_SRC_NAT", "IPS_SRC_NAT_DONE", "MANIP_DST", "MANIP_SRC"]

MANIP_SRC, MANIP_DST = 0, 1
IPS_SRC_NAT, IPS_DST_NAT = 0x10, 0x20
IPS_SRC_NAT_DONE, IPS_DST_NAT_DONE = 0x80, 0x100
IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT
_PORTS = (6, 17, 132, 33, 136)  # protocols whose tuple part is ports (l4proto_in_range())


class Range:
    """struct nf_nat_range2 as parse_nat() fills it."""

    __slots__ = ("map_ips", "max_addr", "max_proto", "min_addr", "min_proto", "persistent", "proto", "random_all")

    def __init__(self, nat: Nat | None, *, addr: int | None = None) -> None:
        if nat is None:  # a null binding: this address, any port
            self.map_ips, self.min_addr, self.max_addr = True, addr or 0, addr or 0
            self.proto, self.min_proto, self.max_proto = False, 0, 0
            self.persistent = self.random_all = False
            return
        self.map_ips = nat.ip_min is not None
        self.min_addr = nat.ip_min or 0
        self.max_addr = nat.ip_max if nat.ip_max is not None else self.min_addr
        self.proto = nat.proto_min is not None
        self.min_proto = nat.proto_min or 0
        self.max_proto = nat.proto_max if nat.proto_max is not None else self.min_proto
        self.persistent = nat.persistent
        self.random_all = nat.proto_hash or nat.proto_random


def _words(addr: int, family: int) -> list[int]:
    """union nf_inet_addr as the u32 words the CPU (little-endian x86) reads."""
    raw = addr.to_bytes(4, "big") + bytes(12) if family == 4 else addr.to_bytes(16, "big")
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 16, 4)]


class Nat44:
    """nf_nat_core for one conntrack table."""

    def __init__(self, table: ConntrackTable, rng: random.Random) -> None:
        self.table = table
        self.rng = rng

    # -- tuples -----------------------------------------------------------------
    def used(self, t: Tuple, ct: Conn, now: int) -> bool:
        """nf_nat_used_tuple(): is the reply of ``t`` some other connection's tuple?"""
        reply = _invert(t, ct.family)
        if reply is None:
            return False
        h = self.table.find(ct.zone, ct.family, reply, now)
        return h is not None and h[0] is not ct

    @staticmethod
    def in_range(t: Tuple, r: Range) -> bool:
        """nf_in_range() (the source side)."""
        if r.map_ips and not r.min_addr <= t[0] <= r.max_addr:
            return False
        return not r.proto or _l4_in_range(t, MANIP_SRC, r)

    def find_best_ips(self, t: Tuple, r: Range, ct: Conn, manip: int) -> Tuple:
        if not r.map_ips:
            return t
        src, dst, proto, a, b = t
        if r.min_addr == r.max_addr:
            chosen = r.min_addr
        else:
            fam = ct.family
            n = 1 if fam == 4 else 4
            dwords = _words(dst, fam)
            j = jhash2(_words(src, fam), 0 if r.persistent else (dwords[n - 1] ^ ct.zone))
            mins, maxs = _be_words(r.min_addr, fam), _be_words(r.max_addr, fam)
            out = []
            full = False
            for i in range(n):
                if not full:
                    minip, dist = mins[i], (maxs[i] - mins[i] + 1) & 0xFFFFFFFF
                else:
                    minip, dist = 0, 0xFFFFFFFF
                word = (minip + ((j * dist) >> 32)) & 0xFFFFFFFF  # reciprocal_scale()
                out.append(word)
                if word != maxs[i]:
                    full = True
                if not r.persistent:
                    j ^= dwords[i]
            chosen = 0
            for w in out:
                chosen = chosen << 32 | w
        return (chosen, dst, proto, a, b) if manip == MANIP_SRC else (src, chosen, proto, a, b)

    def find_appropriate_src(self, t: Tuple, r: Range, ct: Conn, now: int) -> Tuple | None:
        """An earlier source-NATed connection from the same source: its mapping."""
        for other in self.table.connections(ct.zone):
            o = other.orig
            if other.family != ct.family or not other.status & IPS_SRC_NAT_DONE:
                continue
            if o[2] == t[2] and o[0] == t[0] and o[3] == t[3]:
                inv = _invert(other.reply, ct.family)
                if inv is None:
                    continue
                result = (inv[0], t[1], inv[2], inv[3], t[4])
                if self.in_range(result, r):
                    return result
        return None

    def unique_tuple(self, t: Tuple, r: Range, ct: Conn, manip: int, now: int) -> Tuple:
        """get_unique_tuple()."""
        if manip == MANIP_SRC and not r.random_all:
            if self.in_range(t, r):
                if not self.used(t, ct, now):
                    return t
            else:
                found = self.find_appropriate_src(t, r, ct, now)
                if found is not None and not self.used(found, ct, now):
                    return found
        t = self.find_best_ips(t, r, ct, manip)
        if not r.random_all:
            if r.proto:
                if _l4_in_range(t, manip, r) and (r.min_proto == r.max_proto or not self.used(t, ct, now)):
                    return t
            elif not self.used(t, ct, now):
                return t
        return self.l4proto_unique_tuple(t, r, ct, manip, now)

    def l4proto_unique_tuple(self, t: Tuple, r: Range, ct: Conn, manip: int, now: int) -> Tuple:
        src, dst, proto, a, b = t
        icmp = proto == (_ICMP if ct.family == 4 else _ICMPV6)
        if icmp:
            which = 0  # the id, both directions
            lo, size = (r.min_proto, r.max_proto - r.min_proto + 1) if r.proto else (0, 65536)
        elif proto in _PORTS:
            which = 0 if manip == MANIP_SRC else 1
            if not r.proto:
                if manip == MANIP_DST:
                    return t  # a destination rewrite cannot change the port
                port = a if which == 0 else b
                lo, size = (1, 511) if port < 512 else (600, 424) if port < 1024 else (1024, 64512)
            else:
                lo, hi = sorted((r.min_proto, r.max_proto))
                size = hi - lo + 1
        else:
            return t
        off = self.rng.randrange(65536)
        attempts = min(size, 128)
        while True:
            for _ in range(attempts):
                port = lo + off % size
                off = (off + 1) & 0xFFFF
                cand = (src, dst, proto, port, b) if which == 0 else (src, dst, proto, a, port)
                if not self.used(cand, ct, now):
                    return cand
            if attempts >= size or attempts < 16:
                return cand
            attempts //= 2
            off = self.rng.randrange(65536)

    # -- nf_nat_setup_info ---------------------------------------------------------
    def setup_info(self, ct: Conn, r: Range, manip: int, now: int) -> None:
        if ct.confirmed:
            return
        curr = _invert(ct.reply, ct.family)
        assert curr is not None
        new = self.unique_tuple(curr, r, ct, manip, now)
        if new != curr:
            reply = _invert(new, ct.family)
            assert reply is not None
            ct.reply = reply
            ct.status |= IPS_SRC_NAT if manip == MANIP_SRC else IPS_DST_NAT
        ct.status |= IPS_SRC_NAT_DONE if manip == MANIP_SRC else IPS_DST_NAT_DONE

    def null_binding(self, ct: Conn, manip: int, now: int) -> None:
        addr = ct.reply[1] if manip == MANIP_SRC else ct.reply[0]
        self.setup_info(ct, Range(None, addr=addr), manip, now)


def _be_words(addr: int, family: int) -> list[int]:
    raw = addr.to_bytes(4 if family == 4 else 16, "big")
    return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]


def _l4_in_range(t: Tuple, manip: int, r: Range) -> bool:
    """l4proto_in_range()."""
    proto = t[2]
    if proto in (_ICMP, _ICMPV6):
        return r.min_proto <= t[3] <= r.max_proto
    if proto in _PORTS:
        port = t[3] if manip == MANIP_SRC else t[4]
        return r.min_proto <= port <= r.max_proto
    return True


def manip_pkt(frame: bytes, nh: int, family: int, target: Tuple, manip: int) -> bytes:
    """nf_nat_ipv4/ipv6_manip_pkt(): rewrite the source (MANIP_SRC) or destination
    address and port (ICMP echo: id) of the IP header at ``nh`` to ``target``'s;
    the L4 part is chosen by the target's protocol (l4proto_manip_pkt()) and may
    be cut short (the header inside an ICMP error: ports only, no checksum)."""
    f = bytearray(frame)
    end = len(f)
    if family == 4:
        l4 = nh + (f[nh] & 0x0F) * 4
        aoff = nh + (12 if manip == MANIP_SRC else 16)
        alen = 4
    else:
        p = _parse_l3(frame, nh, 0x86DD)
        l4 = p.dataoff if p is not None else nh + 40
        aoff = nh + (8 if manip == MANIP_SRC else 24)
        alen = 16
    new_addr = (target[0] if manip == MANIP_SRC else target[1]).to_bytes(alen, "big")
    old_addr = bytes(f[aoff : aoff + alen])
    proto = target[2]
    if proto in (_TCP, _UDP):
        if end < l4 + 8:
            return frame  # skb_ensure_writable() fails: NF_DROP in the kernel, rare enough to keep
        poff = l4 + (0 if manip == MANIP_SRC else 2)
        new_port = (target[3] if manip == MANIP_SRC else target[4]).to_bytes(2, "big")
        old_port = bytes(f[poff : poff + 2])
        f[poff : poff + 2] = new_port
        coff = l4 + (16 if proto == _TCP else 6)
        check = int.from_bytes(f[coff : coff + 2], "big")
        if proto == _TCP and end >= l4 + 20:
            check = csum_replace(check, old_addr + old_port, new_addr + new_port)
            f[coff : coff + 2] = check.to_bytes(2, "big")
        elif proto == _UDP and check:
            check = csum_replace(check, old_addr + old_port, new_addr + new_port) or 0xFFFF  # CSUM_MANGLED_0
            f[coff : coff + 2] = check.to_bytes(2, "big")
    elif proto == _ICMP and end >= l4 + 8:
        if f[l4] in (0, 8, 13, 14, 15, 16, 17, 18):  # echo-like: the id is the tuple's
            check = int.from_bytes(f[l4 + 2 : l4 + 4], "big")
            new_id = target[3].to_bytes(2, "big")
            f[l4 + 2 : l4 + 4] = csum_replace(check, bytes(f[l4 + 4 : l4 + 6]), new_id).to_bytes(2, "big")
            f[l4 + 4 : l4 + 6] = new_id
    elif proto == _ICMPV6 and end >= l4 + 8:
        check = csum_replace(int.from_bytes(f[l4 + 2 : l4 + 4], "big"), old_addr, new_addr)
        if f[l4] in (128, 129):
            new_id = target[3].to_bytes(2, "big")
            check = csum_replace(check, bytes(f[l4 + 4 : l4 + 6]), new_id)
            f[l4 + 4 : l4 + 6] = new_id
        f[l4 + 2 : l4 + 4] = check.to_bytes(2, "big")
    if family == 4:
        check = int.from_bytes(f[nh + 10 : nh + 12], "big")
        f[nh + 10 : nh + 12] = csum_replace(check, old_addr, new_addr).to_bytes(2, "big")
    f[aoff : aoff + alen] = new_addr
    return bytes(f)


def icmp_reply_translation(frame: bytes, nh: int, l4: int, ct: Conn, reply_dir: bool, manip: int) -> bytes | None:
    """nf_nat_icmp_reply_translation(): an ICMPv4 error about a NATed connection gets
    the header inside translated back and the outer header made a reply; None: drop."""
    if len(frame) < l4 + 8 + 20 or checksum(frame[l4:]):
        return None  # not writable, or a bad ICMP checksum (nf_ip_checksum())
    if frame[l4] == 5:  # redirect
        if ct.status & (IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE) != IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE:
            return None
        if ct.status & IPS_NAT_MASK:
            return None
    statusbit = IPS_SRC_NAT if manip == MANIP_SRC else IPS_DST_NAT
    if reply_dir:
        statusbit ^= IPS_NAT_MASK
    if not ct.status & statusbit:
        return frame
    other = ct.orig if reply_dir else ct.reply  # tuplehash[!dir]
    frame = manip_pkt(frame, l4 + 8, 4, other, MANIP_DST if manip == MANIP_SRC else MANIP_SRC)
    f = bytearray(frame)
    f[l4 + 2 : l4 + 4] = b"\x00\x00"
    f[l4 + 2 : l4 + 4] = checksum(bytes(f[l4:])).to_bytes(2, "big")
    target = _invert(other, ct.family)
    if target is None:
        return bytes(f)
    return manip_pkt(bytes(f), nh, 4, (target[0], target[1], _ICMP, 0, 0), manip)
