"""The outer IPv4 (and UDP) of IP tunnels (VXLAN, Geneve over UDP; GRE), shared
by their vport types.

Transmit is ``iptunnel_xmit()`` (and ``udp_tunnel_xmit_skb()`` for UDP): an
outer Ethernet and IPv4 (and UDP) header in front of a tunnel header and inner
frame.  Receive is the host's ``ip_rcv()`` (:func:`ip_tunnel_rcv_outer`) and
``udp_rcv()`` up to the tunnel socket's ``encap_rcv`` (:func:`udp_tunnel_rcv`):
the checks a frame passes before a tunnel driver sees it.  ECN handling on both
sides is ``INET_ECN_encapsulate()`` / ``IP_ECN_decapsulate()``, which every
driver applies the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from odp.sim.packet import AF_INET6, TunnelInfo, checksum, csum_replace, inner_dsfield, ones_sum

__all__ = [
    "DROP_BAD_UDP_CHECKSUM",
    "DROP_BAD_UDP_LENGTH",
    "DROP_ZERO_UDP6_CHECKSUM",
    "IPPROTO_GRE",
    "IPPROTO_UDP",
    "IP_DF",
    "DecapDrop",
    "IpRx",
    "TunnelDrop",
    "UdpRx",
    "ecn_decapsulate",
    "ecn_encapsulate",
    "ip6tunnel_xmit",
    "ip_tunnel_rcv_outer",
    "iptunnel_xmit",
    "route",
    "routed_metadata",
    "udp_tunnel_rcv",
    "udp_tunnel_xmit",
]

IP_DF = 0x4000
IPPROTO_UDP = 17
IPPROTO_GRE = 47

DROP_BAD_UDP_LENGTH = "bad UDP length"
DROP_BAD_UDP_CHECKSUM = "bad UDP checksum"
DROP_ZERO_UDP6_CHECKSUM = "zero UDP checksum over IPv6"


@dataclass(frozen=True, slots=True)
class DecapDrop:
    """A packet addressed to a tunnel vport that the kernel drops; ``reason`` is one of the DROP_* strings."""

    reason: str


@dataclass(frozen=True, slots=True)
class TunnelDrop:
    """A packet a tunnel driver drops, and which device counter it bumps
    (``rx_dropped``, ``rx_errors`` or None when it is freed uncounted)."""

    reason: str
    counter: str | None


@dataclass(frozen=True, slots=True)
class IpRx:
    """An outer IPv4 or IPv6 frame delivered locally to a tunnel protocol: the
    outer header fields (IPv6: traffic class and hop limit as tos and ttl) and
    the IP payload (link-layer padding trimmed)."""

    ip_src: int
    ip_dst: int
    tos: int
    ttl: int
    payload: bytes
    ipv6: bool = False


@dataclass(frozen=True, slots=True)
class UdpRx:
    """An outer IPv4/UDP or IPv6/UDP frame the host hands to a tunnel socket: the
    outer header fields and the UDP payload (link-layer padding trimmed)."""

    ip_src: int
    ip_dst: int
    tos: int
    ttl: int
    sport: int
    dport: int
    #: The outer UDP checksum was non-zero (the kernel then sets TUNNEL_CSUM).
    csum: bool
    payload: bytes
    ipv6: bool = False

    def metadata(self, tun_id: int, flags: int, **options: object) -> TunnelInfo:
        """Ingress metadata from the outer headers (``udp_tun_rx_dst()``)."""
        addrs = (
            {"ipv6_src": self.ip_src, "ipv6_dst": self.ip_dst}
            if self.ipv6
            else {"ipv4_src": self.ip_src, "ipv4_dst": self.ip_dst}
        )
        return TunnelInfo(
            tun_id=tun_id,
            tos=self.tos,
            ttl=self.ttl,
            tp_src=self.sport,
            tp_dst=self.dport,
            flags=flags,
            egress=False,
            **addrs,  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )


def route(tun: TunnelInfo, src_ip: int | None, src_ip6: int | None) -> tuple[int, int, bool] | None:
    """(source, destination, IPv6?) of the outer header for metadata ``tun``: the
    metadata's addresses, the source defaulting to the host's (``src_ip`` /
    ``src_ip6``, the route's choice); None where the route lookup fails (no
    destination, or no source address of that family)."""
    if tun.family == AF_INET6:
        dst, src = tun.ipv6_dst, tun.ipv6_src or src_ip6 or 0
    else:
        dst, src = tun.ipv4_dst, tun.ipv4_src or src_ip or 0
    if not dst or not src:
        return None
    return src, dst, tun.family == AF_INET6


def routed_metadata(tun: TunnelInfo, src_ip: int | None, src_ip6: int | None, **ports: int) -> TunnelInfo | None:
    """``ndo_fill_metadata_dst()``'s common part: egress ``tun`` with the route's
    source address filled in (and ``ports``: tp_src / tp_dst as the driver
    sends them); None where it fails (not egress metadata, no route)."""
    routed = route(tun, src_ip, src_ip6) if tun.egress else None
    if routed is None:
        return None
    src, _, ipv6 = routed
    return replace(tun, **({"ipv6_src": src} if ipv6 else {"ipv4_src": src}), **ports)  # type: ignore[arg-type]


def ecn_encapsulate(tos: int, inner: bytes) -> int:
    """``INET_ECN_encapsulate()``: the metadata's DSCP with the inner packet's ECN
    bits, an inner CE becoming ECT(0) (a non-IP inner frame counts as not-ECT)."""
    inner_ecn = inner_dsfield(inner) & 3
    return (tos & ~3 & 0xFF) | (2 if inner_ecn == 3 else inner_ecn)


def iptunnel_xmit(
    payload: bytes,
    *,
    proto: int,
    src: int,
    dst: int,
    tos: int,
    ttl: int,
    df: bool,
    src_mac: int,
    dst_mac: int,
    ip_id: int = 0,
) -> bytes:
    """The outer frame for ``payload`` (the IP payload): Ethernet and IPv4 of
    protocol ``proto`` (header checksum, DF if ``df``)."""
    ip = bytearray(
        struct.pack(
            "!BBHHHBBHII", 0x45, tos, 20 + len(payload), ip_id & 0xFFFF, IP_DF if df else 0, ttl, proto, 0, src, dst
        )
    )
    ip_csum = checksum(ip)
    ip[10] = ip_csum >> 8
    ip[11] = ip_csum & 0xFF
    eth = dst_mac.to_bytes(6, "big") + src_mac.to_bytes(6, "big") + b"\x08\x00"
    return eth + bytes(ip) + payload


def ip6tunnel_xmit(
    payload: bytes, *, proto: int, src: int, dst: int, tclass: int, hop_limit: int, src_mac: int, dst_mac: int
) -> bytes:
    """The outer frame for ``payload``: Ethernet and IPv6 (``ip6_flow_hdr()`` with
    flow label 0: OVS metadata has no label) of next header ``proto``."""
    ip6 = struct.pack("!IHBB", 6 << 28 | tclass << 20, len(payload), proto, hop_limit)
    ip6 += src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    eth = dst_mac.to_bytes(6, "big") + src_mac.to_bytes(6, "big") + b"\x86\xdd"
    return eth + ip6 + payload


def _pseudo(src: int, dst: int, length: int, ipv6: bool) -> bytes:
    if ipv6:
        return src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!IxxxB", length, IPPROTO_UDP)
    return struct.pack("!IIBBH", src, dst, 0, IPPROTO_UDP, length)


def udp_tunnel_xmit(
    payload: bytes,
    *,
    src: int,
    dst: int,
    sport: int,
    dport: int,
    tos: int,
    ttl: int,
    df: bool,
    csum: bool,
    src_mac: int,
    dst_mac: int,
    ip_id: int = 0,
    ipv6: bool = False,
) -> bytes:
    """The outer frame for ``payload`` (tunnel header + inner frame): Ethernet,
    IPv4 (header checksum, DF if ``df``) or with ``ipv6`` IPv6 (``tos`` the
    traffic class, ``ttl`` the hop limit, no DF), and UDP (checksum only with
    ``csum``: ``udp_tunnel6_xmit_skb()`` sends zero checksums too)."""
    udp_len = 8 + len(payload)
    udp_csum = 0
    if csum:
        udp_csum = (
            checksum(_pseudo(src, dst, udp_len, ipv6) + struct.pack("!HHHH", sport, dport, udp_len, 0) + payload)
            or 0xFFFF
        )
    udp = struct.pack("!HHHH", sport, dport, udp_len, udp_csum)
    if ipv6:
        return ip6tunnel_xmit(
            udp + payload,
            proto=IPPROTO_UDP,
            src=src,
            dst=dst,
            tclass=tos,
            hop_limit=ttl,
            src_mac=src_mac,
            dst_mac=dst_mac,
        )
    return iptunnel_xmit(
        udp + payload,
        proto=IPPROTO_UDP,
        src=src,
        dst=dst,
        tos=tos,
        ttl=ttl,
        df=df,
        src_mac=src_mac,
        dst_mac=dst_mac,
        ip_id=ip_id,
    )


def ip6_tunnel_rcv_outer(frame: bytes, *, local_ips6: Collection[int], proto: int) -> IpRx | None:
    """The IPv6 packet with next header ``proto`` that ``ipv6_rcv()`` delivers
    locally from ``frame`` (no extension headers: not modelled), or None."""
    if len(frame) < 54 or frame[12:14] != b"\x86\xdd" or frame[14] >> 4 != 6:
        return None
    plen = frame[18] << 8 | frame[19]
    if 54 + plen > len(frame) or frame[20] != proto:
        return None
    dst = int.from_bytes(frame[38:54], "big")
    if dst not in local_ips6:
        return None
    tclass = (frame[14] << 8 | frame[15]) >> 4 & 0xFF
    src = int.from_bytes(frame[22:38], "big")
    return IpRx(src, dst, tclass, frame[21], frame[54 : 54 + plen], ipv6=True)


def ip_tunnel_rcv_outer(frame: bytes, *, local_ips: Collection[int] | Callable[[int], bool], proto: int) -> IpRx | None:
    """The IPv4 packet of protocol ``proto`` that ``ip_rcv()`` delivers locally from
    ``frame``, or None: not an untagged IPv4 frame with a sane, correctly
    checksummed header, not to one of ``local_ips`` (a collection of IPv4 ints
    or a predicate), another protocol, or an IP fragment (the host would
    reassemble it first: not modelled)."""
    n = len(frame)
    if n < 34 or frame[12] != 0x08 or frame[13] != 0x00:
        return None
    vihl = frame[14]
    hl = (vihl & 15) * 4
    if vihl >> 4 != 4 or hl < 20 or n < 14 + hl:
        return None
    tot_len = frame[16] << 8 | frame[17]
    if tot_len < hl or 14 + tot_len > n:
        return None
    if ones_sum(frame[14 : 14 + hl]) != 0xFFFF:
        return None  # ip_rcv(): bad header checksum
    frag = (frame[20] << 8 | frame[21]) & 0x3FFF
    ip_src, ip_dst = struct.unpack_from("!II", frame, 26)
    is_local = local_ips(ip_dst) if callable(local_ips) else ip_dst in local_ips
    if not is_local or frame[23] != proto or frag:
        return None
    # The IP layer trims link-layer padding.
    return IpRx(ip_src, ip_dst, frame[15], frame[22], frame[14 + hl : 14 + tot_len])


def udp_tunnel_rcv(
    frame: bytes,
    *,
    local_ips: Collection[int] | Callable[[int], bool],
    dport: int,
    local_ips6: Collection[int] = (),
    zero_csum6: bool = False,
) -> UdpRx | DecapDrop | None:
    """What reaches the UDP tunnel socket on ``dport`` from an outer ``frame``.

    None: not for the socket (see :func:`ip_tunnel_rcv_outer` and
    :func:`ip6_tunnel_rcv_outer`, whose ``local_ips6`` are the host's IPv6
    addresses; or not UDP to ``dport``).  :class:`DecapDrop`: a bad UDP length
    or a bad non-zero UDP checksum (``udp_lib_checksum_complete()`` runs
    before ``encap_rcv``), or over IPv6 a zero checksum on a socket that does
    not take them (``zero_csum6`` False: ``no_check6_rx`` unset).
    """
    ip = (
        ip6_tunnel_rcv_outer(frame, local_ips6=local_ips6, proto=IPPROTO_UDP)
        if frame[12:14] == b"\x86\xdd"
        else ip_tunnel_rcv_outer(frame, local_ips=local_ips, proto=IPPROTO_UDP)
    )
    if ip is None:
        return None
    seg = ip.payload
    if len(seg) < 8:
        return None  # no UDP header: the UDP layer drops it before any socket lookup
    sport, udp_dport, ulen, ucsum = struct.unpack_from("!HHHH", seg)
    if udp_dport != dport:
        return None
    if ulen < 8 or ulen > len(seg):
        return DecapDrop(DROP_BAD_UDP_LENGTH)
    if ucsum:
        if ones_sum(seg[:ulen], ones_sum(_pseudo(ip.ip_src, ip.ip_dst, ulen, ip.ipv6))) != 0xFFFF:
            return DecapDrop(DROP_BAD_UDP_CHECKSUM)
    elif ip.ipv6 and not zero_csum6:
        return DecapDrop(DROP_ZERO_UDP6_CHECKSUM)
    return UdpRx(ip.ip_src, ip.ip_dst, ip.tos, ip.ttl, sport, udp_dport, bool(ucsum), seg[8:ulen], ip.ipv6)


def ecn_decapsulate(outer_tos: int, inner: bytes) -> bytes | None:
    """``IP_ECN_decapsulate()`` on an untagged inner IPv4/IPv6 packet; None = drop.

    An outer CE with a not-ECT inner packet is dropped; an outer CE marks an
    ECT inner packet CE; an outer ECT(1) turns an inner ECT(0) into ECT(1).
    (VLAN-tagged inner packets are passed unchanged.)
    """
    etype = inner[12] << 8 | inner[13]
    if etype == 0x0800 and len(inner) >= 34:
        inner_ecn = inner[15] & 3
    elif etype == 0x86DD and len(inner) >= 54:
        inner_ecn = (inner[15] >> 4) & 3
    else:
        return inner
    outer_ecn = outer_tos & 3
    if inner_ecn == 0:
        return None if outer_ecn == 3 else inner
    if outer_ecn == 3 and inner_ecn != 3:
        new_ecn = 3
    elif outer_ecn == 1 and inner_ecn == 2:
        new_ecn = 1
    else:
        return inner
    buf = bytearray(inner)
    if etype == 0x0800:
        old_word = bytes(buf[14:16])
        buf[15] = (buf[15] & ~3 & 0xFF) | new_ecn
        check = csum_replace(buf[24] << 8 | buf[25], old_word, bytes(buf[14:16]))
        buf[24] = check >> 8
        buf[25] = check & 0xFF
    else:
        buf[15] = (buf[15] & 0xCF) | (new_ecn << 4)
    return bytes(buf)
