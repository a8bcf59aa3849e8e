"""Geneve vports: their ops (:class:`GeneveVport`), and encapsulation and
decapsulation on the wire as the kernel does them.

An OVS Geneve vport is a collect-metadata geneve netdev (``vport-geneve.c``
creates it with ``geneve_dev_create_fb()``); the packet work is
``geneve_xmit_skb()`` / ``geneve_udp_encap_recv()`` and ``geneve_rx()`` in
``drivers/net/geneve.c``, over the IPv4 or IPv6 UDP of :mod:`odp.sim.udp_tunnel`.

Encapsulation (:func:`encapsulate`), from the egress :class:`TunnelInfo`:

* IPv4 as for VXLAN: source = the metadata's, else the route's; TTL, DSCP
  (ECN from the inner packet), DF from TunnelFlag.DF;
* UDP: destination = the vport's port (the metadata's ``tp_dst`` is not
  used: ``geneve->cfg.info.key.tp_dst``); source =
  ``udp_flow_src_port(net, skb, 1, USHRT_MAX, true)``, over ``[1, 65535)``,
  not the local port range; checksum only with TunnelFlag.CSUM;
* Geneve (``geneve_build_header()``): version 0, option length in 4-byte
  words, the O bit from TunnelFlag.OAM, the C bit when any option has the
  critical type bit (``validate_geneve_opts()`` sets TUNNEL_CRIT_OPT from
  ``set(tunnel(...,geneve(...)))``), protocol Transparent Ethernet Bridging,
  the VNI = low 24 bits of ``tun_id``, then the options as given.

Decapsulation (:func:`decapsulate`): the host's IPv4/UDP input, then
``geneve_udp_encap_recv()`` and ``geneve_rx()``; the metadata carries the
options (flagged TUNNEL_GENEVE_OPT when there are any).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, ClassVar

from odp.constants import TunnelFlag
from odp.records import VportKind
from odp.sim.packet import AF_INET6, TunnelInfo, flow_hash, udp_flow_src_port
from odp.sim.udp_tunnel import (
    DecapDrop,
    TunnelDrop,
    ecn_decapsulate,
    ecn_encapsulate,
    route,
    routed_metadata,
    udp_tunnel_rcv,
    udp_tunnel_xmit,
)
from odp.sim.vport import TunnelVport, vport_type

if TYPE_CHECKING:
    from odp.sim.network import Host

__all__ = [
    "GENEVE_DEFAULT_PORT",
    "GeneveVport",
    "decapsulate",
    "encapsulate",
    "source_port",
]

#: The UDP port a Geneve vport listens on when created without one (IANA's).
GENEVE_DEFAULT_PORT = 6081

GENEVE_VER = 0
ETH_P_TEB = 0x6558
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
GENEVE_OAM = 0x80  # second header byte
GENEVE_CRITICAL = 0x40
GENEVE_CRIT_OPT_TYPE = 0x80  # in an option's type byte

#: geneve_udp_encap_recv()'s ``udp_port`` source range: 1..USHRT_MAX (exclusive).
GENEVE_PORT_RANGE = (1, 0xFFFF)


DROP_SHORT_HEADER = TunnelDrop("packet too short for a Geneve header", None)
DROP_VERSION = TunnelDrop("Geneve version is not 0", None)
# 6.1 frees this one uncounted; 6.12 counts it in rx_dropped (the simulator follows 6.1).
DROP_PROTOCOL = TunnelDrop("Geneve protocol is not Ethernet, IPv4 or IPv6", None)
DROP_NOT_ETHERNET = TunnelDrop("Geneve protocol is not Ethernet (the vport carries Ethernet only)", "rx_dropped")
DROP_SHORT_OPTIONS = TunnelDrop("Geneve options or inner Ethernet header cut short", "rx_dropped")
DROP_LOOP = TunnelDrop("inner source MAC is the Geneve device's own", "rx_errors")
DROP_ECN = TunnelDrop("outer header CE with a not-ECT inner packet", "rx_errors")


def source_port(inner: bytes) -> int:
    """The outer UDP source port for ``inner`` (``udp_flow_src_port(net, skb, 1, USHRT_MAX, true)``)."""
    return udp_flow_src_port(flow_hash(inner), *GENEVE_PORT_RANGE)


def _has_critical_option(options: bytes) -> bool:
    """``validate_geneve_opts()``: whether any option's type has the critical bit."""
    off = 0
    while off + 4 <= len(options):
        if options[off + 2] & GENEVE_CRIT_OPT_TYPE:
            return True
        off += 4 + (options[off + 3] & 0x1F) * 4
    return False


def encapsulate(
    inner: bytes,
    tun: TunnelInfo,
    *,
    vport_dst_port: int,
    src_mac: int,
    dst_mac: int,
    src_ip: int | None = None,
    default_ttl: int = 64,
    ip_id: int = 0,
    src_ip6: int | None = None,
) -> bytes | None:
    """The outer frame ``geneve_xmit_skb()`` (``geneve6_xmit_skb()`` for IPv6
    metadata: no DF) sends for ``inner`` with metadata ``tun``.

    None where the kernel fails the route lookup: no destination or no source
    address (the metadata's, else ``src_ip`` / ``src_ip6``, the host's).
    """
    routed = route(tun, src_ip, src_ip6)
    if routed is None:
        return None
    src, dst, ipv6 = routed
    opts = tun.geneve
    bits = (GENEVE_OAM if tun.flags & TunnelFlag.OAM else 0) | (GENEVE_CRITICAL if _has_critical_option(opts) else 0)
    header = struct.pack("!BBHI", GENEVE_VER << 6 | len(opts) // 4, bits, ETH_P_TEB, (tun.tun_id & 0xFFFFFF) << 8)
    return udp_tunnel_xmit(
        header + opts + inner,
        src=src,
        dst=dst,
        sport=source_port(inner),
        dport=vport_dst_port,
        tos=ecn_encapsulate(tun.tos, inner),
        ttl=tun.ttl or default_ttl,
        df=bool(tun.flags & TunnelFlag.DF) and not ipv6,
        csum=bool(tun.flags & TunnelFlag.CSUM),
        src_mac=src_mac,
        dst_mac=dst_mac,
        ip_id=ip_id,
        ipv6=ipv6,
    )


def decapsulate(
    frame: bytes,
    *,
    local_ips: Collection[int] | Callable[[int], bool],
    vport_dst_port: int,
    device_mac: int | None,
    local_ips6: Collection[int] = (),
) -> tuple[bytes, TunnelInfo] | DecapDrop | TunnelDrop | None:
    """What the host does with an outer ``frame`` arriving for a Geneve vport.

    None: not this vport's (see :func:`odp.sim.udp_tunnel.udp_tunnel_rcv`);
    :class:`DecapDrop`: dropped by UDP; :class:`TunnelDrop`: dropped by the
    Geneve driver; else the inner frame (ECN updated) and ingress metadata:
    tun_id = VNI, outer addresses, tos, ttl and ports, flags KEY plus OAM
    from the O bit and CSUM when the UDP checksum was non-zero, and the
    options.  (The C bit becomes the kernel's TUNNEL_CRIT_OPT, which no flow
    key or mask can express, so it is not kept.)
    """
    # The device's IPv6 socket wants UDP checksums (use_udp6_rx_checksums).
    rx = udp_tunnel_rcv(frame, local_ips=local_ips, dport=vport_dst_port, local_ips6=local_ips6)
    if rx is None or isinstance(rx, DecapDrop):
        return rx
    payload = rx.payload
    if len(payload) < 8:
        return DROP_SHORT_HEADER
    ver_optlen, bits, proto, vni_word = struct.unpack_from("!BBHI", payload)
    if ver_optlen >> 6 != GENEVE_VER:
        return DROP_VERSION
    if proto not in (ETH_P_TEB, ETH_P_IP, ETH_P_IPV6):
        return DROP_PROTOCOL
    if proto != ETH_P_TEB:
        return DROP_NOT_ETHERNET
    opts_end = 8 + (ver_optlen & 0x3F) * 4
    if len(payload) < opts_end + 14:
        return DROP_SHORT_OPTIONS  # iptunnel_pull_header(): header, then ETH_HLEN for TEB
    inner = payload[opts_end:]
    if device_mac is not None and int.from_bytes(inner[6:12], "big") == device_mac:
        return DROP_LOOP
    decapped = ecn_decapsulate(rx.tos, inner)
    if decapped is None:
        return DROP_ECN
    flags = (
        int(TunnelFlag.KEY)
        | (int(TunnelFlag.OAM) if bits & GENEVE_OAM else 0)
        | (int(TunnelFlag.CSUM) if rx.csum else 0)
    )
    return decapped, rx.metadata(vni_word >> 8, flags, geneve=payload[8:opts_end])


@vport_type(VportKind.GENEVE)
class GeneveVport(TunnelVport):
    """vport-geneve.c's ops: output encapsulates onto the underlay, the underlay's
    frames for the vport's UDP port are decapsulated and received."""

    __slots__ = ()
    no_metadata_counter: ClassVar[str] = "tx_dropped"  # geneve_xmit()
    xmit_name: ClassVar[str] = "geneve_xmit_skb"

    @property
    def udp_port(self) -> int:
        return self.dst_port or GENEVE_DEFAULT_PORT

    def encapsulate(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> tuple[bytes, int, bool] | None:
        ipv6 = tunnel.family == AF_INET6
        dst = tunnel.ipv6_dst if ipv6 else tunnel.ipv4_dst
        outer = encapsulate(
            frame,
            tunnel,
            vport_dst_port=self.udp_port,
            src_mac=host.mac,
            dst_mac=(host.neighbors6 if ipv6 else host.neighbors).get(dst, 0xFFFFFFFFFFFF),
            src_ip=host.ip or 0,
            src_ip6=host.ip6 or 0,
        )
        return None if outer is None else (outer, dst, ipv6)

    def fill_metadata_dst(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> TunnelInfo | None:
        # geneve_fill_metadata_dst(): the device's own port, as geneve_xmit_skb() sends.
        return routed_metadata(tunnel, host.ip or 0, host.ip6 or 0, tp_src=source_port(frame), tp_dst=self.udp_port)

    def decapsulate(self, host: Host, outer: bytes) -> tuple[bytes, TunnelInfo] | tuple[str, str | None] | None:
        result = decapsulate(
            outer,
            local_ips={host.ip or 0},
            local_ips6={host.ip6 or 0},
            vport_dst_port=self.udp_port,
            device_mac=self.interface.mac,
        )
        if isinstance(result, DecapDrop):
            return result.reason, None  # the UDP layer's drop: no device counter
        if isinstance(result, TunnelDrop):
            return result.reason, result.counter
        return result
