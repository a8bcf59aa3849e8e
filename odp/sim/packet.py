"""Byte-level packet helpers shared by the simulator's action executor and vports.

Everything here works on plain ``bytes``/``bytearray`` frames with VLAN tags
inline (the simulator's model of a packet; see :mod:`odp.sim.actions`):

* :class:`TunnelInfo`: the kernel's ``struct ip_tunnel_info`` (a metadata dst)
  as a frozen value: what ``set(tunnel(...))`` attaches to a packet for a
  later output to a tunnel vport, and what a tunnel vport reports for a
  packet it decapsulated.
* Internet checksum arithmetic: :func:`checksum` (RFC 1071) and the
  incremental update :func:`csum_replace` (RFC 1624, what the kernel's
  ``csum_replace*``/``inet_proto_csum_replace*`` compute), :func:`crc32c`
  for SCTP.
* :func:`flow_hash`: the simulator's stand-in for ``skb_get_hash()`` (the
  kernel's flow-dissector hash is seeded randomly at boot, so any
  deterministic hash of the same inputs is as good), and :func:`jhash_1word`,
  :func:`udp_flow_src_port` built on it exactly as the kernel does.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from odp.constants import TunnelFlag
from odp.keys import Tunnel
from odp.validate import swkey

__all__ = [
    "AF_INET",
    "AF_INET6",
    "DEFAULT_PORT_RANGE",
    "TunnelInfo",
    "checksum",
    "crc32c",
    "csum_replace",
    "flow_hash",
    "inner_dsfield",
    "jhash_1word",
    "ones_sum",
    "udp_flow_src_port",
]

AF_INET = 2
AF_INET6 = 10

#: The kernel's default ``net.ipv4.ip_local_port_range`` (low, high), which
#: ``udp_flow_src_port()`` falls back to when a tunnel device has no range.
DEFAULT_PORT_RANGE = (32768, 60999)

VLAN_TPIDS = (0x8100, 0x88A8)
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


# ---------------------------------------------------------------------------
# Tunnel metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TunnelInfo:
    """Tunnel metadata attached to a packet (the kernel's ``ip_tunnel_info``).

    Integers throughout: addresses as ints (IPv4 32-bit, IPv6 128-bit), ports
    in host order, ``flags`` as :class:`odp.constants.TunnelFlag` bits (OAM,
    DF, CSUM, KEY) and ``gbp`` the VXLAN group policy word
    (``policy_id | dont_learn << 22 | policy_applied << 19``; 0 = no VXLAN
    options).  ``geneve`` holds Geneve option TLVs (the kernel's tunnel options
    flagged ``TUNNEL_GENEVE_OPT``; empty = none).

    ``egress`` is the kernel's ``IP_TUNNEL_INFO_TX`` mode bit: True for
    metadata made by ``set(tunnel(...))`` (instructions for a later output to
    a tunnel vport), False for the metadata a tunnel vport reports for a
    packet it received.  A VXLAN vport encapsulates only with egress metadata
    (``vxlan_xmit()`` drops a packet whose metadata is missing or not TX).
    """

    tun_id: int = 0
    ipv4_src: int = 0
    ipv4_dst: int = 0
    ipv6_src: int = 0
    ipv6_dst: int = 0
    tos: int = 0
    ttl: int = 0
    tp_src: int = 0
    tp_dst: int = 0
    flags: int = 0
    gbp: int = 0
    egress: bool = False
    geneve: bytes = b""

    @property
    def family(self) -> int:
        """AF_INET6 when the metadata carries IPv6 addresses, else AF_INET (``ip_tunnel_info_af``)."""
        return AF_INET6 if (self.ipv6_src or self.ipv6_dst) else AF_INET

    @classmethod
    def from_attr(cls, attr: Tunnel, *, egress: bool = True) -> TunnelInfo:
        """From an :class:`odp.keys.Tunnel` attribute (its values; masks are ignored).

        This is what ``set(tunnel(...))`` attaches (``egress=True``); the
        KEY flag is kept as given (``Tunnel`` sets it when a tun_id is given).
        """
        return cls(
            tun_id=attr.tun_id.value,
            ipv4_src=attr.ipv4_src.value,
            ipv4_dst=attr.ipv4_dst.value,
            ipv6_src=attr.ipv6_src.value,
            ipv6_dst=attr.ipv6_dst.value,
            tos=attr.tos.value,
            ttl=attr.ttl.value,
            tp_src=attr.tp_src.value,
            tp_dst=attr.tp_dst.value,
            flags=attr.flags.value & 0xF,
            gbp=attr.vxlan_gbp.value,
            egress=egress,
            geneve=attr.geneve.value if attr.geneve is not None else b"",
        )

    def key_bits(self) -> int:
        """The swkey tunnel fields for a packet received with this metadata
        (``ovs_flow_key_extract()`` copying ``tun_info->key``), OR-able into a key."""
        # A VXLAN GBP word travels as the kernel's struct vxlan_metadata: four
        # host-order bytes of tun_opts, flagged TUNNEL_VXLAN_OPT.  (The kernel
        # sets them whenever the header has the G bit; TunnelInfo only keeps
        # the word, so a G bit with an all-zero word is taken as no options.)
        # Geneve options are stored as received, right-aligned like any options
        # (ip_tunnel_info_opts_set() flags them only when there are some).
        opts_flag = 0
        opts: dict[str, int] = {}
        if self.geneve:
            opts = {"tun_opts": int.from_bytes(self.geneve, "big"), "tun_opts_len": len(self.geneve)}
            opts_flag = swkey.TUN_GENEVE_OPT
        elif self.gbp:
            opts = {"tun_opts": int.from_bytes(struct.pack("=I", self.gbp), "big"), "tun_opts_len": 4}
            opts_flag = swkey.TUN_VXLAN_OPT
        return swkey.build(
            {
                **opts,
                "tun_proto": self.family,
                "tun_id": self.tun_id,
                "tun_ipv4_src": self.ipv4_src,
                "tun_ipv4_dst": self.ipv4_dst,
                "tun_ipv6_src": self.ipv6_src,
                "tun_ipv6_dst": self.ipv6_dst,
                "tun_tos": self.tos,
                "tun_ttl": self.ttl,
                "tun_tp_src": self.tp_src,
                "tun_tp_dst": self.tp_dst,
                "tun_flags": self.flags | opts_flag,
            }
        )

    @classmethod
    def from_key(cls, key: int) -> TunnelInfo | None:
        """The ingress metadata recorded in a swkey (None when ``tun_proto`` is 0)."""
        if not swkey.get(key, "tun_proto"):
            return None
        g = swkey.get
        opts_len = g(key, "tun_opts_len")
        return cls(
            tun_id=g(key, "tun_id"),
            ipv4_src=g(key, "tun_ipv4_src"),
            ipv4_dst=g(key, "tun_ipv4_dst"),
            ipv6_src=g(key, "tun_ipv6_src"),
            ipv6_dst=g(key, "tun_ipv6_dst"),
            tos=g(key, "tun_tos"),
            ttl=g(key, "tun_ttl"),
            tp_src=g(key, "tun_tp_src"),
            tp_dst=g(key, "tun_tp_dst"),
            flags=g(key, "tun_flags") & 0xF,
            gbp=(
                struct.unpack("=I", (g(key, "tun_opts") & 0xFFFFFFFF).to_bytes(4, "big"))[0]
                if g(key, "tun_flags") & swkey.TUN_VXLAN_OPT
                else 0
            ),
            geneve=(
                (g(key, "tun_opts") & ((1 << 8 * opts_len) - 1)).to_bytes(opts_len, "big")
                if g(key, "tun_flags") & swkey.TUN_GENEVE_OPT
                else b""
            ),
        )

    @property
    def df(self) -> bool:
        return bool(self.flags & TunnelFlag.DF)

    @property
    def csum(self) -> bool:
        return bool(self.flags & TunnelFlag.CSUM)


# ---------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The 16-bit one's complement sum of ``data`` (odd length padded with a zero byte), folded."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = start + sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The Internet checksum (RFC 1071) of ``data``, with ``start`` a partial one's complement sum."""
    return ~ones_sum(data, start) & 0xFFFF


def csum_replace(check: int, old: bytes, new: bytes) -> int:
    """Incrementally update checksum ``check`` for 16-bit-aligned bytes ``old`` becoming ``new``.

    RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``, which is what the kernel's
    ``csum_replace2/4``, ``inet_proto_csum_replace2/4/16`` compute for a
    non-offloaded packet: a checksum that was wrong before stays exactly as
    wrong after.
    """
    total = (~check & 0xFFFF) + (0xFFFF * (len(old) // 2) - ones_sum_raw(old)) + ones_sum_raw(new)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ones_sum_raw(data: bytes) -> int:
    """Plain (unfolded) sum of the big-endian 16-bit words of an even-length ``data``."""
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    return sum(words)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes | bytearray) -> int:
    """CRC32C (Castagnoli), as SCTP uses it (initial ~0, final inversion)."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Hashing
# ---------------------------------------------------------------------------


def _rol32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


def _jhash_final(a: int, b: int, c: int) -> int:
    """``__jhash_final()`` (lookup3's final mix): the hash, ``c``."""
    m = 0xFFFFFFFF
    c ^= b
    c = (c - _rol32(b, 14)) & m
    a ^= c
    a = (a - _rol32(c, 11)) & m
    b ^= a
    b = (b - _rol32(a, 25)) & m
    c ^= b
    c = (c - _rol32(b, 16)) & m
    a ^= c
    a = (a - _rol32(c, 4)) & m
    b ^= a
    b = (b - _rol32(a, 14)) & m
    c ^= b
    return (c - _rol32(b, 24)) & m


def jhash_1word(a: int, initval: int) -> int:
    """The kernel's ``jhash_1word()`` (Bob Jenkins' lookup3 final mix), bit-exact."""
    init = (initval + 0xDEADBEEF + 4) & 0xFFFFFFFF
    return _jhash_final((a + init) & 0xFFFFFFFF, init, init)


def jhash2(words: list[int], initval: int) -> int:
    """The kernel's ``jhash2()`` over u32 words, bit-exact (NAT's address choice)."""
    m = 0xFFFFFFFF
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & m
    k = list(words)
    while len(k) > 3:
        a, b, c = (a + k[0]) & m, (b + k[1]) & m, (c + k[2]) & m
        # __jhash_mix()
        a = ((a - c) & m) ^ _rol32(c, 4)
        c = (c + b) & m
        b = ((b - a) & m) ^ _rol32(a, 6)
        a = (a + c) & m
        c = ((c - b) & m) ^ _rol32(b, 8)
        b = (b + a) & m
        a = ((a - c) & m) ^ _rol32(c, 16)
        c = (c + b) & m
        b = ((b - a) & m) ^ _rol32(a, 19)
        a = (a + c) & m
        c = ((c - b) & m) ^ _rol32(b, 4)
        b = (b + a) & m
        k = k[3:]
    if not k:
        return c
    if len(k) == 3:
        c = (c + k[2]) & m
    if len(k) >= 2:
        b = (b + k[1]) & m
    return _jhash_final((a + k[0]) & m, b, c)


_IPV6_EXT_HDRS = frozenset((0, 43, 44, 51, 60))
_PORT_PROTOS = frozenset((6, 17, 132, 136))  # TCP, UDP, SCTP, UDP-Lite


def _l3_start(frame: bytes, has_eth: bool, protocol: int) -> tuple[int, int]:
    """(ethertype, offset of the L3 header) skipping every VLAN tag (``vlan_get_protocol``)."""
    if not has_eth:
        return protocol, 0
    n = len(frame)
    if n < 14:
        return 0, n
    off = 12
    etype = frame[12] << 8 | frame[13]
    while etype in VLAN_TPIDS and n >= off + 8:
        off += 4
        etype = frame[off] << 8 | frame[off + 1]
    return etype, off + 2


def flow_hash(frame: bytes, *, has_eth: bool = True, protocol: int = 0, symmetric: bool = False) -> int:
    """A deterministic, never-zero 32-bit hash of a packet's flow (``skb_get_hash()``'s role).

    Inputs are what the kernel's flow dissector hashes: for IPv4/IPv6 the
    addresses, the L4 protocol and, for TCP/UDP/SCTP/UDP-Lite first fragments
    and unfragmented packets, the ports; for anything else just the ethertype;
    and the first VLAN tag (not for ``symmetric``).
    ``symmetric`` orders the two endpoints first (``__skb_get_hash_symmetric``)
    so both directions of a connection hash alike.  The value itself is
    CRC32 of those inputs mixed with :func:`jhash_1word`: the kernel's is
    seeded at random at boot, so no value can be compared with it anyway.
    ``protocol`` is the ethertype of a frame without an Ethernet header.
    """
    etype, off = _l3_start(frame, has_eth, protocol)
    n = len(frame)
    src = dst = b""
    proto = 0
    sport = dport = 0
    l4 = -1
    if etype == ETH_P_IP and n >= off + 20:
        ihl = (frame[off] & 15) * 4
        proto = frame[off + 9]
        src = frame[off + 12 : off + 16]
        dst = frame[off + 16 : off + 20]
        frag = (frame[off + 6] << 8 | frame[off + 7]) & 0x3FFF
        if ihl >= 20 and not frag:
            l4 = off + ihl
    elif etype == ETH_P_IPV6 and n >= off + 40:
        src = frame[off + 8 : off + 24]
        dst = frame[off + 24 : off + 40]
        nexthdr = frame[off + 6]
        pos = off + 40
        ok = True
        while nexthdr in _IPV6_EXT_HDRS:
            if n < pos + 8:
                ok = False
                break
            if nexthdr == 44:
                if (frame[pos + 2] << 8 | frame[pos + 3]) & 0xFFF9:  # later fragment or MF
                    ok = False
                hdrlen = 8
            elif nexthdr == 51:
                hdrlen = (frame[pos + 1] + 2) << 2
            else:
                hdrlen = (frame[pos + 1] + 1) << 3
            nexthdr = frame[pos]
            pos += hdrlen
        proto = nexthdr
        if ok:
            l4 = pos
    if l4 >= 0 and proto in _PORT_PROTOS and n >= l4 + 4:
        sport = frame[l4] << 8 | frame[l4 + 1]
        dport = frame[l4 + 2] << 8 | frame[l4 + 3]
    if symmetric and (dst, dport) < (src, sport):
        src, dst, sport, dport = dst, src, dport, sport
    data = etype.to_bytes(2, "big") + src + dst + bytes((proto,)) + struct.pack("!HH", sport, dport)
    if not symmetric and has_eth and n >= 18 and frame[12:14] in (b"\x81\x00", b"\x88\xa8"):
        # skb_get_hash()'s flow_keys_dissector has FLOW_DISSECTOR_KEY_VLAN: the first
        # tag's TPID, VID, priority (not DEI) and encapsulated ethertype are hashed
        # (__skb_get_hash_symmetric()'s keys have no VLAN).  Kernel oracle: packets
        # that differ only in their tag got different dp_hash values.
        tci = frame[14] << 8 | frame[15]
        data += frame[12:14] + struct.pack("!H", tci & 0xEFFF) + frame[16:18]
    h = jhash_1word(zlib.crc32(data), 0)
    return h or 1


def udp_flow_src_port(hash_: int, port_min: int, port_max: int) -> int:
    """``udp_flow_src_port()``: a source port in ``[port_min, port_max)`` from a flow hash.

    When ``port_min >= port_max`` the default local port range is used, as
    the kernel does.  Note the upper bound is exclusive (the kernel computes
    ``((hash * (max - min)) >> 32) + min``).
    """
    if port_min >= port_max:
        port_min, port_max = DEFAULT_PORT_RANGE
    h = hash_ & 0xFFFFFFFF
    h ^= (h << 16) & 0xFFFFFFFF
    return ((h * (port_max - port_min)) >> 32) + port_min


def inner_dsfield(frame: bytes, *, has_eth: bool = True, protocol: int = 0) -> int:
    """The DS field (TOS / traffic class byte, ECN included) of an IP packet, else 0.

    ``ip_tunnel_get_dsfield()``: VLAN tags are skipped (``skb_protocol(skb, true)``);
    a packet that is neither IPv4 nor IPv6 counts as 0 (not ECN-capable).
    """
    etype, off = _l3_start(frame, has_eth, protocol)
    if etype == ETH_P_IP and len(frame) >= off + 2:
        return frame[off + 1]
    if etype == ETH_P_IPV6 and len(frame) >= off + 2:
        return ((frame[off] << 8 | frame[off + 1]) >> 4) & 0xFF
    return 0
