"""The fast paths in front of get_match: a cache of accepted shapes, and generated per-shape conversions.

:mod:`odp.validate.get_match` is ``ovs_nla_get_match`` transcribed on the
bytes odp sends; it is the one definition of what the kernel accepts and
stores.  Two shortcuts answer the common case (many flows of one shape)
without replaying bytes:

* :func:`validate_match` remembers the *signature* of every accepted match
  (masks and the key values the kernel's checks read); a match with a known
  signature is accepted without parsing.  Refusals always take the full path.
* :func:`from_match` converts matches made only of fixed-size attributes (at
  most one in_port and one eth_type; VLAN, MPLS, tunnel and NSH go the general
  way) with a function generated once per shape (the tuple of attribute
  classes), computing :func:`~odp.validate.get_match.sw_match`'s key and mask
  in one expression.

tests/unit/test_sim_flow_netlink.py and tests/unit/test_validate_cache.py
check both against the general path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import odp.validate.swkey as sk
from odp._cache import ComputeCache, last_by_identity
from odp._codegen import define
from odp.constants import DP_MAX_PORTS, ETH_P_802_2
from odp.keys import (
    FIXED_ATTRS,
    Arp,
    CtLabels,
    CtMark,
    CtZone,
    DpHash,
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    InPort,
    Ipv4,
    Ipv6,
    KeyAttr,
    Match,
    Mpls,
    Nd,
    Nsh,
    Priority,
    RecircId,
    Sctp,
    SkbMark,
    Tcp,
    Tunnel,
    Udp,
)
from odp.validate.get_match import _MAC_PROTO_NONE, _fail, _get_match, sw_match
from odp.validate.swkey import SwMatch

__all__ = ["from_match", "validate_match"]

#: The swkey field of each field of the attributes ovs_nla_get_match copies
#: field by field (from their declarations in odp.keys; in_port, eth_type and
#: the VLAN TCI have rules of their own).
_FIXED_FIELDS: dict[type[FixedKeyAttr], tuple[str, ...]] = {
    cls: tuple(s.sw for s in cls.FIELDS if s.sw is not None)
    for cls in FIXED_ATTRS.values()
    if all(s.sw is not None for s in cls.FIELDS)
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


# ---------------------------------------------------------------------------
# Validation: a cache of accepted flow shapes in front of get_match.
# ---------------------------------------------------------------------------
#
# Installing many flows that differ only in addresses and ports is the common
# case (and what a benchmark of flow installs measures).  The kernel's checks
# read the masks and a few key values (eth_type, proto, frag, VLAN TCI, in_port,
# label, ARP op, ICMP type, ct_state, tunnel, MPLS, NSH) but never the values of
# the fields below, so a match that differs from an accepted one only in those
# values is accepted too.  Only acceptances are cached: a refusal always runs
# the full check, so its message names the real value.

_FREE_FIELDS: dict[type[FixedKeyAttr], frozenset[str]] = {
    Ethernet: frozenset({"src", "dst"}),
    Ipv4: frozenset({"src", "dst", "tos", "ttl"}),
    Ipv6: frozenset({"src", "dst", "tclass", "hlimit"}),
    Tcp: frozenset({"src", "dst"}),
    Udp: frozenset({"src", "dst"}),
    Sctp: frozenset({"src", "dst"}),
    Arp: frozenset({"sip", "tip", "sha", "tha"}),
    Nd: frozenset({"target", "sll", "tll"}),
    Priority: frozenset({"value"}),
    SkbMark: frozenset({"value"}),
    RecircId: frozenset({"value"}),
    DpHash: frozenset({"value"}),
    CtMark: frozenset({"value"}),
    CtZone: frozenset({"value"}),
    CtLabels: frozenset({"value"}),
}
_SIGNATURE_CACHE_MAX = 4096
#: Accepted match signatures, each mapped to itself: the stored object is the
#: canonical one, whose id() keys the actions cache.
_accepted_matches: dict[object, object] = {}
#: (id of a canonical match signature, encoded actions, kernel) accepted
#: together.  Emptied whenever _accepted_matches is, so an id never outlives
#: the signature it stood for.
_accepted_actions: set[tuple[int, bytes, object]] = set()
#: The last match validate_match accepted, with its canonical signature:
#: installing a flow checks its actions against that same match object next,
#: and hashing the nested signature again would cost as much as the check.
_last_accepted: tuple[Match, object] | None = None


def _signature_parts(cls: type[FixedKeyAttr], var: str) -> list[str]:
    """Source expressions for ``cls``'s signature: every mask, the values that
    matter, and for a free field only whether its value fits."""
    free = _FREE_FIELDS.get(cls, frozenset())
    parts = []
    for spec in cls.FIELDS:
        name = spec.name
        if not name.isidentifier():  # pragma: no cover - FIELDS are identifiers by construction
            raise ValueError(f"{cls.__name__}: field {name!r} is not an identifier")
        value = f"0 <= {var}.{name}.value <= {spec.kind.full}" if name in free else f"{var}.{name}.value"
        parts.append(f"{var}.{name}.mask, {value}")
    return parts


def _compile_fixed_signature(cls: type[FixedKeyAttr]) -> Callable[[FixedKeyAttr], object]:
    """A function computing the signature of one ``cls`` attribute."""
    source = f"def signature(a):\n    return (cls, {', '.join(_signature_parts(cls, 'a'))})\n"
    return cast(Callable[[FixedKeyAttr], object], define(source, {"cls": cls})["signature"])


#: Marks signatures computed per match shape, so that they never equal one
#: computed attribute by attribute.
_SHAPED = object()


def _compile_shape_signature(shape: tuple[type[KeyAttr], ...]) -> Callable[[tuple[KeyAttr, ...]], object] | None:
    if not all(issubclass(c, FixedKeyAttr) for c in shape):
        return None
    parts = [p for i, c in enumerate(shape) for p in _signature_parts(cast(type[FixedKeyAttr], c), f"a{i}")]
    names = ", ".join(f"a{i}" for i in range(len(shape)))
    source = f"def signature(attrs):\n    {names}, = attrs\n    return (shaped, shape, {', '.join(parts)})\n"
    return cast(
        Callable[[tuple[KeyAttr, ...]], object],
        define(source, {"shaped": _SHAPED, "shape": shape})["signature"],
    )


_FIXED_SIGNATURES: ComputeCache[type[FixedKeyAttr], Callable[[Any], object]] = ComputeCache(
    _compile_fixed_signature, _SIGNATURE_CACHE_MAX
)


def _attr_signature(attr: KeyAttr) -> object:
    if isinstance(attr, FixedKeyAttr):
        return _FIXED_SIGNATURES[type(attr)](attr)
    if isinstance(attr, Encap):
        return (Encap, tuple(_attr_signature(a) for a in attr.attrs))
    if isinstance(attr, Tunnel):
        return (
            Tunnel,
            tuple((m.value, m.mask) for _, m in attr.items()),
            None if attr.geneve is None else (attr.geneve.value, attr.geneve.mask),
            None if attr.erspan is None else (attr.erspan.value, attr.erspan.mask),
            attr.extra,
        )
    if isinstance(attr, Mpls):
        return (Mpls, tuple((m.value, m.mask) for m in attr.lses))
    if isinstance(attr, Nsh):
        md2 = None if attr.md2 is None else (attr.md2.value, attr.md2.mask)
        return (Nsh, tuple((m.value, m.mask) for _, m in attr.items()), attr.has_md1, md2)
    return (type(attr), repr(attr))


#: Generated signature functions for whole matches, by the classes of their
#: attributes (None: a shape with attributes other than fixed-size ones).
_SHAPE_SIGNATURES: ComputeCache[tuple[type[KeyAttr], ...], Callable[[tuple[KeyAttr, ...]], object] | None] = (
    ComputeCache(_compile_shape_signature, _SIGNATURE_CACHE_MAX)
)


@last_by_identity  # installing a flow validates its match, then its actions against it
def _match_signature(match: Match) -> object:
    attrs = match.attrs
    if attrs and not match.mask_only:
        shaped = _SHAPE_SIGNATURES[tuple(map(type, attrs))]
        if shaped is not None:
            return shaped(attrs)
    return (
        tuple([_attr_signature(a) for a in attrs]),
        tuple([_attr_signature(a) for a in match.mask_only]),
    )


def _remember_match(signature: object) -> object:
    """Remember an accepted signature; returns it (now the canonical one)."""
    if len(_accepted_matches) >= _SIGNATURE_CACHE_MAX:
        _accepted_matches.clear()
        _accepted_actions.clear()
    _accepted_matches[signature] = signature
    return signature


def _accepted_signature(match: Match) -> object | None:
    """The canonical signature of ``match`` if its shape was accepted, else None."""
    last = _last_accepted
    if last is not None and last[0] is match:
        return last[1]
    return _accepted_matches.get(_match_signature(match))


def validate_match(match: Match) -> None:
    """Raise :class:`InvalidFlow` when the kernel would refuse this key and mask with EINVAL.

    The match is checked as odp's codec sends it (a KEY, and a MASK carrying
    every attribute's mask; ``mask_only`` attributes only in the mask).  The
    rules, with their ids, are those of ``ovs_nla_get_match``:

    parsing: ``unknown-key-attr``, ``unsupported-key-attr`` (packet_type,
    nd_extensions, tunnel_info), ``duplicate-key-attr`` (also between the top
    level and an encap()), ``bad-attr-length``, ``trailing-bytes``,
    ``unencodable`` (a value too wide for its field);
    VLAN: ``vlan-needs-vlan-and-encap``, ``vlan-tci-without-cfi``,
    ``truncated-vlan-nonempty-encap``, ``vlan-unexpected``, ``encap-without-vlan``,
    ``vlan-mask-for-untagged``, ``vlan-tpid-mask-not-exact``, ``vlan-tci-mask-without-cfi``;
    values: ``in-port-range``, ``eth-type-below-0x600``, ``no-eth-or-eth-type``,
    ``frag-range``, ``ipv6-label-range``, ``arp-op-range``, ``ct-state-flags``,
    ``mpls-label-count``; tunnel: ``tunnel-needs-dst``, ``tunnel-dst-zero``,
    ``tunnel-needs-ttl``, ``tunnel-mixed-families``, ``tunnel-multiple-options``,
    ``geneve-options-length``, ``geneve-mask-length``, ``tunnel-options-length``,
    ``vxlan-options``, ``tunnel-attr-unknown``, ``tunnel-attr-length``,
    ``tunnel-bridge-info``; NSH: ``nsh-attr``, ``nsh-md2-unsupported``,
    ``nsh-md1-md2``, ``nsh-mdtype-mismatch``;
    match_validate: ``missing-l3``, ``missing-l4``, ``missing-nd``,
    ``mask-without-key``, ``l3-mask-needs-exact-eth-type``,
    ``l3-mask-eth-type-mismatch``, ``ct-tuple-mask-with-nd``, ``l4-mask-needs-exact-proto``,
    ``l4-mask-without-ip``, ``l4-mask-wrong-ip-version``, ``l4-mask-on-later-fragment``,
    ``nd-mask-needs-exact-icmpv6-type``, ``nd-mask-without-nd-type``.
    """
    if not isinstance(match, Match):
        raise _fail("not-a-match", None, f"{match!r} is not a Match")
    global _last_accepted
    signature = _match_signature(match)
    canonical = _accepted_matches.get(signature)
    if canonical is None:
        _get_match(match)  # raises InvalidFlow with the rule
        canonical = _remember_match(signature)
    _last_accepted = (match, canonical)


# ---------------------------------------------------------------------------
# The stored key and mask: a generated converter per shape in front of sw_match.
# ---------------------------------------------------------------------------


def from_match(match: Match) -> SwMatch:
    """The (key, mask) the kernel stores for a validated match (ovs_nla_get_match)."""
    attrs = match.attrs
    if attrs and not match.mask_only:
        convert = _SHAPES[tuple(map(type, attrs))]
        if convert is not None:
            return convert(attrs)
    return sw_match(match)
