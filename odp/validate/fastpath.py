"""Matches to and from the simulator's flat keys: the kernel's flow_netlink.c.

``from_match`` is ``ovs_nla_get_match``: it turns a validated :class:`Match`
into the (key, mask) ints the flow table stores, with the kernel's forced
values (exact in_port and eth_type masks, exact mac_proto, a default VLAN
TCI mask of 0xffff so that flows without vlan() match only untagged packets,
an exact tunnel address family once any tunnel field is masked).

``to_match`` is ``ovs_nla_put_key``: it turns key/mask ints back into the
attributes the kernel reports in dumps and upcalls, with the same choice of
attributes (metadata always present, the VLAN ETHERTYPE/VLAN/ENCAP nesting,
802.2 frames without ETHERTYPE, L4 only when not a later fragment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

from odp._cache import ComputeCache
from odp._codegen import define
from odp.constants import (
    DP_MAX_PORTS,
    ETH_P_802_2,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_RARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    KeyAttrType,
    TunnelFlag,
)
from odp.errors import NotSupported
from odp.fields import Masked
from odp.keys import (
    Arp,
    CtLabels,
    CtMark,
    CtState,
    CtTupleIpv4,
    CtTupleIpv6,
    CtZone,
    DpHash,
    Encap,
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
    Mpls,
    Nd,
    Nsh,
    Priority,
    RecircId,
    Sctp,
    SkbMark,
    Tcp,
    TcpFlags,
    Tunnel,
    Udp,
    UnknownKeyAttr,
    Vlan,
)
from odp.validate import swkey as sk

AF_INET = 2
AF_INET6 = 10
MAC_PROTO_ETHERNET = 0
MAC_PROTO_NONE = 1


def _is_vlan_type(eth_type: int) -> bool:
    return eth_type in (ETH_P_8021Q, ETH_P_8021AD)


class SwMatch(NamedTuple):
    """A flow's key and mask as the flow table stores them.

    (A NamedTuple: built once per flow install, where a frozen dataclass's
    ``__init__`` costs four times as much.)
    """

    key: int
    mask: int

    @property
    def masked_key(self) -> int:
        return self.key & self.mask


class _Builder:
    """Accumulates field values into a key int and a mask int.

    Fields are OR'ed in: a validated match sets each field at most once (the
    kernel refuses duplicate and unexpected attributes before this runs).
    """

    __slots__ = ("key", "mask")

    def __init__(self, key: int = 0, mask: int = 0) -> None:
        self.key = key
        self.mask = mask

    def put(self, name: str, m: Masked) -> None:
        shift, width = sk.GEOMETRY[name]
        full = (1 << width) - 1
        self.key |= (m.value & full) << shift
        self.mask |= (m.mask & full) << shift

    def put_key(self, name: str, value: int) -> None:
        shift, width = sk.GEOMETRY[name]
        self.key |= (value & ((1 << width) - 1)) << shift

    def put_mask(self, name: str, value: int) -> None:
        shift, width = sk.GEOMETRY[name]
        self.mask |= (value & ((1 << width) - 1)) << shift


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


def _compile_fixed(cls: type[FixedKeyAttr]) -> Callable[[FixedKeyAttr], tuple[int, int]]:
    """A function turning a ``cls`` attribute into its (key bits, mask bits)."""
    key_terms, mask_terms = _fixed_terms(cls, "a")
    source = f"def convert(a):\n    return ({' | '.join(key_terms)}, {' | '.join(mask_terms)})\n"
    return cast(Callable[[FixedKeyAttr], tuple[int, int]], define(source, {})["convert"])


_CONVERT: dict[type[KeyAttr], Callable[[Any], tuple[int, int]]] = {cls: _compile_fixed(cls) for cls in _FIXED_FIELDS}


_TUNNEL_FIELDS = (
    ("tun_id", "tun_id"),
    ("ipv4_src", "tun_ipv4_src"),
    ("ipv4_dst", "tun_ipv4_dst"),
    ("ipv6_src", "tun_ipv6_src"),
    ("ipv6_dst", "tun_ipv6_dst"),
    ("tos", "tun_tos"),
    ("ttl", "tun_ttl"),
    ("tp_src", "tun_tp_src"),
    ("tp_dst", "tun_tp_dst"),
    ("flags", "tun_flags"),
    ("vxlan_gbp", "tun_gbp"),
)

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
    const_key = 0 if Ethernet in shape else MAC_PROTO_NONE << _SH_MAC_PROTO
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
    return _from_match(match)


def _from_match(match: Match) -> SwMatch:
    """from_match for any shape, one attribute at a time."""
    key = 0
    mask = _BASE_MASK
    in_port: InPort | None = None
    eth_type: EthType | None = None
    has_eth = special = False
    for attr in match.attrs:
        convert = _CONVERT.get(type(attr))
        if convert is not None:
            k, m = convert(attr)
            key |= k
            mask |= m
            if type(attr) is Ethernet:
                has_eth = True
        elif type(attr) is InPort:
            in_port = attr
        elif type(attr) is EthType:
            eth_type = attr
        elif isinstance(attr, (UnknownKeyAttr, Nsh)):
            raise NotSupported(f"the simulator does not match on {attr.NAME}")
        else:
            special = True
    if not has_eth:
        key |= MAC_PROTO_NONE << _SH_MAC_PROTO  # else MAC_PROTO_ETHERNET, 0
    # Metadata (metadata_from_nlattrs): a flow without in_port has the
    # out-of-range port in its key; an in_port mask is always exact.
    if in_port is None:
        key |= DP_MAX_PORTS << _SH_IN_PORT
    else:
        key |= (in_port.port.value & 0xFFFF) << _SH_IN_PORT
        if in_port.port.mask:
            mask |= _MASK_IN_PORT
    if special:
        b = _Builder(key, mask)
        _put_special(b, match.attrs, has_eth=has_eth)
        key, mask = b.key, b.mask
    elif eth_type is not None:
        key |= (eth_type.value.value & 0xFFFF) << _SH_ETH_TYPE
        if eth_type.value.mask:
            mask |= _MASK_ETH_TYPE  # always exact
    elif has_eth:
        key |= ETH_P_802_2 << _SH_ETH_TYPE  # Ethernet without an ethertype: 802.2
    for mo in match.mask_only:
        if isinstance(mo, EthType) and mo.value.mask:
            mask |= _MASK_ETH_TYPE
    return SwMatch(key, mask)


def _put_special(b: _Builder, attrs: tuple[KeyAttr, ...], has_eth: bool) -> None:
    by_type = {a.TYPE: a for a in attrs}
    tunnel = cast(Tunnel | None, by_type.get(KeyAttrType.TUNNEL))
    if tunnel is not None:
        _put_tunnel(b, tunnel)
    _put_l2_onward(b, by_type, depth=0, has_eth=has_eth)


def _put_tunnel(b: _Builder, t: Tunnel) -> None:
    # The kernel keeps Geneve and ERSPAN options in sw_flow_key.tun_opts (and
    # their length in tun_opts_len, which a flow with options always matches):
    # swkey has no such fields, so such a flow is refused rather than matched
    # as if it had no options.
    for name, opts in (("geneve", t.geneve), ("erspan", t.erspan)):
        if opts is not None:
            raise NotSupported(f"the simulator does not match on tunnel {name} options (tunnel.{name})")
    for attr_name, sw_name in _TUNNEL_FIELDS:
        b.put(sw_name, cast(Masked, getattr(t, attr_name)))
    ipv6 = bool(t.ipv6_src.value or t.ipv6_dst.value or t.ipv6_src.mask or t.ipv6_dst.mask)
    b.put_key("tun_proto", AF_INET6 if ipv6 else AF_INET)
    if not t.is_wildcard():
        b.put_mask("tun_proto", 0xFF)


def _put_l2_onward(b: _Builder, by_type: dict[int, KeyAttr], depth: int, has_eth: bool) -> None:
    """MPLS, VLAN nesting and the ethertype of one level (fixed attributes are done)."""
    mpls = by_type.get(KeyAttrType.MPLS)
    if isinstance(mpls, Mpls):
        for i, lse in enumerate(mpls.lses[:3]):
            b.put(f"mpls_lse{i}", lse)
        b.put_key("mpls_labels", (1 << len(mpls.lses)) - 1)
        b.put_mask("mpls_labels", (1 << len(mpls.lses)) - 1 if not mpls.is_wildcard() else 0)
    eth_type = cast(EthType | None, by_type.get(KeyAttrType.ETHERTYPE))
    vlan = cast(Vlan | None, by_type.get(KeyAttrType.VLAN))
    encap = cast(Encap | None, by_type.get(KeyAttrType.ENCAP))
    if vlan is not None:
        tci_name, tpid_name = ("vlan_tci", "vlan_tpid") if depth == 0 else ("cvlan_tci", "cvlan_tpid")
        # The TCI masks start exact (_BASE_MASK); a vlan() attribute sets its own.
        b.mask &= ~sk.field_mask(tci_name)
        b.put_key(tci_name, vlan.tci.value)
        b.put_mask(tci_name, vlan.tci.mask if vlan.tci.mask else 0xFFFF)
        if eth_type is not None:
            b.put_key(tpid_name, eth_type.value.value)
            if eth_type.value.mask:
                b.put_mask(tpid_name, 0xFFFF)
        if encap is not None:
            inner = {a.TYPE: a for a in encap.attrs}
            for attr in encap.attrs:
                convert = _CONVERT.get(type(attr))
                if convert is not None:
                    k, m = convert(attr)
                    b.key |= k
                    b.mask |= m
            _put_l2_onward(b, inner, depth + 1, has_eth=False)
        return
    if eth_type is not None:
        b.put_key("eth_type", eth_type.value.value)
        if eth_type.value.mask:
            b.mask |= _MASK_ETH_TYPE  # always exact
    elif depth == 0 and has_eth:
        b.put_key("eth_type", ETH_P_802_2)


# ---------------------------------------------------------------------------
# ovs_nla_put_key: what the kernel reports.
# ---------------------------------------------------------------------------

# Reported attributes as (type, payload); payloads are tuples of ints for
# fixed attributes, a list for ENCAP, a dict for TUNNEL, a tuple for MPLS.
_Reported = list[tuple[int, object]]


def _g(key: int, name: str) -> int:
    return sk.get(key, name)


def _fixed_values(cls: type[FixedKeyAttr], output: int) -> tuple[int, ...]:
    return tuple(_g(output, n) for n in _FIXED_FIELDS[cls])


def put_key(swkey: int, output: int, is_mask: bool) -> _Reported:
    """The attributes __ovs_nla_put_key emits: decisions from ``swkey``, values from ``output``."""
    out: _Reported = []
    out.append((KeyAttrType.RECIRC_ID, (_g(output, "recirc_id"),)))
    out.append((KeyAttrType.DP_HASH, (_g(output, "dp_hash"),)))
    out.append((KeyAttrType.PRIORITY, (_g(output, "priority"),)))
    tun_proto = _g(swkey, "tun_proto")
    if tun_proto or is_mask:
        out.append((KeyAttrType.TUNNEL, _tunnel_values(output, tun_proto)))
    if _g(swkey, "in_port") == DP_MAX_PORTS:
        if is_mask and _g(output, "in_port") == 0xFFFF:
            out.append((KeyAttrType.IN_PORT, (0xFFFFFFFF,)))
    else:
        upper = 0xFFFF0000 if is_mask else 0
        out.append((KeyAttrType.IN_PORT, (upper | _g(output, "in_port"),)))
    out.append((KeyAttrType.SKB_MARK, (_g(output, "skb_mark"),)))
    out.append((KeyAttrType.CT_STATE, (_g(output, "ct_state"),)))
    out.append((KeyAttrType.CT_ZONE, (_g(output, "ct_zone"),)))
    out.append((KeyAttrType.CT_MARK, (_g(output, "ct_mark"),)))
    out.append((KeyAttrType.CT_LABELS, (_g(output, "ct_labels"),)))
    if _g(swkey, "ct_orig_proto"):
        if _g(swkey, "eth_type") == ETH_P_IP:
            out.append((KeyAttrType.CT_ORIG_TUPLE_IPV4, _ct_tuple(output, v4=True)))
        elif _g(swkey, "eth_type") == ETH_P_IPV6:
            out.append((KeyAttrType.CT_ORIG_TUPLE_IPV6, _ct_tuple(output, v4=False)))
    if _g(swkey, "mac_proto") == MAC_PROTO_ETHERNET:
        out.append((KeyAttrType.ETHERNET, _fixed_values(Ethernet, output)))
        container = out
        if _g(swkey, "vlan_tci") or _is_vlan_type(_g(swkey, "eth_type")):
            _put_vlan(container, output, "vlan", is_mask)
            encap: _Reported = []
            container.append((KeyAttrType.ENCAP, encap))
            container = encap
            if not _g(swkey, "vlan_tci"):
                return out
            if _g(swkey, "cvlan_tci") or _is_vlan_type(_g(swkey, "eth_type")):
                _put_vlan(container, output, "cvlan", is_mask)
                inner: _Reported = []
                container.append((KeyAttrType.ENCAP, inner))
                container = inner
                if not _g(swkey, "cvlan_tci"):
                    return out
        if _g(swkey, "eth_type") == ETH_P_802_2:
            if is_mask and _g(output, "eth_type"):
                container.append((KeyAttrType.ETHERTYPE, (_g(output, "eth_type"),)))
            return out
        _put_l3_l4(container, swkey, output)
        return out
    _put_l3_l4(out, swkey, output)
    return out


def _put_vlan(container: _Reported, output: int, prefix: str, is_mask: bool) -> None:
    tpid = 0xFFFF if is_mask else _g(output, f"{prefix}_tpid")
    container.append((KeyAttrType.ETHERTYPE, (tpid,)))
    container.append((KeyAttrType.VLAN, (_g(output, f"{prefix}_tci"),)))


def _put_l3_l4(container: _Reported, swkey: int, output: int) -> None:
    eth_type = _g(swkey, "eth_type")
    container.append((KeyAttrType.ETHERTYPE, (_g(output, "eth_type"),)))
    if _is_vlan_type(eth_type):
        return  # a third tag: nothing more is known
    if eth_type == ETH_P_IP:
        container.append((KeyAttrType.IPV4, _fixed_values(Ipv4, output)))
    elif eth_type == ETH_P_IPV6:
        container.append((KeyAttrType.IPV6, _fixed_values(Ipv6, output)))
        container.append((KeyAttrType.IPV6_EXTHDRS, (_g(output, "ipv6_exthdrs"),)))
    elif eth_type in (ETH_P_ARP, ETH_P_RARP):
        container.append((KeyAttrType.ARP, _fixed_values(Arp, output)))
    elif eth_type in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        count = bin(_g(swkey, "mpls_labels")).count("1")
        container.append((KeyAttrType.MPLS, tuple(_g(output, f"mpls_lse{i}") for i in range(max(count, 1)))))
    if eth_type in (ETH_P_IP, ETH_P_IPV6) and _g(swkey, "ip_frag") != 2:
        proto = _g(swkey, "ip_proto")
        if proto == IPPROTO_TCP:
            container.append((KeyAttrType.TCP, _fixed_values(Tcp, output)))
            container.append((KeyAttrType.TCP_FLAGS, (_g(output, "tcp_flags"),)))
        elif proto == IPPROTO_UDP:
            container.append((KeyAttrType.UDP, _fixed_values(Udp, output)))
        elif proto == IPPROTO_SCTP:
            container.append((KeyAttrType.SCTP, _fixed_values(Sctp, output)))
        elif eth_type == ETH_P_IP and proto == IPPROTO_ICMP:
            container.append((KeyAttrType.ICMP, _fixed_values(Icmp, output)))
        elif eth_type == ETH_P_IPV6 and proto == IPPROTO_ICMPV6:
            container.append((KeyAttrType.ICMPV6, _fixed_values(Icmpv6, output)))
            if _g(swkey, "tp_src") in (135, 136):
                container.append((KeyAttrType.ND, _fixed_values(Nd, output)))


def _ct_tuple(output: int, v4: bool) -> tuple[int, ...]:
    src, dst = _g(output, "ct_orig_src"), _g(output, "ct_orig_dst")
    if v4:
        src, dst = src & 0xFFFFFFFF, dst & 0xFFFFFFFF
    return (src, dst, _g(output, "ct_orig_tp_src"), _g(output, "ct_orig_tp_dst"), _g(output, "ct_orig_proto"))


def _tunnel_values(output: int, tun_proto: int) -> dict[str, int]:
    """__ip_tun_to_nlattr: which tunnel fields are emitted, and their values."""
    flags = _g(output, "tun_flags")
    values: dict[str, int] = {}
    if flags & TunnelFlag.KEY:
        values["tun_id"] = _g(output, "tun_id")
    if tun_proto == AF_INET:
        for f in ("ipv4_src", "ipv4_dst"):
            v = _g(output, "tun_" + f)
            if v:
                values[f] = v
    elif tun_proto == AF_INET6:
        for f in ("ipv6_src", "ipv6_dst"):
            v = _g(output, "tun_" + f)
            if v:
                values[f] = v
    if _g(output, "tun_tos"):
        values["tos"] = _g(output, "tun_tos")
    values["ttl"] = _g(output, "tun_ttl")
    for f in ("tp_src", "tp_dst"):
        v = _g(output, "tun_" + f)
        if v:
            values[f] = v
    if _g(output, "tun_gbp"):
        values["vxlan_gbp"] = _g(output, "tun_gbp")
    values["flags"] = flags
    return values


_CLASSES: dict[int, type[FixedKeyAttr]] = {
    cls.TYPE: cls
    for cls in (
        RecircId, DpHash, Priority, SkbMark, CtState, CtZone, CtMark, CtLabels, CtTupleIpv4, CtTupleIpv6,
        Ethernet, Ipv4, Ipv6, Ipv6Exthdrs, Arp, Tcp, TcpFlags, Udp, Sctp, Icmp, Icmpv6, Nd, InPort, EthType, Vlan,
    )
}  # fmt: skip


def _tunnel_from(key: dict[str, int] | None, mask: dict[str, int] | None) -> Tunnel:
    kw: dict[str, Any] = {}
    for name, _ in _TUNNEL_FIELDS:
        kv = key.get(name, 0) if key else 0
        mv = mask.get(name, 0) if mask else 0
        kw[name] = Masked(kv, mv)
    return Tunnel(normalize=False, **kw)


def _pair(key: _Reported, mask: _Reported | None) -> tuple[list[KeyAttr], list[KeyAttr]]:
    """Pair reported key and mask attributes into model attributes.

    A key attribute without a mask attribute is wildcarded; ``mask is None``
    means exact on everything reported; a mask attribute alone is mask-only.
    """
    masks = {t: p for t, p in mask} if mask is not None else {}
    attrs: list[KeyAttr] = []
    for t, payload in key:
        mp = masks.pop(t, None)
        if t == KeyAttrType.ENCAP:
            inner_mask = cast(_Reported, mp) if mp is not None else ([] if mask is not None else None)
            inner, _ = _pair(cast(_Reported, payload), inner_mask)
            attrs.append(Encap(*inner))
        elif t == KeyAttrType.TUNNEL:
            kd = cast(dict[str, int], payload)
            md = cast(dict[str, int] | None, mp)
            if mask is None:
                md = {spec.name: spec.kind.full for spec in Tunnel.FIELDS if spec.name in kd}
                md["flags"] = 0xF
            attrs.append(_tunnel_from(kd, md))
        elif t == KeyAttrType.MPLS:
            kl = cast(tuple[int, ...], payload)
            ml = (
                cast(tuple[int, ...], mp)
                if mp is not None
                else (tuple(0xFFFFFFFF for _ in kl) if mask is None else tuple(0 for _ in kl))
            )
            attrs.append(Mpls(*(Masked(k, m) for k, m in zip(kl, ml))))
        else:
            cls = _CLASSES[t]
            kv = cast(tuple[int, ...], payload)
            if mp is not None:
                mv = cast(tuple[int, ...], mp)
            elif mask is None:
                mv = tuple(s.kind.full for s in cls.FIELDS)
            else:
                mv = tuple(0 for _ in kv)
            attrs.append(cls.from_values(kv, mv))
    mask_only: list[KeyAttr] = []
    for t, payload in masks.items():
        if t == KeyAttrType.TUNNEL:
            mask_only.append(_tunnel_from(None, cast(dict[str, int], payload)))
        elif t in _CLASSES:
            cls = _CLASSES[t]
            mv = cast(tuple[int, ...], payload)
            mask_only.append(cls.from_values(tuple(0 for _ in mv), mv))
    return attrs, mask_only


def to_match(key: _Reported, mask: _Reported | None) -> Match:
    attrs, mask_only = _pair(key, mask)
    return Match(*attrs, mask_only=mask_only)


def packet_match(key: int) -> Match:
    """The key of a packet as a MISS upcall reports it (every reported field exact)."""
    return to_match(put_key(key, key, is_mask=False), None)


def flow_match(unmasked_key: int, sw: SwMatch, *, masked_key: bool = False) -> Match:
    """A flow as dumps report it: the original unmasked key (or the masked key for
    UFID flows) with the mask the kernel holds."""
    reported_key = sw.masked_key if masked_key else unmasked_key
    return to_match(put_key(reported_key, reported_key, is_mask=False), put_key(sw.masked_key, sw.mask, is_mask=True))
