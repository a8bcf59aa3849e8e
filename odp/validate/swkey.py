"""The flat flow key: the counterpart of the kernel's ``struct sw_flow_key``.

:mod:`odp.validate.get_match` fills it from a flow's netlink attributes, the
simulator's ``odp.sim.flow`` from a packet, and :mod:`odp.validate.put_key`
reports it back as attributes.

A packet's key and a flow's key and mask are each one Python ``int`` built
from the fixed layout below (big-endian, first field in the most significant
bits).  Lookup is then ``key & mask`` followed by a dict probe per distinct
mask, which is how the kernel's tuple-space classifier works and is the
fastest thing CPython can do (an ``&`` of two ints and one hash).

Unlike the kernel, the layout does not overlay IPv4/IPv6/ARP/MPLS fields in a
union: separate fields cost a few bytes of int width and make the
conversions simpler, and because every L3 mask requires an exact eth_type
(validation), the separation never changes which packets a flow matches.

Field offsets are derived from the layout, so ``get(key, "ip_proto")`` and
``put(key, "tp_dst", 80)`` work on any key or mask int.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import NamedTuple

#: (name, struct code).  "6s"/"16s" fields are big-endian integers of that
#: width.  ARP keeps its sender/target IPs in ipv4_src/ipv4_dst (as the kernel
#: does) and its opcode in arp_op, 8 bits wide like the kernel's ip.proto that
#: holds it (so an op mask of 0xffff is stored, and reported, as 0xff).
LAYOUT: tuple[tuple[str, str], ...] = (
    # Rarely set fields first (most significant bits), so that the key of a
    # common packet, and of most flows, is a small int: CPython's ``&`` and
    # ``hash`` cost grows with the int's highest non-zero digit.
    # tunnel options (the kernel's tun_opts, IP_TUNNEL_OPTS_MAX bytes): Geneve
    # TLVs, VXLAN GBP (struct vxlan_metadata, host order) or ERSPAN metadata,
    # right-aligned (TUN_METADATA_OFFSET: the last tun_opts_len bytes).
    ("tun_opts", "255s"),
    ("tun_opts_len", "B"),
    # NSH (the kernel's ovs_key_nsh: base header and MD1 context)
    ("nsh_flags", "B"),
    ("nsh_ttl", "B"),
    ("nsh_mdtype", "B"),
    ("nsh_np", "B"),
    ("nsh_path_hdr", "I"),
    ("nsh_c1", "I"),
    ("nsh_c2", "I"),
    ("nsh_c3", "I"),
    ("nsh_c4", "I"),
    # conntrack
    ("ct_orig_src", "16s"),
    ("ct_orig_dst", "16s"),
    ("ct_orig_tp_src", "H"),
    ("ct_orig_tp_dst", "H"),
    ("ct_orig_proto", "B"),
    ("ct_labels", "16s"),
    ("ct_mark", "I"),
    ("ct_zone", "H"),
    ("ct_state", "I"),
    # tunnel metadata (tun_proto: 0 none, 2 AF_INET, 10 AF_INET6)
    ("tun_ipv6_src", "16s"),
    ("tun_ipv6_dst", "16s"),
    ("tun_id", "Q"),
    ("tun_ipv4_src", "I"),
    ("tun_ipv4_dst", "I"),
    ("tun_tos", "B"),
    ("tun_ttl", "B"),
    ("tun_tp_src", "H"),
    ("tun_tp_dst", "H"),
    ("tun_flags", "B"),  # odp.constants.TunnelFlag bits, TUN_GENEVE_OPT/TUN_VXLAN_OPT/TUN_ERSPAN_OPT
    ("tun_proto", "B"),
    # IPv6, ND, ARP, MPLS, inner VLAN
    ("nd_target", "16s"),
    ("nd_sll", "6s"),
    ("nd_tll", "6s"),
    ("ipv6_src", "16s"),
    ("ipv6_dst", "16s"),
    ("ipv6_label", "I"),
    ("ipv6_exthdrs", "H"),
    ("arp_op", "B"),
    ("arp_sha", "6s"),
    ("arp_tha", "6s"),
    ("mpls_labels", "B"),  # bitmask of the labels present (kernel: num_labels_mask)
    ("mpls_lse0", "I"),
    ("mpls_lse1", "I"),
    ("mpls_lse2", "I"),
    ("cvlan_tci", "H"),
    ("cvlan_tpid", "H"),
    # metadata
    ("dp_hash", "I"),
    ("skb_mark", "I"),
    ("priority", "I"),
    ("recirc_id", "I"),
    # what nearly every flow matches on, in the least significant bits
    ("mac_proto", "B"),  # 0 Ethernet, 1 no L2 header
    ("in_port", "H"),
    ("vlan_tci", "H"),
    ("vlan_tpid", "H"),
    ("eth_dst", "6s"),  # dst above src, as in the frame: extraction reads both as one int
    ("eth_src", "6s"),
    ("eth_type", "H"),
    ("ip_proto", "B"),
    ("ip_tos", "B"),
    ("ip_ttl", "B"),
    ("ip_frag", "B"),
    ("ipv4_src", "I"),
    ("ipv4_dst", "I"),
    ("tcp_flags", "H"),
    ("tp_src", "H"),
    ("tp_dst", "H"),
)

#: tun_flags bits beyond odp.constants.TunnelFlag: which options tun_opts holds
#: (the kernel's TUNNEL_GENEVE_OPT, TUNNEL_VXLAN_OPT, TUNNEL_ERSPAN_OPT).
TUN_GENEVE_OPT, TUN_VXLAN_OPT, TUN_ERSPAN_OPT = 0x10, 0x20, 0x40

FORMAT = "!" + "".join(code for _, code in LAYOUT)
STRUCT = struct.Struct(FORMAT)
SIZE = STRUCT.size
BITS = SIZE * 8
FULL = (1 << BITS) - 1

NAMES: tuple[str, ...] = tuple(name for name, _ in LAYOUT)


def _field_geometry() -> dict[str, tuple[int, int]]:
    """name -> (shift, width in bits) inside the key int."""
    geometry: dict[str, tuple[int, int]] = {}
    offset = 0
    for name, code in LAYOUT:
        size = struct.calcsize("!" + code)
        geometry[name] = (BITS - (offset + size) * 8, size * 8)
        offset += size
    return geometry


GEOMETRY: dict[str, tuple[int, int]] = _field_geometry()


def field_mask(name: str) -> int:
    """All-ones over one field (a mask int that selects that field)."""
    shift, width = GEOMETRY[name]
    return ((1 << width) - 1) << shift


def get(key: int, name: str) -> int:
    shift, width = GEOMETRY[name]
    return (key >> shift) & ((1 << width) - 1)


def put(key: int, name: str, value: int) -> int:
    """``key`` with field ``name`` replaced by ``value``."""
    shift, width = GEOMETRY[name]
    full = (1 << width) - 1
    if not 0 <= value <= full:
        raise ValueError(f"{name}={value} does not fit in {width} bits")
    return (key & ~(full << shift)) | (value << shift)


def build(values: Mapping[str, int]) -> int:
    """A key int from field values (missing fields are zero)."""
    key = 0
    for name, value in values.items():
        if value:  # most fields of a parsed key are zero
            shift, width = GEOMETRY[name]
            key |= (value & ((1 << width) - 1)) << shift
    return key


def fields(key: int) -> dict[str, int]:
    """All fields of a key int (for debugging and conversions)."""
    return {name: get(key, name) for name in NAMES}


def range_mask(names: list[str]) -> int:
    """A mask covering the byte range from the first to the last of ``names`` in
    layout order, like the kernel's ``sw_flow_key_range`` (used when a flow is
    installed without a MASK attribute)."""
    positions = [NAMES.index(n) for n in names]
    first, last = min(positions), max(positions)
    mask = 0
    for name in NAMES[first : last + 1]:
        mask |= field_mask(name)
    return mask


class SwMatch(NamedTuple):
    """A flow's key and mask as the flow table stores them (``struct sw_flow_match``).

    (A NamedTuple: built once per flow install, where a frozen dataclass's
    ``__init__`` costs four times as much.)
    """

    key: int
    mask: int

    @property
    def masked_key(self) -> int:
        return self.key & self.mask


class View(Mapping[str, int]):
    """The fields of a key int by name, read on demand (what the dump code reads)."""

    __slots__ = ("_key",)

    def __init__(self, key: int) -> None:
        self._key = key

    def __getitem__(self, name: str) -> int:
        shift, width = GEOMETRY[name]
        return (self._key >> shift) & ((1 << width) - 1)

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)
