"""``ovs_nla_get_match`` (net/openvswitch/flow_netlink.c), transcribed: the key and mask the kernel stores.

Rather than a list of hand-written conditions, the match checks *replay the
kernel's parser*: a :class:`~odp.keys.Match` is turned into the netlink bytes
odp's codec sends (a KEY attribute and a MASK attribute that carries every
attribute's mask, ``Match.mask_only`` attributes only in the mask) and those
bytes go through a Python transcription of ``parse_flow_nlattrs``,
``parse_vlan_from_nlattrs``, ``ovs_key_from_nlattrs`` and ``match_validate``,
filling the ``sw_flow_key`` fields of :mod:`odp.validate.swkey` as the kernel
fills its own.  So the quirks come for free: all-zero mask attributes count as
absent, the VLAN mask code reads the key's attribute when the mask has none, a
mask can only name attributes the key allows, and so on.  The same parse
gives the simulator's flow table its key and mask (:func:`sw_match`).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import odp.validate.swkey as sk
from odp._cache import ComputeCache, last_by_identity
from odp.constants import (
    DP_MAX_PORTS,
    ETH_P_802_2,
    ETH_P_802_3_MIN,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_NSH,
    ETH_P_RARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    VLAN_CFI,
    KeyAttrType,
    TunnelFlag,
)
from odp.errors import FieldError, InvalidFlow
from odp.keys import (
    ALL_ATTR_CLASSES,
    Arp,
    CtLabels,
    CtMark,
    CtTupleIpv4,
    CtTupleIpv6,
    CtZone,
    DpHash,
    Ethernet,
    FixedKeyAttr,
    Icmp,
    Icmpv6,
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
from odp.netlink import codec as _codec

__all__ = ["stored_key_and_mask", "sw_match"]


K = KeyAttrType

# ---------------------------------------------------------------------------
# Constants from the kernel sources.
# ---------------------------------------------------------------------------

_KEY_ATTR_MAX = 32  # OVS_KEY_ATTR_IPV6_EXTHDRS
_NESTED = -1
_VARIABLE = -2

#: ovs_key_lens[]: expected payload length per key attribute (absent: 0).
_KEY_LENS: dict[int, int] = {
    K.ENCAP: _NESTED,
    K.PRIORITY: 4,
    K.IN_PORT: 4,
    K.SKB_MARK: 4,
    K.ETHERNET: 12,
    K.VLAN: 2,
    K.ETHERTYPE: 2,
    K.IPV4: 12,
    K.IPV6: 40,
    K.TCP: 4,
    K.TCP_FLAGS: 2,
    K.UDP: 4,
    K.SCTP: 4,
    K.ICMP: 2,
    K.ICMPV6: 2,
    K.ARP: 24,
    K.ND: 28,
    K.RECIRC_ID: 4,
    K.DP_HASH: 4,
    K.TUNNEL: _NESTED,
    K.MPLS: _VARIABLE,
    K.CT_STATE: 4,
    K.CT_ZONE: 2,
    K.CT_MARK: 4,
    K.CT_LABELS: 16,
    K.CT_ORIG_TUPLE_IPV4: 16,
    K.CT_ORIG_TUPLE_IPV6: 40,
    K.NSH: _NESTED,
    K.IPV6_EXTHDRS: 2,
}

# OVS_TUNNEL_KEY_ATTR_*
_TUN_ID, _TUN_IPV4_SRC, _TUN_IPV4_DST, _TUN_TOS, _TUN_TTL = 0, 1, 2, 3, 4
_TUN_DF, _TUN_CSUM, _TUN_OAM, _TUN_GENEVE, _TUN_TP_SRC, _TUN_TP_DST = 5, 6, 7, 8, 9, 10
_TUN_VXLAN, _TUN_IPV6_SRC, _TUN_IPV6_DST, _TUN_PAD, _TUN_ERSPAN, _TUN_INFO_BRIDGE = 11, 12, 13, 14, 15, 16
_TUN_ATTR_MAX = 16
_TUN_LENS: dict[int, int] = {
    _TUN_ID: 8,
    _TUN_IPV4_SRC: 4,
    _TUN_IPV4_DST: 4,
    _TUN_TOS: 1,
    _TUN_TTL: 1,
    _TUN_TP_SRC: 2,
    _TUN_TP_DST: 2,
    _TUN_GENEVE: _VARIABLE,
    _TUN_VXLAN: _NESTED,
    _TUN_IPV6_SRC: 16,
    _TUN_IPV6_DST: 16,
    _TUN_ERSPAN: _VARIABLE,
}
_TUN_OPTS_MAX = 255  # sizeof(sw_flow_key.tun_opts) == IP_TUNNEL_OPTS_MAX
_ERSPAN_METADATA_LEN = 12  # sizeof(struct erspan_metadata)
_VXLAN_METADATA_LEN = 4  # sizeof(struct vxlan_metadata)
_AF_INET, _AF_INET6 = 2, 10

# Tunnel flags as stored in swkey: odp's TunnelFlag bits plus the kernel's
# option-type flags.
_TF_OAM, _TF_DF, _TF_CSUM, _TF_KEY = int(TunnelFlag.OAM), int(TunnelFlag.DF), int(TunnelFlag.CSUM), int(TunnelFlag.KEY)
_TF_GENEVE, _TF_VXLAN, _TF_ERSPAN = sk.TUN_GENEVE_OPT, sk.TUN_VXLAN_OPT, sk.TUN_ERSPAN_OPT

# NSH (OVS_NSH_KEY_ATTR_*), tun_proto numbers (include/net/tun_proto.h).
_NSH_BASE, _NSH_MD1, _NSH_MD2 = 1, 2, 3
_NSH_CTX_HDRS_MAX_LEN = 248

# swkey's mac_proto (the kernel has MAC_PROTO_NONE 0, MAC_PROTO_ETHERNET 1;
# swkey flips them so that the key of an Ethernet packet stays a small int).
_MAC_PROTO_NONE, _MAC_PROTO_ETHERNET = 1, 0
_FRAG_LATER = 2
_FRAG_MAX = 2
_MPLS_LABEL_DEPTH = 3
_CT_SUPPORTED_MASK = 0xFF
_ND_TYPES = (135, 136)


_OTHER_NAMES = {0: "unspec", 29: "packet_type", 30: "nd_extensions", 31: "tunnel_info"}


def _name(type_: int) -> str:
    cls = ALL_ATTR_CLASSES.get(type_)
    if cls is not None:
        return cls.NAME
    return _OTHER_NAMES.get(type_, f"key{type_}")


def _bit(type_: int) -> int:
    return 1 << type_


def _is_vlan_type(eth_type: int) -> bool:
    return eth_type in (0x8100, 0x88A8)


def _is_mpls_type(eth_type: int) -> bool:
    return eth_type in (ETH_P_MPLS_UC, ETH_P_MPLS_MC)


def _fail(rule: str, field: str | None, message: str) -> InvalidFlow:
    return InvalidFlow(message, rule=rule, field=field)


# ---------------------------------------------------------------------------
# Netlink bytes.
# ---------------------------------------------------------------------------


def _nla(type_: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, type_) + payload + b"\0" * (-length % 4)


def _nla_parse(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Split a nested payload like nla_for_each_nested; returns (attrs, rem)."""
    out: list[tuple[int, bytes]] = []
    offset, rem = 0, len(data)
    while rem >= 4:
        length, type_ = struct.unpack_from("=HH", data, offset)
        if length < 4 or length > rem:
            break
        out.append((type_ & 0x3FFF, bytes(data[offset + 4 : offset + length])))
        step = (length + 3) & ~3
        offset += step
        rem -= step
    return out, rem


def _be(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _ne(data: bytes) -> int:
    return int.from_bytes(data, sys.byteorder)


# ---------------------------------------------------------------------------
# Model -> the bytes odp's codec sends (odp.netlink.codec).
# ---------------------------------------------------------------------------

_ENCODE_ERRORS = (FieldError, struct.error, OverflowError, ValueError, TypeError, AttributeError)


def _unencodable(attr: object, exc: Exception) -> InvalidFlow:
    name = str(getattr(attr, "NAME", type(attr).__name__))
    return _fail("unencodable", name, f"{name}() cannot be sent to the kernel: {exc}")


def _wire(match: Match) -> tuple[bytes, bytes]:
    """``OVS_FLOW_ATTR_KEY`` and ``OVS_FLOW_ATTR_MASK`` contents, as the codec builds them."""
    try:
        return _codec.encode_key(match), _codec.encode_mask(match)
    except _ENCODE_ERRORS as exc:
        culprit: object = None
        for attr in (*match.attrs, *match.mask_only):
            try:
                _codec.encode_key_attr(attr)
                _codec.encode_key_attr(attr, mask=True)
            except _ENCODE_ERRORS:
                culprit = attr
                break
        if culprit is None:
            key_types = {getattr(a, "TYPE", None) for a in match.attrs}
            twins = [m for m in match.mask_only if getattr(m, "TYPE", None) in key_types]
            culprit = twins[0] if twins else match
        raise _unencodable(culprit, exc) from None


def _attr_payload(attr: KeyAttr, mask: bool = False) -> bytes:
    """The payload (no header) of one attribute as the codec encodes it."""
    data = _codec.encode_key_attr(attr, mask=mask)
    items, _ = _nla_parse(data)
    return items[0][1] if items else b""


# ---------------------------------------------------------------------------
# The simulated sw_flow_key.
# ---------------------------------------------------------------------------

#: The kernel's sw_flow_key as a dict of swkey fields (odp.validate.swkey):
#: the parser below fills it field by field as the kernel's SW_FLOW_KEY_PUT
#: does, and sw_match() packs it into the ints the flow table stores.
SwKey = dict[str, int]


_BLANK: SwKey = dict.fromkeys(sk.NAMES, 0)


def _blank() -> SwKey:
    return _BLANK.copy()


def _put_bits(word: int, shift: int, width: int, value: int) -> int:
    full = ((1 << width) - 1) << shift
    return (word & ~full) | ((value << shift) & full)


def _put_opts(sw: SwKey, data: bytes) -> None:
    """SW_FLOW_KEY_MEMCPY_OFFSET at TUN_METADATA_OFFSET(len): the last len bytes."""
    width = 8 * len(data)
    sw["tun_opts"] = _put_bits(sw["tun_opts"], 0, width, _be(data))


def _get_opts(sw: Mapping[str, int], length: int) -> bytes:
    return (sw["tun_opts"] & ((1 << (8 * length)) - 1)).to_bytes(length, "big")


def _fixed_values(cls: type[FixedKeyAttr], payload: bytes) -> tuple[int, ...]:
    """The fields of a fixed-size attribute's payload, as ints (byte strings big-endian)."""
    return tuple(_be(v) if isinstance(v, bytes) else v for v in struct.unpack(cls.FORMAT, payload))


def _store_values(sw: SwKey, cls: type[FixedKeyAttr], values: tuple[int, ...]) -> None:
    """SW_FLOW_KEY_PUT of each field into the swkey field it is declared to live
    in, cut to that field's width (the kernel keeps the ARP op in a u8)."""
    for (name, full), value in zip(_SW_SLOTS[cls], values):
        sw[name] = value & full


def _sw_slots(cls: type[FixedKeyAttr]) -> tuple[tuple[str, int], ...]:
    """(swkey field, all-ones of its width) for each field of ``cls``."""
    return tuple((name, (1 << sk.GEOMETRY[name][1]) - 1) for name in (cast(str, s.sw) for s in cls.FIELDS))


_SW_SLOTS: ComputeCache[type[FixedKeyAttr], tuple[tuple[str, int], ...]] = ComputeCache(_sw_slots, 64)


def _store(sw: SwKey, cls: type[FixedKeyAttr], payload: bytes) -> None:
    _store_values(sw, cls, _fixed_values(cls, payload))


def _masked(key: SwKey, mask: SwKey) -> SwKey:
    return {name: key[name] & mask[name] for name in sk.NAMES}


# ---------------------------------------------------------------------------
# ovs_nla_get_match, transcribed.
# ---------------------------------------------------------------------------


@dataclass
class _Parsed:
    key: SwKey
    mask: SwKey
    key_attrs: int
    mask_attrs: int


def _parse_flow_nlattrs(data: bytes, a: dict[int, bytes], attrs: int, nz: bool, where: str) -> int:
    items, rem = _nla_parse(data)
    for type_, payload in items:
        name = _name(type_)
        if type_ > _KEY_ATTR_MAX:
            raise _fail(
                "unknown-key-attr", name, f"{where} attribute {name} (type {type_}) is unknown: the maximum type is 32"
            )
        if type_ in (K.PACKET_TYPE, K.ND_EXTENSIONS, K.TUNNEL_INFO):
            raise _fail("unsupported-key-attr", name, f"{name} is a userspace/internal attribute the kernel refuses")
        if attrs & _bit(type_):
            raise _fail("duplicate-key-attr", name, f"{name}() appears twice in the {where}")
        expected = _KEY_LENS.get(type_, 0)
        if expected >= 0 and len(payload) != expected:
            raise _fail(
                "bad-attr-length", name, f"{where} attribute {name} is {len(payload)} bytes, expected {expected}"
            )
        if not nz or any(payload):
            attrs |= _bit(type_)
            a[type_] = payload
    if rem:
        raise _fail("trailing-bytes", None, f"the {where} has {rem} bytes that are not an attribute")
    return attrs


def _validate_vlan(key: SwKey, attrs: int, inner: bool, a: dict[int, bytes]) -> bool:
    what = "inner vlan" if inner else "vlan"
    if not (attrs & _bit(K.ETHERNET) and attrs & _bit(K.ETHERTYPE) and _is_vlan_type(_be(a[K.ETHERTYPE]))):
        return False
    if not (attrs & _bit(K.VLAN) and attrs & _bit(K.ENCAP)):
        raise _fail(
            "vlan-needs-vlan-and-encap",
            "vlan",
            f"eth_type 0x{_be(a[K.ETHERTYPE]):04x} ({what} tag) needs both a vlan() and an encap() attribute",
        )
    tci = _be(a[K.VLAN])
    if not tci & VLAN_CFI:
        if tci:
            raise _fail(
                "vlan-tci-without-cfi",
                "vlan",
                f"{what} tci 0x{tci:04x} lacks the CFI bit 0x1000 (only tci 0 with an empty encap() may omit it)",
            )
        if a[K.ENCAP]:
            raise _fail(
                "truncated-vlan-nonempty-encap", "encap", f"a truncated {what} tag (tci 0) needs an empty encap()"
            )
    return True


def _validate_vlan_mask(key: SwKey, attrs: int, inner: bool, a: dict[int, bytes]) -> bool:
    what = "inner vlan" if inner else "vlan"
    if not attrs & _bit(K.ENCAP):
        return False
    valid = key["cvlan_tci" if inner else "vlan_tci"] & VLAN_CFI
    if not valid:
        raise _fail("vlan-mask-for-untagged", "encap", f"encap() has a mask but the key's {what} tci lacks CFI")
    tci = _be(a[K.VLAN]) if K.VLAN in a else 0
    tpid = _be(a[K.ETHERTYPE]) if K.ETHERTYPE in a else 0
    if tpid != 0xFFFF:
        raise _fail("vlan-tpid-mask-not-exact", "eth_type", f"the {what} tag's eth_type (TPID) must be matched exactly")
    if not tci & VLAN_CFI:
        raise _fail("vlan-tci-mask-without-cfi", "vlan", f"the {what} tci mask must include the CFI bit 0x1000")
    return True


def _parse_vlan_level(sw: SwKey, key: SwKey, attrs: int, a: dict[int, bytes], is_mask: bool, inner: bool) -> int:
    ok = _validate_vlan_mask(key, attrs, inner, a) if is_mask else _validate_vlan(key, attrs, inner, a)
    if not ok:
        return attrs
    tci = _be(a[K.VLAN]) if K.VLAN in a else 0
    tpid = _be(a[K.ETHERTYPE]) if K.ETHERTYPE in a else 0
    prefix = "cvlan" if inner else "vlan"
    sw[prefix + "_tpid"] = tpid
    sw[prefix + "_tci"] = tci
    attrs &= ~(_bit(K.ENCAP) | _bit(K.VLAN) | _bit(K.ETHERTYPE))
    return _parse_flow_nlattrs(a[K.ENCAP], a, attrs, is_mask, "mask" if is_mask else "key")


def _parse_vlan(sw: SwKey, key: SwKey, attrs: int, a: dict[int, bytes], is_mask: bool) -> int:
    attrs = _parse_vlan_level(sw, key, attrs, a, is_mask, inner=False)
    if key["vlan_tci"] & VLAN_CFI:
        attrs = _parse_vlan_level(sw, key, attrs, a, is_mask, inner=True)
    return attrs


def _ip_tun_from_nlattr(data: bytes, sw: SwKey, key: SwKey, is_mask: bool) -> int:
    """ip_tun_from_nlattr: returns the options type (0, geneve, vxlan or erspan)."""
    ttl = ipv4 = ipv6 = bridge = False
    flags = 0
    opts_type = 0
    items, rem = _nla_parse(data)
    for type_, payload in items:
        if type_ > _TUN_ATTR_MAX:
            raise _fail("tunnel-attr-unknown", "tunnel", f"tunnel() sub-attribute {type_} is unknown (maximum 16)")
        expected = _TUN_LENS.get(type_, 0)
        if expected >= 0 and len(payload) != expected:
            raise _fail(
                "tunnel-attr-length",
                "tunnel",
                f"tunnel() sub-attribute {type_} is {len(payload)} bytes, expected {expected}",
            )
        if type_ == _TUN_ID:
            sw["tun_id"] = _be(payload)
            flags |= _TF_KEY
        elif type_ == _TUN_IPV4_SRC:
            sw["tun_ipv4_src"] = _be(payload)
            ipv4 = True
        elif type_ == _TUN_IPV4_DST:
            sw["tun_ipv4_dst"] = _be(payload)
            ipv4 = True
        elif type_ == _TUN_IPV6_SRC:
            sw["tun_ipv6_src"] = _be(payload)
            ipv6 = True
        elif type_ == _TUN_IPV6_DST:
            sw["tun_ipv6_dst"] = _be(payload)
            ipv6 = True
        elif type_ == _TUN_TOS:
            sw["tun_tos"] = payload[0]
        elif type_ == _TUN_TTL:
            sw["tun_ttl"] = payload[0]
            ttl = True
        elif type_ == _TUN_DF:
            flags |= _TF_DF
        elif type_ == _TUN_CSUM:
            flags |= _TF_CSUM
        elif type_ == _TUN_TP_SRC:
            sw["tun_tp_src"] = _be(payload)
        elif type_ == _TUN_TP_DST:
            sw["tun_tp_dst"] = _be(payload)
        elif type_ == _TUN_OAM:
            flags |= _TF_OAM
        elif type_ in (_TUN_GENEVE, _TUN_VXLAN, _TUN_ERSPAN):
            if opts_type:
                raise _fail(
                    "tunnel-multiple-options",
                    "tunnel",
                    "a tunnel may carry only one of geneve, vxlan and erspan options",
                )
            if type_ == _TUN_GENEVE:
                _geneve_from_nlattr(payload, sw, key, is_mask)
                flags |= _TF_GENEVE
            elif type_ == _TUN_VXLAN:
                _vxlan_from_nlattr(payload, sw, is_mask)
                flags |= _TF_VXLAN
            else:
                if len(payload) > _TUN_OPTS_MAX:
                    raise _fail(
                        "tunnel-options-length",
                        "tunnel",
                        f"tunnel() erspan options are {len(payload)} bytes, at most 255",
                    )
                sw["tun_opts_len"] = 0xFF if is_mask else _ERSPAN_METADATA_LEN
                _put_opts(sw, payload)
                flags |= _TF_ERSPAN
            opts_type = type_
        elif type_ == _TUN_PAD:
            pass
        elif type_ == _TUN_INFO_BRIDGE:
            bridge = True
            ipv4 = True
        else:  # pragma: no cover - every type up to the maximum is handled above
            raise _fail("tunnel-attr-unknown", "tunnel", f"tunnel sub-attribute {type_} is unknown")
    sw["tun_flags"] = flags
    sw["tun_proto"] = 0xFF if is_mask else (_AF_INET6 if ipv6 else _AF_INET)
    if rem > 0:
        raise _fail("trailing-bytes", "tunnel", f"the tunnel attribute has {rem} bytes that are not an attribute")
    if ipv4 and ipv6:
        raise _fail("tunnel-mixed-families", "tunnel", "a tunnel cannot have both IPv4 and IPv6 addresses")
    if not is_mask:
        if not ipv4 and not ipv6:
            raise _fail("tunnel-needs-dst", "tunnel", "tunnel() needs a destination address (dst or ipv6_dst)")
        if ipv4:
            if bridge:
                if (
                    sw["tun_ipv4_src"]
                    or sw["tun_ipv4_dst"]
                    or sw["tun_tp_src"]
                    or sw["tun_tp_dst"]
                    or sw["tun_ttl"]
                    or sw["tun_tos"]
                    or flags & ~_TF_KEY
                ):
                    raise _fail(
                        "tunnel-bridge-info", "tunnel", "tunnel() in IPv4 bridge-info mode may only carry tun_id"
                    )
            elif not sw["tun_ipv4_dst"]:
                raise _fail("tunnel-dst-zero", "tunnel", "tunnel() destination address dst is 0.0.0.0")
        if ipv6 and not sw["tun_ipv6_dst"]:
            raise _fail("tunnel-dst-zero", "tunnel", "tunnel() destination address ipv6_dst is ::")
        if not ttl and not bridge:
            raise _fail("tunnel-needs-ttl", "tunnel", "tunnel() needs a ttl")
    return opts_type


def _geneve_from_nlattr(payload: bytes, sw: SwKey, key: SwKey, is_mask: bool) -> None:
    if len(payload) > _TUN_OPTS_MAX:
        raise _fail("geneve-options-length", "tunnel", f"tunnel() geneve options are {len(payload)} bytes, at most 255")
    if len(payload) % 4:
        raise _fail(
            "geneve-options-length", "tunnel", f"tunnel() geneve options are {len(payload)} bytes, not a multiple of 4"
        )
    if not is_mask:
        sw["tun_opts_len"] = len(payload)
    else:
        if key["tun_opts_len"] != len(payload):
            raise _fail(
                "geneve-mask-length",
                "tunnel",
                f"tunnel() geneve options mask is {len(payload)} bytes but the key's options are {key['tun_opts_len']}",
            )
        sw["tun_opts_len"] = 0xFF
    _put_opts(sw, payload)


def _vxlan_from_nlattr(payload: bytes, sw: SwKey, is_mask: bool) -> None:
    gbp = 0
    items, rem = _nla_parse(payload)
    for type_, data in items:
        if type_ > 1:
            raise _fail("vxlan-options", "tunnel", f"tunnel() vxlan extension {type_} is unknown (maximum 1)")
        if len(data) != (4 if type_ == 1 else 0):
            raise _fail("vxlan-options", "tunnel", f"tunnel() vxlan extension {type_} has a wrong length {len(data)}")
        if type_ != 1:
            raise _fail("vxlan-options", "tunnel", f"tunnel() vxlan extension {type_} is unknown")
        gbp = struct.unpack("=I", data)[0]
    if rem:
        raise _fail("trailing-bytes", "tunnel", "tunnel() vxlan options have bytes that are not an attribute")
    sw["tun_opts_len"] = 0xFF if is_mask else _VXLAN_METADATA_LEN
    _put_opts(sw, struct.pack("=I", gbp))


def _nsh_key_put(data: bytes, sw: SwKey | None, is_mask: bool, is_push: bool) -> None:
    """nsh_key_put_from_nlattr (raises instead of returning an error)."""
    has_base = has_md1 = has_md2 = False
    mdtype = 0
    items, rem = _nla_parse(data)
    lens = {0: 0, _NSH_BASE: 8, _NSH_MD1: 16, _NSH_MD2: _VARIABLE}
    for type_, payload in items:
        if type_ > _NSH_MD2:
            raise _fail("nsh-attr", "nsh", f"nsh sub-attribute {type_} is unknown (maximum 3)")
        if lens[type_] >= 0 and len(payload) != lens[type_]:
            raise _fail("nsh-attr", "nsh", f"nsh sub-attribute {type_} is {len(payload)} bytes, expected {lens[type_]}")
        if type_ == _NSH_BASE:
            has_base = True
            flags, ttl, mdtype, np, path_hdr = struct.unpack("!BBBBI", payload)
            if sw is not None:
                sw.update(nsh_flags=flags, nsh_ttl=ttl, nsh_mdtype=mdtype, nsh_np=np, nsh_path_hdr=path_hdr)
        elif type_ == _NSH_MD1:
            has_md1 = True
            if sw is not None:
                for i, c in enumerate(struct.unpack("!IIII", payload)):
                    sw[f"nsh_c{i + 1}"] = c
        elif type_ == _NSH_MD2:
            if not is_push:
                raise _fail("nsh-md2-unsupported", "nsh", "nsh() with MD type 2 metadata is not supported in a key")
            has_md2 = True
            if not 0 < len(payload) <= _NSH_CTX_HDRS_MAX_LEN:
                raise _fail("nsh-attr", "nsh", f"nsh MD2 metadata is {len(payload)} bytes, must be 1..248")
        else:
            raise _fail("nsh-attr", "nsh", f"nsh sub-attribute {type_} is unknown")
    if rem > 0:
        raise _fail("trailing-bytes", "nsh", "the nsh attribute has bytes that are not an attribute")
    if has_md1 and has_md2:
        raise _fail("nsh-md1-md2", "nsh", "nsh() cannot carry both MD1 and MD2 metadata")
    if not is_mask:
        if (has_md1 and mdtype != 1) or (has_md2 and mdtype != 2):
            raise _fail("nsh-mdtype-mismatch", "nsh", f"nsh() mdtype {mdtype} does not match its metadata")
        if is_push and (not has_base or (not has_md1 and not has_md2)):
            raise _fail("nsh-incomplete", "nsh", "push_nsh needs the nsh base header and MD1 or MD2 metadata")


def _parse_eth_type(sw: SwKey, attrs: int, a: dict[int, bytes], is_mask: bool) -> int:
    eth_type = _be(a[K.ETHERTYPE])
    if is_mask:
        eth_type = 0xFFFF
    elif eth_type < ETH_P_802_3_MIN:
        raise _fail(
            "eth-type-below-0x600",
            "eth_type",
            f"eth_type 0x{eth_type:04x} is below 0x0600 (802.3 lengths are written as no eth_type)",
        )
    sw["eth_type"] = eth_type
    return attrs & ~_bit(K.ETHERTYPE)


def _metadata_from_nlattrs(sw: SwKey, key: SwKey, attrs: int, a: dict[int, bytes], is_mask: bool) -> int:
    for cls in (DpHash, RecircId, Priority):
        if attrs & _bit(cls.TYPE):
            _store(sw, cls, a[cls.TYPE])
            attrs &= ~_bit(cls.TYPE)
    if attrs & _bit(K.IN_PORT):
        in_port = _ne(a[K.IN_PORT])
        if is_mask:
            in_port = 0xFFFFFFFF
        elif in_port >= DP_MAX_PORTS:
            raise _fail("in-port-range", "in_port", f"in_port {in_port} exceeds the maximum port {DP_MAX_PORTS - 1}")
        sw["in_port"] = in_port & 0xFFFF
        attrs &= ~_bit(K.IN_PORT)
    elif not is_mask:
        sw["in_port"] = DP_MAX_PORTS
    if attrs & _bit(K.SKB_MARK):
        _store(sw, SkbMark, a[K.SKB_MARK])
        attrs &= ~_bit(K.SKB_MARK)
    if attrs & _bit(K.TUNNEL):
        _ip_tun_from_nlattr(a[K.TUNNEL], sw, key, is_mask)
        attrs &= ~_bit(K.TUNNEL)
    if attrs & _bit(K.CT_STATE):
        ct_state = _ne(a[K.CT_STATE])
        if ct_state & ~_CT_SUPPORTED_MASK:
            raise _fail(
                "ct-state-flags",
                "ct_state",
                f"ct_state {'mask' if is_mask else 'value'} 0x{ct_state:08x} has bits beyond"
                " the 8 conntrack flags (0xff)",
            )
        sw["ct_state"] = ct_state
        attrs &= ~_bit(K.CT_STATE)
    for ct in (CtZone, CtMark, CtLabels, CtTupleIpv4, CtTupleIpv6):
        if attrs & _bit(ct.TYPE):
            _store(sw, ct, a[ct.TYPE])
            attrs &= ~_bit(ct.TYPE)
    mac_proto = _MAC_PROTO_ETHERNET
    if not attrs & _bit(K.ETHERNET) and attrs & _bit(K.ETHERTYPE):
        mac_proto = _MAC_PROTO_NONE
    sw["mac_proto"] = 0xFF if is_mask else mac_proto
    if mac_proto == _MAC_PROTO_NONE:
        attrs = _parse_eth_type(sw, attrs, a, is_mask)
    return attrs


def _key_from_nlattrs(sw: SwKey, key: SwKey, attrs: int, a: dict[int, bytes], is_mask: bool) -> None:
    """ovs_key_from_nlattrs."""
    attrs = _metadata_from_nlattrs(sw, key, attrs, a, is_mask)
    if attrs & _bit(K.ETHERNET):
        _store(sw, Ethernet, a[K.ETHERNET])
        attrs &= ~_bit(K.ETHERNET)
        if attrs & _bit(K.VLAN):
            raise _fail(
                "vlan-unexpected",
                "vlan",
                "vlan() is only valid after eth_type 0x8100/0x88a8 with an encap()"
                + (" (and its mask needs an encap() mask)" if is_mask else ""),
            )
        if attrs & _bit(K.ETHERTYPE):
            attrs = _parse_eth_type(sw, attrs, a, is_mask)
        elif not is_mask:
            sw["eth_type"] = ETH_P_802_2
    elif not key["eth_type"]:
        raise _fail("no-eth-or-eth-type", "eth", "a flow key needs eth() or eth_type()")
    if attrs & _bit(K.IPV4):
        *_, frag = values = _fixed_values(Ipv4, a[K.IPV4])
        if not is_mask and frag > _FRAG_MAX:
            raise _fail("frag-range", "ipv4", f"ipv4 frag {frag} is out of range (no=0, first=1, later=2)")
        _store_values(sw, Ipv4, values)
        attrs &= ~_bit(K.IPV4)
    if attrs & _bit(K.IPV6):
        _, _, label, _, _, _, frag = values = _fixed_values(Ipv6, a[K.IPV6])
        if not is_mask and frag > _FRAG_MAX:
            raise _fail("frag-range", "ipv6", f"ipv6 frag {frag} is out of range (no=0, first=1, later=2)")
        if not is_mask and label & 0xFFF00000:
            raise _fail("ipv6-label-range", "ipv6", f"ipv6 label 0x{label:x} does not fit in 20 bits")
        _store_values(sw, Ipv6, values)
        attrs &= ~_bit(K.IPV6)
    if attrs & _bit(K.IPV6_EXTHDRS):
        _store(sw, Ipv6Exthdrs, a[K.IPV6_EXTHDRS])
        attrs &= ~_bit(K.IPV6_EXTHDRS)
    if attrs & _bit(K.ARP):
        _, _, op, _, _ = values = _fixed_values(Arp, a[K.ARP])
        if not is_mask and op & 0xFF00:
            raise _fail("arp-op-range", "arp", f"arp op {op} is above 255")
        # The kernel keeps the op in ip.proto (8 bits); swkey has arp_op, as wide.
        _store_values(sw, Arp, values)
        attrs &= ~_bit(K.ARP)
    if attrs & _bit(K.NSH):
        _nsh_key_put(a[K.NSH], sw, is_mask, False)
        attrs &= ~_bit(K.NSH)
    if attrs & _bit(K.MPLS):
        data = a[K.MPLS]
        count = len(data) // 4
        if count == 0 or count > _MPLS_LABEL_DEPTH or len(data) % 4:
            raise _fail(
                "mpls-label-count", "mpls", f"mpls() carries {len(data)} bytes: 1 to 3 label stack entries are allowed"
            )
        for i in range(count):
            sw[f"mpls_lse{i}"] = _be(data[4 * i : 4 * i + 4])
        sw["mpls_labels"] = (1 << count) - 1
        attrs &= ~_bit(K.MPLS)
    for cls in (Tcp, TcpFlags, Udp, Sctp, Icmp, Icmpv6, Nd):
        if attrs & _bit(cls.TYPE):
            _store(sw, cls, a[cls.TYPE])
            attrs &= ~_bit(cls.TYPE)
    if attrs:
        leftover = min(t for t in range(_KEY_ATTR_MAX + 1) if attrs & _bit(t))
        if leftover == K.VLAN:
            raise _fail(
                "vlan-unexpected",
                "vlan",
                "vlan() is only valid after eth() and eth_type 0x8100/0x88a8 with an encap()"
                + (" (and its mask needs an encap() mask)" if is_mask else ""),
            )
        if leftover == K.ENCAP:
            raise _fail("encap-without-vlan", "encap", "encap() is only valid after eth_type 0x8100/0x88a8 and vlan()")
        raise _fail("unknown-key-attr", _name(leftover), f"key attribute {_name(leftover)} is not understood")


_L3_L4_BITS = sum(
    _bit(t)
    for t in (
        K.IPV4, K.CT_ORIG_TUPLE_IPV4, K.IPV6, K.CT_ORIG_TUPLE_IPV6, K.TCP, K.TCP_FLAGS, K.UDP, K.SCTP,
        K.ICMP, K.ICMPV6, K.ARP, K.ND, K.MPLS, K.NSH,
    )
)  # fmt: skip
_L4_PROTO: dict[int, int] = {K.TCP: IPPROTO_TCP, K.TCP_FLAGS: IPPROTO_TCP, K.UDP: IPPROTO_UDP, K.SCTP: IPPROTO_SCTP}


def _match_validate(key: SwKey, mask: SwKey, key_attrs: int, mask_attrs: int) -> None:
    key_expected = 0
    mask_allowed = key_attrs & ~_L3_L4_BITS
    mask_allowed |= _bit(K.TUNNEL) | _bit(K.IN_PORT) | _bit(K.ETHERTYPE)
    eth_type = key["eth_type"]
    et_exact = mask["eth_type"] == 0xFFFF
    proto_exact = mask["ip_proto"] == 0xFF
    if eth_type in (ETH_P_ARP, ETH_P_RARP):
        key_expected |= _bit(K.ARP)
        if et_exact:
            mask_allowed |= _bit(K.ARP)
    if _is_mpls_type(eth_type):
        key_expected |= _bit(K.MPLS)
        if et_exact:
            mask_allowed |= _bit(K.MPLS)
    if eth_type in (ETH_P_IP, ETH_P_IPV6):
        v4 = eth_type == ETH_P_IP
        key_expected |= _bit(K.IPV4 if v4 else K.IPV6)
        if et_exact:
            mask_allowed |= _bit(K.IPV4 if v4 else K.IPV6)
            mask_allowed |= _bit(K.CT_ORIG_TUPLE_IPV4 if v4 else K.CT_ORIG_TUPLE_IPV6)
        if key["ip_frag"] != _FRAG_LATER:
            proto = key["ip_proto"]
            l4 = {IPPROTO_UDP: (K.UDP,), IPPROTO_SCTP: (K.SCTP,), IPPROTO_TCP: (K.TCP, K.TCP_FLAGS)}.get(proto, ())
            if proto == (IPPROTO_ICMP if v4 else IPPROTO_ICMPV6):
                l4 = (K.ICMP if v4 else K.ICMPV6,)
            for t in l4:
                key_expected |= _bit(t)
                if proto_exact:
                    mask_allowed |= _bit(t)
            if not v4 and proto == IPPROTO_ICMPV6 and key["tp_src"] in _ND_TYPES:
                key_expected |= _bit(K.ND)
                mask_allowed &= ~_bit(K.CT_ORIG_TUPLE_IPV6)
                if mask["tp_src"] == 0xFF:
                    mask_allowed |= _bit(K.ND)
    if eth_type == ETH_P_NSH:
        key_expected |= _bit(K.NSH)
        if et_exact:
            mask_allowed |= _bit(K.NSH)
    missing = key_expected & ~key_attrs
    if missing:
        raise _explain_missing(missing, key)
    unexpected = mask_attrs & ~mask_allowed
    if unexpected:
        raise _explain_mask(unexpected, key, mask, key_attrs)


def _l3_name(eth_type: int) -> str:
    return "ipv4" if eth_type == ETH_P_IP else "ipv6"


def _explain_missing(missing: int, key: SwKey) -> InvalidFlow:
    eth_type = key["eth_type"]
    for t in (K.IPV4, K.IPV6, K.ARP, K.MPLS, K.NSH):
        if missing & _bit(t):
            return _fail(
                "missing-l3", _name(t), f"eth_type 0x{eth_type:04x} needs an {_name(t)}() attribute in the key"
            )
    for t in (K.TCP, K.UDP, K.SCTP, K.ICMP, K.ICMPV6, K.TCP_FLAGS):
        if missing & _bit(t):
            return _fail(
                "missing-l4",
                _name(t),
                f"{_l3_name(eth_type)}(proto={key['ip_proto']}) needs a {_name(t)}() attribute in the key"
                " (or frag=later)",
            )
    return _fail("missing-nd", "nd", f"icmpv6(type={key['tp_src']}) needs an nd() attribute in the key")


def _explain_mask(unexpected: int, key: SwKey, mask: SwKey, key_attrs: int) -> InvalidFlow:
    eth_type = key["eth_type"]
    order = [
        K.IPV4, K.IPV6, K.ARP, K.MPLS, K.NSH, K.CT_ORIG_TUPLE_IPV4, K.CT_ORIG_TUPLE_IPV6,
        K.TCP, K.TCP_FLAGS, K.UDP, K.SCTP, K.ICMP, K.ICMPV6, K.ND,
    ]  # fmt: skip
    l3_types = {
        K.IPV4: (ETH_P_IP,),
        K.CT_ORIG_TUPLE_IPV4: (ETH_P_IP,),
        K.IPV6: (ETH_P_IPV6,),
        K.CT_ORIG_TUPLE_IPV6: (ETH_P_IPV6,),
        K.ARP: (ETH_P_ARP, ETH_P_RARP),
        K.MPLS: (ETH_P_MPLS_UC, ETH_P_MPLS_MC),
        K.NSH: (ETH_P_NSH,),
    }
    for t in order:
        if not unexpected & _bit(t):
            continue
        name = _name(t)
        if t in l3_types:
            wanted = l3_types[t]
            if eth_type not in wanted:
                return _fail(
                    "l3-mask-eth-type-mismatch",
                    name,
                    f"{name}() is matched but the key's eth_type is 0x{eth_type:04x}, not "
                    + " or ".join(f"0x{w:04x}" for w in wanted),
                )
            if t == K.CT_ORIG_TUPLE_IPV6 and mask["eth_type"] == 0xFFFF:
                return _fail(
                    "ct-tuple-mask-with-nd", name, "ct_tuple6() cannot be matched in a neighbor discovery (nd) flow"
                )
            return _fail(
                "l3-mask-needs-exact-eth-type", name, f"{name}() needs eth_type(0x{eth_type:04x}) matched exactly"
            )
        if t == K.ND:
            if mask["tp_src"] != 0xFF and key["tp_src"] in _ND_TYPES and key["ip_proto"] == IPPROTO_ICMPV6:
                return _fail(
                    "nd-mask-needs-exact-icmpv6-type", name, "nd() needs icmpv6(type=135 or 136) matched exactly"
                )
            return _fail(
                "nd-mask-without-nd-type",
                name,
                "nd() is matched but the key is not ICMPv6 neighbor discovery (ipv6 proto 58, icmpv6 type 135/136)",
            )
        if eth_type not in (ETH_P_IP, ETH_P_IPV6):
            return _fail(
                "l4-mask-without-ip",
                name,
                f"{name}() is matched but the key's eth_type 0x{eth_type:04x} is not IPv4 (0x0800) or IPv6 (0x86dd)",
            )
        if (t == K.ICMP and eth_type == ETH_P_IPV6) or (t == K.ICMPV6 and eth_type == ETH_P_IP):
            other = "IPv4 (eth_type 0x0800)" if t == K.ICMP else "IPv6 (eth_type 0x86dd)"
            return _fail("l4-mask-wrong-ip-version", name, f"{name}() only applies to {other}")
        l3 = _l3_name(eth_type)
        if key["ip_frag"] == _FRAG_LATER:
            return _fail(
                "l4-mask-on-later-fragment", name, f"{name}() cannot be matched on later fragments ({l3} frag=later)"
            )
        proto = _L4_PROTO.get(t, IPPROTO_ICMP if t == K.ICMP else IPPROTO_ICMPV6)
        return _fail("l4-mask-needs-exact-proto", name, f"{name}() needs {l3}(proto={proto}) matched exactly")
    for u in range(_KEY_ATTR_MAX + 1):
        if unexpected & _bit(u):
            name = _name(u)
            if not key_attrs & _bit(u):
                return _fail("mask-without-key", name, f"{name}() has a mask but is not in the key")
            return _fail("mask-not-allowed", name, f"{name}() may not be masked here")  # pragma: no cover
    return _fail("mask-not-allowed", None, "the mask is not allowed")  # pragma: no cover


@last_by_identity  # validate_match() and then validate_actions() on one Match parse it once
def _get_match(match: Match) -> _Parsed:
    return _parse_match(match)


def _parse_match(match: Match) -> _Parsed:
    if not isinstance(match, Match):
        raise _fail("not-a-match", None, f"{match!r} is not a Match")
    key_blob, mask_blob = _wire(match)
    a: dict[int, bytes] = {}
    key, mask = _blank(), _blank()
    key_attrs = _parse_flow_nlattrs(key_blob, a, 0, False, "key")
    key_attrs = _parse_vlan(key, key, key_attrs, a, False)
    _key_from_nlattrs(key, key, key_attrs, a, False)
    mask_attrs = _parse_flow_nlattrs(mask_blob, a, 0, True, "mask")
    mask["vlan_tci"] = 0xFFFF
    mask["cvlan_tci"] = 0xFFFF
    mask_attrs = _parse_vlan(mask, key, mask_attrs, a, True)
    _key_from_nlattrs(mask, key, mask_attrs, a, True)
    _match_validate(key, mask, key_attrs, mask_attrs)
    return _Parsed(key, mask, key_attrs, mask_attrs)


def stored_key_and_mask(match: Match) -> tuple[dict[str, int], dict[str, int]]:
    """The kernel's ``sw_flow_key`` key and mask for this match (after validation).

    Field names: ``recirc_id dp_hash priority in_port skb_mark`` (in_port is the
    u16 the kernel stores: 65535 in the key when the match has no in_port, 0xffff
    in the mask when it is forced exact); tunnel ``tun_id tun_ipv4_src
    tun_ipv4_dst tun_ipv6_src tun_ipv6_dst tun_tos tun_ttl tun_tp_src tun_tp_dst
    tun_flags`` (:class:`~odp.constants.TunnelFlag` bits, plus 0x10 geneve, 0x20
    vxlan, 0x40 erspan options present) ``tun_gbp tun_opts_len tun_opts`` (the
    options as an int of ``tun_opts_len`` bytes) ``tun_proto`` (2 AF_INET, 10
    AF_INET6; mask 0xff when the mask has a tunnel); ``ct_state ct_zone ct_mark
    ct_labels ct_orig_proto ct_orig_src ct_orig_dst ct_orig_tp_src
    ct_orig_tp_dst``; ``mac_proto`` (odp/validate/swkey.py's convention: 0 Ethernet,
    1 no L2 header; mask always 0xff); ``eth_src eth_dst vlan_tci vlan_tpid
    cvlan_tci cvlan_tpid eth_type`` (vlan/cvlan tci masks are 0xffff unless the
    match masks them: a flow without vlan() only matches untagged packets);
    ``ip_proto ip_tos ip_ttl ip_frag ipv4_src ipv4_dst`` (ARP sip/tip too)
    ``ipv6_src ipv6_dst ipv6_label ipv6_exthdrs arp_op arp_sha arp_tha nd_target
    nd_sll nd_tll``; ``nsh_flags nsh_ttl nsh_mdtype nsh_np nsh_path_hdr
    nsh_c1..nsh_c4``; ``mpls_count`` (the kernel's num_labels_mask: bit i set for
    label i, so a 1-label flow also matches deeper stacks on its first label)
    ``mpls_lse0..2``; ``tp_src tp_dst`` (ICMP type/code) ``tcp_flags``.
    """
    parsed = _get_match(match)
    return _export(parsed.key, parsed.key), _export(parsed.mask, parsed.key)


def _export(sw: SwKey, key: SwKey) -> dict[str, int]:
    out = {name: value for name, value in sw.items() if name not in ("tun_opts", "mpls_labels", "arp_op")}
    out.update(
        tun_gbp=_ne(_get_opts(sw, 4)) if key["tun_flags"] & _TF_VXLAN else 0,
        tun_opts=_be(_get_opts(sw, key["tun_opts_len"])) if key["tun_opts_len"] else 0,
        mpls_count=sw["mpls_labels"],
    )
    if key["eth_type"] in (ETH_P_ARP, ETH_P_RARP):
        out["arp_op"] = out["ip_proto"] = sw["arp_op"]  # the kernel's ip.proto holds the op
    else:
        out["arp_op"] = 0
    return out


def sw_match(match: Match) -> sk.SwMatch:
    """The key and mask ovs_nla_get_match stores for ``match``, as swkey ints.

    Raises :class:`InvalidFlow` as :func:`validate_match` does.  This is the
    general path; :func:`odp.validate.fastpath.from_match` computes the same
    for common shapes without parsing bytes.
    """
    parsed = _get_match(match)
    return sk.SwMatch(sk.build(parsed.key), sk.build(parsed.mask))
