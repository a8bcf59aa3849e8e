"""What the kernel reports for a stored key and mask: ``__ovs_nla_put_key`` (flow_netlink.c), transcribed.

Dumps (:func:`flow_match`), MISS upcalls (:func:`packet_match`) and
:func:`kernel_mask` all come from one transcription of the kernel's dump code
run on swkey ints (:mod:`odp.validate.swkey`), then paired into a
:class:`~odp.keys.Match` (values from the key dump, masks from the mask dump).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, cast

from odp.constants import (
    DP_MAX_PORTS,
    ETH_P_802_2,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_NSH,
    ETH_P_RARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    KeyAttrType,
)
from odp.fields import Masked
from odp.keys import (
    ALL_ATTR_CLASSES,
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
    FixedKeyAttr,
    Icmp,
    Icmpv6,
    Ipv4,
    Ipv6,
    Ipv6Exthdrs,
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
    TcpFlags,
    Tunnel,
    Udp,
)
from odp.validate.get_match import (
    _AF_INET,
    _AF_INET6,
    _FRAG_LATER,
    _MAC_PROTO_ETHERNET,
    _MPLS_LABEL_DEPTH,
    _ND_TYPES,
    _TF_CSUM,
    _TF_DF,
    _TF_ERSPAN,
    _TF_GENEVE,
    _TF_KEY,
    _TF_OAM,
    _TF_VXLAN,
    _VXLAN_METADATA_LEN,
    _get_opts,
    _is_mpls_type,
    _is_vlan_type,
    _ne,
    sw_match,
)
from odp.validate.swkey import SwMatch, View

__all__ = ["flow_match", "kernel_mask", "packet_match"]

K = KeyAttrType

# A dumped attribute: (type, content).  Content is a tuple of field ints for
# fixed attributes and MPLS, a dict for TUNNEL and NSH, a list for ENCAP.
_Content: TypeAlias = "tuple[int, ...] | dict[str, object] | list[_Dumped]"
_Dumped: TypeAlias = "tuple[int, _Content]"


def _tunnel_dump(out: Mapping[str, int], opts_len: int, tun_proto: int) -> dict[str, object]:
    d: dict[str, object] = {}
    flags = out["tun_flags"]
    if flags & _TF_KEY:
        d["tun_id"] = out["tun_id"]
    if tun_proto == _AF_INET:
        if out["tun_ipv4_src"]:
            d["ipv4_src"] = out["tun_ipv4_src"]
        if out["tun_ipv4_dst"]:
            d["ipv4_dst"] = out["tun_ipv4_dst"]
    elif tun_proto == _AF_INET6:
        if out["tun_ipv6_src"]:
            d["ipv6_src"] = out["tun_ipv6_src"]
        if out["tun_ipv6_dst"]:
            d["ipv6_dst"] = out["tun_ipv6_dst"]
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


def _put_key(sw: Mapping[str, int], out: Mapping[str, int], is_mask: bool) -> list[_Dumped]:
    """__ovs_nla_put_key: the attributes reported for ``out``, with the choices
    (which attributes, which nesting) made on ``sw`` (the key, or for a mask
    dump the masked key)."""
    top: list[_Dumped] = []
    cur = top
    _put(top, RecircId, out)
    _put(top, DpHash, out)
    _put(top, Priority, out)
    if sw["tun_proto"] or is_mask:
        top.append((K.TUNNEL, _tunnel_dump(out, sw["tun_opts_len"], sw["tun_proto"])))
    if sw["in_port"] == DP_MAX_PORTS:
        if is_mask and out["in_port"] == 0xFFFF:
            top.append((K.IN_PORT, (0xFFFFFFFF,)))
    else:
        top.append((K.IN_PORT, ((0xFFFF0000 if is_mask else 0) | out["in_port"],)))
    for cls in (SkbMark, CtState, CtZone, CtMark, CtLabels):
        _put(top, cls, out)
    if sw["ct_orig_proto"]:
        if sw["eth_type"] == ETH_P_IP:
            _put(top, CtTupleIpv4, out)
        elif sw["eth_type"] == ETH_P_IPV6:
            _put(top, CtTupleIpv6, out)
    if sw["mac_proto"] == _MAC_PROTO_ETHERNET:
        _put(top, Ethernet, out)
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
        _put(cur, Ipv4, out)
    elif eth_type == ETH_P_IPV6:
        _put(cur, Ipv6, out)
        _put(cur, Ipv6Exthdrs, out)
    elif eth_type == ETH_P_NSH:
        nsh: dict[str, object] = {n: out["nsh_" + n] for n in ("flags", "ttl", "mdtype", "np", "path_hdr")}
        if is_mask or sw["nsh_mdtype"] == 1:
            nsh.update({f"c{i}": out[f"nsh_c{i}"] for i in range(1, 5)})
        cur.append((K.NSH, nsh))
    elif eth_type in (ETH_P_ARP, ETH_P_RARP):
        _put(cur, Arp, out)
    elif _is_mpls_type(eth_type):
        count = bin(out["mpls_labels"]).count("1")
        cur.append((K.MPLS, tuple(out[f"mpls_lse{i}"] for i in range(min(count, _MPLS_LABEL_DEPTH)))))
    if eth_type in (ETH_P_IP, ETH_P_IPV6) and sw["ip_frag"] != _FRAG_LATER:
        proto = sw["ip_proto"]
        if proto == IPPROTO_TCP:
            _put(cur, Tcp, out)
            _put(cur, TcpFlags, out)
        elif proto == IPPROTO_UDP:
            _put(cur, Udp, out)
        elif proto == IPPROTO_SCTP:
            _put(cur, Sctp, out)
        elif eth_type == ETH_P_IP and proto == IPPROTO_ICMP:
            _put(cur, Icmp, out)
        elif eth_type == ETH_P_IPV6 and proto == IPPROTO_ICMPV6:
            _put(cur, Icmpv6, out)
            if sw["tp_src"] in _ND_TYPES:
                _put(cur, Nd, out)
    return top


def _put(container: list[_Dumped], cls: type[FixedKeyAttr], out: Mapping[str, int]) -> None:
    """Report a fixed-size attribute from the swkey fields its fields are declared
    to live in (cut to the attribute's width: ICMP type/code in tp_src/tp_dst,
    an IPv4 conntrack tuple in the 16-byte ct_orig fields)."""
    container.append((cls.TYPE, tuple([out[cast(str, s.sw)] & s.kind.full for s in cls.FIELDS])))


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

    kw: dict[str, Any] = {spec.name: Masked(num(kd, spec.name), num(md, spec.name)) for spec in Tunnel.FIELDS}
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
    for spec in Nsh.FIELDS:
        kv, mv = kd.get(spec.name, 0), md.get(spec.name, 0)
        kw[spec.name] = Masked(kv if isinstance(kv, int) else 0, mv if isinstance(mv, int) else 0)
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
            size = max(len(kv), len(mv))  # 0: a frame cut before the bottom of the stack
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
    sw = sw_match(match)
    return flow_match(sw.key, sw, masked_key=masked_key)


def flow_match(unmasked_key: int, sw: SwMatch, *, masked_key: bool = False) -> Match:
    """A flow as a dump reports it: the original unmasked key (or with
    ``masked_key`` the masked key, as for UFID flows) and the mask it holds."""
    masked = sw.masked_key
    reported = masked if masked_key else unmasked_key
    merged = _merge(_put_key(View(reported), View(reported), False), _put_key(View(masked), View(sw.mask), True))
    return Match(*(a for a, in_key in merged if in_key), mask_only=[a for a, in_key in merged if not in_key])


def packet_match(key: int) -> Match:
    """A packet's key as a MISS upcall reports it: every reported field exact."""
    dump = _put_key(View(key), View(key), False)
    return Match(*(a for a, _ in _merge(dump, _exact(dump))))


def _exact(dump: list[_Dumped]) -> list[_Dumped]:
    """The mask dump that matches every field of ``dump`` exactly."""
    out: list[_Dumped] = []
    for type_, content in dump:
        if isinstance(content, list):
            out.append((type_, _exact(content)))
        elif isinstance(content, dict):
            full: dict[str, object] = {}
            for name, value in content.items():
                if isinstance(value, bytes):
                    full[name] = b"\xff" * len(value)
                else:
                    full[name] = _DICT_FIELD_FULL[type_].get(name, 0)
            if type_ == K.TUNNEL:
                full["flags"] = 0xF
            out.append((type_, full))
        elif type_ == K.MPLS:
            out.append((type_, tuple(0xFFFFFFFF for _ in content)))
        else:
            cls = ALL_ATTR_CLASSES[type_]
            assert issubclass(cls, FixedKeyAttr)
            out.append((type_, tuple(spec.kind.full for spec in cls.FIELDS)))
    return out


#: All-ones values of the fields of the attributes dumped as dicts.
_DICT_FIELD_FULL: dict[int, dict[str, int]] = {
    K.TUNNEL: {spec.name: spec.kind.full for spec in Tunnel.FIELDS},
    K.NSH: {spec.name: spec.kind.full for spec in Nsh.FIELDS},
}
