"""The kernel's key, mask and action rules (openvswitch.ko's EINVAL answers), in one module.

The specification is ``net/openvswitch/flow_netlink.c`` (``ovs_nla_get_match``,
``__ovs_nla_copy_actions`` and ``__ovs_nla_put_key``) and the parts of
``conntrack.c`` they call.  Rather than a list of hand-written conditions, the
match checks *replay the kernel's parser*: a :class:`~odp.keys.Match` is turned
into the netlink bytes odp's codec sends (a KEY attribute and a MASK attribute
that carries every attribute's mask, ``Match.mask_only`` attributes only in the
mask) and those bytes go through a Python transcription of
``parse_flow_nlattrs``, ``parse_vlan_from_nlattrs``, ``ovs_key_from_nlattrs``
and ``match_validate``, filling the same ``sw_flow_key`` fields the kernel
fills.  So the quirks come for free: all-zero mask attributes count as absent,
the VLAN mask code reads the key's attribute when the mask has none, a mask can
only name attributes the key allows, and so on.

Public functions
----------------
``validate_match(match)``
    Raises :class:`~odp.errors.InvalidFlow` exactly when the kernel would answer
    EINVAL to OVS_FLOW_CMD_NEW with this key and mask.
``validate_actions(actions, match=None, *, kernel=None)``
    The checks of ``__ovs_nla_copy_actions`` that do not depend on datapath
    state.  Without ``match`` the checks that need the flow key are skipped
    until an action makes the relevant state known (e.g. after ``push_eth``).
    ``kernel=(6, 1)`` applies the action set of that kernel (``drop`` needs 6.4,
    ``hash(sym_l4)`` 6.5, ``psample`` 6.11); the default is the newest kernel.
    ``packet=True`` checks actions for OVS_PACKET_CMD_EXECUTE against a packet key.
``kernel_mask(match, *, masked_key=False)``
    The match as the kernel stores and dumps it (see its docstring).
``stored_key_and_mask(match)``
    The kernel's ``sw_flow_key`` key and mask as two dicts of field -> int.

What is checked is what odp sends
---------------------------------
Keys and masks are encoded with :mod:`odp.netlink.codec` (``encode_key`` /
``encode_mask``), so the codec's conventions apply (for instance it always
sends a tunnel TTL, 0 when wildcarded, so the kernel's TTL requirement only
bites raw attributes; ``set_masked`` is sent as ``value & mask`` then the
mask).  ``set()`` payloads are ``encode_key_attr``'s.  A model value the codec
cannot encode (a mask-only twin of a key attribute, a value too wide for its
field) is reported as rule ``unencodable``.  ``push_nsh`` is checked as the
kernel reads it: one nested ``OVS_KEY_ATTR_NSH`` attribute inside PUSH_NSH.

Simplifications (documented where they matter): the kernel overlays IPv4, IPv6,
ARP, ND, NSH and the conntrack original tuple in unions; here they are separate
fields, which changes nothing for validation and only matters for dumps of keys
that carry attributes of two different L3 protocols (their masks must then be
zero).  Limits that need datapath state (unknown conntrack helpers, meters,
MAX_ACTIONS_BUFSIZE, CONFIG_* options) are not checked: all conntrack options
are assumed built in.
"""

from __future__ import annotations

import errno as _errno
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, cast

from odp._cache import ComputeCache, last_by_identity
from odp._codegen import define
from odp.actions import (
    Action,
    Actions,
    AddMpls,
    CheckPktLen,
    Clone,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Meter,
    Nat,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
)
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
    ActionType,
    KeyAttrType,
    TunnelFlag,
)
from odp.errors import FieldError, InvalidFlow
from odp.fields import Masked
from odp.keys import (
    ALL_ATTR_CLASSES,
    Arp,
    CtLabels,
    CtMark,
    CtZone,
    DpHash,
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    Ipv4,
    Ipv6,
    KeyAttr,
    MaskedBytes,
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
    UnknownKeyAttr,
    Vlan,
)
from odp.netlink import codec as _codec

__all__ = [
    "NEWEST_KERNEL",
    "kernel_mask",
    "stored_key_and_mask",
    "validate_actions",
    "validate_match",
]

#: What ``kernel=None`` means: the newest kernel whose rules this module encodes.
NEWEST_KERNEL: tuple[int, int] = (6, 11)

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

# Tunnel flags as stored in the simulated key: odp's TunnelFlag bits plus the
# kernel's option-type flags.
_TF_OAM, _TF_DF, _TF_CSUM, _TF_KEY = int(TunnelFlag.OAM), int(TunnelFlag.DF), int(TunnelFlag.CSUM), int(TunnelFlag.KEY)
_TF_GENEVE, _TF_VXLAN, _TF_ERSPAN = 0x10, 0x20, 0x40

# NSH (OVS_NSH_KEY_ATTR_*), tun_proto numbers (include/net/tun_proto.h).
_NSH_BASE, _NSH_MD1, _NSH_MD2 = 1, 2, 3
_NSH_CTX_HDRS_MAX_LEN = 248
_TUN_P_FROM_ETH: dict[int, int] = {ETH_P_IP: 1, ETH_P_IPV6: 2, 0x6558: 3, ETH_P_NSH: 4, ETH_P_MPLS_UC: 5}
_TUN_P_ETHERNET = 3
_ETH_P_TEB = 0x6558

_MAC_PROTO_NONE, _MAC_PROTO_ETHERNET = 0, 1
_FRAG_LATER = 2
_FRAG_MAX = 2
_MPLS_LABEL_DEPTH = 3
_CT_SUPPORTED_MASK = 0xFF
_ETH_HLEN = 14
_NF_CT_HELPER_NAME_LEN = 16
_CTNL_TIMEOUT_NAME_MAX = 32
_PSAMPLE_COOKIE_MAX = 16
_COPY_ACTIONS_MAX_DEPTH = 16
_ND_TYPES = (135, 136)

#: Actions (and hash algorithms) newer than some kernels: (type, first kernel).
_ACTION_SINCE: dict[int, tuple[int, int]] = {
    ActionType.DROP: (6, 4),
    ActionType.PSAMPLE: (6, 11),
}
_HASH_SYM_L4_SINCE = (6, 5)

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

_SW_FIELDS: tuple[str, ...] = (
    "recirc_id", "dp_hash", "priority", "in_port", "skb_mark",
    "tun_id", "tun_u", "tun_tos", "tun_ttl", "tun_tp_src", "tun_tp_dst", "tun_flags",
    "tun_opts", "tun_opts_len", "tun_proto",
    "ct_state", "ct_zone", "ct_mark", "ct_labels", "ct_orig_proto",
    "ct_orig4_src", "ct_orig4_dst", "ct_orig6_src", "ct_orig6_dst", "ct_orig_tp_src", "ct_orig_tp_dst",
    "mac_proto", "eth_src", "eth_dst", "vlan_tpid", "vlan_tci", "cvlan_tpid", "cvlan_tci", "eth_type",
    "ip_proto", "ip_tos", "ip_ttl", "ip_frag", "ipv4_src", "ipv4_dst", "arp_sha", "arp_tha",
    "ipv6_src", "ipv6_dst", "ipv6_label", "ipv6_exthdrs", "nd_target", "nd_sll", "nd_tll",
    "nsh_flags", "nsh_ttl", "nsh_mdtype", "nsh_np", "nsh_path_hdr", "nsh_c1", "nsh_c2", "nsh_c3", "nsh_c4",
    "mpls_labels", "mpls_lse0", "mpls_lse1", "mpls_lse2",
    "tp_src", "tp_dst", "tcp_flags",
)  # fmt: skip

SwKey = dict[str, int]


def _blank() -> SwKey:
    return dict.fromkeys(_SW_FIELDS, 0)


# The tunnel address union: 32 bytes (ipv6.src, ipv6.dst); ipv4.src/dst are
# its first 8 bytes.  Kept as one 256-bit int, big-endian.
def _tun_ipv4_src(sw: SwKey) -> int:
    return (sw["tun_u"] >> 224) & 0xFFFFFFFF


def _tun_ipv4_dst(sw: SwKey) -> int:
    return (sw["tun_u"] >> 192) & 0xFFFFFFFF


def _tun_ipv6_src(sw: SwKey) -> int:
    return sw["tun_u"] >> 128


def _tun_ipv6_dst(sw: SwKey) -> int:
    return sw["tun_u"] & ((1 << 128) - 1)


def _put_bits(word: int, shift: int, width: int, value: int) -> int:
    full = ((1 << width) - 1) << shift
    return (word & ~full) | ((value << shift) & full)


def _put_opts(sw: SwKey, data: bytes) -> None:
    """SW_FLOW_KEY_MEMCPY_OFFSET at TUN_METADATA_OFFSET(len): the last len bytes."""
    width = 8 * len(data)
    sw["tun_opts"] = _put_bits(sw["tun_opts"], 0, width, _be(data))


def _get_opts(sw: SwKey, length: int) -> bytes:
    return (sw["tun_opts"] & ((1 << (8 * length)) - 1)).to_bytes(length, "big")


def _masked(key: SwKey, mask: SwKey) -> SwKey:
    return {name: key[name] & mask[name] for name in _SW_FIELDS}


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
            sw["tun_u"] = _put_bits(sw["tun_u"], 224, 32, _be(payload))
            ipv4 = True
        elif type_ == _TUN_IPV4_DST:
            sw["tun_u"] = _put_bits(sw["tun_u"], 192, 32, _be(payload))
            ipv4 = True
        elif type_ == _TUN_IPV6_SRC:
            sw["tun_u"] = _put_bits(sw["tun_u"], 128, 128, _be(payload))
            ipv6 = True
        elif type_ == _TUN_IPV6_DST:
            sw["tun_u"] = _put_bits(sw["tun_u"], 0, 128, _be(payload))
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
                    _tun_ipv4_src(sw)
                    or _tun_ipv4_dst(sw)
                    or sw["tun_tp_src"]
                    or sw["tun_tp_dst"]
                    or sw["tun_ttl"]
                    or sw["tun_tos"]
                    or flags & ~_TF_KEY
                ):
                    raise _fail(
                        "tunnel-bridge-info", "tunnel", "tunnel() in IPv4 bridge-info mode may only carry tun_id"
                    )
            elif not _tun_ipv4_dst(sw):
                raise _fail("tunnel-dst-zero", "tunnel", "tunnel() destination address dst is 0.0.0.0")
        if ipv6 and not _tun_ipv6_dst(sw):
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
    if attrs & _bit(K.DP_HASH):
        sw["dp_hash"] = _ne(a[K.DP_HASH])
        attrs &= ~_bit(K.DP_HASH)
    if attrs & _bit(K.RECIRC_ID):
        sw["recirc_id"] = _ne(a[K.RECIRC_ID])
        attrs &= ~_bit(K.RECIRC_ID)
    if attrs & _bit(K.PRIORITY):
        sw["priority"] = _ne(a[K.PRIORITY])
        attrs &= ~_bit(K.PRIORITY)
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
        sw["skb_mark"] = _ne(a[K.SKB_MARK])
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
    if attrs & _bit(K.CT_ZONE):
        sw["ct_zone"] = _ne(a[K.CT_ZONE])
        attrs &= ~_bit(K.CT_ZONE)
    if attrs & _bit(K.CT_MARK):
        sw["ct_mark"] = _ne(a[K.CT_MARK])
        attrs &= ~_bit(K.CT_MARK)
    if attrs & _bit(K.CT_LABELS):
        sw["ct_labels"] = _be(a[K.CT_LABELS])
        attrs &= ~_bit(K.CT_LABELS)
    if attrs & _bit(K.CT_ORIG_TUPLE_IPV4):
        src, dst, tp_src, tp_dst, proto = struct.unpack("!IIHHB3x", a[K.CT_ORIG_TUPLE_IPV4])
        sw.update(ct_orig4_src=src, ct_orig4_dst=dst, ct_orig_tp_src=tp_src, ct_orig_tp_dst=tp_dst)
        sw["ct_orig_proto"] = proto
        attrs &= ~_bit(K.CT_ORIG_TUPLE_IPV4)
    if attrs & _bit(K.CT_ORIG_TUPLE_IPV6):
        src6, dst6, tp_src, tp_dst, proto = struct.unpack("!16s16sHHB3x", a[K.CT_ORIG_TUPLE_IPV6])
        sw.update(ct_orig6_src=_be(src6), ct_orig6_dst=_be(dst6), ct_orig_tp_src=tp_src, ct_orig_tp_dst=tp_dst)
        sw["ct_orig_proto"] = proto
        attrs &= ~_bit(K.CT_ORIG_TUPLE_IPV6)
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
        sw["eth_src"] = _be(a[K.ETHERNET][:6])
        sw["eth_dst"] = _be(a[K.ETHERNET][6:])
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
        src, dst, proto, tos, ttl, frag = struct.unpack("!IIBBBB", a[K.IPV4])
        if not is_mask and frag > _FRAG_MAX:
            raise _fail("frag-range", "ipv4", f"ipv4 frag {frag} is out of range (no=0, first=1, later=2)")
        sw.update(ip_proto=proto, ip_tos=tos, ip_ttl=ttl, ip_frag=frag, ipv4_src=src, ipv4_dst=dst)
        attrs &= ~_bit(K.IPV4)
    if attrs & _bit(K.IPV6):
        src6, dst6, label, proto, tclass, hlimit, frag = struct.unpack("!16s16sIBBBB", a[K.IPV6])
        if not is_mask and frag > _FRAG_MAX:
            raise _fail("frag-range", "ipv6", f"ipv6 frag {frag} is out of range (no=0, first=1, later=2)")
        if not is_mask and label & 0xFFF00000:
            raise _fail("ipv6-label-range", "ipv6", f"ipv6 label 0x{label:x} does not fit in 20 bits")
        sw.update(ipv6_label=label, ip_proto=proto, ip_tos=tclass, ip_ttl=hlimit, ip_frag=frag)
        sw.update(ipv6_src=_be(src6), ipv6_dst=_be(dst6))
        attrs &= ~_bit(K.IPV6)
    if attrs & _bit(K.IPV6_EXTHDRS):
        sw["ipv6_exthdrs"] = _ne(a[K.IPV6_EXTHDRS])
        attrs &= ~_bit(K.IPV6_EXTHDRS)
    if attrs & _bit(K.ARP):
        sip, tip, op, sha, tha = struct.unpack("!IIH6s6s2x", a[K.ARP])
        if not is_mask and op & 0xFF00:
            raise _fail("arp-op-range", "arp", f"arp op {op} is above 255")
        sw.update(ipv4_src=sip, ipv4_dst=tip, ip_proto=op & 0xFF, arp_sha=_be(sha), arp_tha=_be(tha))
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
    for type_ in (K.TCP, K.UDP, K.SCTP):
        if attrs & _bit(type_):
            sw["tp_src"], sw["tp_dst"] = struct.unpack("!HH", a[type_])
            attrs &= ~_bit(type_)
        if type_ == K.TCP and attrs & _bit(K.TCP_FLAGS):
            sw["tcp_flags"] = _be(a[K.TCP_FLAGS])
            attrs &= ~_bit(K.TCP_FLAGS)
    for type_ in (K.ICMP, K.ICMPV6):
        if attrs & _bit(type_):
            sw["tp_src"], sw["tp_dst"] = a[type_][0], a[type_][1]
            attrs &= ~_bit(type_)
    if attrs & _bit(K.ND):
        target, sll, tll = struct.unpack("!16s6s6s", a[K.ND])
        sw.update(nd_target=_be(target), nd_sll=_be(sll), nd_tll=_be(tll))
        attrs &= ~_bit(K.ND)
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


# --- a cache of accepted flow shapes ------------------------------------------
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
    ct_orig_tp_dst``; ``mac_proto`` (odp/sim/swkey.py's convention: 0 Ethernet,
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
    out = {
        name: sw[name]
        for name in _SW_FIELDS
        if name not in ("tun_u", "tun_opts", "mpls_labels", "mac_proto")
        and not name.startswith(("ct_orig4", "ct_orig6"))
    }
    out.update(
        tun_ipv4_src=_tun_ipv4_src(sw),
        tun_ipv4_dst=_tun_ipv4_dst(sw),
        tun_ipv6_src=_tun_ipv6_src(sw),
        tun_ipv6_dst=_tun_ipv6_dst(sw),
        tun_gbp=_ne(_get_opts(sw, 4)) if key["tun_flags"] & _TF_VXLAN else 0,
        tun_opts=_be(_get_opts(sw, key["tun_opts_len"])) if key["tun_opts_len"] else 0,
        mpls_count=sw["mpls_labels"],
        mac_proto=0xFF if sw["mac_proto"] == 0xFF else (0 if sw["mac_proto"] == _MAC_PROTO_ETHERNET else 1),
        arp_op=sw["ip_proto"] if key["eth_type"] in (ETH_P_ARP, ETH_P_RARP) else 0,
    )
    v6 = key["eth_type"] == ETH_P_IPV6
    out["ct_orig_src"] = sw["ct_orig6_src"] if v6 else sw["ct_orig4_src"]
    out["ct_orig_dst"] = sw["ct_orig6_dst"] if v6 else sw["ct_orig4_dst"]
    return out


# ---------------------------------------------------------------------------
# __ovs_nla_put_key, transcribed: what a dump reports.
# ---------------------------------------------------------------------------

# A dumped attribute: (type, content).  Content is a tuple of field ints for
# fixed attributes and MPLS, a dict for TUNNEL and NSH, a list for ENCAP.
_Content: TypeAlias = "tuple[int, ...] | dict[str, object] | list[_Dumped]"
_Dumped: TypeAlias = "tuple[int, _Content]"


def _tunnel_dump(out: SwKey, opts_len: int, tun_proto: int) -> dict[str, object]:
    d: dict[str, object] = {}
    flags = out["tun_flags"]
    if flags & _TF_KEY:
        d["tun_id"] = out["tun_id"]
    if tun_proto == _AF_INET:
        if _tun_ipv4_src(out):
            d["ipv4_src"] = _tun_ipv4_src(out)
        if _tun_ipv4_dst(out):
            d["ipv4_dst"] = _tun_ipv4_dst(out)
    elif tun_proto == _AF_INET6:
        if _tun_ipv6_src(out):
            d["ipv6_src"] = _tun_ipv6_src(out)
        if _tun_ipv6_dst(out):
            d["ipv6_dst"] = _tun_ipv6_dst(out)
    if out["tun_tos"]:
        d["tos"] = out["tun_tos"]
    d["ttl"] = out["tun_ttl"]
    for name in ("tp_src", "tp_dst"):
        if out["tun_" + name]:
            d[name] = out["tun_" + name]
    d["flags"] = flags & (_TF_DF | _TF_CSUM | _TF_OAM | _TF_KEY)
    if opts_len:
        if flags & _TF_GENEVE:
            d["geneve"] = _get_opts(out, opts_len)
        elif flags & _TF_VXLAN:
            d["vxlan_gbp"] = _ne(_get_opts(out, _VXLAN_METADATA_LEN))
        elif flags & _TF_ERSPAN:
            d["erspan"] = _get_opts(out, opts_len)
    return d


def _put_key(sw: SwKey, out: SwKey, is_mask: bool) -> list[_Dumped]:
    top: list[_Dumped] = []
    cur = top
    top.append((K.RECIRC_ID, (out["recirc_id"],)))
    top.append((K.DP_HASH, (out["dp_hash"],)))
    top.append((K.PRIORITY, (out["priority"],)))
    if sw["tun_proto"] or is_mask:
        top.append((K.TUNNEL, _tunnel_dump(out, sw["tun_opts_len"], sw["tun_proto"])))
    if sw["in_port"] == DP_MAX_PORTS:
        if is_mask and out["in_port"] == 0xFFFF:
            top.append((K.IN_PORT, (0xFFFFFFFF,)))
    else:
        top.append((K.IN_PORT, ((0xFFFF0000 if is_mask else 0) | out["in_port"],)))
    top.append((K.SKB_MARK, (out["skb_mark"],)))
    top.append((K.CT_STATE, (out["ct_state"],)))
    top.append((K.CT_ZONE, (out["ct_zone"],)))
    top.append((K.CT_MARK, (out["ct_mark"],)))
    top.append((K.CT_LABELS, (out["ct_labels"],)))
    if sw["ct_orig_proto"]:
        if sw["eth_type"] == ETH_P_IP:
            fields4 = (out["ct_orig4_src"], out["ct_orig4_dst"], out["ct_orig_tp_src"], out["ct_orig_tp_dst"])
            top.append((K.CT_ORIG_TUPLE_IPV4, (*fields4, out["ct_orig_proto"])))
        elif sw["eth_type"] == ETH_P_IPV6:
            fields6 = (out["ct_orig6_src"], out["ct_orig6_dst"], out["ct_orig_tp_src"], out["ct_orig_tp_dst"])
            top.append((K.CT_ORIG_TUPLE_IPV6, (*fields6, out["ct_orig_proto"])))
    if sw["mac_proto"] == _MAC_PROTO_ETHERNET:
        top.append((K.ETHERNET, (out["eth_src"], out["eth_dst"])))
        if sw["vlan_tci"] or _is_vlan_type(sw["eth_type"]):
            cur.append((K.ETHERTYPE, (0xFFFF if is_mask else out["vlan_tpid"],)))
            cur.append((K.VLAN, (out["vlan_tci"],)))
            encap: list[_Dumped] = []
            cur.append((K.ENCAP, encap))
            cur = encap
            if not sw["vlan_tci"]:
                return top
            if sw["cvlan_tci"] or _is_vlan_type(sw["eth_type"]):
                cur.append((K.ETHERTYPE, (0xFFFF if is_mask else out["cvlan_tpid"],)))
                cur.append((K.VLAN, (out["cvlan_tci"],)))
                inner: list[_Dumped] = []
                cur.append((K.ENCAP, inner))
                cur = inner
                if not sw["cvlan_tci"]:
                    return top
        if sw["eth_type"] == ETH_P_802_2:
            if is_mask and out["eth_type"]:
                cur.append((K.ETHERTYPE, (out["eth_type"],)))
            return top
    cur.append((K.ETHERTYPE, (out["eth_type"],)))
    eth_type = sw["eth_type"]
    if _is_vlan_type(eth_type):
        return top
    if eth_type == ETH_P_IP:
        ip = (out["ip_proto"], out["ip_tos"], out["ip_ttl"], out["ip_frag"])
        cur.append((K.IPV4, (out["ipv4_src"], out["ipv4_dst"], *ip)))
    elif eth_type == ETH_P_IPV6:
        ip6 = (out["ipv6_label"], out["ip_proto"], out["ip_tos"], out["ip_ttl"], out["ip_frag"])
        cur.append((K.IPV6, (out["ipv6_src"], out["ipv6_dst"], *ip6)))
        cur.append((K.IPV6_EXTHDRS, (out["ipv6_exthdrs"],)))
    elif eth_type == ETH_P_NSH:
        nsh: dict[str, object] = {n: out["nsh_" + n] for n in ("flags", "ttl", "mdtype", "np", "path_hdr")}
        if is_mask or sw["nsh_mdtype"] == 1:
            nsh.update({f"c{i}": out[f"nsh_c{i}"] for i in range(1, 5)})
        cur.append((K.NSH, nsh))
    elif eth_type in (ETH_P_ARP, ETH_P_RARP):
        arp = (out["ipv4_src"], out["ipv4_dst"], out["ip_proto"], out["arp_sha"], out["arp_tha"])
        cur.append((K.ARP, arp))
    elif _is_mpls_type(eth_type):
        count = bin(out["mpls_labels"]).count("1")
        cur.append((K.MPLS, tuple(out[f"mpls_lse{i}"] for i in range(min(count, _MPLS_LABEL_DEPTH)))))
    if eth_type in (ETH_P_IP, ETH_P_IPV6) and sw["ip_frag"] != _FRAG_LATER:
        proto = sw["ip_proto"]
        tp = (out["tp_src"], out["tp_dst"])
        if proto == IPPROTO_TCP:
            cur.append((K.TCP, tp))
            cur.append((K.TCP_FLAGS, (out["tcp_flags"],)))
        elif proto == IPPROTO_UDP:
            cur.append((K.UDP, tp))
        elif proto == IPPROTO_SCTP:
            cur.append((K.SCTP, tp))
        elif eth_type == ETH_P_IP and proto == IPPROTO_ICMP:
            cur.append((K.ICMP, (out["tp_src"] & 0xFF, out["tp_dst"] & 0xFF)))
        elif eth_type == ETH_P_IPV6 and proto == IPPROTO_ICMPV6:
            cur.append((K.ICMPV6, (out["tp_src"] & 0xFF, out["tp_dst"] & 0xFF)))
            if sw["tp_src"] in _ND_TYPES:
                cur.append((K.ND, (out["nd_target"], out["nd_sll"], out["nd_tll"])))
    return top


_DUMP_RANK: dict[int, int] = {
    t: i
    for i, t in enumerate(
        (
            K.RECIRC_ID, K.DP_HASH, K.PRIORITY, K.TUNNEL, K.IN_PORT, K.SKB_MARK, K.CT_STATE, K.CT_ZONE,
            K.CT_MARK, K.CT_LABELS, K.CT_ORIG_TUPLE_IPV4, K.CT_ORIG_TUPLE_IPV6, K.ETHERNET, K.ETHERTYPE,
            K.VLAN, K.ENCAP, K.IPV4, K.IPV6, K.IPV6_EXTHDRS, K.NSH, K.ARP, K.MPLS, K.TCP, K.TCP_FLAGS,
            K.UDP, K.SCTP, K.ICMP, K.ICMPV6, K.ND,
        )
    )
}  # fmt: skip


def _merge_tunnel(kd: dict[str, object], md: dict[str, object]) -> Tunnel:
    def num(d: dict[str, object], name: str) -> int:
        v = d.get(name, 0)
        return v if isinstance(v, int) else 0

    def blob(d: dict[str, object], name: str) -> bytes | None:
        v = d.get(name)
        return v if isinstance(v, bytes) else None

    kw: dict[str, Any] = {}
    for name in ("tun_id", "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst", "tos", "ttl", "tp_src", "tp_dst"):
        kw[name] = Masked(num(kd, name), num(md, name))
    kw["vxlan_gbp"] = Masked(num(kd, "vxlan_gbp"), num(md, "vxlan_gbp"))
    kw["flags"] = Masked(num(kd, "flags"), num(md, "flags"))
    opts: dict[str, MaskedBytes | None] = {}
    for name in ("geneve", "erspan"):
        kv, mv = blob(kd, name), blob(md, name)
        if kv is None and mv is None:
            opts[name] = None
        else:
            size = max(len(kv or b""), len(mv or b""))
            opts[name] = MaskedBytes((kv or b"").ljust(size, b"\0"), (mv or b"").ljust(size, b"\0"))
    return Tunnel(geneve=opts["geneve"], erspan=opts["erspan"], normalize=False, **kw)


def _merge_nsh(kd: dict[str, object], md: dict[str, object]) -> Nsh:
    kw: dict[str, Any] = {}
    for name in ("flags", "ttl", "mdtype", "np", "path_hdr", "c1", "c2", "c3", "c4"):
        kv, mv = kd.get(name, 0), md.get(name, 0)
        kw[name] = Masked(kv if isinstance(kv, int) else 0, mv if isinstance(mv, int) else 0)
    return Nsh(has_md1="c1" in kd, **kw)


def _merge(key_dump: list[_Dumped], mask_dump: list[_Dumped]) -> list[tuple[KeyAttr, bool]]:
    """Merged attributes in dump order: (attribute, whether the key dump has it).

    Values come from the key dump, masks from the mask dump (zero where absent).
    """
    kd = dict(key_dump)
    md = dict(mask_dump)
    out: list[tuple[KeyAttr, bool]] = []
    for type_ in sorted(set(kd) | set(md), key=lambda t: _DUMP_RANK.get(t, 99)):
        kc, mc = kd.get(type_), md.get(type_)
        attr: KeyAttr
        if type_ == K.ENCAP:
            inner = _merge(kc if isinstance(kc, list) else [], mc if isinstance(mc, list) else [])
            attr = Encap(*(a for a, _ in inner))
        elif type_ == K.TUNNEL:
            attr = _merge_tunnel(kc if isinstance(kc, dict) else {}, mc if isinstance(mc, dict) else {})
        elif type_ == K.NSH:
            attr = _merge_nsh(kc if isinstance(kc, dict) else {}, mc if isinstance(mc, dict) else {})
        elif type_ == K.MPLS:
            kv = kc if isinstance(kc, tuple) else ()
            mv = mc if isinstance(mc, tuple) else ()
            size = max(len(kv), len(mv), 1)
            attr = Mpls(*(Masked((kv + (0,) * size)[i], (mv + (0,) * size)[i]) for i in range(size)))
        else:
            cls = ALL_ATTR_CLASSES[type_]
            assert issubclass(cls, FixedKeyAttr)
            n = len(cls.FIELDS)
            kv = kc if isinstance(kc, tuple) else (0,) * n
            mv = mc if isinstance(mc, tuple) else (0,) * n
            attr = cls.from_values(kv, mv)
        out.append((attr, kc is not None))
    return out


def kernel_mask(match: Match, *, masked_key: bool = False) -> Match:
    """The match as the kernel stores it and reports it in a flow dump.

    ``match`` is validated first (:class:`InvalidFlow` as in :func:`validate_match`).
    The result is built from the kernel's own dump code (``__ovs_nla_put_key``)
    run on the stored key and mask, so it has the attributes a dump has, in the
    kernel's order (recirc_id, dp_hash, skb_priority, tunnel, in_port, skb_mark,
    ct_state, ct_zone, ct_mark, ct_label, ct_tuple4/6, eth, eth_type/vlan/encap,
    L3, L4), and:

    * every metadata attribute the kernel always emits is present (recirc_id,
      dp_hash, skb_priority, skb_mark, ct_state, ct_zone, ct_mark, ct_label),
      with a zero mask when the match did not give it;
    * values are the original, unmasked key (what dumps of key-identified flows
      report); with ``masked_key=True`` the key is the masked key (UFID flows),
      which can also change which attributes appear;
    * masks are the stored mask: eth_type masks 0xffff wherever the mask had a
      (non-zero) eth_type; in_port mask 0xffffffff when forced exact and
      0xffff0000 | mask otherwise (the kernel sets the upper 16 bits); a key
      without in_port has no in_port attribute and ``mask_only`` carries
      ``in_port`` (0xffff0000, or 0xffffffff if the mask named in_port); the VLAN
      TPID mask 0xffff; an ARP op mask reduced to 8 bits; all-zero mask
      attributes dropped (their fields are wildcarded);
    * a flow without a tunnel key still has a tunnel() mask (the kernel always
      dumps one): it is in ``mask_only``, fully wildcarded unless the mask
      named tunnel fields; with a tunnel key the address family given by the
      key is the only one reported;
    * eth() without eth_type reports no eth_type in the key and, because the
      kernel's mask dump follows the masked key, ``eth_type(0/0)`` in
      ``mask_only`` (ovs-dpctl prints ``eth_type(0/0x0000)``);
    * IPv6 flows carry ``ipv6_exthdrs``; L4 attributes follow the key's
      eth_type and ip proto (tcp() with tcp_flags() for proto 6, icmp() only
      for IPv4, nd() for ICMPv6 types 135/136, nothing for frag=later).

    Forced values that a dump cannot show are not in the result: a flow
    without vlan() has the TCI mask 0xffff (it only matches untagged packets),
    ``mac_proto`` and the tunnel address family (``tun_proto``) are always
    matched exactly.  :func:`stored_key_and_mask` gives those.  An attribute
    the key dump has but the mask dump lacks gets a zero mask; one only the mask
    dump has goes to ``mask_only`` (inside an encap() it gets zero values).
    """
    parsed = _get_match(match)
    key = _masked(parsed.key, parsed.mask) if masked_key else parsed.key
    masked = _masked(parsed.key, parsed.mask)
    merged = _merge(_put_key(key, key, False), _put_key(masked, parsed.mask, True))
    return Match(*(a for a, in_key in merged if in_key), mask_only=[a for a, in_key in merged if not in_key])


# ---------------------------------------------------------------------------
# Actions: __ovs_nla_copy_actions, transcribed.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _FlowInfo:
    """What the action checks read from the (masked) flow key; None = unknown."""

    eth_type: int | None
    ip_proto: int | None
    ip_frag: int | None
    nsh_np: int | None


@dataclass(frozen=True)
class _State:
    """The values __ovs_nla_copy_actions tracks through a list; None = unknown."""

    mac_proto: int | None
    eth_type: int | None
    vlan_tci: int | None
    mpls_count: int | None


_ACTION_NAMES: dict[type[Action], str] = {
    Output: "output", Userspace: "userspace", Set: "set", SetMasked: "set_masked", PushVlan: "push_vlan",
    PopVlan: "pop_vlan", Sample: "sample", Recirc: "recirc", Hash: "hash", PushMpls: "push_mpls",
    PopMpls: "pop_mpls", Ct: "ct", Trunc: "trunc", PushEth: "push_eth", PopEth: "pop_eth",
    CtClear: "ct_clear", PushNsh: "push_nsh", PopNsh: "pop_nsh", Meter: "meter", Clone: "clone",
    CheckPktLen: "check_pkt_len", AddMpls: "add_mpls", DecTtl: "dec_ttl", Drop: "drop", Psample: "psample",
    Nat: "nat",
}  # fmt: skip


def _action_name(action: Action) -> str:
    if isinstance(action, UnknownAction):
        return f"action{action.type}"
    return _ACTION_NAMES.get(type(action), type(action).__name__.lower())


class _ActionChecker:
    def __init__(self, flow: _FlowInfo, kernel: tuple[int, int], key_mac_proto: int | None = None) -> None:
        self.flow = flow
        self.kernel = kernel
        #: The flow key's mac_proto: every nested list (clone, sample, check_pkt_len,
        #: dec_ttl) starts from it, not from the current one (__ovs_nla_copy_actions
        #: recomputes it with ovs_key_mac_proto(key); eth_type, vlan_tci and the MPLS
        #: label count are passed down).
        self.key_mac_proto = key_mac_proto

    # -- helpers -----------------------------------------------------------
    def fail(self, rule: str, field: str, message: str, where: str) -> InvalidFlow:
        return _fail(rule, field, message + (f" (inside {where})" if where else ""))

    def check_list(self, actions: Sequence[Action], state: _State, depth: int, where: str) -> None:
        if depth > _COPY_ACTIONS_MAX_DEPTH:
            exc = self.fail(
                "nesting-too-deep", "actions", f"actions are nested more than {_COPY_ACTIONS_MAX_DEPTH} deep", where
            )
            exc.errno = _errno.EOVERFLOW
            raise exc
        for index, action in enumerate(actions):
            state = self.check(action, state, depth, where, last=index == len(actions) - 1)

    def nested(self, actions: object, state: _State, depth: int, where: str, name: str) -> None:
        if not isinstance(actions, Actions):
            raise self.fail("malformed-action", name, f"{name} needs an Actions list", where)
        path = f"{where} > {name}" if where else name
        if path.count(" > ") > 3:
            path = "... > " + " > ".join(path.split(" > ")[-3:])
        self.check_list(actions.items, replace(state, mac_proto=self.key_mac_proto), depth + 1, path)

    # -- one action ----------------------------------------------------------
    def check(self, action: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        name = _action_name(action)
        type_ = action.TYPE
        if not isinstance(action, Action) or isinstance(action, Nat):
            raise self.fail("nat-outside-ct", name, f"{name}() is only valid inside ct()", where)
        since = _ACTION_SINCE.get(type_)
        if since is not None and self.kernel < since:
            raise self.fail(
                "action-needs-newer-kernel",
                name,
                f"{name} needs Linux {since[0]}.{since[1]} (this kernel is {self.kernel[0]}.{self.kernel[1]})",
                where,
            )
        method: Callable[[Action, _State, int, str, bool], _State] | None = getattr(
            self, "act_" + type(action).__name__.lower(), None
        )
        if method is None:  # pragma: no cover - every model class has a method
            raise self.fail("unknown-action", name, f"{name} is not an action the kernel knows", where)
        return method(action, s, depth, where, last)

    def act_output(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Output)
        if a.port >= DP_MAX_PORTS:
            raise self.fail(
                "output-port", "output", f"output port {a.port} exceeds the maximum port {DP_MAX_PORTS - 1}", where
            )
        return s

    def act_userspace(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Userspace)
        if a.pid == 0:
            raise self.fail(
                "userspace-pid", "userspace", "userspace(pid=0) is refused: the pid must be non-zero", where
            )
        return s

    def act_set(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Set)
        self.validate_set(a.attr, False, s, where)
        return s

    def act_setmasked(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, SetMasked)
        self.validate_set(a.attr, True, s, where)
        return s

    def act_pushvlan(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushVlan)
        self.need_ethernet(s, "push_vlan", where)
        if not _is_vlan_type(a.tpid):
            raise self.fail(
                "push-vlan-tpid", "push_vlan", f"push_vlan tpid 0x{a.tpid:04x} is not 0x8100 or 0x88a8", where
            )
        if not a.tci & VLAN_CFI:
            raise self.fail(
                "push-vlan-cfi", "push_vlan", f"push_vlan tci 0x{a.tci:04x} lacks the CFI bit 0x1000", where
            )
        return replace(s, vlan_tci=a.tci)

    def act_popvlan(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        self.need_ethernet(s, "pop_vlan", where)
        return replace(s, vlan_tci=0)

    def act_sample(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Sample)
        self.nested(a.actions, s, depth, where, "sample")
        return s

    def act_recirc(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_hash(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Hash)
        allowed = (0, 1) if self.kernel >= _HASH_SYM_L4_SINCE else (0,)
        if a.alg not in allowed:
            raise self.fail(
                "hash-alg",
                "hash",
                f"hash algorithm {a.alg} is unknown to this kernel (known: "
                + ", ".join({0: "0 (l4)", 1: "1 (sym_l4)"}[x] for x in allowed)
                + ")",
                where,
            )
        return s

    def mpls_push_allowed(self, s: _State, name: str, where: str) -> None:
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("mpls-with-vlan", name, f"{name} is refused on a VLAN-tagged packet", where)
        if s.eth_type is not None and not (
            s.eth_type in (ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_RARP) or _is_mpls_type(s.eth_type)
        ):
            raise self.fail(
                "push-mpls-eth-type",
                name,
                f"{name} needs an IPv4, IPv6, ARP/RARP or MPLS packet (eth_type is 0x{s.eth_type:04x})",
                where,
            )

    def act_pushmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushMpls)
        if not _is_mpls_type(a.ethertype):
            raise self.fail(
                "mpls-ethertype", "push_mpls", f"push_mpls eth_type 0x{a.ethertype:04x} is not 0x8847 or 0x8848", where
            )
        self.mpls_push_allowed(s, "push_mpls", where)
        count = None if s.mpls_count is None else s.mpls_count + 1
        return replace(s, eth_type=a.ethertype, mpls_count=count)

    def act_addmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, AddMpls)
        if not _is_mpls_type(a.ethertype):
            raise self.fail(
                "mpls-ethertype", "add_mpls", f"add_mpls eth_type 0x{a.ethertype:04x} is not 0x8847 or 0x8848", where
            )
        count = s.mpls_count
        mac = s.mac_proto
        if a.tun_flags & 1:  # OVS_MPLS_L3_TUNNEL_FLAG_MASK
            self.mpls_push_allowed(s, "add_mpls", where)
            count = None if count is None else count + 1
        elif mac == _MAC_PROTO_ETHERNET:
            count, mac = 1, _MAC_PROTO_NONE
        elif mac is None:
            count = None
        else:
            count = None if count is None else count + 1
        return _State(mac_proto=mac, eth_type=a.ethertype, vlan_tci=s.vlan_tci, mpls_count=count)

    def act_popmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PopMpls)
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("mpls-with-vlan", "pop_mpls", "pop_mpls is refused on a VLAN-tagged packet", where)
        if s.eth_type is not None and not _is_mpls_type(s.eth_type):
            raise self.fail(
                "pop-mpls-not-mpls",
                "pop_mpls",
                f"pop_mpls needs an MPLS packet (eth_type is 0x{s.eth_type:04x})",
                where,
            )
        if a.ethertype == _ETH_P_TEB and s.mac_proto is not None and s.mac_proto != _MAC_PROTO_NONE:
            raise self.fail(
                "pop-mpls-teb",
                "pop_mpls",
                "pop_mpls to eth_type 0x6558 needs a packet without an Ethernet header",
                where,
            )
        count = None if s.mpls_count is None else s.mpls_count - 1
        if not _is_mpls_type(a.ethertype) or count == 0:
            eth_type: int | None = 0
        elif count is None:
            eth_type = None
        else:
            eth_type = a.ethertype
        return replace(s, eth_type=eth_type, mpls_count=count)

    def act_ct(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Ct)
        eth_type = self.flow.eth_type
        if eth_type is not None and eth_type not in (ETH_P_IP, ETH_P_IPV6):
            raise self.fail(
                "ct-needs-ip", "ct", f"ct() needs an IPv4 or IPv6 flow (the flow's eth_type is 0x{eth_type:04x})", where
            )
        commit = a.commit or a.force_commit
        if a.mark is not None:
            if not a.mark.mask:
                raise self.fail("ct-mark-mask-zero", "ct", "ct(mark=...) needs a non-zero mask", where)
            if not commit:
                raise self.fail("ct-needs-commit", "ct", "ct(mark=...) needs commit", where)
        if a.labels is not None:
            if not a.labels.mask:
                raise self.fail("ct-labels-mask-zero", "ct", "ct(labels=...) needs a non-zero mask", where)
            if not commit:
                raise self.fail("ct-needs-commit", "ct", "ct(labels=...) needs commit", where)
        if a.helper is not None and not 0 < len(a.helper.encode()) < _NF_CT_HELPER_NAME_LEN:
            raise self.fail("ct-helper", "ct", f"ct helper name {a.helper!r} must be 1..15 bytes", where)
        if a.timeout is not None and not len(a.timeout.encode()) < _CTNL_TIMEOUT_NAME_MAX:
            raise self.fail("ct-timeout", "ct", f"ct timeout policy name {a.timeout!r} must be at most 31 bytes", where)
        if a.nat is not None:
            self.check_nat(a.nat, commit, where)
        return s

    def check_nat(self, nat: Nat, commit: bool, where: str) -> None:
        flags = (
            nat.ip_min is not None
            or nat.ip_max is not None
            or nat.proto_min is not None
            or nat.proto_max is not None
            or nat.persistent
            or nat.proto_hash
            or nat.proto_random
        )
        if nat.kind is None:
            if flags:
                raise self.fail(
                    "nat-flags-without-type", "ct", "ct(nat(...)) addresses, ports and flags need src or dst", where
                )
        elif not commit:
            raise self.fail("nat-needs-commit", "ct", f"ct(nat({nat.kind}=...)) needs commit", where)
        eth_type = self.flow.eth_type
        given = nat.ip_min is not None or nat.ip_max is not None
        if given and eth_type in (ETH_P_IP, ETH_P_IPV6) and nat.ipv6 != (eth_type == ETH_P_IPV6):
            raise self.fail(
                "nat-address-family",
                "ct",
                f"ct(nat(...)) gives IPv{'6' if nat.ipv6 else '4'} addresses for an "
                f"IPv{'6' if eth_type == ETH_P_IPV6 else '4'} flow",
                where,
            )

    def act_trunc(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Trunc)
        if a.max_len < _ETH_HLEN:
            raise self.fail(
                "trunc-length", "trunc", f"trunc({a.max_len}) is shorter than an Ethernet header (14)", where
            )
        return s

    def act_pusheth(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if s.mac_proto is not None and s.mac_proto != _MAC_PROTO_NONE:
            raise self.fail(
                "push-eth-has-ethernet", "push_eth", "push_eth on a packet that has an Ethernet header", where
            )
        return replace(s, mac_proto=_MAC_PROTO_ETHERNET)

    def act_popeth(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        self.need_ethernet(s, "pop_eth", where)
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("pop-eth-with-vlan", "pop_eth", "pop_eth on a VLAN-tagged packet (pop_vlan first)", where)
        return replace(s, mac_proto=_MAC_PROTO_NONE)

    def act_ctclear(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_pushnsh(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushNsh)
        l3_packet = s.mac_proto is not None and s.mac_proto != _MAC_PROTO_ETHERNET
        if l3_packet and s.eth_type is not None and s.eth_type not in _TUN_P_FROM_ETH:
            raise self.fail(
                "push-nsh-eth-type",
                "push_nsh",
                f"push_nsh on an L3 packet needs eth_type IPv4, IPv6, 0x6558, NSH or MPLS (not 0x{s.eth_type:04x})",
                where,
            )
        nsh = a.nsh
        if isinstance(nsh, Nsh):
            # The kernel reads PUSH_NSH's payload as one nested OVS_KEY_ATTR_NSH attribute.
            try:
                data = _attr_payload(nsh)
            except _ENCODE_ERRORS as exc:
                raise self.fail("unencodable", "push_nsh", f"push_nsh cannot be sent: {exc}", where) from None
        elif isinstance(nsh, UnknownKeyAttr):
            data = bytes(nsh.key)
        else:
            raise self.fail("push-nsh-attr", "push_nsh", "push_nsh needs an nsh() attribute", where)
        try:
            _nsh_key_put(data, None, False, True)
        except InvalidFlow as exc:
            raise self.fail(exc.rule, "push_nsh", str(exc).replace("nsh()", "push_nsh(nsh())"), where) from None
        return replace(s, mac_proto=_MAC_PROTO_NONE)

    def act_popnsh(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if s.eth_type is not None and s.eth_type != ETH_P_NSH:
            raise self.fail(
                "pop-nsh-eth-type", "pop_nsh", f"pop_nsh needs an NSH packet (eth_type is 0x{s.eth_type:04x})", where
            )
        np = self.flow.nsh_np
        if np is None:
            return replace(s, mac_proto=None)
        if np not in (1, 2, 3, 4, 5):
            raise self.fail("pop-nsh-next-proto", "pop_nsh", f"pop_nsh: the flow's nsh np {np} is unknown", where)
        return replace(s, mac_proto=_MAC_PROTO_ETHERNET if np == _TUN_P_ETHERNET else _MAC_PROTO_NONE)

    def act_meter(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_clone(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Clone)
        self.nested(a.actions, s, depth, where, "clone")
        return s

    def act_checkpktlen(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, CheckPktLen)
        if a.pkt_len == 0:
            raise self.fail("check-pkt-len-zero", "check_pkt_len", "check_pkt_len(size=0) is refused", where)
        self.nested(a.if_less_equal, s, depth, where, "check_pkt_len le")
        self.nested(a.if_greater, s, depth, where, "check_pkt_len gt")
        return s

    def act_decttl(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, DecTtl)
        self.nested(a.actions, s, depth, where, "dec_ttl")
        return s

    def act_drop(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if not last:
            raise self.fail("drop-not-last", "drop", "drop must be the last action of its list", where)
        return s

    def act_psample(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Psample)
        if a.cookie is not None and len(a.cookie) > _PSAMPLE_COOKIE_MAX:
            raise self.fail("psample-cookie", "psample", "psample cookie is longer than 16 bytes", where)
        return s

    def act_unknownaction(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, UnknownAction)
        decoded = _decode_raw_action(a.type, bytes(a.payload))
        if decoded is None:
            raise self.fail(
                "unknown-action",
                _action_name(a),
                f"{_action_name(a)}: action type {a.type} with a {len(a.payload)}-byte payload"
                " is not one the kernel accepts",
                where,
            )
        return self.check(decoded, s, depth, where, last)

    # -- set / set_masked ----------------------------------------------------
    def need_ethernet(self, s: _State, name: str, where: str) -> None:
        if s.mac_proto is not None and s.mac_proto != _MAC_PROTO_ETHERNET:
            raise self.fail("needs-ethernet", name, f"{name} needs a packet with an Ethernet header", where)

    def validate_set(self, attr: KeyAttr, masked: bool, s: _State, where: str) -> None:
        action = "set_masked" if masked else "set"
        type_ = getattr(attr, "TYPE", -1)
        name = _name(type_) if isinstance(type_, int) and type_ >= 0 else type(attr).__name__
        field = f"{action}({name})"
        # As the codec sends them: set() the values, set_masked() value & mask then the mask.
        if isinstance(attr, UnknownKeyAttr):
            value = bytes(attr.key)
            mask = bytes(attr.mask) if attr.mask is not None else b"\xff" * len(value)
        else:
            try:
                if masked and isinstance(attr, (FixedKeyAttr, Mpls)):
                    value = _attr_payload(attr.masked())
                else:
                    value = _attr_payload(attr)
                mask = _attr_payload(attr, mask=True) if masked else b"\xff" * len(value)
            except _ENCODE_ERRORS as exc:
                raise self.fail("unencodable", field, f"{field} cannot be sent: {exc}", where) from None
        if not isinstance(type_, int) or not 0 <= type_ <= 0xFFFF or type_ > _KEY_ATTR_MAX:
            raise self.fail("set-attr-not-settable", field, f"{field}: attribute type {type_} is unknown", where)
        if masked and type_ == K.TUNNEL:
            raise self.fail(
                "set-tunnel-masked", field, f"{field} is refused: tunnel() can only be set whole, with set()", where
            )
        expected = _KEY_LENS.get(type_, 0)
        if expected >= 0 and len(value) != expected:
            raise self.fail(
                "set-attr-length", field, f"{field} payload is {len(value)} bytes, expected {expected}", where
            )
        if masked and len(value) != len(mask):  # pragma: no cover - the model keeps them equal
            raise self.fail("set-attr-length", field, f"{field} value and mask differ in length", where)
        if masked and any(v & ~m for v, m in zip(value, mask, strict=False)):  # pragma: no cover - codec masks
            raise self.fail("set-masked-bits-outside-mask", field, f"{field} sets bits outside its mask", where)
        if type_ in (K.PRIORITY, K.SKB_MARK, K.CT_MARK, K.CT_LABELS):
            return
        if type_ == K.ETHERNET:
            self.need_ethernet(s, field, where)
            return
        if type_ == K.TUNNEL:
            self.validate_set_tunnel(value, field, where)
            return
        flow = self.flow
        if type_ in (K.IPV4, K.IPV6):
            v6 = type_ == K.IPV6
            want = ETH_P_IPV6 if v6 else ETH_P_IP
            if s.eth_type is not None and s.eth_type != want:
                raise self.fail(
                    "set-l3-eth-type",
                    field,
                    f"{field} needs an {'IPv6' if v6 else 'IPv4'} packet (eth_type is 0x{s.eth_type:04x})",
                    where,
                )
            if v6:
                label_v, proto_v, frag_v = struct.unpack_from("!IB2xB", value, 32)
                label_m, proto_m, frag_m = struct.unpack_from("!IB2xB", mask, 32)
            else:
                proto_v, frag_v = value[8], value[11]
                proto_m, frag_m = mask[8], mask[11]
                label_v = label_m = 0
            if masked:
                if proto_m or frag_m:
                    raise self.fail(
                        "set-ip-readonly", field, f"{field} cannot change the ip proto or frag (mask them out)", where
                    )
                if label_m & 0xFFF00000:
                    raise self.fail("set-ipv6-label-range", field, f"{field} label mask exceeds 20 bits", where)
            else:
                if flow.ip_proto is not None and proto_v != flow.ip_proto:
                    raise self.fail(
                        "set-ip-readonly",
                        field,
                        f"{field} proto {proto_v} differs from the flow's proto {flow.ip_proto} (it cannot change)",
                        where,
                    )
                if flow.ip_frag is not None and frag_v != flow.ip_frag:
                    raise self.fail(
                        "set-ip-readonly",
                        field,
                        f"{field} frag {frag_v} differs from the flow's frag {flow.ip_frag} (it cannot change)",
                        where,
                    )
            if label_v & 0xFFF00000:
                raise self.fail("set-ipv6-label-range", field, f"{field} label 0x{label_v:x} exceeds 20 bits", where)
            return
        if type_ in (K.TCP, K.UDP, K.SCTP):
            proto = _L4_PROTO[type_]
            if s.eth_type is not None and s.eth_type not in (ETH_P_IP, ETH_P_IPV6):
                raise self.fail(
                    "set-l4-proto", field, f"{field} needs an IP packet (eth_type is 0x{s.eth_type:04x})", where
                )
            if flow.ip_proto is not None and flow.ip_proto != proto:
                raise self.fail(
                    "set-l4-proto", field, f"{field} needs a flow with ip proto {proto} (it has {flow.ip_proto})", where
                )
            return
        if type_ == K.MPLS:
            if s.eth_type is not None and not _is_mpls_type(s.eth_type):
                raise self.fail(
                    "set-mpls-eth-type", field, f"{field} needs an MPLS packet (eth_type is 0x{s.eth_type:04x})", where
                )
            return
        if type_ == K.NSH:
            if s.eth_type is not None and s.eth_type != ETH_P_NSH:
                raise self.fail(
                    "set-nsh-eth-type", field, f"{field} needs an NSH packet (eth_type is 0x{s.eth_type:04x})", where
                )
            try:
                _nsh_key_put(value, None, masked, False)
            except InvalidFlow as exc:
                raise self.fail(exc.rule, field, f"{field}: {exc}", where) from None
            return
        raise self.fail(
            "set-attr-not-settable", field, f"{field} is refused: {name}() cannot be changed by a set action", where
        )

    def validate_set_tunnel(self, payload: bytes, field: str, where: str) -> None:
        sw = _blank()
        try:
            opts_type = _ip_tun_from_nlattr(payload, sw, sw, False)
        except InvalidFlow as exc:
            raise self.fail(exc.rule, field, f"set(tunnel): {exc}", where) from None
        if sw["tun_opts_len"] and opts_type == _TUN_GENEVE:
            opts = _get_opts(sw, sw["tun_opts_len"])
            offset = 0
            while offset < len(opts):
                if len(opts) - offset < 4:
                    raise self.fail(
                        "geneve-options-tlv", field, f"{field}: geneve options end inside an option header", where
                    )
                size = 4 + (opts[offset + 3] & 0x1F) * 4
                if size > len(opts) - offset:
                    raise self.fail(
                        "geneve-options-tlv", field, f"{field}: a geneve option runs past the end of the options", where
                    )
                offset += size


def _decode_raw_action(type_: int, payload: bytes) -> Action | None:
    """A fixed-size action given raw (UnknownAction) as the model action, or None."""
    try:
        if type_ == ActionType.OUTPUT and len(payload) == 4:
            return Output(struct.unpack("=I", payload)[0])
        if type_ == ActionType.RECIRC and len(payload) == 4:
            return Recirc(struct.unpack("=I", payload)[0])
        if type_ == ActionType.METER and len(payload) == 4:
            return Meter(struct.unpack("=I", payload)[0])
        if type_ == ActionType.TRUNC and len(payload) == 4:
            return Trunc(struct.unpack("=I", payload)[0])
        if type_ == ActionType.DROP and len(payload) == 4:
            return Drop(struct.unpack("=I", payload)[0])
        if type_ == ActionType.HASH and len(payload) == 8:
            alg, basis = struct.unpack("=II", payload)
            return Hash(alg, basis)
        if type_ == ActionType.PUSH_VLAN and len(payload) == 4:
            tpid, tci = struct.unpack("!HH", payload)
            return PushVlan(tci=tci, tpid=tpid)
        if type_ == ActionType.PUSH_MPLS and len(payload) == 8:
            lse, ethertype = struct.unpack("!IH2x", payload)
            return PushMpls(lse, ethertype)
        if type_ == ActionType.POP_MPLS and len(payload) == 2:
            return PopMpls(struct.unpack("!H", payload)[0])
        if type_ == ActionType.ADD_MPLS and len(payload) == 8:
            lse, ethertype, tun_flags = struct.unpack("!IHH", payload)
            return AddMpls(lse, ethertype, tun_flags)
        if type_ == ActionType.PUSH_ETH and len(payload) == 12:
            return PushEth(src=_be(payload[:6]), dst=_be(payload[6:]))
        simple: dict[int, Callable[[], Action]] = {
            ActionType.POP_VLAN: PopVlan,
            ActionType.POP_ETH: PopEth,
            ActionType.CT_CLEAR: CtClear,
            ActionType.POP_NSH: PopNsh,
        }
        if type_ in simple and not payload:
            return simple[type_]()
    except (ValueError, struct.error):  # pragma: no cover - the lengths are checked above
        return None
    return None


def _packet_flow(match: Match) -> tuple[_FlowInfo, _State]:
    """The action-relevant key fields of a packet's key, read as given (no flow validation)."""

    def value(m: object) -> int:
        return m.value & m.mask if isinstance(m, Masked) else 0

    mac_proto = _MAC_PROTO_ETHERNET if any(isinstance(a, Ethernet) for a in match.attrs) else _MAC_PROTO_NONE
    vlan_tci = 0
    eth_type = 0
    proto = frag = np = count = 0
    level: Sequence[KeyAttr] = match.attrs
    first = True
    while True:
        nested: Sequence[KeyAttr] | None = None
        for a in level:
            if isinstance(a, EthType):
                eth_type = value(a.value)
            elif isinstance(a, Vlan) and first:
                vlan_tci = value(a.tci)
            elif isinstance(a, (Ipv4, Ipv6)):
                proto, frag = value(a.proto), value(a.frag)
            elif isinstance(a, Nsh):
                np = value(a.np)
            elif isinstance(a, Mpls):
                count = len(a.lses)
            elif isinstance(a, Encap):
                nested = a.attrs
        if nested is None:
            break
        level, first = nested, False
    flow = _FlowInfo(eth_type, proto, frag, np)
    return flow, _State(mac_proto, eth_type, vlan_tci, count if _is_mpls_type(eth_type) else 0)


@last_by_identity  # flows installed in a loop often share one Actions object
def _encoded_actions(actions: Actions) -> bytes:
    # The cache key holds the bytes, not the Actions: set_masked values compare
    # mask-aware, but the kernel also checks the bits outside the mask.
    return _codec.encode_actions(actions)


def validate_actions(
    actions: Actions,
    match: Match | None = None,
    *,
    kernel: tuple[int, int] | None = None,
    packet: bool = False,
) -> None:
    """Raise :class:`InvalidFlow` when the kernel would refuse these actions (EINVAL).

    ``match`` is the flow the actions belong to: it is validated first (the
    kernel parses the key before the actions) and the checks that read the
    flow key use its *masked* key, as the kernel does.  Without it those checks
    wait until an action makes the state known.  ``kernel=(major, minor)``
    refuses actions the given kernel does not have.

    Rules: ``output-port``, ``userspace-pid``, ``trunc-length``, ``hash-alg``,
    ``needs-ethernet`` (push_vlan/pop_vlan/pop_eth/set(eth) on an L3 packet),
    ``push-vlan-tpid``, ``push-vlan-cfi``, ``mpls-ethertype``, ``mpls-with-vlan``,
    ``push-mpls-eth-type``, ``pop-mpls-not-mpls``, ``pop-mpls-teb``,
    ``set-attr-not-settable`` (in_port, eth_type, vlan, arp, icmp, nd, ...),
    ``set-attr-length``, ``set-masked-bits-outside-mask``, ``set-tunnel-masked``,
    ``set-l3-eth-type``, ``set-ip-readonly``, ``set-ipv6-label-range``,
    ``set-l4-proto``, ``set-mpls-eth-type``, ``set-nsh-eth-type``, the tunnel rules
    of :func:`validate_match` for ``set(tunnel(...))`` (``tunnel-needs-dst``,
    ``tunnel-needs-ttl``, ...) and ``geneve-options-tlv``; ``ct-needs-ip``,
    ``ct-mark-mask-zero``, ``ct-labels-mask-zero``, ``ct-needs-commit``, ``ct-helper``,
    ``ct-timeout``, ``nat-flags-without-type``, ``nat-needs-commit``,
    ``nat-address-family``, ``nat-outside-ct``; ``push-eth-has-ethernet``,
    ``pop-eth-with-vlan``, ``push-nsh-eth-type``, ``push-nsh-attr``, the NSH rules,
    ``pop-nsh-eth-type``, ``pop-nsh-next-proto``; ``check-pkt-len-zero``,
    ``drop-not-last``, ``psample-cookie``, ``unknown-action``,
    ``action-needs-newer-kernel``, ``malformed-action``; ``nesting-too-deep``
    (more than 16 nested lists; the kernel answers EOVERFLOW, so the error's
    ``errno`` is EOVERFLOW).

    ``packet=True`` is for OVS_PACKET_CMD_EXECUTE: ``match`` is then the exact
    key of the packet (as a MISS upcall reports it); it is not validated as a
    flow and its values are read as they are (the kernel extracts that key
    from the packet itself, so e.g. a truncated VLAN tag keeps eth_type 0x8100).
    """
    cache_key: tuple[int, bytes, object] | None = None
    if match is not None and not packet and isinstance(match, Match) and isinstance(actions, Actions):
        try:
            signature = _accepted_signature(match)
            if signature is not None:
                cache_key = (id(signature), _encoded_actions(actions), kernel)
        except (ValueError, TypeError, OverflowError, struct.error):  # the full path explains it
            cache_key = None
        if cache_key is not None and cache_key in _accepted_actions:
            return
    _validate_actions(actions, match, kernel=kernel, packet=packet)
    if cache_key is not None:
        if len(_accepted_actions) >= _SIGNATURE_CACHE_MAX:
            _accepted_actions.clear()
        _accepted_actions.add(cache_key)


def _validate_actions(actions: Actions, match: Match | None, *, kernel: tuple[int, int] | None, packet: bool) -> None:
    if match is not None and packet:
        flow, state = _packet_flow(match)
    elif match is None:
        flow = _FlowInfo(None, None, None, None)
        state = _State(None, None, None, None)
    else:
        parsed = _get_match(match)
        masked = _masked(parsed.key, parsed.mask)
        flow = _FlowInfo(masked["eth_type"], masked["ip_proto"], masked["ip_frag"], masked["nsh_np"])
        count = bin(masked["mpls_labels"]).count("1") if _is_mpls_type(masked["eth_type"]) else 0
        state = _State(masked["mac_proto"], masked["eth_type"], masked["vlan_tci"], count)
    if not isinstance(actions, Actions):
        raise _fail("malformed-action", "actions", f"{actions!r} is not an Actions list")
    if kernel is not None and not (
        isinstance(kernel, tuple) and len(kernel) == 2 and all(isinstance(x, int) for x in kernel)
    ):
        raise _fail("malformed-action", "kernel", f"kernel must be a (major, minor) tuple, not {kernel!r}")
    checker = _ActionChecker(flow, kernel if kernel is not None else NEWEST_KERNEL, state.mac_proto)
    checker.check_list(actions.items, state, 0, "")
