"""VXLAN vports: their ops (:class:`VxlanVport`), and encapsulation and
decapsulation on the wire as the kernel does them.

An OVS VXLAN vport is a collect-metadata vxlan netdev (``vport-vxlan.c``
creates it with ``VXLAN_F_COLLECT_METADATA``, no learning, MTU
``IP_MAX_MTU``); the packet work is ``vxlan_xmit_one()`` / ``vxlan_rcv()`` in
``drivers/net/vxlan/vxlan_core.c`` plus the host's IPv4 and UDP input.
IPv4 or IPv6 underlay (``vxlan6_xmit`` for IPv6 metadata: no DF, traffic class and hop limit from tos and ttl).

Encapsulation (:func:`encapsulate`), from the egress :class:`TunnelInfo`:

* outer Ethernet with the given MACs (the neighbour table is the glue's);
* IPv4: source = the metadata's source, else the route's (``src_ip``);
  destination = the metadata's; TTL = the metadata's, 0 meaning the route
  default (``default_ttl``, 64); DSCP from the metadata's ``tos`` with the ECN
  bits taken from the inner IP header (``INET_ECN_encapsulate()``: an inner
  CE becomes ECT(0); a non-IP inner frame counts as not-ECT); DF only with
  TunnelFlag.DF; identification ``ip_id``; header checksum;
* UDP: destination = the metadata's ``tp_dst`` or the vport's port; source
  = ``udp_flow_src_port()`` of a hash of the inner flow over the local port
  range, ``[low, high)`` (the metadata's ``tp_src`` is ignored); checksum
  only with TunnelFlag.CSUM, else 0;
* VXLAN: flags 0x08, VNI = low 24 bits of ``tun_id``; with a GBP vport
  (``gbp=True``) and non-zero ``tun.gbp``, the G bit, D/A bits and policy id.

Decapsulation (:func:`decapsulate`) applies the host's IPv4/UDP input checks
and ``vxlan_rcv()``'s, and reports the metadata the kernel attaches.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, ClassVar

from odp.constants import TunnelFlag
from odp.records import VportKind
from odp.sim.packet import AF_INET6, DEFAULT_PORT_RANGE, TunnelInfo, flow_hash, udp_flow_src_port
from odp.sim.udp_tunnel import (
    DROP_BAD_UDP_CHECKSUM,
    DROP_BAD_UDP_LENGTH,
    DecapDrop,
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
    "DROP_BAD_UDP_CHECKSUM",
    "DROP_BAD_UDP_LENGTH",
    "DROP_ECN",
    "DROP_INNER_SRC_MAC_INVALID",
    "DROP_INNER_SRC_MAC_IS_DEVICE",
    "DROP_INNER_TOO_SHORT",
    "DROP_NO_VNI_FLAG",
    "DROP_RESERVED_BITS",
    "DROP_SHORT_VXLAN_HEADER",
    "VXLAN_DEFAULT_PORT",
    "VXLAN_OVERHEAD",
    "DecapDrop",
    "TunnelInfo",
    "VxlanVport",
    "decapsulate",
    "encapsulate",
    "fill_metadata_dst",
    "source_port",
]

#: Bytes added in front of the inner frame: outer Ethernet, IPv4, UDP, VXLAN.
VXLAN_OVERHEAD = 14 + 20 + 8 + 8

VXLAN_HF_VNI = 0x08000000  # the I flag, in the first 32-bit word
VXLAN_HF_GBP = 0x80000000
VXLAN_GBP_USED_BITS = VXLAN_HF_GBP | 0x00FFFFFF
VXLAN_GBP_DONT_LEARN = 1 << 22
VXLAN_GBP_POLICY_APPLIED = 1 << 19
VXLAN_GBP_ID_MASK = 0xFFFF

# Reasons reported in DecapDrop (the kernel's drops, in the order it checks;
# the UDP ones, DROP_BAD_UDP_*, come from udp_tunnel).
DROP_SHORT_VXLAN_HEADER = "packet too short for a VXLAN header"
DROP_NO_VNI_FLAG = "VXLAN I flag not set"
DROP_INNER_TOO_SHORT = "inner frame shorter than an Ethernet header"
DROP_RESERVED_BITS = "VXLAN reserved bits set"
DROP_INNER_SRC_MAC_IS_DEVICE = "inner source MAC is the VXLAN device's own"
DROP_INNER_SRC_MAC_INVALID = "inner source MAC is multicast or zero"
DROP_ECN = "outer header CE with a not-ECT inner packet"


def source_port(inner: bytes, port_range: tuple[int, int] = DEFAULT_PORT_RANGE) -> int:
    """The outer UDP source port for ``inner`` (``udp_flow_src_port()``, high bound exclusive)."""
    return udp_flow_src_port(flow_hash(inner), port_range[0], port_range[1])


def fill_metadata_dst(
    inner: bytes,
    tun: TunnelInfo,
    *,
    vport_dst_port: int,
    src_ip: int | None = None,
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    src_ip6: int | None = None,
) -> TunnelInfo | None:
    """``vxlan_fill_metadata_dst()``: egress metadata completed as it would be sent.

    What the kernel reports as OVS_PACKET_ATTR_EGRESS_TUN_KEY for
    ``userspace(..., tunnel_out_port=N)``: ``tp_src`` becomes the source port
    that :func:`encapsulate` would use, ``tp_dst`` the destination port and a
    zero source the route's (``src_ip`` / ``src_ip6``).  None when the kernel
    fails (no egress metadata, no route/source).
    """
    return routed_metadata(
        tun, src_ip, src_ip6, tp_src=source_port(inner, port_range), tp_dst=tun.tp_dst or vport_dst_port
    )


def encapsulate(
    inner: bytes,
    tun: TunnelInfo,
    *,
    vport_dst_port: int,
    src_mac: int,
    dst_mac: int,
    src_ip: int | None = None,
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    gbp: bool = False,
    default_ttl: int = 64,
    ip_id: int = 0,
    src_ip6: int | None = None,
) -> bytes | None:
    """The outer frame ``vxlan_xmit_one()`` sends for ``inner`` with metadata ``tun``.

    Returns None where the kernel drops the packet: no destination in the
    metadata, or no source address (neither the metadata's nor ``src_ip`` /
    ``src_ip6``, the host's: no route).  IPv6 metadata is sent over IPv6
    (``vxlan6_xmit``: no DF; a zero UDP checksum unless TunnelFlag.CSUM).
    ``gbp`` is the vport's GBP extension; ``port_range`` the device's source
    port range (the default is the host's local port range).  The decision
    to drop packets without *egress* metadata is made before this is called
    (the action executor passes None for them).
    """
    routed = route(tun, src_ip, src_ip6)
    if routed is None:
        return None
    src, dst, ipv6 = routed
    flags = VXLAN_HF_VNI
    if gbp and tun.gbp:
        flags |= VXLAN_HF_GBP | (tun.gbp & VXLAN_GBP_ID_MASK)
        flags |= tun.gbp & (VXLAN_GBP_DONT_LEARN | VXLAN_GBP_POLICY_APPLIED)
    vxlan = struct.pack("!II", flags, (tun.tun_id & 0xFFFFFF) << 8)
    return udp_tunnel_xmit(
        vxlan + inner,
        src=src,
        dst=dst,
        sport=source_port(inner, port_range),
        dport=tun.tp_dst or vport_dst_port,
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
    vxlan_mac: int | None,
    gbp: bool = False,
    local_ips6: Collection[int] = (),
) -> tuple[bytes, TunnelInfo] | DecapDrop | None:
    """What the host does with an outer ``frame`` arriving for a VXLAN vport.

    * None: not this vport's packet (not an untagged IPv4 frame with a sane,
      correctly checksummed header, not addressed to one of ``local_ips`` (a
      collection of IPv4 ints or a predicate), not UDP, not to
      ``vport_dst_port``, or an IP fragment, which the host would reassemble
      first: not modelled).  The host stack deals with it some other way.
    * :class:`DecapDrop`: addressed to the vport and dropped by the kernel:
      a bad UDP length, a bad non-zero UDP checksum, fewer than 8 bytes of
      VXLAN header, no I flag, an inner frame shorter than 14 bytes, any
      reserved bit set (flags other than I, the low byte of the VNI word;
      with ``gbp`` the G bit and policy fields are allowed), an inner source
      MAC equal to ``vxlan_mac`` (None: no such check) or that is multicast or
      zero (``vxlan_set_mac()``), or an outer CE on a not-ECT inner packet.
    * Otherwise ``(inner frame, metadata)``: the inner frame (its ECN bits
      updated from the outer header as ``IP_ECN_decapsulate()`` does) and
      ingress :class:`TunnelInfo` (``egress=False``): tun_id = VNI, ipv4_src /
      ipv4_dst = outer source / destination, tos and ttl of the outer header,
      tp_src / tp_dst the outer UDP ports, flags KEY plus CSUM when the outer
      UDP checksum was non-zero (never DF), gbp from a GBP header.
    """
    # The vport's socket takes zero IPv6 UDP checksums (VXLAN_F_UDP_ZERO_CSUM6_RX).
    rx = udp_tunnel_rcv(frame, local_ips=local_ips, dport=vport_dst_port, local_ips6=local_ips6, zero_csum6=True)
    if rx is None or isinstance(rx, DecapDrop):
        return rx
    payload = rx.payload
    if len(payload) < 8:
        return DecapDrop(DROP_SHORT_VXLAN_HEADER)
    vx_flags, vx_vni = struct.unpack_from("!II", payload)
    if not vx_flags & VXLAN_HF_VNI:
        return DecapDrop(DROP_NO_VNI_FLAG)
    unparsed_flags = vx_flags & ~VXLAN_HF_VNI
    unparsed_vni = vx_vni & 0xFF
    vni = vx_vni >> 8
    inner = payload[8:]
    if len(inner) < 14:
        return DecapDrop(DROP_INNER_TOO_SHORT)
    flags = int(TunnelFlag.KEY) | (int(TunnelFlag.CSUM) if rx.csum else 0)
    gbp_value = 0
    if gbp:
        if unparsed_flags & VXLAN_HF_GBP:
            gbp_value = unparsed_flags & (VXLAN_GBP_ID_MASK | VXLAN_GBP_DONT_LEARN | VXLAN_GBP_POLICY_APPLIED)
        unparsed_flags &= ~VXLAN_GBP_USED_BITS
    if unparsed_flags or unparsed_vni:
        return DecapDrop(DROP_RESERVED_BITS)
    inner_src = int.from_bytes(inner[6:12], "big")
    if vxlan_mac is not None and inner_src == vxlan_mac:
        return DecapDrop(DROP_INNER_SRC_MAC_IS_DEVICE)
    if inner[6] & 1 or not inner_src:
        return DecapDrop(DROP_INNER_SRC_MAC_INVALID)
    decapped = ecn_decapsulate(rx.tos, inner)
    if decapped is None:
        return DecapDrop(DROP_ECN)
    return decapped, rx.metadata(vni, flags, gbp=gbp_value)


#: The UDP port a VXLAN vport listens on when created without one (IANA's).
VXLAN_DEFAULT_PORT = 4789


@vport_type(VportKind.VXLAN)
class VxlanVport(TunnelVport):
    """vport-vxlan.c's ops: output encapsulates onto the underlay, the underlay's
    frames for the vport's UDP port are decapsulated and received."""

    __slots__ = ()
    no_metadata_counter: ClassVar[str] = "tx_errors"
    xmit_name: ClassVar[str] = "vxlan_xmit_one"

    @property
    def udp_port(self) -> int:
        return self.dst_port or VXLAN_DEFAULT_PORT

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
            gbp="gbp" in self.extensions,
        )
        return None if outer is None else (outer, dst, ipv6)

    def fill_metadata_dst(self, host: Host, frame: bytes, tunnel: TunnelInfo) -> TunnelInfo | None:
        return fill_metadata_dst(
            frame, tunnel, vport_dst_port=self.udp_port, src_ip=host.ip or 0, src_ip6=host.ip6 or 0
        )

    def decapsulate(self, host: Host, outer: bytes) -> tuple[bytes, TunnelInfo] | tuple[str, str | None] | None:
        result = decapsulate(
            outer,
            local_ips={host.ip or 0},
            local_ips6={host.ip6 or 0},
            vport_dst_port=self.udp_port,
            vxlan_mac=self.interface.mac,
            gbp="gbp" in self.extensions,
        )
        if isinstance(result, DecapDrop):
            return result.reason, "rx_dropped"
        return result
