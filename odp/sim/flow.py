"""Packet bytes -> flow key: the simulator's counterpart of ``net/openvswitch/flow.c``.

:func:`extract` does what the kernel's ``key_extract()`` / ``key_extract_l3l4()``
do for an Ethernet frame (``mac_proto`` Ethernet) and returns the flat
:mod:`odp.validate.swkey` int plus the header offsets the kernel leaves in the skb.

The kernel source is the specification; the rules reproduced here, with the
kernel function that implements each:

* ``parse_vlan``/``parse_vlan_tag``: 0x8100 and 0x88a8 are tags; at most two
  are parsed (outer in ``vlan_*``, inner in ``cvlan_*``), the TCI is stored
  with 0x1000 (CFI) forced on.  A tag is parsed only if 4 bytes of tag plus a
  2-byte ethertype follow the MAC addresses; otherwise the TPID itself
  becomes ``eth_type`` and the TCI stays 0.
* ``parse_ethertype``: an ethertype below 0x600 is an 802.3 length; LLC/SNAP
  (AA AA xx 00 00 00) with a SNAP type >= 0x600 gives that type and the
  network header starts after the SNAP header, anything else is
  ``ETH_P_802_2`` (0x0004).
* IPv4 (``check_iphdr``): at least 20 bytes, IHL*4 >= 20 and the whole IHL
  present, nothing else (not version, not tot_len, not the checksum).  A bad
  header zeroes the IP fields and stops.  Offset != 0: frag=later, no L4.
  MF: frag=first and L4 parsed.
* L4 (``tcphdr_ok`` ...): TCP needs 20 bytes and 5 <= doff with doff*4 bytes
  present; UDP 8, SCTP 12, ICMP 8, ICMPv6 8 bytes; otherwise ports, type and
  code are zero.  TCP flags are the low 12 bits of the doff/flags word.
* IPv6 (``parse_ipv6hdr``, ``ipv6_find_hdr``, ``get_ipv6_ext_hdrs``): needs 40
  bytes, else IP fields and addresses are zero.  The extension chain (HBH,
  routing, fragment, AH, dest opts) is walked; any fragment header with
  offset 0 (atomic fragments included) gives frag=first and L4 is parsed; a
  later fragment gives proto=44, frag=later, no L4; a chain that runs off the
  frame (a header cut short, even a fragment header whose offset is there:
  frag=first then), or a later fragment followed by another extension header, keeps
  addresses, label, tclass and hlimit but leaves proto=59 (NEXTHDR_NONE) and
  no L4.  ``ipv6_exthdrs`` gets the OFPIEH12_* summary of the chain.
* ND (``parse_icmpv6``): only for type 135/136 with code 0 and 24 bytes of
  ICMPv6; 8-byte SLL (1) / TLL (2) options are stored; a repeated option
  zeroes target, SLL and TLL; a zero or overrunning option length stops the
  walk and keeps what was found so far.
* ARP/RARP: 28 bytes, hrd=1, pro=0x0800, hln=6, pln=4, else all zero; the
  opcode is kept only if <= 0xff.  (The kernel keeps op in ``ip.proto``;
  swkey has ``arp_op``.  SPA/TPA go in ``ipv4_src``/``ipv4_dst``.)
* MPLS: LSEs up to the bottom of stack, the first three stored; the count is
  min(labels, 3), and 0 when the frame ends before the bottom of stack (the
  kernel returns before setting ``num_labels_mask``).  Nothing below MPLS is
  parsed.
* NSH (``parse_nsh``): the base header's flags, ttl, MD type, next protocol
  and service path word, and for MD type 1 the four context words (MD type 2
  leaves them zero).  An NSH header the kernel rejects (short,
  version != 0, MD type other than 1/2, MD1 length != 24) makes the whole key
  extraction fail, and then the kernel drops the packet (EINVAL for EXECUTE):
  :func:`extract` returns None, as for frames shorter than 14 bytes.

Offsets are into the frame as given (VLAN tags inline).  Note that the kernel
moves the *outer* tag out of the packet data into the skb's hardware
accelerated tag during extraction, so its ``skb->mac_len`` is 4 bytes shorter
than ours for tagged frames.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from odp.validate import swkey

__all__ = ["Extracted", "Frame", "extract"]

#: What :func:`extract` reads: any bytes-like object of unsigned bytes.
Frame = bytes | bytearray | memoryview

_new = tuple.__new__


class Extracted(NamedTuple):
    """A packet's flow key and the header offsets the kernel leaves in its skb.

    Immutable, with named fields.  (A ``NamedTuple`` rather than a frozen
    dataclass: building a frozen slots dataclass costs ~1.5 us on CPython
    3.11, most of the whole extraction budget; a tuple costs ~0.25 us.)
    """

    #: swkey int: the caller's metadata OR'ed with every extracted packet field.
    key: int
    #: End of the L2 header (``skb->mac_len``): 14, +4 per parsed VLAN tag,
    #: +8 for an LLC/SNAP header that gave the ethertype.
    mac_len: int
    #: ``skb->network_header``: equals ``mac_len`` (the start of the L3 header,
    #: or of the MPLS label stack).  Never None for Ethernet frames.
    network_offset: int | None
    #: ``skb->transport_header`` for IPv4/IPv6: just past the IP header and its
    #: extension headers; equal to ``network_offset`` when the IP header is
    #: bad or the IPv6 chain is broken; None for non-IP frames and IPv6 later
    #: fragments (the kernel leaves it untouched there).
    transport_offset: int | None
    #: Bytes from ``transport_offset`` to the end of the frame (the kernel's
    #: ``skb->len - skb_transport_offset(skb)``); 0 when there is none.
    l4_len: int
    #: Length of the L4 header the kernel validated and read (TCP doff*4,
    #: UDP 8, SCTP 12, ICMP/ICMPv6 8); 0 when no L4 header was parsed.
    l4_hdr_len: int


# --------------------------------------------------------------------------
# Field positions, precomputed from the swkey layout.

_G = swkey.GEOMETRY


def _sh(name: str) -> int:
    return _G[name][0]


def _adjacent(upper: str, lower: str) -> None:
    """The fast paths read neighbouring fields in one go: check the layout still allows it."""
    shift, width = _G[lower]
    if _G[upper][0] != shift + width:
        raise ImportError(f"odp.sim.flow: swkey fields {upper} and {lower} are no longer adjacent")


# eth_dst is directly above eth_src; ipv4_src directly above ipv4_dst;
# ipv6_src above ipv6_dst; tp_src above tp_dst.  Everything from eth_dst down to
# ipv4_dst is built relative to ipv4_dst (a ~270-bit int) and shifted once.
for _upper, _lower in (
    ("eth_dst", "eth_src"),
    ("ipv4_src", "ipv4_dst"),
    ("ipv6_src", "ipv6_dst"),
    ("tp_src", "tp_dst"),
    ("nsh_c1", "nsh_c2"),
    ("nsh_c2", "nsh_c3"),
    ("nsh_c3", "nsh_c4"),
):
    _adjacent(_upper, _lower)
del _upper, _lower

_BASE = _sh("ipv4_dst")
_R_MACS = _sh("eth_src") - _BASE  # eth_dst:eth_src as one 96-bit value, as in the frame
_R_VLAN_TCI = _sh("vlan_tci") - _BASE
_R_VLAN_TPID = _sh("vlan_tpid") - _BASE
_R_CVLAN_TCI = _sh("cvlan_tci") - _BASE
_R_CVLAN_TPID = _sh("cvlan_tpid") - _BASE
_R_ETH_TYPE = _sh("eth_type") - _BASE
_R_IP_PROTO = _sh("ip_proto") - _BASE
_R_IP_TOS = _sh("ip_tos") - _BASE
_R_IP_TTL = _sh("ip_ttl") - _BASE
_R_IP_FRAG = _sh("ip_frag") - _BASE
# ipv4_src:ipv4_dst as one 64-bit value sits at relative shift 0.
_ETH_TYPE_IPV4 = 0x0800 << _R_ETH_TYPE

_SH_IPV6_ADDRS = _sh("ipv6_dst")  # ipv6_src:ipv6_dst as one 256-bit value
_SH_IPV6_LABEL = _sh("ipv6_label")
_SH_IPV6_EXTHDRS = _sh("ipv6_exthdrs")
_SH_ARP_OP = _sh("arp_op")
_SH_ARP_SHA = _sh("arp_sha")
_SH_ARP_THA = _sh("arp_tha")
_SH_ND_TARGET = _sh("nd_target")
_SH_ND_SLL = _sh("nd_sll")
_SH_ND_TLL = _sh("nd_tll")
_SH_MPLS_LABELS = _sh("mpls_labels")
_SH_MPLS_LSE = (_sh("mpls_lse0"), _sh("mpls_lse1"), _sh("mpls_lse2"))
_SH_TP_PORTS = _sh("tp_dst")  # tp_src:tp_dst as one 32-bit value
_SH_TP_SRC = _sh("tp_src")
_SH_TP_DST = _sh("tp_dst")
_SH_TCP_FLAGS = _sh("tcp_flags")
_SH_NSH_FLAGS = _sh("nsh_flags")
_SH_NSH_TTL = _sh("nsh_ttl")
_SH_NSH_MDTYPE = _sh("nsh_mdtype")
_SH_NSH_NP = _sh("nsh_np")
_SH_NSH_PATH_HDR = _sh("nsh_path_hdr")
_SH_NSH_C4 = _sh("nsh_c4")  # c1:c2:c3:c4 as one 128-bit value, as in the header

# --------------------------------------------------------------------------
# Header layouts.

#: Ethernet: dst:src as 64 + 32 bits, ethertype.
_ETH = struct.Struct("!QIH")
#: IPv4: version/IHL, TOS, (len, id), frag_off, TTL, protocol, (csum), src:dst.
_IPV4 = struct.Struct("!BB4xHBB2xQ")
#: TCP: src:dst ports, (seq, ack), doff/flags word.
_TCP = struct.Struct("!I8xH")
_U32 = struct.Struct("!I")
#: IPv6: version/tclass/label word, (payload length), next header, hop limit.
_IPV6 = struct.Struct("!I2xBB")
#: ARP for Ethernet/IPv4: hrd, pro, hln, pln, op, sha, spa, tha, tpa.
_ARP = struct.Struct("!HHBBH6sI6sI")
#: Fast path: Ethernet (dst:src as Q+I, type), IPv4 as above, TCP as above.
_FAST = struct.Struct(_ETH.format + _IPV4.format[1:] + _TCP.format[1:])

# Extension headers ipv6_find_hdr() walks through (ipv6_ext_hdr() minus NONE).
_IPV6_EXT = frozenset((0, 43, 44, 51, 60))
# What get_ipv6_ext_hdrs() looks at (ipv6_ext_hdr(): the above plus NONE).
_IPV6_EXT_OR_NONE = frozenset((0, 43, 44, 51, 59, 60))

# OFPIEH12_* bits of the ipv6_exthdrs field.
EXTHDR_NONEXT = 1 << 0
EXTHDR_ESP = 1 << 1
EXTHDR_AUTH = 1 << 2
EXTHDR_DEST = 1 << 3
EXTHDR_FRAG = 1 << 4
EXTHDR_ROUTER = 1 << 5
EXTHDR_HOP = 1 << 6
EXTHDR_UNREP = 1 << 7
EXTHDR_UNSEQ = 1 << 8


def extract(frame: Frame, meta: int = 0) -> Extracted | None:
    """The flow key of an Ethernet ``frame``, as the kernel's ``key_extract()`` builds it.

    ``meta`` is a swkey int carrying only metadata fields (in_port, priority,
    skb_mark, recirc_id, dp_hash, tunnel, conntrack); the packet fields are
    OR'ed into it.  Returns None when the kernel's extraction fails and the
    packet is dropped: frames shorter than 14 bytes and NSH headers it rejects.
    Malformed headers otherwise give zeroed fields, never an exception.
    """
    n = len(frame)
    if n >= 48:
        # Fast path: untagged IPv4 without options, read in one go with the first
        # 14 bytes of L4 (the kernel's own length checks still apply below).
        q, i, etype, vihl, tos, frag_off, ttl, proto, addrs, ports, word = _FAST.unpack_from(frame)
        if etype == 0x0800 and vihl & 15 == 5:
            l3 = (
                ((q << 32 | i) << _R_MACS)  # dst:src
                | _ETH_TYPE_IPV4
                | (proto << _R_IP_PROTO)
                | (tos << _R_IP_TOS)
                | (ttl << _R_IP_TTL)
                | addrs
            )
            if frag_off & 0x1FFF:
                return _new(Extracted, (meta | (l3 | 2 << _R_IP_FRAG) << _BASE, 14, 14, 34, n - 34, 0))
            if frag_off & 0x2000:
                l3 |= 1 << _R_IP_FRAG
            if proto == 6:
                hl = (word >> 12) * 4
                if hl >= 20 and n >= 34 + hl:
                    l4 = (ports << _SH_TP_PORTS) | ((word & 0x0FFF) << _SH_TCP_FLAGS)
                else:
                    l4 = hl = 0
            elif proto == 17:
                l4 = ports << _SH_TP_PORTS
                hl = 8
            elif proto == 132:
                l4 = ports << _SH_TP_PORTS
                hl = 12
            elif proto == 1:
                l4 = ((ports >> 24) << _SH_TP_SRC) | (((ports >> 16) & 0xFF) << _SH_TP_DST)
                hl = 8
            else:
                l4 = hl = 0
            return _new(Extracted, (meta | (l3 << _BASE | l4), 14, 14, 34, n - 34, hl))
    elif n < 14:
        return None
    return _extract(frame, n, meta)


def _extract(frame: Frame, n: int, meta: int) -> Extracted | None:
    """:func:`extract` for any frame of at least 14 bytes."""

    # ---- L2: MAC addresses, VLAN tags, ethertype.
    q, i, etype = _ETH.unpack_from(frame)  # dst:src as 64 + 32 bits, ethertype
    l2 = (q << 32 | i) << _R_MACS  # dst:src
    off = 12
    if (etype == 0x8100 or etype == 0x88A8) and n >= 18:
        l2 |= ((frame[14] << 8 | frame[15] | 0x1000) << _R_VLAN_TCI) | (etype << _R_VLAN_TPID)
        off = 16
        etype = frame[16] << 8 | frame[17]
        if (etype == 0x8100 or etype == 0x88A8) and n >= 22:
            l2 |= ((frame[18] << 8 | frame[19] | 0x1000) << _R_CVLAN_TCI) | (etype << _R_CVLAN_TPID)
            off = 20
            etype = frame[20] << 8 | frame[21]
    off += 2
    if etype < 0x600:
        etype = _llc(frame, n, off)
        if etype & 0x10000:  # SNAP header consumed
            etype &= 0xFFFF
            off += 8

    # ---- L3/L4.
    if etype == 0x0800:
        l2 |= etype << _R_ETH_TYPE
        if n < off + 20:
            return _new(Extracted, (meta | l2 << _BASE, off, off, off, n - off, 0))
        vihl, tos, frag_off, ttl, proto, addrs = _IPV4.unpack_from(frame, off)
        t = off + (vihl & 15) * 4
        if t < off + 20 or n < t:
            return _new(Extracted, (meta | l2 << _BASE, off, off, off, n - off, 0))
        if frag_off & 0x1FFF:  # later fragment
            l3 = (proto << _R_IP_PROTO) | (tos << _R_IP_TOS) | (ttl << _R_IP_TTL) | (2 << _R_IP_FRAG) | addrs
            return _new(Extracted, (meta | (l2 | l3) << _BASE, off, off, t, n - t, 0))
        l3 = (proto << _R_IP_PROTO) | (tos << _R_IP_TOS) | (ttl << _R_IP_TTL) | addrs
        if frag_off & 0x2000:
            l3 |= 1 << _R_IP_FRAG
        key = meta | (l2 | l3) << _BASE
        hl = 0
        if proto == 6:
            if n >= t + 20:
                ports, word = _TCP.unpack_from(frame, t)
                hl = (word >> 12) * 4
                if hl >= 20 and n >= t + hl:
                    key |= (ports << _SH_TP_PORTS) | ((word & 0x0FFF) << _SH_TCP_FLAGS)
                else:
                    hl = 0
        elif proto == 17:
            if n >= t + 8:
                key |= _U32.unpack_from(frame, t)[0] << _SH_TP_PORTS
                hl = 8
        elif proto == 132:
            if n >= t + 12:
                key |= _U32.unpack_from(frame, t)[0] << _SH_TP_PORTS
                hl = 12
        elif proto == 1 and n >= t + 8:
            key |= (frame[t] << _SH_TP_SRC) | (frame[t + 1] << _SH_TP_DST)
            hl = 8
        return _new(Extracted, (key, off, off, t, n - t, hl))

    if etype == 0x86DD:
        return _ipv6(frame, n, off, meta | (l2 | etype << _R_ETH_TYPE) << _BASE)

    key = meta | (l2 | etype << _R_ETH_TYPE) << _BASE
    if etype == 0x0806 or etype == 0x8035:
        if n >= off + 28:
            hrd, pro, hln, pln, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, off)
            if hrd == 1 and pro == 0x0800 and hln == 6 and pln == 4:
                key |= (
                    ((spa << 32 | tpa) << _BASE)
                    | ((op if op <= 0xFF else 0) << _SH_ARP_OP)
                    | (int.from_bytes(sha, "big") << _SH_ARP_SHA)
                    | (int.from_bytes(tha, "big") << _SH_ARP_THA)
                )
    elif etype == 0x8847 or etype == 0x8848:
        key |= _mpls(frame, n, off)
    elif etype == 0x894F:
        nsh = _nsh(frame, n, off)
        if nsh is None:
            return None
        key |= nsh
    return _new(Extracted, (key, off, off, None, 0, 0))


def _llc(frame: Frame, n: int, off: int) -> int:
    """``parse_ethertype()`` for an 802.3 length field: the ethertype, with bit 16
    set when an LLC/SNAP header was consumed (the network header moves past it)."""
    if n - off < 8:
        return 0x0004
    if frame[off] != 0xAA or frame[off + 1] != 0xAA or frame[off + 3] | frame[off + 4] | frame[off + 5]:
        return 0x0004
    snap_type = frame[off + 6] << 8 | frame[off + 7]
    return (snap_type if snap_type >= 0x600 else 0x0004) | 0x10000


def _mpls(frame: Frame, n: int, off: int) -> int:
    """Key bits of an MPLS label stack starting at ``off``."""
    bits = 0
    count = 0
    pos = off
    while True:
        if n < pos + 4:  # no bottom of stack in the frame: count stays 0
            return bits
        lse = _U32.unpack_from(frame, pos)[0]
        if count < 3:
            bits |= lse << _SH_MPLS_LSE[count]
        count += 1
        pos += 4
        if lse & 0x100:
            return bits | (((1 << min(count, 3)) - 1) << _SH_MPLS_LABELS)


def _nsh(frame: Frame, n: int, off: int) -> int | None:
    """Key bits of the NSH header at ``off`` (``parse_nsh()``), None when it rejects it."""
    if n < off + 8:
        return None
    word = frame[off] << 8 | frame[off + 1]  # ver:2 flags:2 ttl:6 len:6
    if word >> 14:  # version
        return None
    length = (word & 0x3F) * 4
    if n < off + length:
        return None
    mdtype = frame[off + 2]
    if not ((mdtype == 1 and length == 24) or mdtype == 2):
        return None
    bits: int = (
        ((word >> 12) & 0x3) << _SH_NSH_FLAGS
        | ((word >> 6) & 0x3F) << _SH_NSH_TTL
        | mdtype << _SH_NSH_MDTYPE
        | frame[off + 3] << _SH_NSH_NP
        | _U32.unpack_from(frame, off + 4)[0] << _SH_NSH_PATH_HDR
    )
    if mdtype == 1:  # the MD1 context words (MD2 leaves them zero)
        bits |= int.from_bytes(frame[off + 8 : off + 24], "big") << _SH_NSH_C4
    return bits


def _ipv6(frame: Frame, n: int, off: int, key: int) -> Extracted:
    """IPv6 and its L4 (``parse_ipv6hdr()`` and the IPv6 branch of ``key_extract_l3l4()``)."""
    if n < off + 40:  # -EINVAL: IP fields and addresses zero
        return _new(Extracted, (key, off, off, off, n - off, 0))
    word, nexthdr, hlimit = _IPV6.unpack_from(frame, off)
    start = off + 40
    key |= (
        (int.from_bytes(frame[off + 8 : start], "big") << _SH_IPV6_ADDRS)
        | ((word & 0xFFFFF) << _SH_IPV6_LABEL)
        | ((((word >> 20) & 0xFF) << _R_IP_TOS | hlimit << _R_IP_TTL) << _BASE)
    )
    if nexthdr in _IPV6_EXT_OR_NONE:
        key |= _exthdrs(frame, n, nexthdr, start) << _SH_IPV6_EXTHDRS

    # ipv6_find_hdr(skb, &offset, -1, &frag_off, &flags)
    fragment = False
    while nexthdr in _IPV6_EXT:
        if n < start + 2:
            nexthdr = -1
            break
        if nexthdr == 44:
            fragment = True
            if n < start + 4:
                nexthdr = -1
                break
            if (frame[start + 2] << 8 | frame[start + 3]) & 0xFFF8:
                if frame[start] in _IPV6_EXT:  # -ENOENT: frag_off reported as 0
                    nexthdr = -1
                    break
                # Later fragment: proto 44, no L4, transport header untouched.
                key |= (44 << _R_IP_PROTO | 2 << _R_IP_FRAG) << _BASE
                return _new(Extracted, (key, off, off, None, 0, 0))
            hdrlen = 8
        elif nexthdr == 51:
            hdrlen = (frame[start + 1] + 2) << 2
        elif nexthdr == 43 and n < start + 4:  # struct ipv6_rt_hdr
            nexthdr = -1
            break
        else:
            hdrlen = (frame[start + 1] + 1) << 3
        if n - start < hdrlen:  # the header runs off the frame: -EBADMSG
            nexthdr = -1
            break
        nexthdr = frame[start]
        start += hdrlen
    if fragment:
        key |= 1 << _R_IP_FRAG << _BASE
    if nexthdr < 0:  # -EPROTO: proto stays NEXTHDR_NONE, no L4
        return _new(Extracted, (key | 59 << _R_IP_PROTO << _BASE, off, off, off, n - off, 0))
    key |= nexthdr << _R_IP_PROTO << _BASE

    t = start
    hl = 0
    if nexthdr == 6:
        if n >= t + 20:
            ports, tcpword = _TCP.unpack_from(frame, t)
            hl = (tcpword >> 12) * 4
            if hl >= 20 and n >= t + hl:
                key |= (ports << _SH_TP_PORTS) | ((tcpword & 0x0FFF) << _SH_TCP_FLAGS)
            else:
                hl = 0
    elif nexthdr == 17:
        if n >= t + 8:
            key |= _U32.unpack_from(frame, t)[0] << _SH_TP_PORTS
            hl = 8
    elif nexthdr == 132:
        if n >= t + 12:
            key |= _U32.unpack_from(frame, t)[0] << _SH_TP_PORTS
            hl = 12
    elif nexthdr == 58 and n >= t + 8:
        icmp_type = frame[t]
        icmp_code = frame[t + 1]
        key |= (icmp_type << _SH_TP_SRC) | (icmp_code << _SH_TP_DST)
        hl = 8
        if icmp_code == 0 and (icmp_type == 135 or icmp_type == 136):
            key |= _nd(frame, n, t)
    return _new(Extracted, (key, off, off, t, max(n - t, 0), hl))


def _nd(frame: Frame, n: int, t: int) -> int:
    """Key bits of a neighbour solicitation/advertisement at ``t`` (``parse_icmpv6()``)."""
    icmp_len = n - t
    if icmp_len < 24:
        return 0
    target = int.from_bytes(frame[t + 8 : t + 24], "big")
    sll = tll = 0
    icmp_len -= 24
    o = t + 24
    while icmp_len >= 8:
        opt_len = frame[o + 1] * 8
        if not opt_len or opt_len > icmp_len:
            break  # the kernel returns, keeping what it has
        if opt_len == 8:
            opt_type = frame[o]
            if opt_type == 1:
                if sll:
                    return 0  # repeated option: target, sll and tll zeroed
                sll = int.from_bytes(frame[o + 2 : o + 8], "big")
            elif opt_type == 2:
                if tll:
                    return 0
                tll = int.from_bytes(frame[o + 2 : o + 8], "big")
        icmp_len -= opt_len
        o += opt_len
    return (target << _SH_ND_TARGET) | (sll << _SH_ND_SLL) | (tll << _SH_ND_TLL)


def _exthdrs(frame: Frame, n: int, next_type: int, start: int) -> int:
    """The OFPIEH12_* summary of the extension header chain (``get_ipv6_ext_hdrs()``).

    Like the kernel, every header's length is taken as (hdrlen + 1) * 8, AH and
    fragment headers included, and the walk stops silently when the frame ends.
    The masks are those of the kernel after "openvswitch: fix wrong flag value
    in get_ipv6_ext_hdrs()" (OFPIEH12_FRAG where IPPROTO_FRAGMENT was written
    for AH and ESP); ESP itself is never reached because ipv6_ext_hdr() does
    not count it as an extension header.
    """
    hdrs = 0
    dest_count = 0
    while next_type in _IPV6_EXT_OR_NONE:
        if next_type == 59:
            return hdrs | EXTHDR_NONEXT
        if next_type == 51:
            if hdrs & EXTHDR_AUTH:
                hdrs |= EXTHDR_UNREP
            if hdrs & ~(EXTHDR_HOP | EXTHDR_DEST | EXTHDR_ROUTER | EXTHDR_FRAG | EXTHDR_UNREP) or dest_count >= 2:
                hdrs |= EXTHDR_UNSEQ
            hdrs |= EXTHDR_AUTH
        elif next_type == 60:
            if dest_count == 0:
                if hdrs & ~(EXTHDR_HOP | EXTHDR_UNREP):
                    hdrs |= EXTHDR_UNSEQ
                hdrs |= EXTHDR_DEST
            elif dest_count == 1:
                allowed = (
                    EXTHDR_HOP | EXTHDR_DEST | EXTHDR_ROUTER | EXTHDR_FRAG | EXTHDR_AUTH | EXTHDR_ESP | EXTHDR_UNREP
                )
                if hdrs & ~allowed:
                    hdrs |= EXTHDR_UNSEQ
            else:
                hdrs |= EXTHDR_UNREP
            dest_count += 1
        elif next_type == 44:
            if hdrs & EXTHDR_FRAG:
                hdrs |= EXTHDR_UNREP
            if hdrs & ~(EXTHDR_HOP | EXTHDR_DEST | EXTHDR_ROUTER | EXTHDR_UNREP) or dest_count >= 2:
                hdrs |= EXTHDR_UNSEQ
            hdrs |= EXTHDR_FRAG
        elif next_type == 43:
            if hdrs & EXTHDR_ROUTER:
                hdrs |= EXTHDR_UNREP
            if hdrs & ~(EXTHDR_HOP | EXTHDR_DEST | EXTHDR_UNREP) or dest_count >= 2:
                hdrs |= EXTHDR_UNSEQ
            hdrs |= EXTHDR_ROUTER
        else:  # 0, hop-by-hop
            if hdrs & EXTHDR_HOP:
                hdrs |= EXTHDR_UNREP
            hdrs |= EXTHDR_HOP if hdrs == 0 else EXTHDR_UNSEQ
        if n < start + 2:
            break
        next_type = frame[start]
        start += (frame[start + 1] + 1) << 3
    return hdrs
