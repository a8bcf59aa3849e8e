"""Generated per-shape conversions of a Match into the flow table's key and mask.

:func:`odp.validate.get_match.sw_match` is ``ovs_nla_get_match`` transcribed on
the bytes odp sends; it is the one definition of what the kernel stores.  For
matches made only of fixed-size attributes (at most one in_port and one
eth_type, nothing nested: VLAN, MPLS, tunnel and NSH go the general way), a
function generated once per *shape* (the tuple of attribute classes) computes
the same key and mask in one expression.  tests/unit/test_sim_flow_netlink.py
checks the two agree on random matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from odp._cache import ComputeCache
from odp._codegen import define
from odp.constants import DP_MAX_PORTS, ETH_P_802_2
from odp.keys import (
    Arp,
    CtLabels,
    CtMark,
    CtState,
    CtTupleIpv4,
    CtTupleIpv6,
    CtZone,
    DpHash,
    Ethernet,
    EthType,
    FixedKeyAttr,
    Icmp,
    Icmpv6,
    InPort,
    Ipv4,
    Ipv6,
    Ipv6Exthdrs,
    KeyAttr,
    Match,
    Nd,
    Priority,
    RecircId,
    Sctp,
    SkbMark,
    Tcp,
    TcpFlags,
    Udp,
)
from odp.validate import swkey as sk
from odp.validate.get_match import _MAC_PROTO_NONE, sw_match
from odp.validate.swkey import SwMatch

__all__ = ["from_match"]

_FIXED_FIELDS: dict[type[FixedKeyAttr], tuple[str, ...]] = {
    Priority: ("priority",),
    SkbMark: ("skb_mark",),
    RecircId: ("recirc_id",),
    DpHash: ("dp_hash",),
    CtState: ("ct_state",),
    CtZone: ("ct_zone",),
    CtMark: ("ct_mark",),
    CtLabels: ("ct_labels",),
    Ethernet: ("eth_src", "eth_dst"),
    Ipv4: ("ipv4_src", "ipv4_dst", "ip_proto", "ip_tos", "ip_ttl", "ip_frag"),
    Ipv6: ("ipv6_src", "ipv6_dst", "ipv6_label", "ip_proto", "ip_tos", "ip_ttl", "ip_frag"),
    Tcp: ("tp_src", "tp_dst"),
    Udp: ("tp_src", "tp_dst"),
    Sctp: ("tp_src", "tp_dst"),
    Icmp: ("tp_src", "tp_dst"),
    Icmpv6: ("tp_src", "tp_dst"),
    TcpFlags: ("tcp_flags",),
    Arp: ("ipv4_src", "ipv4_dst", "arp_op", "arp_sha", "arp_tha"),
    Nd: ("nd_target", "nd_sll", "nd_tll"),
    CtTupleIpv4: ("ct_orig_src", "ct_orig_dst", "ct_orig_tp_src", "ct_orig_tp_dst", "ct_orig_proto"),
    CtTupleIpv6: ("ct_orig_src", "ct_orig_dst", "ct_orig_tp_src", "ct_orig_tp_dst", "ct_orig_proto"),
    Ipv6Exthdrs: ("ipv6_exthdrs",),
}


def _fixed_terms(cls: type[FixedKeyAttr], var: str) -> tuple[list[str], list[str]]:
    """Source expressions for the key and mask bits of the ``cls`` attribute in ``var``."""
    key_terms, mask_terms = [], []
    for spec, name in zip(cls.FIELDS, _FIXED_FIELDS[cls]):
        shift, width = sk.GEOMETRY[name]
        if spec.kind.bits <= width:
            # Validation has checked that the value and mask fit the attribute's field.
            key_terms.append(f"{var}.{spec.name}.value << {shift}")
            mask_terms.append(f"{var}.{spec.name}.mask << {shift}")
        else:  # narrower in the kernel than on the wire (the ARP op is a u8)
            full = (1 << width) - 1
            key_terms.append(f"({var}.{spec.name}.value & {full}) << {shift}")
            mask_terms.append(f"({var}.{spec.name}.mask & {full}) << {shift}")
    return key_terms, mask_terms


#: Masks every flow has (ovs_nla_get_match): mac_proto exact, and VLAN TCIs
#: exact so that a flow without vlan() matches only untagged packets.
_BASE_MASK = sk.field_mask("mac_proto") | sk.field_mask("vlan_tci") | sk.field_mask("cvlan_tci")
_SH_IN_PORT = sk.GEOMETRY["in_port"][0]
_SH_MAC_PROTO = sk.GEOMETRY["mac_proto"][0]
_SH_ETH_TYPE = sk.GEOMETRY["eth_type"][0]
_MASK_IN_PORT = sk.field_mask("in_port")
_MASK_ETH_TYPE = sk.field_mask("eth_type")


def _compile_shape(shape: tuple[type[KeyAttr], ...]) -> Callable[[tuple[KeyAttr, ...]], SwMatch] | None:
    """One function converting every match of this shape: fixed attributes, at
    most one in_port and one eth_type, nothing nested (VLAN, MPLS, tunnel)."""
    if len(set(shape)) != len(shape) or not all(c in _FIXED_FIELDS or c in (InPort, EthType) for c in shape):
        return None
    const_key = 0 if Ethernet in shape else _MAC_PROTO_NONE << _SH_MAC_PROTO
    if InPort not in shape:
        const_key |= DP_MAX_PORTS << _SH_IN_PORT
    if Ethernet in shape and EthType not in shape:
        const_key |= ETH_P_802_2 << _SH_ETH_TYPE  # Ethernet without an ethertype: 802.2
    key_terms, mask_terms = [str(const_key)], [str(_BASE_MASK)]
    for i, cls in enumerate(shape):
        var = f"a{i}"
        if cls is InPort:  # metadata_from_nlattrs: the mask is always exact
            key_terms.append(f"({var}.port.value & 0xFFFF) << {_SH_IN_PORT}")
            mask_terms.append(f"({_MASK_IN_PORT} if {var}.port.mask else 0)")
        elif cls is EthType:  # always exact
            key_terms.append(f"({var}.value.value & 0xFFFF) << {_SH_ETH_TYPE}")
            mask_terms.append(f"({_MASK_ETH_TYPE} if {var}.value.mask else 0)")
        else:
            k, m = _fixed_terms(cast(type[FixedKeyAttr], cls), var)
            key_terms += k
            mask_terms += m
    names = ", ".join(f"a{i}" for i in range(len(shape)))
    source = (
        f"def convert(attrs):\n    {names}, = attrs\n"
        f"    return SwMatch({' | '.join(key_terms)}, {' | '.join(mask_terms)})\n"
    )
    return cast(Callable[[tuple[KeyAttr, ...]], SwMatch], define(source, {"SwMatch": SwMatch})["convert"])


#: Generated converters for whole matches, by the classes of their attributes
#: (None: a shape the general code handles).
_SHAPES: ComputeCache[tuple[type[KeyAttr], ...], Callable[[tuple[KeyAttr, ...]], SwMatch] | None] = ComputeCache(
    _compile_shape, 1024
)


def from_match(match: Match) -> SwMatch:
    """The (key, mask) the kernel stores for a validated match (ovs_nla_get_match)."""
    attrs = match.attrs
    if attrs and not match.mask_only:
        convert = _SHAPES[tuple(map(type, attrs))]
        if convert is not None:
            return convert(attrs)
    return sw_match(match)
