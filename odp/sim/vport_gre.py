"""GRE vports: their ops (:class:`GreVport`), and encapsulation and
decapsulation on the wire as the kernel does them.

An OVS GRE vport is a collect-metadata gretap device over IPv4
(``vport-gre.c`` creates it with ``gretap_fb_dev_create()``); the packet work
is ``gre_tap_xmit()`` / ``gre_fb_xmit()`` / ``ip_md_tunnel_xmit()`` and
``gre_rcv()`` / ``ipgre_rcv()`` / ``ip_tunnel_rcv()`` in ``net/ipv4/ip_gre.c``
and ``ip_tunnel.c``.  What OVS cannot reach is absent: the metadata has no
sequence-number flag (the S bit is never sent and a received one is only
skipped), ERSPAN is a separate device type OVS does not create, and the
device carries IPv4 only (IPv6 metadata is dropped, as ``gre_fb_xmit()`` does).

Encapsulation (:func:`encapsulate`): GRE with protocol Transparent Ethernet
Bridging, the C bit and a checksum with TunnelFlag.CSUM, the K bit and the
low 32 bits of ``tun_id`` with TunnelFlag.KEY; IPv4 protocol 47: source =
the metadata's or the route's, TTL the metadata's, TOS the metadata's (1 =
the inner packet's) with ECN from the inner packet, DF from TunnelFlag.DF.

Decapsulation (:func:`decapsulate`): the metadata has tun_id = the key,
flags KEY when the K bit was set, the outer addresses, tos and ttl, no
ports.  A packet with the C bit is dropped (``ip_tunnel_rcv()``: the
collect-metadata device's receive flags have no checksum bit).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, ClassVar

from odp.constants import TunnelFlag
from odp.errors import ExistsError
from odp.records import VportKind
from odp.sim.network import Host, Interface
from odp.sim.packet import AF_INET, TunnelInfo, checksum, inner_dsfield
from odp.sim.udp_tunnel import (
    IPPROTO_GRE,
    TunnelDrop,
    ecn_decapsulate,
    ecn_encapsulate,
    ip_tunnel_rcv_outer,
    iptunnel_xmit,
    routed_metadata,
)
from odp.sim.vport import TunnelVport, vport_type

if TYPE_CHECKING:
    from odp.sim.datapath import SimDatapath

__all__ = ["GreVport", "decapsulate", "encapsulate"]

GRE_CSUM = 0x8000
GRE_ROUTING = 0x4000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
GRE_VERSION = 0x0007
ETH_P_TEB = 0x6558

DROP_SHORT = TunnelDrop("packet too short for a GRE header", None)
DROP_VERSION = TunnelDrop("GRE version or routing bits set", None)
DROP_BAD_CHECKSUM = TunnelDrop("bad GRE checksum", None)
DROP_NOT_ETHERNET = TunnelDrop("GRE protocol is not Ethernet (no tunnel of the OVS device's kind takes it)", None)
DROP_INNER_TOO_SHORT = TunnelDrop("inner frame shorter than an Ethernet header", None)
DROP_CHECKSUMMED = TunnelDrop(
    "GRE checksum present: the device's receive flags have none (ip_tunnel_rcv())", "rx_errors"
)
DROP_ECN = TunnelDrop("outer header CE with a not-ECT inner packet", "rx_errors")


def _tos(tun: TunnelInfo, inner: bytes) -> int:
    """``ip_md_tunnel_xmit()``: TOS 1 means the inner packet's, then ``ip_tunnel_ecn_encap()``."""
    tos = inner_dsfield(inner) if tun.tos == 1 and inner[12:14] in (b"\x08\x00", b"\x86\xdd") else tun.tos
    return ecn_encapsulate(tos, inner)


def encapsulate(
    inner: bytes,
    tun: TunnelInfo,
    *,
    src_mac: int,
    dst_mac: int,
    src_ip: int | None = None,
    default_ttl: int = 64,
    ip_id: int = 0,
) -> bytes | None:
    """The outer frame ``gre_fb_xmit()`` sends for ``inner`` with metadata ``tun``;
    None when it fails (IPv6 metadata, no destination or source address)."""
    if tun.family != AF_INET or not tun.ipv4_dst:
        return None
    src = tun.ipv4_src or src_ip or 0
    if not src:
        return None
    csum = bool(tun.flags & TunnelFlag.CSUM)
    key = bool(tun.flags & TunnelFlag.KEY)
    gre_flags = (GRE_CSUM if csum else 0) | (GRE_KEY if key else 0)
    fields = (b"\x00\x00\x00\x00" if csum else b"") + (struct.pack("!I", tun.tun_id & 0xFFFFFFFF) if key else b"")
    gre = struct.pack("!HH", gre_flags, ETH_P_TEB) + fields
    if csum:
        c = checksum(gre + inner)
        gre = gre[:4] + struct.pack("!H", c) + gre[6:]
    return iptunnel_xmit(
        gre + inner,
        proto=IPPROTO_GRE,
        src=src,
        dst=tun.ipv4_dst,
        tos=_tos(tun, inner),
        ttl=tun.ttl or default_ttl,
        df=bool(tun.flags & TunnelFlag.DF),
        src_mac=src_mac,
        dst_mac=dst_mac,
        ip_id=ip_id,
    )


def decapsulate(
    frame: bytes, *, local_ips: Collection[int] | Callable[[int], bool]
) -> tuple[bytes, TunnelInfo] | TunnelDrop | None:
    """What the host does with an outer ``frame`` for the GRE vport: None when
    it is not a locally delivered IPv4 GRE packet, :class:`TunnelDrop` when
    the GRE layer or the device drops it, else the inner frame (ECN updated)
    and ingress metadata."""
    ip = ip_tunnel_rcv_outer(frame, local_ips=local_ips, proto=IPPROTO_GRE)
    if ip is None:
        return None
    pkt = ip.payload
    if len(pkt) < 12:
        return DROP_SHORT  # gre_demux's gre_rcv(): pskb_may_pull(skb, 12)
    gre_flags, proto = struct.unpack_from("!HH", pkt)
    if gre_flags & (GRE_VERSION | GRE_ROUTING):
        return DROP_VERSION
    hdr_len = 4 + 4 * sum(1 for bit in (GRE_CSUM, GRE_KEY, GRE_SEQ) if gre_flags & bit)
    if len(pkt) < hdr_len:
        return DROP_SHORT
    off = 4
    if gre_flags & GRE_CSUM:
        if checksum(pkt) != 0:
            return DROP_BAD_CHECKSUM
        off += 4
    key = 0
    if gre_flags & GRE_KEY:
        (key,) = struct.unpack_from("!I", pkt, off)
    if proto != ETH_P_TEB:
        return DROP_NOT_ETHERNET
    inner = pkt[hdr_len:]
    if len(inner) < 14:
        return DROP_INNER_TOO_SHORT  # __iptunnel_pull_header(): ETH_HLEN for TEB
    if gre_flags & GRE_CSUM:
        return DROP_CHECKSUMMED
    decapped = ecn_decapsulate(ip.tos, inner)
    if decapped is None:
        return DROP_ECN
    return decapped, TunnelInfo(
        tun_id=key,
        ipv4_src=ip.ip_src,
        ipv4_dst=ip.ip_dst,
        tos=ip.tos,
        ttl=ip.ttl,
        flags=int(TunnelFlag.KEY) if gre_flags & GRE_KEY else 0,
        egress=False,
    )


@vport_type(VportKind.GRE)
class GreVport(TunnelVport):
    """vport-gre.c's ops: output encapsulates onto the underlay, the underlay's
    GRE packets are decapsulated and received."""

    __slots__ = ()
    no_metadata_counter: ClassVar[str] = "tx_dropped"  # gre_fb_xmit()
    xmit_name: ClassVar[str] = "ip_md_tunnel_xmit"

    @classmethod
    def device(cls, host: Host, name: str) -> Interface:
        # ip_tunnel_newlink(): one collect-metadata gretap device per network namespace.
        for dp in host.datapaths.values():
            for v in dp.vports.values():
                if v.kind == VportKind.GRE:
                    raise ExistsError(f"gre vport {v.name!r} already exists (one gre vport per host)")
        return super().device(host, name)

    def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
        if tunnel is not None and tunnel.family != AF_INET:
            # gre_fb_xmit(): the gretap device carries IPv4 only
            self.drop(dp, "tx_dropped", "IPv6 tunnel metadata on a gre vport (IPv4 only)", output=True)
            return
        super().send(dp, frame, tunnel)

    def encapsulate(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> tuple[bytes, int, bool] | None:
        outer = encapsulate(
            frame,
            tunnel,
            src_mac=host.mac,
            dst_mac=host.neighbors.get(tunnel.ipv4_dst, 0xFFFFFFFFFFFF),
            src_ip=host.ip or 0,
        )
        return None if outer is None else (outer, tunnel.ipv4_dst, False)

    def fill_metadata_dst(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> TunnelInfo | None:
        # gre_fill_metadata_dst(): IPv4 only, the route's source; ports untouched.
        return routed_metadata(tunnel, host.ip or 0, None) if tunnel.family == AF_INET else None

    def decapsulate(self, host: Host, outer: bytes) -> tuple[bytes, TunnelInfo] | tuple[str, str | None] | None:
        result = decapsulate(outer, local_ips={host.ip or 0})
        if isinstance(result, TunnelDrop):
            return result.reason, result.counter
        return result
