"""The ODP flow text format, as ``ovs-dpctl dump-flows`` prints and reads it.

A match is a comma-separated list of ``name(fields)`` key attributes, an action
list a comma-separated list of actions (empty: ``drop``), and a dump line is
``<match>, packets:N, bytes:N, used:never|X.XXXs[, flags:...], actions:<actions>``.

Formatting follows OVS's ``lib/odp-util.c`` (non-verbose ``odp_flow_format``
and ``format_odp_action``):

* attributes come in the kernel's dump order whatever the order in the
  :class:`~odp.keys.Match`: recirc_id, dp_hash, skb_priority, tunnel, in_port,
  skb_mark, ct_state, ct_zone, ct_mark, ct_label, ct_tuple4, ct_tuple6,
  packet_type, eth, eth_type, vlan, encap, mpls/ipv4/ipv6/nsh/arp,
  ipv6_exthdrs, tcp, tcp_flags, udp, sctp, icmp, icmpv6, nd, then unknown
  attributes in their given order.  (The kernel writes ``eth_type`` *before*
  ``vlan``: a tagged flow dumps as ``eth(),eth_type(0x8100),vlan(vid=5),encap(...)``.)
* fully wildcarded fields are omitted and so are fully wildcarded attributes,
  except ``eth()``, ``vlan(...)`` and ``encap(...)`` whose presence matters;
* a partial mask prints as ``value/mask`` with the value and mask in the
  field's own notation (addresses, ``%u/%#x`` for ports and u8 decimals,
  ``%#x/%#x`` for hex fields; ``%#x`` prints zero as ``0``);
* ``eth_type(0/0x0000)`` is appended for a mask-only ``EthType``.

Parsing accepts everything the formatter writes, OVS's own forms, and the
variants of the kernel selftest tool ``ovs-dpctl.py``: decimal ``tun_id``,
numeric ``frag=0``, ``/N`` prefix masks on IPv4/IPv6 addresses, ``vlan(tci=..)``,
``drop(N)``, ``set_masked(...)``, ``push_vlan(vid=..,pcp=..,tpid=..)`` in any
order, ``psample(group=..,cookie(..))``, whitespace around tokens and
separators.  Numbers follow C's ``%i``: ``0x`` hex, a leading ``0`` octal,
else decimal (``ct(mark=...)`` is hex, as in OVS).  A field given without a
mask is exact; ``ipv4()`` is present with every field wildcarded; a duplicate
attribute or field is an error.  Every error is a
:class:`~odp.errors.ParseError` giving the position and what was expected.

Extensions (forms OVS cannot print, chosen so that text stays lossless):

* unknown key attributes: ``key<type>(<hex>[/<hex>])`` (plain hex bytes);
  unknown actions: ``action<type>`` or ``action<type>(<hex>)``; unknown
  tunnel sub-attributes: ``key<type>(<hex>[/<hex>])`` inside ``tunnel()``;
* ``vlan(...,cfi=V/0)`` when the TCI mask lacks the CFI bit; ``frag=N/0xM`` for
  a partial frag mask; ``ct_state``/``tcp_flags`` as numeric ``0xV/0xM`` when
  the mask has bits that have no flag name (OVS would print ``[Unknown]``);
* ``geneve(raw=<hex>[/<hex>])`` / ``erspan(raw=<hex>[/<hex>])`` for option
  bytes that are not well-formed options (or use reserved bits);
  ``erspan(ver=1,idx=..)`` / ``erspan(ver=2,dir=..,hwid=..)`` otherwise, with
  the 12-byte ``struct erspan_metadata`` (host-order version) layout;
* ``nsh(...,md2=0x<hex>[/0x<hex>])``; the explicit drop action prints as
  ``drop(<reason>)`` (``drop`` alone is the empty list); ``ct(...,zone=0)`` is
  printed when the zone attribute is present; ``ct(...,emask=0x..)``;
  ``add_mpls(...,tun_flags=0x..)``; ``hash(alg=N,basis=M)`` for unknown
  algorithms; ``userdata`` is always printed as hex (OVS's cookie decoding is
  userspace-specific); ``psample`` cookies and ``md2`` keep leading zero bytes.

Lossy cases (``parse(format(x)) != x``):

* fully wildcarded non-structural attributes vanish (equality ignores them);
  mask-only attributes other than ``EthType`` are not printed;
* ``Set`` prints its attribute verbosely without masks, so the attribute read
  back has exact masks on the printed fields (the kernel ignores a SET's mask);
  (a ``Set(Tunnel)`` is not lossy: :class:`~odp.actions.Set` holds the tunnel
  the kernel receives, ``ttl`` and whole ``flags`` included, which prints and
  reads back unchanged);
  a ``SetMasked`` whose mask is full reads back as ``Set`` (as in OVS), and a
  ``set(...)`` of a partial fixed-size attribute or ``mpls`` always reads as ``SetMasked``;
* masks the text shows as exact although they are not all ones read back all
  ones: ``tcp_flags`` masks with the low 12 bits set, IPv6 ``label`` masks
  with the low 20 bits set (both kept with ``exact=True``), geneve option length masks with the low 5 bits
  set, vxlan ``gbp`` masks with both id and flags exact (read back as
  ``0xffffffff``; bits 24-31 of the gbp value are not representable);
* ``sample`` probabilities are printed with one decimal of a percent (OVS's
  precision) and read back as ``floor(pct/100 * (2**32-1) + 0.5)``; with
  ``exact=True`` (what odp stores: the simulator's state, ``--json``) with as
  many decimals as the exact value needs;
* ``nat``: ``ip_max`` equal to ``ip_min`` or zero, and ``proto_min`` zero, are
  not printed (OVS); ``nat`` without ``src``/``dst`` prints as bare ``nat``;
* ``ct(helper=..)``/``timeout`` strings and port names containing separators;
* an ``Nsh``'s ``has_md1`` is derived from the MD1 fields printed; ``push_nsh``
  always carries exact values;
* a flow line's ``used`` is printed in milliseconds and a zero ``tcp_flags``
  is not printed (reads back as None).
"""

from __future__ import annotations

import math
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

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
from odp.constants import VLAN_CFI, HashAlg, TunnelFlag
from odp.errors import OdpError, ParseError
from odp.fields import Masked, format_ipv4, format_ipv6, format_mac, parse_mac
from odp.keys import (
    FIXED_ATTRS,
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
    MaskedBytes,
    Match,
    Mpls,
    Nd,
    Nsh,
    PacketType,
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

__all__ = [
    "FlowLine",
    "PortNames",
    "Ports",
    "format_action",
    "format_actions",
    "format_flow_line",
    "format_key_attr",
    "format_match",
    "parse_actions",
    "parse_flow_line",
    "parse_match",
]

#: How port names are resolved when parsing: a mapping or a function from name to number.
Ports: TypeAlias = Callable[[str], int] | Mapping[str, int] | None
#: How port numbers are named when formatting.
PortNames: TypeAlias = Mapping[int, str] | None

_T = TypeVar("_T")

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_U128 = (1 << 128) - 1
_WS = " \t\r\n"
_DELIMS = ", \t\r\n"
_HEXDIGITS = "0123456789abcdefABCDEF"
_MAX_DEPTH = 32
_MAX_NUMBER_CHARS = 300

_TUN_FLAG_NAMES = {0x1: "oam", 0x2: "df", 0x4: "csum", 0x8: "key"}
_TCP_FLAG_NAMES = {
    0x001: "fin", 0x002: "syn", 0x004: "rst", 0x008: "psh", 0x010: "ack", 0x020: "urg",
    0x040: "ece", 0x080: "cwr", 0x100: "ns", 0x200: "[200]", 0x400: "[400]", 0x800: "[800]",
}  # fmt: skip
_CT_STATE_NAMES = {
    0x01: "new", 0x02: "est", 0x04: "rel", 0x08: "rpl", 0x10: "inv", 0x20: "trk", 0x40: "snat", 0x80: "dnat",
}  # fmt: skip
_FRAG_NAMES = {0: "no", 1: "first", 2: "later"}
_FRAG_VALUES = {"no": 0, "first": 1, "later": 2}
# ovs-dpctl's one-letter TCP flags in dump lines (packet_format_tcp_flags), in print order.
_STATS_TCP_FLAGS = (
    (0x002, "S"), (0x001, "F"), (0x008, "P"), (0x004, "R"), (0x020, "U"), (0x010, "."),
    (0x040, "E"), (0x080, "C"), (0x100, "N"), (0x200, "[200]"), (0x400, "[400]"), (0x800, "[800]"),
)  # fmt: skip
# Bare words that are actions, so they cannot be printed as port names.
_BARE_ACTIONS = frozenset({"drop", "pop_vlan", "pop_eth", "pop_nsh", "ct_clear", "ct", "dec_ttl"})


# ===========================================================================
# Formatting
# ===========================================================================


def _hx(v: int) -> str:
    """C's ``%#x``: ``0x`` prefix except for zero, which prints as ``0``."""
    return f"{v:#x}" if v else "0"


def _port_label(port: int, names: PortNames) -> str:
    if names:
        name = names.get(port)
        if name and _printable_port_name(name):
            return name
    return str(port)


def _printable_port_name(name: str) -> bool:
    """Whether ``name`` reads back as a port name (not a number, keyword or separator-laden)."""
    if not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
        return False
    if any(not c.isascii() or not c.isprintable() or c in ",()/=[]{}" or c in _WS for c in name):
        return False
    return name not in _BARE_ACTIONS and not _unknown_type(name, "action")


def _unknown_type(word: str, prefix: str) -> int | None:
    """The number in ``key17`` / ``action42`` style names, else None."""
    digits = word[len(prefix) :]
    if word.startswith(prefix) and digits and len(digits) <= 10 and all(c in "0123456789" for c in digits):
        return int(digits)
    return None


def _fmt_flags(value: int, names: Mapping[int, str]) -> str:
    """OVS format_flags(): named bits joined by ``|`` (rightmost first), unknown bits as hex, 0 as ``0``."""
    if not value:
        return "0"
    out: list[str] = []
    bad = 0
    while value:
        bit = value & -value
        name = names.get(bit)
        if name is None:
            bad |= bit
        else:
            out.append(name)
        value &= ~bit
    if bad:
        out.append(f"0x{bad:x}")
    return "|".join(out)


def _fmt_flags_masked(value: int, mask: int, names: Mapping[int, str]) -> str:
    """OVS format_flags_masked(): ``+name`` / ``-name`` for each masked bit (all bits must be named)."""
    out: list[str] = []
    while mask:
        bit = mask & -mask
        out.append(("+" if value & bit else "-") + names[bit])
        mask &= ~bit
    return "".join(out)


def _fmt_scalar(kind: str, v: int) -> str:
    if kind == "mac":
        return format_mac(v)
    if kind == "ip4":
        return format_ipv4(v)
    if kind == "ip6":
        return format_ipv6(v)
    if kind == "dec":
        return str(v)
    if kind == "tunid":
        return f"0x{v:x}"
    if kind == "frag":
        return _FRAG_NAMES.get(v, str(v))
    return _hx(v)  # "hex", "label"


#: True while formatting with ``exact=True``: for odp's own storage (the
#: simulator's state file, ``--json``), where a value must read back unchanged
#: even where ovs-dpctl's canonical text rounds it (sample probabilities,
#: IPv6 label and tcp_flags masks whose named bits are all set, nat maxima).
_EXACT: ContextVar[bool] = ContextVar("odp_text_exact", default=False)


@contextmanager
def _exact(on: bool) -> Iterator[None]:
    token = _EXACT.set(on) if on else None
    try:
        yield
    finally:
        if token is not None:
            _EXACT.reset(token)


def _fmt_masked_field(kind: str, m: Masked, full: int) -> str | None:
    """One field in non-verbose form, or None when it is fully wildcarded."""
    if not m.mask:
        return None
    if kind == "frag":
        return _fmt_scalar(kind, m.value) if m.mask == full else f"{m.value}/{_hx(m.mask)}"
    text = _fmt_scalar(kind, m.value)
    if kind == "label":  # OVS prints a label exact once its 20 bits are (format_ipv6_label)
        exact = m.mask == full or ((m.mask & 0xFFFFF) == 0xFFFFF and not _EXACT.get())
    else:
        exact = m.mask == full
    if not exact:
        text += "/" + (_fmt_scalar(kind, m.mask) if kind in ("mac", "ip4", "ip6") else _hx(m.mask))
    return text


#: Fixed-layout attributes printed as ``name=value`` lists: (model field, text name, kind),
#: from the fields' declarations in odp.keys.
_LAYOUT: dict[type[FixedKeyAttr], tuple[tuple[str, str, str], ...]] = {
    cls: tuple((s.name, s.text, s.show) for s in cls.TEXT_FIELDS) for cls in FIXED_ATTRS.values() if cls.TEXT_FIELDS
}
_ALIASES: dict[type[FixedKeyAttr], dict[str, str]] = {CtTupleIpv6: {"tp_src": "tp_src", "tp_dst": "tp_dst"}}
_FIELD_BITS: dict[type[FixedKeyAttr], dict[str, int]] = {
    cls: {s.name: s.kind.bits for s in cls.FIELDS} for cls in _LAYOUT
}

_ORDER: tuple[type[KeyAttr], ...] = (
    RecircId, DpHash, Priority, Tunnel, InPort, SkbMark, CtState, CtZone, CtMark, CtLabels,
    CtTupleIpv4, CtTupleIpv6, PacketType, Ethernet, EthType, Vlan, Encap, Mpls, Ipv4, Ipv6, Nsh, Arp,
    Ipv6Exthdrs, Tcp, TcpFlags, Udp, Sctp, Icmp, Icmpv6, Nd,
)  # fmt: skip
_RANK: dict[type[KeyAttr], int] = {cls: i for i, cls in enumerate(_ORDER)}
_STRUCTURAL = (Ethernet, Vlan, Encap)


def _sorted_attrs(attrs: Iterable[KeyAttr]) -> list[KeyAttr]:
    return sorted(attrs, key=lambda a: _RANK.get(type(a), len(_ORDER)))


def _fmt_attr_list(attrs: Iterable[KeyAttr], names: PortNames) -> list[str]:
    return [
        _fmt_attr(a, names, False) for a in _sorted_attrs(attrs) if isinstance(a, _STRUCTURAL) or not a.is_wildcard()
    ]


def _single(a: FixedKeyAttr) -> tuple[Masked, int]:
    spec = a.FIELDS[0]
    value: Masked = getattr(a, spec.name)
    return value, spec.kind.full


def _fmt_attr(a: KeyAttr, names: PortNames, verbose: bool) -> str:
    """One attribute; ``verbose`` is the SET form (all fields, values only)."""
    layout = _LAYOUT.get(type(a)) if isinstance(a, FixedKeyAttr) else None
    if layout is not None:
        assert isinstance(a, FixedKeyAttr)
        bits = _FIELD_BITS[type(a)]
        parts: list[str] = []
        for fname, tname, kind in layout:
            m: Masked = getattr(a, fname)
            text = _fmt_scalar(kind, m.value) if verbose else _fmt_masked_field(kind, m, (1 << bits[fname]) - 1)
            if text is not None:
                parts.append(f"{tname}={text}")
        return f"{a.NAME}({','.join(parts)})"
    if isinstance(a, UnknownKeyAttr):
        body = a.key.hex()
        if not verbose and a.mask is not None and a.mask != b"\xff" * len(a.key):
            body += "/" + a.mask.hex()
        return f"key{a.type}({body})"
    return f"{a.NAME}({_fmt_attr_body(a, names, verbose)})"


def _fmt_attr_body(a: KeyAttr, names: PortNames, verbose: bool) -> str:
    if isinstance(a, (Priority, SkbMark, RecircId, DpHash, Ipv6Exthdrs)):
        m, full = _single(a)
        return _hx(m.value) if verbose or m.mask == full else f"{_hx(m.value)}/{_hx(m.mask)}"
    if isinstance(a, (CtMark, CtZone, CtLabels)):
        m, full = _single(a)
        if verbose:
            return _hx(m.value)
        if not m.mask:
            return ""
        return _hx(m.value) if m.mask == full else f"{_hx(m.value)}/{_hx(m.mask)}"
    if isinstance(a, InPort):
        m = a.port
        if verbose:
            return str(m.value)
        return _port_label(m.value, names) if m.mask == _U32 else f"{m.value}/{_hx(m.mask)}"
    if isinstance(a, EthType):
        m = a.value
        return f"0x{m.value:04x}" if verbose or m.mask == _U16 else f"0x{m.value:04x}/0x{m.mask:04x}"
    if isinstance(a, CtState):
        m, full = _single(a)
        if verbose:
            return _hx(m.value)
        if m.mask == full:
            return _fmt_flags(m.value, _CT_STATE_NAMES)
        if m.mask and not m.mask & ~0xFF:
            return _fmt_flags_masked(m.value, m.mask, _CT_STATE_NAMES)
        return f"{_hx(m.value)}/{_hx(m.mask)}"
    if isinstance(a, TcpFlags):
        m = a.value
        if verbose or m.mask == _U16 or ((m.mask & 0xFFF) == 0xFFF and not _EXACT.get()):
            return _fmt_flags(m.value, _TCP_FLAG_NAMES)
        if m.mask and not m.mask & ~0xFFF:
            return _fmt_flags_masked(m.value, m.mask, _TCP_FLAG_NAMES)
        return f"{_hx(m.value)}/{_hx(m.mask)}"
    if isinstance(a, Vlan):
        return _fmt_vlan_tci(a.tci.value, _U16 if verbose else a.tci.mask, verbose)
    if isinstance(a, Tunnel):
        return _fmt_tunnel(a, verbose)
    if isinstance(a, Mpls):
        return _fmt_mpls(a, verbose)
    if isinstance(a, Nsh):
        return _fmt_nsh(a)
    if isinstance(a, Encap):
        return ",".join(_fmt_attr_list(a.attrs, names))
    return ""  # an attribute class this module does not know: print it empty


def _fmt_vlan_tci(tci: int, mask: int, verbose: bool) -> str:
    """OVS format_vlan_tci(), plus ``cfi=V/0`` when the mask lacks the CFI bit."""
    parts: list[str] = []
    vid, vid_mask = tci & 0xFFF, mask & 0xFFF
    if verbose or vid or vid_mask:
        parts.append(f"vid={vid}" + ("" if vid_mask == 0xFFF else f"/0x{vid_mask:x}"))
    pcp, pcp_mask = tci >> 13, mask >> 13
    if verbose or pcp or pcp_mask:
        parts.append(f"pcp={pcp}" + ("" if pcp_mask == 7 else f"/0x{pcp_mask:x}"))
    if not mask & VLAN_CFI:
        parts.append(f"cfi={1 if tci & VLAN_CFI else 0}/0")
    elif not tci & VLAN_CFI:
        parts.append("cfi=0")
    return ",".join(parts)


def _fmt_mpls(a: Mpls, verbose: bool) -> str:
    if not a.lses:  # an empty attribute: ovs-dpctl's words for it (format_odp_key_attr__)
        return _MPLS_EMPTY
    exact = verbose or all(lse.mask == _U32 for lse in a.lses)
    out: list[str] = []
    for lse in a.lses:
        v, m = lse.value, lse.mask
        if exact:
            out.append(f"label={v >> 12},tc={(v >> 9) & 7},ttl={v & 0xFF},bos={(v >> 8) & 1}")
        else:
            out.append(
                f"label={v >> 12}/0x{m >> 12:x},tc={(v >> 9) & 7}/{(m >> 9) & 7:x},"
                f"ttl={v & 0xFF}/0x{m & 0xFF:x},bos={(v >> 8) & 1}/{(m >> 8) & 1:x}"
            )
    return ",".join(out)


def _fmt_nsh(a: Nsh) -> str:
    """OVS format_nsh_key_mask() (used for matches and set actions), plus md2."""
    parts: list[str] = []

    def u8(name: str, v: int, m: int) -> None:
        if m:
            parts.append(f"{name}={v}" if m == 0xFF else f"{name}=0x{v:02x}/0x{m:02x}")

    def be32(name: str, v: int, m: int) -> None:
        if m:
            parts.append(f"{name}=0x{v:x}" if m == _U32 else f"{name}=0x{v:x}/0x{m:08x}")

    for name in ("flags", "ttl", "mdtype", "np"):
        f: Masked = getattr(a, name)
        u8(name, f.value, f.mask)
    ph = a.path_hdr
    spi_mask = ph.mask >> 8
    be32("spi", ph.value >> 8, _U32 if spi_mask == 0xFFFFFF else spi_mask)
    u8("si", ph.value & 0xFF, ph.mask & 0xFF)
    for name in ("c1", "c2", "c3", "c4"):
        c: Masked = getattr(a, name)
        be32(name, c.value, c.mask)
    if a.md2 is not None:
        text = "md2=0x" + a.md2.value.hex()
        if a.md2.mask != b"\xff" * len(a.md2.mask):
            text += "/0x" + a.md2.mask.hex()
        parts.append(text)
    return ",".join(parts)


def _fmt_tunnel(t: Tunnel, verbose: bool) -> str:
    """format_odp_tun_attr(); ``verbose`` prints a SET's values (present fields, ttl, flags always)."""
    parts: list[str] = []

    def field(name: str, m: Masked, kind: str, full: int, always: bool = False) -> None:
        if verbose:
            if always or m.value or m.mask:
                parts.append(f"{name}={_fmt_scalar(kind, m.value)}")
        else:
            text = _fmt_masked_field(kind, m, full)
            if text is not None:
                parts.append(f"{name}={text}")

    field("tun_id", t.tun_id, "tunid", _U64, always=bool(t.flags.value & TunnelFlag.KEY))
    field("src", t.ipv4_src, "ip4", _U32)
    field("dst", t.ipv4_dst, "ip4", _U32)
    field("ipv6_src", t.ipv6_src, "ip6", _U128)
    field("ipv6_dst", t.ipv6_dst, "ip6", _U128)
    field("tos", t.tos, "hex", 0xFF)
    field("ttl", t.ttl, "dec", 0xFF, always=True)
    field("tp_src", t.tp_src, "dec", _U16)
    field("tp_dst", t.tp_dst, "dec", _U16)
    if t.geneve is not None:
        parts.append(f"geneve({_fmt_geneve(t.geneve, verbose)})")
    gbp = t.vxlan_gbp
    if gbp.mask or (verbose and gbp.value):
        gparts: list[str] = []
        gid, gid_mask = gbp.value & _U16, _U16 if verbose else gbp.mask & _U16
        if gid_mask:
            gparts.append(f"id={gid}" + ("" if gid_mask == _U16 else f"/{_hx(gid_mask)}"))
        gfl, gfl_mask = (gbp.value >> 16) & 0xFF, 0xFF if verbose else (gbp.mask >> 16) & 0xFF
        if gfl_mask:
            gparts.append(f"flags={_hx(gfl)}" + ("" if gfl_mask == 0xFF else f"/{_hx(gfl_mask)}"))
        parts.append(f"vxlan(gbp({','.join(gparts)}))")
    if t.erspan is not None:
        parts.append(f"erspan({_fmt_erspan(t.erspan, verbose)})")
    for typ, key, mask in t.extra:
        body = key.hex()
        if not verbose and mask != b"\xff" * len(key):
            body += "/" + mask.hex()
        parts.append(f"key{typ}({body})")
    flags, flags_mask = t.flags.value & 0xF, t.flags.mask & 0xF
    if verbose or flags_mask == 0xF:
        parts.append(f"flags({_fmt_flags(flags, _TUN_FLAG_NAMES)})")
    elif flags_mask:
        parts.append(f"flags({_fmt_flags_masked(flags, flags_mask, _TUN_FLAG_NAMES)})")
    return ",".join(parts)


def _fmt_raw(b: MaskedBytes, verbose: bool) -> str:
    text = "raw=" + b.value.hex()
    if not verbose and b.mask != b"\xff" * len(b.mask):
        text += "/" + b.mask.hex()
    return text


def _geneve_options(value: bytes) -> list[tuple[int, int]] | None:
    """(offset, data length) of each option, or None when the bytes are not plain options."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(value):
        if len(value) - i < 4 or value[i + 3] & 0xE0:
            return None
        dlen = (value[i + 3] & 0x1F) * 4
        if i + 4 + dlen > len(value):
            return None
        out.append((i, dlen))
        i += 4 + dlen
    return out


def _fmt_geneve(g: MaskedBytes, verbose: bool) -> str:
    """format_geneve_opts(): ``{class=..,type=..,len=..,<data>[/<mask>]}`` per option."""
    opts = _geneve_options(g.value)
    if opts is None:
        return _fmt_raw(g, verbose)
    v, m = g.value, g.mask
    out: list[str] = []
    for off, dlen in opts:
        cls, cls_mask = int.from_bytes(v[off : off + 2], "big"), int.from_bytes(m[off : off + 2], "big")
        typ, typ_mask, len_mask = v[off + 2], m[off + 2], m[off + 3] & 0x1F
        data, data_mask = v[off + 4 : off + 4 + dlen], m[off + 4 : off + 4 + dlen]
        parts: list[str] = []
        if verbose:
            parts += [f"class={_hx(cls)}", f"type={_hx(typ)}", f"len={dlen}"]
            if dlen:
                parts.append(_hx(int.from_bytes(data, "big")))
        else:
            if cls_mask:
                parts.append(f"class={_hx(cls)}" + ("" if cls_mask == _U16 else f"/{_hx(cls_mask)}"))
            if typ_mask:
                parts.append(f"type={_hx(typ)}" + ("" if typ_mask == 0xFF else f"/{_hx(typ_mask)}"))
            if len_mask == 0x1F:
                parts.append(f"len={dlen}")
            elif len_mask or dlen:
                parts.append(f"len={dlen}/{_hx(len_mask)}")
            if dlen and any(data_mask):
                text = _hx(int.from_bytes(data, "big"))
                if data_mask != b"\xff" * dlen:
                    text += "/" + _hx(int.from_bytes(data_mask, "big"))
                parts.append(text)
        out.append("{" + ",".join(parts) + "}")
    return "".join(out)


def _erspan_v2_fields(b: bytes) -> tuple[int, int]:
    """(dir, hwid) from the little-endian bitfields of struct erspan_md2."""
    return (b[11] >> 3) & 1, ((b[10] & 0x03) << 4) | (b[11] >> 4)


def _erspan_v2_plain(b: bytes) -> bool:
    return not any(b[4:10]) and not b[10] & ~0x03 & 0xFF and not b[11] & 0x07


def _fmt_erspan(e: MaskedBytes, verbose: bool) -> str:
    v, m = e.value, e.mask
    if len(v) == 12:
        ver = int.from_bytes(v[:4], sys.byteorder)
        if verbose:
            if ver == 1 and not any(v[8:]):
                return f"ver=1,idx={_hx(int.from_bytes(v[4:8], 'big'))}"
            if ver == 2 and _erspan_v2_plain(v):
                d, h = _erspan_v2_fields(v)
                return f"ver=2,dir={d},hwid={_hx(h)}"
        elif int.from_bytes(m[:4], sys.byteorder) == _U32:
            if ver == 1 and not any(m[8:]):
                parts = ["ver=1"]
                idx, idx_mask = int.from_bytes(v[4:8], "big"), int.from_bytes(m[4:8], "big")
                if idx_mask:
                    parts.append(f"idx={_hx(idx)}" + ("" if idx_mask == _U32 else f"/{_hx(idx_mask)}"))
                return ",".join(parts)
            if ver == 2 and _erspan_v2_plain(m):
                parts = ["ver=2"]
                d, h = _erspan_v2_fields(v)
                d_mask, h_mask = _erspan_v2_fields(m)
                if d_mask:
                    parts.append(f"dir={d}")
                if h_mask:
                    parts.append(f"hwid={_hx(h)}" + ("" if h_mask == 0x3F else f"/{_hx(h_mask)}"))
                return ",".join(parts)
    return _fmt_raw(e, verbose)


# --- actions ---------------------------------------------------------------


def _fmt_nat(n: Nat) -> str:
    if n.kind is None:
        return "nat"
    text = "nat(" + n.kind
    if n.ip_min is not None:
        bracket = n.ipv6 and bool(n.proto_min)

        def addr(ip: int) -> str:
            if not n.ipv6:
                return format_ipv4(ip)
            return f"[{format_ipv6(ip)}]" if bracket else format_ipv6(ip)

        exact = _EXACT.get()  # OVS leaves out a max equal to the min, or zero, and a zero port
        text += "=" + addr(n.ip_min)
        if n.ip_max is not None and (exact or (n.ip_max and n.ip_max != n.ip_min)):
            text += "-" + addr(n.ip_max)
        if n.proto_min or (exact and (n.proto_min is not None or n.proto_max is not None)):
            text += f":{n.proto_min or 0}"
            if n.proto_max is not None and (exact or (n.proto_max and n.proto_max != n.proto_min)):
                text += f"-{n.proto_max}"
    for flag, name in ((n.persistent, "persistent"), (n.proto_hash, "hash"), (n.proto_random, "random")):
        if flag:
            text += "," + name
    return text + ")"


def _fmt_ct(a: Ct) -> str:
    items: list[str] = []
    if a.commit:
        items.append("commit")
    if a.force_commit:
        items.append("force_commit")
    if a.zone is not None:
        items.append(f"zone={a.zone}")
    if a.mark is not None:
        items.append(f"mark={_hx(a.mark.value)}/{_hx(a.mark.mask)}")
    if a.labels is not None:
        text = f"label={_hx(a.labels.value)}"
        if a.labels.mask != _U128:
            text += f"/{_hx(a.labels.mask)}"
        items.append(text)
    if a.helper is not None:
        items.append(f"helper={a.helper}")
    if a.timeout is not None:
        items.append(f"timeout={a.timeout}")
    if a.eventmask is not None:
        items.append(f"emask={_hx(a.eventmask)}")
    if a.nat is not None:
        items.append(_fmt_nat(a.nat))
    return f"ct({','.join(items)})" if items else "ct"


def _fmt_lse(lse: int) -> str:
    return f"label={lse >> 12},tc={(lse >> 9) & 7},ttl={lse & 0xFF},bos={(lse >> 8) & 1}"


def _fmt_push_nsh(a: PushNsh) -> str:
    n = a.nsh
    if not isinstance(n, Nsh):
        return f"push_nsh({_fmt_attr(n, None, True)})"
    ph = n.path_hdr.value
    parts = [
        f"flags={n.flags.value}", f"ttl={n.ttl.value}", f"mdtype={n.mdtype.value}", f"np={n.np.value}",
        f"spi=0x{ph >> 8:x}", f"si={ph & 0xFF}",
    ]  # fmt: skip
    if n.has_md1:
        parts += [f"c{i}=0x{c.value:x}" for i, c in enumerate((n.c1, n.c2, n.c3, n.c4), 1)]
    if n.md2 is not None:
        parts.append("md2=0x" + n.md2.value.hex())
    return f"push_nsh({','.join(parts)})"


def _fmt_action(a: Action, names: PortNames) -> str:
    if isinstance(a, Output):
        return _port_label(a.port, names)
    if isinstance(a, Userspace):
        text = f"userspace(pid={a.pid}"
        if a.userdata is not None:
            text += f",userdata({a.userdata.hex()})"
        if a.actions:
            text += ",actions"
        if a.egress_tun_port is not None:
            text += f",tunnel_out_port={_port_label(a.egress_tun_port, names)}"
        return text + ")"
    if isinstance(a, SetMasked):
        return f"set({_fmt_attr(a.attr, None, False)})"
    if isinstance(a, Set):
        return f"set({_fmt_attr(a.attr, None, True)})"
    if isinstance(a, PushVlan):
        tpid = "" if a.tpid == 0x8100 else f"tpid=0x{a.tpid:04x},"
        return f"push_vlan({tpid}{_fmt_vlan_tci(a.tci, _U16, False)})"
    if isinstance(a, PopVlan):
        return "pop_vlan"
    if isinstance(a, Sample):
        return f"sample(sample={_fmt_percent(a.probability)}%,actions({format_actions(a.actions, names)}))"
    if isinstance(a, Recirc):
        return f"recirc({_hx(a.recirc_id)})"
    if isinstance(a, Hash):
        if a.alg == HashAlg.L4:
            return f"hash(l4({a.basis}))"
        if a.alg == HashAlg.SYM_L4:
            return f"hash(sym_l4({a.basis}))"
        return f"hash(alg={a.alg},basis={a.basis})"
    if isinstance(a, PushMpls):
        return f"push_mpls({_fmt_lse(a.lse)},eth_type=0x{a.ethertype:x})"
    if isinstance(a, AddMpls):
        extra = f",tun_flags={_hx(a.tun_flags)}" if a.tun_flags else ""
        return f"add_mpls({_fmt_lse(a.lse)},eth_type=0x{a.ethertype:x}{extra})"
    if isinstance(a, PopMpls):
        return f"pop_mpls(eth_type=0x{a.ethertype:x})"
    if isinstance(a, Ct):
        return _fmt_ct(a)
    if isinstance(a, Trunc):
        return f"trunc({a.max_len})"
    if isinstance(a, PushEth):
        return f"push_eth(src={format_mac(a.src)},dst={format_mac(a.dst)})"
    if isinstance(a, PopEth):
        return "pop_eth"
    if isinstance(a, CtClear):
        return "ct_clear"
    if isinstance(a, PushNsh):
        return _fmt_push_nsh(a)
    if isinstance(a, PopNsh):
        return "pop_nsh()"
    if isinstance(a, Meter):
        return f"meter({a.meter_id})"
    if isinstance(a, Clone):
        return f"clone({format_actions(a.actions, names)})"
    if isinstance(a, CheckPktLen):
        gt, le = format_actions(a.if_greater, names), format_actions(a.if_less_equal, names)
        return f"check_pkt_len(size={a.pkt_len},gt({gt}),le({le}))"
    if isinstance(a, DecTtl):
        return f"dec_ttl(le_1({format_actions(a.actions, names)}))"
    if isinstance(a, Drop):
        return f"drop({a.reason})"
    if isinstance(a, Psample):
        cookie = "" if a.cookie is None else f",cookie=0x{a.cookie.hex()}"
        return f"psample(group={a.group}{cookie})"
    if isinstance(a, UnknownAction):
        return f"action{a.type}({a.payload.hex()})" if a.payload else f"action{a.type}"
    return f"action{a.TYPE}"


# --- public formatting API ---------------------------------------------------


def _fmt_percent(probability: int) -> str:
    """A sample probability as a percentage: one decimal as OVS prints it, or (exact) as many as it takes."""
    pct = 100.0 * probability / _U32
    text = f"{pct:.1f}"
    if _EXACT.get() and _probability(float(text)) != probability:
        for digits in range(2, 17):
            text = f"{pct:.{digits}f}"
            if _probability(float(text)) == probability:
                break
    return text


def _probability(pct: float) -> int:
    """OVS's parse_odp_action: ``floor(UINT32_MAX * (pct / 100) + .5)``."""
    return max(0, min(_U32, math.floor(_U32 * (pct / 100.0) + 0.5)))


def format_key_attr(attr: KeyAttr, *, exact: bool = False) -> str:
    """One key attribute as in a match (``ipv4(src=10.0.0.1)``); wildcards print empty: ``ipv4()``.

    ``exact``: as :func:`format_actions`."""
    with _exact(exact):
        return _fmt_attr(attr, None, False)


def format_match(match: Match, port_names: PortNames = None, *, exact: bool = False) -> str:
    """A match as ``ovs-dpctl dump-flows`` prints it (kernel order, wildcards omitted).

    ``exact``: as :func:`format_actions`."""
    with _exact(exact):
        parts = _fmt_attr_list(match.attrs, port_names)
    for a in match.mask_only:
        if isinstance(a, EthType):
            parts.append(f"eth_type(0/0x{a.value.mask:04x})")
    return ",".join(parts)


def format_action(action: Action, *, exact: bool = False) -> str:
    """One action (``set(ipv4(...))``, ``push_vlan(vid=10,pcp=0)``, ``2``); ``exact``: as :func:`format_actions`."""
    with _exact(exact):
        return _fmt_action(action, None)


def format_actions(actions: Actions | Iterable[Action], port_names: PortNames = None, *, exact: bool = False) -> str:
    """An action list; the empty list is ``drop``.

    The text is ovs-dpctl's, which rounds a few values (see the module's
    lossy cases); ``exact=True`` writes those so that they read back
    unchanged, still in a form ovs-dpctl reads (``sample=50.79%``,
    ``label=0/0xfffff``): for what odp stores and reads back itself.
    """
    with _exact(exact):
        texts = [_fmt_action(a, port_names) for a in actions]
    return ",".join(texts) if texts else "drop"


# ===========================================================================
# Parsing
# ===========================================================================


# The lexical runs the parser skips over (the grammar itself is recursive descent).
_WS_RUN = re.compile(r"[ \t\r\n]*")
_IDENT_RUN = re.compile(r"[A-Za-z0-9_]*")
_TOKEN_RUNS: dict[str, re.Pattern[str]] = {}


class _Parser:
    """A cursor over the text with the helpers of a recursive-descent parser."""

    __slots__ = ("depth", "i", "n", "ports", "s")

    def __init__(self, text: str, ports: Ports) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        self.ports = ports
        self.depth = 0

    def err(self, expected: str, pos: int | None = None) -> ParseError:
        return ParseError(self.s, self.i if pos is None else pos, expected)

    def ws(self) -> None:
        i = self.i
        if i < self.n and self.s[i] in _WS:
            self.i = _WS_RUN.match(self.s, i).end()  # type: ignore[union-attr]

    def delims(self) -> None:
        s, i, n = self.s, self.i, self.n
        while i < n and s[i] in _DELIMS:
            i += 1
        self.i = i

    def at(self, ch: str) -> bool:
        return self.i < self.n and self.s[self.i] == ch

    def eof(self) -> bool:
        return self.i >= self.n

    def eat(self, ch: str) -> bool:
        self.ws()
        if self.i < self.n and self.s[self.i] == ch:
            self.i += 1
            return True
        return False

    def expect(self, ch: str, what: str | None = None) -> None:
        if not self.eat(ch):
            raise self.err(what or repr(ch))

    def ident(self) -> str:
        self.ws()
        start = self.i
        self.i = _IDENT_RUN.match(self.s, start).end()  # type: ignore[union-attr]
        return self.s[start : self.i]

    def token(self, stops: str = ",()/") -> str:
        """Characters up to one of ``stops`` or whitespace."""
        self.ws()
        pattern = _TOKEN_RUNS.get(stops)
        if pattern is None:
            pattern = _TOKEN_RUNS[stops] = re.compile(f"[^{re.escape(stops)} \t\r\n]*")
        start = self.i
        self.i = pattern.match(self.s, start).end()  # type: ignore[union-attr]
        return self.s[start : self.i]

    def peek_ident_then(self) -> tuple[str, str]:
        """The identifier at the cursor and the character after it, without moving."""
        save = self.i
        name = self.ident()
        self.ws()
        nxt = self.s[self.i] if self.i < self.n else ""
        self.i = save
        return name, nxt

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.err(f"at most {_MAX_DEPTH} levels of nesting")

    def leave(self) -> None:
        self.depth -= 1


def _uint(tok: str) -> int | None:
    """C ``%i`` for a non-negative integer: 0x hex, leading-0 octal, decimal; None if malformed."""
    if not tok or len(tok) > _MAX_NUMBER_CHARS:
        return None
    if tok[:2] in ("0x", "0X"):
        digits = tok[2:]
        if digits and all(c in _HEXDIGITS for c in digits):
            return int(digits, 16)
        return None
    if not all(c in "0123456789" for c in tok):
        return None
    if len(tok) > 1 and tok[0] == "0":
        return int(tok, 8) if all(c in "01234567" for c in tok) else None
    return int(tok)


def _hex_bytes(tok: str) -> bytes | None:
    """Plain hex digits (even count) as bytes."""
    if len(tok) % 2 or not all(c in _HEXDIGITS for c in tok):
        return None
    return bytes.fromhex(tok)


def _hex_bytes_0x(tok: str) -> bytes | None:
    """``0x`` followed by hex digits, keeping the length the digits give (odd counts pad left)."""
    if tok[:2] not in ("0x", "0X"):
        return None
    digits = tok[2:]
    if not all(c in _HEXDIGITS for c in digits):
        return None
    return bytes.fromhex("0" * (len(digits) % 2) + digits)


def _num(p: _Parser, bits: int, what: str = "a number") -> int:
    p.ws()
    pos = p.i
    value = _uint(p.token())
    if value is None:
        raise p.err(what, pos)
    if value >> bits:
        raise p.err(f"{what} that fits in {bits} bits", pos)
    return value


def _addr(kind: str, tok: str, mask: bool) -> int | None:
    import ipaddress

    bits = 32 if kind == "ip4" else 128
    if mask and tok and all(c in "0123456789" for c in tok) and len(tok) <= 3:
        plen = int(tok)
        return ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1) if plen <= bits else None
    if kind == "ip4":
        parts = tok.split(".")
        if len(parts) != 4 or not all(0 < len(x) <= 3 and all(c in "0123456789" for c in x) for x in parts):
            return None
        octets = [int(x) for x in parts]
        return None if max(octets) > 255 else int.from_bytes(bytes(octets), "big")
    if not tok or "%" in tok:
        return None
    try:
        return int(ipaddress.IPv6Address(tok))
    except ValueError:
        return None


_KIND_WHAT = {
    "mac": "a MAC address",
    "ip4": "an IPv4 address",
    "ip6": "an IPv6 address",
    "frag": "a fragment type (no, first, later or a number)",
}


def _value(p: _Parser, kind: str, bits: int, mask: bool, stops: str = ",()/") -> int:
    p.ws()
    pos = p.i
    tok = p.token(stops)
    value: int | None
    if kind == "mac":
        try:
            value = parse_mac(tok) if tok.count(":") + tok.count("-") == 5 else None
        except ValueError:
            value = None
    elif kind in ("ip4", "ip6"):
        value = _addr(kind, tok, mask)
    elif kind == "frag" and not mask and tok.lower() in _FRAG_VALUES:
        value = _FRAG_VALUES[tok.lower()]
    else:
        value = _uint(tok)
        if value is not None and value >> bits:
            raise p.err(f"a {'mask' if mask else 'value'} that fits in {bits} bits", pos)
    if value is None:
        what = _KIND_WHAT.get(kind, "a number")
        raise p.err(f"{what} as mask" if mask and kind not in ("ip4", "ip6") else what, pos)
    return value


def _masked(p: _Parser, kind: str, bits: int, stops: str = ",()/") -> Masked:
    """``value`` (exact) or ``value/mask``."""
    value = _value(p, kind, bits, False, stops)
    if p.eat("/"):
        return Masked(value, _value(p, kind, bits, True, stops))
    return Masked(value, (1 << bits) - 1)


def _fields(p: _Parser, handle: Callable[[str, int], None], close: str = ")") -> None:
    """Items handled by ``handle(name, position)`` separated by commas, up to ``close`` (consumed)."""
    while True:
        p.ws()
        if p.at(close):
            p.i += 1
            return
        pos = p.i
        name = p.ident()
        if not name:
            raise p.err(f"a field name or {close!r}")
        handle(name, pos)
        p.ws()
        if p.at(","):
            p.i += 1
        elif p.at(close):
            p.i += 1
            return
        else:
            raise p.err(f"',' or {close!r}")


def _once(p: _Parser, seen: set[str], name: str, pos: int) -> None:
    if name in seen:
        raise p.err(f"{name} given only once", pos)
    seen.add(name)


def _build(cls: Callable[..., _T], **kwargs: object) -> _T:
    """Call a model constructor with keyword arguments collected in a dict (typed loosely on purpose)."""
    return cls(**kwargs)


def _model_error(p: _Parser, pos: int, what: str, exc: Exception) -> ParseError:
    return p.err(f"a valid {what} ({exc})", pos)


# --- key attributes --------------------------------------------------------


def _parse_fixed(p: _Parser, cls: type[FixedKeyAttr]) -> FixedKeyAttr:
    layout = _LAYOUT[cls]
    by_text = {tname: (fname, kind) for fname, tname, kind in layout}
    for alias, fname in _ALIASES.get(cls, {}).items():
        by_text[alias] = next((f, k) for f, _, k in layout if f == fname)
    bits = _FIELD_BITS[cls]
    values: dict[str, Masked] = {}

    def handle(name: str, pos: int) -> None:
        entry = by_text.get(name)
        if entry is None:
            raise p.err(f"a field of {cls.NAME}() ({', '.join(t for _, t, _ in layout)})", pos)
        fname, kind = entry
        if fname in values:
            raise p.err(f"{name} given only once", pos)
        p.expect("=")
        values[fname] = _masked(p, kind, bits[fname])

    _fields(p, handle)
    zero = Masked(0, 0)
    specs = cls.FIELDS
    return cls.from_values(
        [values.get(s.name, zero).value for s in specs], [values.get(s.name, zero).mask for s in specs]
    )


def _parse_single(p: _Parser, cls: type[FixedKeyAttr]) -> FixedKeyAttr:
    bits = cls.FIELDS[0].kind.bits
    if p.eat(")"):
        return cls.from_values([0], [0])
    m = _masked(p, "int", bits)
    p.expect(")", "'/' or ')'")
    return cls.from_values([m.value], [m.mask])


def _resolve_port(p: _Parser, name: str, pos: int) -> int:
    ports = p.ports
    if ports is None:
        raise p.err(f"a port number ({name!r} is not a number and no port names are known)", pos)
    try:
        number = ports.get(name) if isinstance(ports, Mapping) else ports(name)
    except Exception:  # a resolver may fail any way it likes: it only means "not a port"
        number = None
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= _U32:
        raise p.err(f"a known port name ({name!r} is not a port)", pos)
    return number


def _port(p: _Parser) -> int:
    p.ws()
    pos = p.i
    tok = p.token(",()/=")
    if not tok:
        raise p.err("a port number or name", pos)
    if tok[0] in "0123456789":
        value = _uint(tok)
        if value is None or value > _U32:
            raise p.err("a port number (0..4294967295)", pos)
        return value
    return _resolve_port(p, tok, pos)


def _parse_in_port(p: _Parser) -> InPort:
    if p.eat(")"):
        return InPort.from_values([0], [0])
    value = _port(p)
    mask = _value(p, "int", 32, True) if p.eat("/") else _U32
    p.expect(")", "'/' or ')'")
    return InPort.from_values([value], [mask])


def _parse_flags_body(p: _Parser, names: Mapping[int, str], bits: int) -> Masked:
    """The inside of ``tcp_flags(..)``, ``ct_state(..)``, ``flags(..)``; consumes the ')'."""
    full = (1 << bits) - 1
    by_name = {v: k for k, v in names.items()}
    p.ws()
    if p.eat(")"):
        return Masked(0, 0)
    if p.at("+") or p.at("-"):
        value = mask = 0
        while p.at("+") or p.at("-"):
            on = p.s[p.i] == "+"
            p.i += 1
            pos = p.i
            name = p.token("+-)(,/")
            bit = by_name.get(name)
            if bit is None:
                raise p.err(f"a flag name ({', '.join(by_name)})", pos)
            if mask & bit:
                raise p.err(f"{name} given only once", pos)
            mask |= bit
            value |= bit if on else 0
            p.ws()
        p.expect(")", "'+flag', '-flag' or ')'")
        return Masked(value, mask)
    value = 0
    first_pos = p.i
    while True:
        p.ws()
        pos = p.i
        tok = p.token("|)(,/+-")
        number = _uint(tok)
        if number is not None:
            if number > full:
                raise p.err(f"flags that fit in {bits} bits", pos)
            value |= number
            if pos == first_pos and p.eat("/"):
                mask = _value(p, "int", bits, True)
                p.expect(")", "')'")
                return Masked(number, mask)
        elif tok in by_name:
            value |= by_name[tok]
        else:
            raise p.err(f"a flag name or number ({', '.join(by_name)})", pos)
        p.ws()
        if p.at("|"):
            p.i += 1
            continue
        p.expect(")", "'|' or ')'")
        return Masked(value, full)


def _parse_vlan(p: _Parser) -> Vlan:
    tci, mask = VLAN_CFI, VLAN_CFI
    seen: set[str] = set()
    fields = {"vid": (0, 12), "pcp": (13, 3), "cfi": (12, 1), "tci": (0, 16)}

    def handle(name: str, pos: int) -> None:
        nonlocal tci, mask
        spec = fields.get(name)
        if spec is None:
            raise p.err("a field of vlan() (vid, pcp, cfi, tci)", pos)
        _once(p, seen, name, pos)
        if (name == "tci" and len(seen) > 1) or (name != "tci" and "tci" in seen):
            raise p.err("either tci= or vid/pcp/cfi", pos)
        shift, width = spec
        field_mask = ((1 << width) - 1) << shift
        p.expect("=")
        m = _masked(p, "int", width)
        tci = (tci & ~field_mask) | (m.value << shift)
        mask = (mask & ~field_mask) | (m.mask << shift)

    _fields(p, handle)
    return Vlan.from_values([tci], [mask])


#: How ovs-dpctl prints an empty OVS_KEY_ATTR_MPLS (a packet key whose frame
#: ends before the bottom of the label stack); read back as ``Mpls()``.
_MPLS_EMPTY = "bad key length 0"


def _parse_mpls(p: _Parser, start: int) -> Mpls:
    p.ws()
    if p.s.startswith(_MPLS_EMPTY, p.i):
        p.i += len(_MPLS_EMPTY)
        p.expect(")")
        return Mpls()
    fields = {"label": (12, 20), "tc": (9, 3), "ttl": (0, 8), "bos": (8, 1)}
    lses: list[list[int]] = []  # [value, mask]
    used: list[set[str]] = []
    raw: dict[int, Masked] = {}

    def handle(name: str, pos: int) -> None:
        index = _unknown_type(name, "lse")
        if index is not None:
            if lses or index in raw:
                raise p.err("label/tc/ttl/bos or lseN= fields, not both, each once", pos)
            p.expect("=")
            raw[index] = _masked(p, "int", 32)
            return
        spec = fields.get(name)
        if spec is None:
            raise p.err("a field of mpls() (label, tc, ttl, bos, lse0..)", pos)
        if raw:
            raise p.err("label/tc/ttl/bos or lseN= fields, not both", pos)
        if not lses or name in used[-1]:
            lses.append([0, 0])
            used.append(set())
        used[-1].add(name)
        shift, width = spec
        p.expect("=")
        m = _masked(p, "int", width)
        lses[-1][0] |= m.value << shift
        lses[-1][1] |= m.mask << shift

    _fields(p, handle)
    if raw:
        if sorted(raw) != list(range(len(raw))):
            raise p.err("lse0, lse1, ... numbered from 0 without gaps", start)
        return Mpls(*(raw[i] for i in range(len(raw))))
    if not lses:
        return Mpls(Masked(0, 0))
    return Mpls(*(Masked(v, m) for v, m in lses))


def _parse_nsh(p: _Parser, start: int) -> Nsh:
    u8_fields = ("flags", "ttl", "mdtype", "np", "si")
    values: dict[str, Masked] = {}
    md2: MaskedBytes | None = None
    spi: Masked | None = None

    def handle(name: str, pos: int) -> None:
        nonlocal md2, spi
        if name in values or (name == "spi" and spi is not None) or (name == "md2" and md2 is not None):
            raise p.err(f"{name} given only once", pos)
        p.expect("=")
        if name in u8_fields:
            values[name] = _masked(p, "int", 8)
        elif name == "spi":
            spi = _masked(p, "int", 24)
        elif name in ("c1", "c2", "c3", "c4"):
            values[name] = _masked(p, "int", 32)
        elif name == "md2":
            md2 = _masked_hex(p)
        else:
            raise p.err("a field of nsh() (flags, ttl, mdtype, np, spi, si, c1..c4, md2)", pos)

    _fields(p, handle)
    si = values.pop("si", Masked(0, 0))
    spi_m = spi or Masked(0, 0)
    path = Masked((spi_m.value << 8) | si.value, (spi_m.mask << 8) | si.mask)
    try:
        return _build(Nsh, path_hdr=path, md2=md2, **values)
    except (OdpError, ValueError, TypeError) as exc:
        raise _model_error(p, start, "nsh()", exc) from None


def _masked_hex(p: _Parser) -> MaskedBytes:
    """``0x<hex>[/0x<hex>]`` byte strings of equal length (for md2)."""
    p.ws()
    pos = p.i
    value = _hex_bytes_0x(p.token())
    if value is None:
        raise p.err("0x followed by hex digits", pos)
    mask = b"\xff" * len(value)
    if p.eat("/"):
        p.ws()
        mpos = p.i
        given = _hex_bytes_0x(p.token())
        if given is None or len(given) != len(value):
            raise p.err(f"a 0x hex mask of {len(value)} bytes", mpos)
        mask = given
    return MaskedBytes(value, mask)


def _hex_payload(p: _Parser, stops: str) -> bytes:
    """Hex digits, optionally separated by whitespace (OVS's generic key format)."""
    p.ws()
    pos = p.i
    s, n = p.s, p.n
    i = pos
    while i < n and s[i] not in stops:
        i += 1
    digits = "".join(s[pos:i].split())
    value = _hex_bytes(digits)
    if value is None:
        raise p.err("hex bytes", pos)
    p.i = i
    return value


def _parse_unknown(p: _Parser, type_: int, in_set: bool) -> UnknownKeyAttr:
    key = _hex_payload(p, "/)")
    mask: bytes | None = None if in_set else b"\xff" * len(key)
    if p.eat("/"):
        mask = _hex_payload(p, ")")
    p.expect(")", "'/' or ')'")
    return UnknownKeyAttr(type_, key, mask)


def _parse_encap(p: _Parser) -> Encap:
    attrs: list[KeyAttr] = []
    seen: dict[int, int] = {}
    while True:
        p.delims()
        if p.eof():
            raise p.err("')' closing encap(")
        if p.at(")"):
            p.i += 1
            break
        pos = p.i
        attr, _ = _parse_key_attr(p, top=False, in_set=False)
        _check_dup(p, seen, attr, pos)
        attrs.append(attr)
    return Encap(*attrs)


def _check_dup(p: _Parser, seen: dict[int, int], attr: KeyAttr, pos: int) -> None:
    t = attr.TYPE
    if t in seen:
        raise p.err(f"a single {attr.NAME}() attribute (it was already given)", pos)
    seen[t] = pos


def _parse_ethtype(p: _Parser, top: bool) -> tuple[EthType, bool]:
    if p.eat(")"):
        return EthType.from_values([0], [0]), False
    p.ws()
    pos = p.i
    literal_zero = p.s.startswith("0", pos) and not p.s.startswith(("0x", "0X"), pos)
    value = _value(p, "int", 16, False)
    if p.eat("/"):
        mask = _value(p, "int", 16, True)
        p.expect(")", "')'")
        # ``eth_type(0/0xMMMM)`` (a bare 0, as OVS appends it) is a mask without key attribute.
        return EthType.from_values([value], [mask]), top and literal_zero and value == 0 and p.s[pos + 1] in "/ \t"
    p.expect(")", "'/' or ')'")
    return EthType.from_values([value], [_U16]), False


# --- tunnel ----------------------------------------------------------------

_TUNNEL_FIELDS = {
    "tun_id": ("tun_id", "int", 64),
    "src": ("ipv4_src", "ip4", 32),
    "dst": ("ipv4_dst", "ip4", 32),
    "ipv6_src": ("ipv6_src", "ip6", 128),
    "ipv6_dst": ("ipv6_dst", "ip6", 128),
    "tos": ("tos", "int", 8),
    "ttl": ("ttl", "int", 8),
    "tp_src": ("tp_src", "int", 16),
    "tp_dst": ("tp_dst", "int", 16),
}


def _parse_tunnel(p: _Parser, start: int, in_set: bool) -> Tunnel:
    kwargs: dict[str, object] = {}
    geneve: MaskedBytes | None = None
    erspan: MaskedBytes | None = None
    extra: list[tuple[int, bytes, bytes]] = []
    seen: set[str] = set()

    def handle(name: str, pos: int) -> None:
        nonlocal geneve, erspan
        field = _TUNNEL_FIELDS.get(name)
        if field is not None:
            _once(p, seen, name, pos)
            p.expect("=")
            kwargs[field[0]] = _masked(p, field[1], field[2])
            return
        typ = _unknown_type(name, "key")
        if name not in ("flags", "vxlan", "geneve", "erspan") and typ is None:
            raise p.err(
                "a field of tunnel() (tun_id, src, dst, ipv6_src, ipv6_dst, tos, ttl, tp_src, tp_dst, "
                "geneve(), vxlan(), erspan(), flags(), keyN())",
                pos,
            )
        if typ is None:
            _once(p, seen, name, pos)
        p.expect("(")
        p.enter()
        if name == "flags":
            kwargs["flags"] = _parse_flags_body(p, _TUN_FLAG_NAMES, 4)
        elif name == "vxlan":
            kwargs["vxlan_gbp"] = _parse_vxlan(p)
        elif name == "geneve":
            geneve = _parse_geneve(p)
        elif name == "erspan":
            erspan = _parse_erspan(p)
        else:
            assert typ is not None
            key = _hex_payload(p, "/)")
            mask = _hex_payload(p, ")") if p.eat("/") else b"\xff" * len(key)
            p.expect(")", "'/' or ')'")
            extra.append((typ, key, mask))
        p.leave()

    _fields(p, handle)
    if in_set:
        # A SET carries the flags as present/absent attributes: none written means none set;
        # the tunnel ID's presence is the key flag, so a tun_id written sets it (as in OVS).
        given = kwargs.get("flags", Masked(0, 0))
        assert isinstance(given, Masked)
        kwargs["flags"] = Masked(given.value | (TunnelFlag.KEY if "tun_id" in kwargs else 0), 0xF)
    try:
        return _build(Tunnel, geneve=geneve, erspan=erspan, extra=tuple(extra), **kwargs)
    except (OdpError, ValueError, TypeError) as exc:
        raise _model_error(p, start, "tunnel()", exc) from None


def _parse_vxlan(p: _Parser) -> Masked:
    p.ws()
    pos = p.i
    if p.ident() != "gbp" or not p.eat("("):
        raise p.err("gbp(", pos)
    parts: dict[str, Masked] = {}

    def handle(name: str, fpos: int) -> None:
        if name not in ("id", "flags"):
            raise p.err("id= or flags=", fpos)
        _once(p, set(parts), name, fpos)
        p.expect("=")
        parts[name] = _masked(p, "int", 16 if name == "id" else 8)

    _fields(p, handle)
    p.expect(")", "')' closing vxlan(")
    gid, gfl = parts.get("id", Masked(0, 0)), parts.get("flags", Masked(0, 0))
    mask = (gfl.mask << 16) | gid.mask
    return Masked((gfl.value << 16) | gid.value, _U32 if mask == 0xFFFFFF else mask)


def _parse_raw_bytes(p: _Parser) -> MaskedBytes:
    p.expect("=")
    value = _hex_payload(p, "/),")
    mask = b"\xff" * len(value)
    if p.eat("/"):
        pos = p.i
        mask = _hex_payload(p, "),")
        if len(mask) != len(value):
            raise p.err(f"a mask of {len(value)} bytes", pos)
    p.expect(")", "')'")
    return MaskedBytes(value, mask)


def _parse_geneve(p: _Parser) -> MaskedBytes:
    name, nxt = p.peek_ident_then()
    if name == "raw" and nxt == "=":
        p.ident()
        return _parse_raw_bytes(p)
    value, mask = bytearray(), bytearray()
    while True:
        p.ws()
        if p.at(")"):
            p.i += 1
            return MaskedBytes(bytes(value), bytes(mask))
        if not p.at("{"):
            raise p.err("'{' starting a geneve option, or ')'")
        p.i += 1
        v, m = _parse_geneve_option(p)
        value += v
        mask += m


def _parse_geneve_option(p: _Parser) -> tuple[bytes, bytes]:
    start = p.i
    got: dict[str, Masked] = {}
    data: Masked | None = None
    data_pos = start
    while True:
        p.ws()
        if p.at("}"):
            p.i += 1
            break
        pos = p.i
        tok = p.token(",{}/=()")
        p.ws()
        if p.at("="):
            if tok not in ("class", "type", "len"):
                raise p.err("class=, type=, len= or option data", pos)
            if tok in got or data is not None:
                raise p.err("class, type, len once each, before the data", pos)
            p.i += 1
            bits = {"class": 16, "type": 8, "len": 8}[tok]
            got[tok] = _masked(p, "int", bits, ",(){}/")
        else:
            if data is not None:
                raise p.err("'}'", pos)
            p.i = pos
            data_pos = pos
            data = Masked(_value(p, "int", 1024, False, ",(){}/"), -1)
            if p.eat("/"):
                data = Masked(data.value, _value(p, "int", 1024, True, ",(){}/"))
        p.ws()
        if p.at(","):
            p.i += 1
        elif not p.at("}"):
            raise p.err("',' or '}'")
    length = got.get("len", Masked(0, 0))
    if length.value % 4 or length.value > 124:
        raise p.err("an option length that is a multiple of 4 up to 124", start)
    if length.mask == 0xFF:
        len_mask = 0xFF
    elif length.mask <= 0x1F:
        len_mask = length.mask
    else:
        raise p.err("a len mask of 5 bits (or 0xff)", start)
    dlen = length.value
    cls, typ = got.get("class", Masked(0, 0)), got.get("type", Masked(0, 0))
    value = cls.value.to_bytes(2, "big") + bytes([typ.value, dlen // 4])
    mask = cls.mask.to_bytes(2, "big") + bytes([typ.mask, len_mask])
    if data is None:
        return value + bytes(dlen), mask + bytes(dlen)
    full = (1 << (8 * dlen)) - 1
    data_mask = full if data.mask < 0 else data.mask
    if data.value > full or data_mask > full:
        raise p.err(f"option data that fits in len={dlen} bytes", data_pos)
    return value + data.value.to_bytes(dlen, "big"), mask + data_mask.to_bytes(dlen, "big")


def _parse_erspan(p: _Parser) -> MaskedBytes:
    name, nxt = p.peek_ident_then()
    if name == "raw" and nxt == "=":
        p.ident()
        return _parse_raw_bytes(p)
    start = p.i
    got: dict[str, Masked] = {}
    widths = {"ver": 32, "idx": 32, "dir": 1, "hwid": 6}

    def handle(field: str, pos: int) -> None:
        if field not in widths:
            raise p.err("ver=, idx=, dir=, hwid= or raw=", pos)
        _once(p, set(got), field, pos)
        p.expect("=")
        got[field] = _masked(p, "int", widths[field])

    _fields(p, handle)
    ver = got.get("ver")
    if ver is None:
        raise p.err("erspan(ver=...)", start)
    bo = sys.byteorder
    value = bytearray(ver.value.to_bytes(4, bo) + bytes(8))
    mask = bytearray(ver.mask.to_bytes(4, bo) + bytes(8))
    if ver.value == 1 and not {"dir", "hwid"} & set(got):
        idx = got.get("idx", Masked(0, 0))
        value[4:8], mask[4:8] = idx.value.to_bytes(4, "big"), idx.mask.to_bytes(4, "big")
    elif ver.value == 2 and "idx" not in got:
        d, h = got.get("dir", Masked(0, 0)), got.get("hwid", Masked(0, 0))
        value[10], value[11] = h.value >> 4, (d.value << 3) | ((h.value & 0xF) << 4)
        mask[10], mask[11] = h.mask >> 4, (d.mask << 3) | ((h.mask & 0xF) << 4)
    elif len(got) > 1:
        raise p.err("idx= only with ver=1, dir=/hwid= only with ver=2", start)
    return MaskedBytes(bytes(value), bytes(mask))


# --- one key attribute -----------------------------------------------------

_SINGLE_CLASSES: dict[str, type[FixedKeyAttr]] = {
    "skb_priority": Priority,
    "skb_mark": SkbMark,
    "recirc_id": RecircId,
    "dp_hash": DpHash,
    "ct_zone": CtZone,
    "ct_mark": CtMark,
    "ct_label": CtLabels,
    "ipv6_exthdrs": Ipv6Exthdrs,
}
_FIXED_BY_NAME: dict[str, type[FixedKeyAttr]] = {cls.NAME: cls for cls in _LAYOUT}
_KEY_NAMES = (
    "skb_priority, skb_mark, recirc_id, dp_hash, tunnel, in_port, ct_state, ct_zone, ct_mark, ct_label, "
    "ct_tuple4, ct_tuple6, packet_type, eth, vlan, encap, eth_type, mpls, ipv4, ipv6, nsh, arp, "
    "ipv6_exthdrs, tcp, tcp_flags, udp, sctp, icmp, icmpv6, nd or keyN"
)


def _parse_key_attr(p: _Parser, top: bool, in_set: bool) -> tuple[KeyAttr, bool]:
    """``name(...)``; returns the attribute and whether it is a mask-only ``eth_type(0/..)``."""
    p.ws()
    start = p.i
    name = p.ident()
    if not name:
        raise p.err(f"a key attribute ({_KEY_NAMES})", start)
    fixed = _FIXED_BY_NAME.get(name)
    single = _SINGLE_CLASSES.get(name)
    unknown = _unknown_type(name, "key")
    if fixed is None and single is None and unknown is None and name not in _OTHER_KEY_NAMES:
        raise p.err(f"a key attribute ({_KEY_NAMES})", start)
    if unknown is not None and unknown > _U16:
        raise p.err("an attribute type up to 65535", start)
    p.expect("(", f"'(' after {name}")
    p.enter()
    try:
        if fixed is not None:
            return _parse_fixed(p, fixed), False
        if single is not None:
            return _parse_single(p, single), False
        if unknown is not None:
            return _parse_unknown(p, unknown, in_set), False
        if name == "eth_type":
            return _parse_ethtype(p, top)
        attr: KeyAttr
        if name == "in_port":
            attr = _parse_in_port(p)
        elif name == "ct_state":
            attr = CtState.from_values(*zip(_flags_pair(p, _CT_STATE_NAMES, CtState.FIELDS[0].kind.bits)))
        elif name == "tcp_flags":
            attr = TcpFlags.from_values(*zip(_flags_pair(p, _TCP_FLAG_NAMES, TcpFlags.FIELDS[0].kind.bits)))
        elif name == "vlan":
            attr = _parse_vlan(p)
        elif name == "tunnel":
            attr = _parse_tunnel(p, start, in_set)
        elif name == "mpls":
            attr = _parse_mpls(p, start)
        elif name == "nsh":
            attr = _parse_nsh(p, start)
        else:  # encap
            attr = _parse_encap(p)
        return attr, False
    except (OdpError, ValueError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise _model_error(p, start, f"{name}()", exc) from None
    finally:
        p.leave()


_OTHER_KEY_NAMES = frozenset({"eth_type", "in_port", "ct_state", "tcp_flags", "vlan", "tunnel", "mpls", "nsh", "encap"})


def _flags_pair(p: _Parser, names: Mapping[int, str], bits: int) -> tuple[int, int]:
    m = _parse_flags_body(p, names, bits)
    return m.value, m.mask


# --- matches ---------------------------------------------------------------


def _skip_ufid(p: _Parser) -> uuid.UUID | None:
    """An optional ``ufid:<uuid>`` prefix (as ``ovs-dpctl -m`` prints it)."""
    p.delims()
    if not p.s.startswith("ufid:", p.i):
        return None
    p.i += 5
    pos = p.i
    if p.s.startswith("<empty>", pos):
        p.i += 7
        return None
    text = p.s[pos : pos + 36]
    if len(text) != 36 or any(
        (c != "-") if k in (8, 13, 18, 23) else (c not in _HEXDIGITS) for k, c in enumerate(text)
    ):
        raise p.err("a UUID (8-4-4-4-12 hex digits)", pos)
    p.i = pos + 36
    return uuid.UUID(text)


def _parse_match_attrs(p: _Parser, stop_at_label: bool) -> Match:
    attrs: list[KeyAttr] = []
    mask_only: list[KeyAttr] = []
    seen: dict[int, int] = {}
    seen_mask: dict[int, int] = {}
    while True:
        p.delims()
        if p.eof():
            break
        if stop_at_label:
            name, nxt = p.peek_ident_then()
            if name and nxt == ":":
                break
        pos = p.i
        attr, is_mask_only = _parse_key_attr(p, top=True, in_set=False)
        if is_mask_only:
            _check_dup(p, seen_mask, attr, pos)
            mask_only.append(attr)
        else:
            _check_dup(p, seen, attr, pos)
            attrs.append(attr)
        if not p.eof() and p.s[p.i] not in _DELIMS:
            raise p.err("',' between key attributes")
    try:
        return Match(*attrs, mask_only=mask_only)
    except (OdpError, ValueError) as exc:
        raise _model_error(p, 0, "match", exc) from None


def parse_match(text: str, ports: Ports = None) -> Match:
    """Parse ODP key text (``in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)``).

    ``ports`` resolves port names used in ``in_port(name)``.  A leading
    ``ufid:<uuid>`` is skipped.  Raises :class:`~odp.errors.ParseError`.
    """
    if not isinstance(text, str):
        raise ParseError(repr(text), 0, "a string")
    p = _Parser(text, ports)
    _skip_ufid(p)
    match = _parse_match_attrs(p, stop_at_label=False)
    p.delims()
    if not p.eof():
        raise p.err("a key attribute or the end of the text")
    return match


# --- actions ---------------------------------------------------------------

_DROP_WORD = object()


def _parse_action_list(p: _Parser, nested: bool) -> Actions:
    """Actions separated by delimiters; nested lists end at ')' (not consumed)."""
    items: list[object] = []
    while True:
        p.delims()
        if p.eof():
            if nested:
                raise p.err("')' closing the action list")
            break
        if nested and p.at(")"):
            break
        items.append(_parse_action(p))
        if not p.eof() and p.s[p.i] not in _DELIMS and not (nested and p.s[p.i] == ")"):
            raise p.err("',' between actions")
    if items == [_DROP_WORD]:
        return Actions()
    return Actions(Drop() if item is _DROP_WORD else item for item in items)  # type: ignore[misc]


def _nested_actions(p: _Parser) -> Actions:
    """``(<actions>)``: the opening parenthesis is consumed here, and the closing one."""
    p.expect("(")
    p.enter()
    actions = _parse_action_list(p, nested=True)
    p.leave()
    p.expect(")")
    return actions


def _parse_action(p: _Parser) -> object:
    p.ws()
    start = p.i
    word = p.token(",()/=")
    if not word:
        raise p.err("an action")
    if word[0] in "0123456789":
        port = _uint(word)
        if port is None or port > _U32:
            raise p.err("an output port number (0..4294967295)", start)
        return Output(port)
    p.ws()
    if p.at("("):
        handler = _ACTION_PARSERS.get(word)
        unknown = _unknown_type(word, "action")
        if handler is None and unknown is None:
            raise p.err(f"an action ({', '.join(sorted(_ACTION_PARSERS))}, actionN)", start)
        p.i += 1
        p.enter()
        try:
            if handler is not None:
                return handler(p, start)
            assert unknown is not None
            type_ = unknown
            payload = _hex_payload(p, ")")
            p.expect(")")
            return _make(p, start, word, lambda: UnknownAction(type_, payload))
        finally:
            p.leave()
    if word == "drop":
        return _DROP_WORD
    simple: dict[str, Callable[[], Action]] = {
        "pop_vlan": PopVlan, "pop_eth": PopEth, "pop_nsh": PopNsh, "ct_clear": CtClear, "ct": Ct, "dec_ttl": DecTtl,
    }  # fmt: skip
    if word in simple:
        return simple[word]()
    bare = _unknown_type(word, "action")
    if bare is not None:
        bare_type = bare
        return _make(p, start, word, lambda: UnknownAction(bare_type, b""))
    return Output(_resolve_port(p, word, start))


def _make(p: _Parser, pos: int, what: str, build: Callable[[], Action]) -> Action:
    try:
        return build()
    except (OdpError, ValueError, TypeError) as exc:
        raise _model_error(p, pos, f"{what} action", exc) from None


def _act_userspace(p: _Parser, start: int) -> Action:
    got: dict[str, object] = {}

    def handle(name: str, pos: int) -> None:
        key = {"egress_tun_port": "tunnel_out_port"}.get(name, name)
        if key not in ("pid", "userdata", "actions", "tunnel_out_port"):
            raise p.err("pid=, userdata(...), actions or tunnel_out_port=", pos)
        _once(p, set(got), key, pos)
        if key == "actions":
            got[key] = True
        elif key == "userdata":
            if p.eat("("):
                got[key] = _hex_payload(p, ")")
                p.expect(")")
            else:
                p.expect("=", "'(' or '='")
                got[key] = _hex_payload(p, ",)")
        else:
            p.expect("=")
            got[key] = _num(p, 32) if key == "pid" else _port(p)

    _fields(p, handle)
    if "pid" not in got:
        raise p.err("userspace(pid=...)", start)
    pid, userdata, egress = got["pid"], got.get("userdata"), got.get("tunnel_out_port")
    assert isinstance(pid, int)
    assert userdata is None or isinstance(userdata, bytes)
    assert egress is None or isinstance(egress, int)
    return _make(p, start, "userspace", lambda: Userspace(pid, userdata, egress, "actions" in got))


def _act_set(p: _Parser, start: int, force_masked: bool = False) -> Action:
    pos = p.i
    attr, _ = _parse_key_attr(p, top=False, in_set=True)
    p.expect(")", "')' closing set(")
    if isinstance(attr, FixedKeyAttr) and (force_masked or not attr.is_exact()):
        return SetMasked(attr)
    if isinstance(attr, Mpls) and (force_masked or any(m.mask != 0xFFFFFFFF for m in attr.lses)):
        return SetMasked(attr)  # a partial mask is kept, never dropped
    if isinstance(attr, Tunnel):
        # Set sends values only and the kernel sets tunnel() whole, so a partial
        # mask would be silently dropped.  (flags carry the mask the text implies.)
        for spec, m in attr.items():
            if spec.name != "flags" and m.mask not in (0, spec.kind.full):
                raise p.err(f"tunnel {spec.name} without a mask (the kernel sets tunnel() whole)", pos)
    return _make(p, start, "set", lambda: Set(attr))  # e.g. a tunnel ID with flags() lacking key


def _act_set_masked(p: _Parser, start: int) -> Action:
    return _act_set(p, start, force_masked=True)


def _act_push_vlan(p: _Parser, start: int) -> Action:
    got: dict[str, int] = {}
    widths = {"vid": 12, "pcp": 3, "cfi": 1, "tpid": 16, "tci": 16}

    def handle(name: str, pos: int) -> None:
        if name not in widths:
            raise p.err("vid=, pcp=, cfi=, tpid= (or tci=)", pos)
        _once(p, set(got), name, pos)
        p.expect("=")
        got[name] = _num(p, widths[name])

    _fields(p, handle)
    if "tci" in got:
        if {"vid", "pcp", "cfi"} & set(got):
            raise p.err("either tci= or vid/pcp/cfi", start)
        tci = got["tci"]
    else:
        tci = got.get("vid", 0) | (got.get("pcp", 0) << 13) | (VLAN_CFI if got.get("cfi", 1) else 0)
    return _make(p, start, "push_vlan", lambda: PushVlan(tci, got.get("tpid", 0x8100)))


def _percent(p: _Parser) -> float:
    p.ws()
    pos = p.i
    tok = p.token(",()/%")
    int_part, _, frac = tok.partition(".")
    if not (int_part or frac) or not all(c in "0123456789" for c in int_part + frac) or len(tok) > 30:
        raise p.err("a percentage (0 to 100)", pos)
    value = float(tok)
    if value > 100.0:
        raise p.err("a percentage (0 to 100)", pos)
    p.expect("%", "'%' after the percentage (ovs-dpctl reads sample=P%)")
    return value


def _act_sample(p: _Parser, start: int) -> Action:
    pct: float | None = None
    actions = Actions()
    seen: set[str] = set()

    def handle(name: str, pos: int) -> None:
        nonlocal pct, actions
        _once(p, seen, name, pos)
        if name == "sample":
            p.expect("=")
            pct = _percent(p)
        elif name == "actions":
            actions = _nested_actions(p)
        else:
            raise p.err("sample=P% or actions(...)", pos)

    _fields(p, handle)
    if pct is None:
        raise p.err("sample(sample=P%,...)", start)
    probability = _probability(pct)
    return _make(p, start, "sample", lambda: Sample(probability, actions))


def _act_clone(p: _Parser, start: int) -> Action:
    actions = _parse_action_list(p, nested=True)
    p.expect(")")
    return Clone(actions)


def _act_single_number(cls: Callable[[int], Action], bits: int, name: str) -> Callable[[_Parser, int], Action]:
    def parse(p: _Parser, start: int) -> Action:
        value = _num(p, bits)
        p.expect(")")
        return _make(p, start, name, lambda: cls(value))

    return parse


def _act_hash(p: _Parser, start: int) -> Action:
    p.ws()
    pos = p.i
    name = p.ident()
    if name in ("l4", "sym_l4"):
        p.expect("(")
        basis = _num(p, 32)
        p.expect(")")
        p.expect(")")
        return Hash(HashAlg.L4 if name == "l4" else HashAlg.SYM_L4, basis)
    p.i = pos
    got: dict[str, int] = {}

    def handle(field: str, fpos: int) -> None:
        if field not in ("alg", "basis"):
            raise p.err("l4(N), sym_l4(N) or alg=N,basis=N", fpos)
        _once(p, set(got), field, fpos)
        p.expect("=")
        got[field] = _num(p, 32)

    _fields(p, handle)
    return _make(p, start, "hash", lambda: Hash(got.get("alg", 0), got.get("basis", 0)))


def _act_mpls(kind: str) -> Callable[[_Parser, int], Action]:
    widths = {"label": 20, "tc": 3, "ttl": 8, "bos": 1, "eth_type": 16}
    if kind == "add_mpls":
        widths["tun_flags"] = 16

    def parse(p: _Parser, start: int) -> Action:
        got: dict[str, int] = {}

        def handle(name: str, pos: int) -> None:
            if name not in widths:
                raise p.err(f"a field of {kind}() ({', '.join(widths)})", pos)
            _once(p, set(got), name, pos)
            p.expect("=")
            got[name] = _num(p, widths[name])

        _fields(p, handle)
        lse = (got.get("label", 0) << 12) | (got.get("tc", 0) << 9) | (got.get("bos", 0) << 8) | got.get("ttl", 0)
        ethertype = got.get("eth_type", 0x8847)
        if kind == "add_mpls":
            return _make(p, start, kind, lambda: AddMpls(lse, ethertype, got.get("tun_flags", 0)))
        return _make(p, start, kind, lambda: PushMpls(lse, ethertype))

    return parse


def _act_pop_mpls(p: _Parser, start: int) -> Action:
    p.ws()
    pos = p.i
    if p.ident() != "eth_type" or not p.eat("="):
        raise p.err("eth_type=", pos)
    ethertype = _num(p, 16)
    p.expect(")")
    return PopMpls(ethertype)


def _act_push_eth(p: _Parser, start: int) -> Action:
    got: dict[str, int] = {}

    def handle(name: str, pos: int) -> None:
        if name not in ("src", "dst", "type"):
            raise p.err("src=, dst=", pos)
        _once(p, set(got), name, pos)
        p.expect("=")
        got[name] = _num(p, 16) if name == "type" else _value(p, "mac", 48, False)

    _fields(p, handle)
    return _make(p, start, "push_eth", lambda: PushEth(got.get("src", 0), got.get("dst", 0)))


def _act_push_nsh(p: _Parser, start: int) -> Action:
    _, nxt = p.peek_ident_then()
    if nxt == "(":
        attr, _ = _parse_key_attr(p, top=False, in_set=True)
        p.expect(")")
        return PushNsh(attr)
    widths = {"flags": 8, "ttl": 8, "mdtype": 8, "np": 8, "spi": 24, "si": 8, "c1": 32, "c2": 32, "c3": 32, "c4": 32}
    got: dict[str, int] = {}
    md2: bytes | None = None

    def handle(field: str, pos: int) -> None:
        nonlocal md2
        if field not in widths and field != "md2":
            raise p.err("a field of push_nsh() (flags, ttl, mdtype, np, spi, si, c1..c4, md2)", pos)
        if field in got or (field == "md2" and md2 is not None):
            raise p.err(f"{field} given only once", pos)
        p.expect("=")
        if field == "md2":
            p.ws()
            vpos = p.i
            md2 = _hex_bytes_0x(p.token())
            if md2 is None:
                raise p.err("0x followed by hex digits", vpos)
        else:
            got[field] = _num(p, widths[field])

    _fields(p, handle)
    mdtype = got.get("mdtype", 1)
    has_md1 = any(f"c{i}" in got for i in range(1, 5)) or (mdtype == 1 and md2 is None)
    exact8 = {name: Masked(got.get(name, default), 0xFF) for name, default in
              (("flags", 0), ("ttl", 63), ("mdtype", 1), ("np", 3))}  # fmt: skip
    contexts = {f"c{i}": Masked(got.get(f"c{i}", 0), _U32) for i in range(1, 5)} if has_md1 else {}
    path = Masked((got.get("spi", 0) << 8) | got.get("si", 255), _U32)
    md2_value = None if md2 is None else MaskedBytes.exact(md2)

    def build() -> Action:
        return PushNsh(_build(Nsh, path_hdr=path, has_md1=has_md1, md2=md2_value, **exact8, **contexts))

    return _make(p, start, "push_nsh", build)


def _act_pop_nsh(p: _Parser, start: int) -> Action:
    p.expect(")")
    return PopNsh()


def _act_dec_ttl(p: _Parser, start: int) -> Action:
    if p.eat(")"):
        return DecTtl()
    p.ws()
    pos = p.i
    if p.ident() != "le_1":
        raise p.err("le_1(...)", pos)
    actions = _nested_actions(p)
    p.expect(")")
    return DecTtl(actions)


def _act_check_pkt_len(p: _Parser, start: int) -> Action:
    size: int | None = None
    lists: dict[str, Actions] = {}

    def handle(name: str, pos: int) -> None:
        nonlocal size
        if name == "size":
            if size is not None:
                raise p.err("size given only once", pos)
            p.expect("=")
            size = _num(p, 16)
        elif name in ("gt", "le"):
            _once(p, set(lists), name, pos)
            lists[name] = _nested_actions(p)
        else:
            raise p.err("size=, gt(...) or le(...)", pos)

    _fields(p, handle)
    if size is None:
        raise p.err("check_pkt_len(size=...)", start)
    pkt_len = size
    return _make(
        p, start, "check_pkt_len", lambda: CheckPktLen(pkt_len, lists.get("gt", Actions()), lists.get("le", Actions()))
    )


def _act_drop(p: _Parser, start: int) -> Action:
    if p.eat(")"):
        return Drop()
    reason = _num(p, 32)
    p.expect(")")
    return Drop(reason)


def _act_psample(p: _Parser, start: int) -> Action:
    group: int | None = None
    cookie: bytes | None = None
    seen: set[str] = set()

    def handle(name: str, pos: int) -> None:
        nonlocal group, cookie
        _once(p, seen, name, pos)
        if name == "group":
            p.expect("=")
            group = _num(p, 32)
        elif name == "cookie":
            if p.eat("("):
                cookie = _hex_payload(p, ")")
                p.expect(")")
                return
            p.expect("=", "'=' or '('")
            p.ws()
            vpos = p.i
            tok = p.token()
            cookie = _hex_bytes_0x(tok) if tok[:2] in ("0x", "0X") else _hex_bytes(tok)
            if cookie is None:
                raise p.err("hex bytes", vpos)
        else:
            raise p.err("group= or cookie=", pos)

    _fields(p, handle)
    if group is None:
        raise p.err("psample(group=...)", start)
    g = group
    return _make(p, start, "psample", lambda: Psample(g, cookie))


def _act_ct(p: _Parser, start: int) -> Action:
    kw: dict[str, object] = {}
    seen: set[str] = set()

    def handle(name: str, pos: int) -> None:
        key = {"force": "force_commit", "eventmask": "emask"}.get(name, name)
        _once(p, seen, key, pos)
        if key in ("commit", "force_commit"):
            kw[key] = True
        elif key == "zone":
            p.expect("=")
            kw["zone"] = _num(p, 16)
        elif key == "mark":
            p.expect("=")
            value = _hex32(p)
            kw["mark"] = Masked(value, _hex32(p) if p.eat("/") else _U32)
        elif key == "label":
            p.expect("=")
            kw["labels"] = _masked(p, "int", 128)
        elif key in ("helper", "timeout"):
            p.expect("=")
            p.ws()
            vpos = p.i
            text = p.token(",()")
            if not text:
                raise p.err(f"a {key} name", vpos)
            kw[key] = text
        elif key == "emask":
            p.expect("=")
            kw["eventmask"] = _num(p, 32)
        elif key == "nat":
            kw["nat"] = _parse_nat(p, pos)
        else:
            raise p.err("commit, force_commit, zone=, mark=, label=, helper=, timeout=, emask= or nat", pos)

    _fields(p, handle)
    return _make(p, start, "ct", lambda: Ct(**kw))  # type: ignore[arg-type]


def _hex32(p: _Parser) -> int:
    """OVS reads ct marks with ``%x``: hex with or without 0x."""
    p.ws()
    pos = p.i
    tok = p.token()
    digits = tok[2:] if tok[:2] in ("0x", "0X") else tok
    if not digits or len(digits) > 8 or not all(c in _HEXDIGITS for c in digits):
        raise p.err("a 32-bit hex number", pos)
    return int(digits, 16)


def _parse_nat(p: _Parser, start: int) -> Nat:
    if not p.eat("("):
        return Nat()
    kw: dict[str, object] = {}
    seen: set[str] = set()

    def handle(name: str, pos: int) -> None:
        if name in ("src", "dst"):
            if "kind" in kw:
                raise p.err("only one of src and dst", pos)
            kw["kind"] = name
            if p.eat("="):
                p.ws()
                rpos = p.i
                parsed = _nat_range(p.token(",()"))
                if parsed is None:
                    raise p.err("an address range (a[-b][:p[-q]], IPv6 in [] with ports)", rpos)
                kw.update(parsed)
        elif name in ("persistent", "hash", "random"):
            _once(p, seen, name, pos)
            kw[{"persistent": "persistent", "hash": "proto_hash", "random": "proto_random"}[name]] = True
        else:
            raise p.err("src, dst, persistent, hash or random", pos)

    p.enter()
    _fields(p, handle)
    p.leave()
    return Nat(**kw)  # type: ignore[arg-type]


def _nat_range(tok: str) -> dict[str, object] | None:
    ports: str | None = None
    if tok.startswith("["):
        close = tok.find("]")
        if close < 0:
            return None
        lo, hi, rest = tok[1:close], None, tok[close + 1 :]
        if rest.startswith("-["):
            close2 = rest.find("]")
            if close2 < 0:
                return None
            hi, rest = rest[2:close2], rest[close2 + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            ports = rest[1:]
        ipv6 = True
    else:
        head, colon, tail = tok.partition(":")
        lo4, _, hi4 = head.partition("-")
        if _addr("ip4", lo4, False) is not None and (not hi4 or _addr("ip4", hi4, False) is not None):
            lo, hi, ipv6 = lo4, hi4 or None, False
            ports = tail if colon else None
        else:
            lo6, _, hi6 = tok.partition("-")
            lo, hi, ipv6 = lo6, hi6 or None, True
    kind = "ip6" if ipv6 else "ip4"
    ip_min = _addr(kind, lo, False)
    ip_max = None if hi is None else _addr(kind, hi, False)
    if ip_min is None or (hi is not None and ip_max is None):
        return None
    out: dict[str, object] = {"ip_min": ip_min, "ip_max": ip_max, "ipv6": ipv6}
    if ports is not None:
        pmin_text, dash, pmax_text = ports.partition("-")
        pmin, pmax = _uint(pmin_text), _uint(pmax_text) if dash else None
        if pmin is None or pmin > _U16 or (dash and (pmax is None or pmax > _U16)):
            return None
        out["proto_min"], out["proto_max"] = pmin, pmax
    return out


_ACTION_PARSERS: dict[str, Callable[[_Parser, int], Action]] = {
    "userspace": _act_userspace,
    "set": _act_set,
    "set_masked": _act_set_masked,
    "push_vlan": _act_push_vlan,
    "sample": _act_sample,
    "clone": _act_clone,
    "recirc": _act_single_number(Recirc, 32, "recirc"),
    "hash": _act_hash,
    "ct": _act_ct,
    "trunc": _act_single_number(Trunc, 32, "trunc"),
    "push_mpls": _act_mpls("push_mpls"),
    "add_mpls": _act_mpls("add_mpls"),
    "pop_mpls": _act_pop_mpls,
    "push_eth": _act_push_eth,
    "push_nsh": _act_push_nsh,
    "pop_nsh": _act_pop_nsh,
    "meter": _act_single_number(Meter, 32, "meter"),
    "dec_ttl": _act_dec_ttl,
    "check_pkt_len": _act_check_pkt_len,
    "drop": _act_drop,
    "psample": _act_psample,
}


def parse_actions(text: str, ports: Ports = None) -> Actions:
    """Parse an ODP action list (``2,set(ipv4(dst=10.0.0.2)),3``; ``drop`` or empty text is no action).

    ``ports`` resolves port names used as output actions.  Raises
    :class:`~odp.errors.ParseError`.
    """
    if not isinstance(text, str):
        raise ParseError(repr(text), 0, "a string")
    p = _Parser(text, ports)
    actions = _parse_action_list(p, nested=False)
    p.delims()
    if not p.eof():
        raise p.err("an action or the end of the text")
    return actions


# ===========================================================================
# Dump lines
# ===========================================================================


@dataclass(frozen=True, slots=True)
class FlowLine:
    """One ``ovs-dpctl dump-flows`` line.

    ``used`` is the seconds since the flow was last hit (None: never);
    ``tcp_flags`` the TCP flags seen (None when not printed, i.e. zero);
    ``ufid`` the flow's UFID when the line carries ``ufid:<uuid>`` (``-m``).
    """

    match: Match
    actions: Actions
    packets: int = 0
    bytes: int = 0
    used: float | None = None
    tcp_flags: int | None = None
    ufid: uuid.UUID | None = None

    def __str__(self) -> str:
        return format_flow_line(self)


def _fmt_stats_flags(flags: int) -> str:
    if not flags:
        return "none"
    return "".join(letter for bit, letter in _STATS_TCP_FLAGS if flags & bit)


def format_flow_line(line: FlowLine, port_names: PortNames = None) -> str:
    """``<match>, packets:N, bytes:N, used:never|X.XXXs[, flags:...], actions:<actions>``."""
    used = "never" if line.used is None else f"{line.used:.3f}s"
    flags = f", flags:{_fmt_stats_flags(line.tcp_flags)}" if line.tcp_flags else ""
    prefix = f"ufid:{line.ufid}, " if line.ufid is not None else ""
    return (
        f"{prefix}{format_match(line.match, port_names)}, packets:{line.packets}, bytes:{line.bytes}, "
        f"used:{used}{flags}, actions:{format_actions(line.actions, port_names)}"
    )


def _parse_stats_flags(p: _Parser) -> int:
    p.ws()
    pos = p.i
    tok = p.token(",")
    if tok == "none":
        return 0
    letters = {letter: bit for bit, letter in _STATS_TCP_FLAGS}
    value, i = 0, 0
    while i < len(tok):
        for letter, bit in letters.items():
            if tok.startswith(letter, i):
                value |= bit
                i += len(letter)
                break
        else:
            raise p.err("TCP flags (S, F, P, R, U, ., E, C, N, [200], [400], [800] or none)", pos + i)
    return value


def parse_flow_line(text: str, ports: Ports = None) -> FlowLine:
    """Parse one ``ovs-dpctl dump-flows`` line (optionally with ``ufid:<uuid>``, as ``-m`` prints)."""
    if not isinstance(text, str):
        raise ParseError(repr(text), 0, "a string")
    p = _Parser(text, ports)
    ufid = _skip_ufid(p)
    match = _parse_match_attrs(p, stop_at_label=True)
    stats: dict[str, object] = {}
    actions: Actions | None = None
    while actions is None:
        p.delims()
        pos = p.i
        label = p.ident()
        if not label or not p.at(":"):
            raise p.err("packets:, bytes:, used:, flags: or actions:", pos)
        p.i += 1
        if label in stats:
            raise p.err(f"{label}: given only once", pos)
        if label in ("packets", "bytes"):
            stats[label] = _num(p, 64)
        elif label == "used":
            p.ws()
            upos = p.i
            tok = p.token(",")
            number = tok[:-1]
            whole, _, frac = number.lstrip("-").partition(".")
            if tok == "never":
                stats[label] = None
            elif tok.endswith("s") and whole and len(tok) < 40 and all(c in "0123456789" for c in whole + frac):
                stats[label] = float(number)
            else:
                raise p.err("never or seconds like 0.250s", upos)
        elif label == "flags":
            stats[label] = _parse_stats_flags(p)
        elif label in ("dp", "offloaded", "dp-extra-info"):
            p.token(",")
        elif label == "actions":
            actions = _parse_action_list(p, nested=False)
        else:
            raise p.err("packets:, bytes:, used:, flags: or actions:", pos)
    p.delims()
    if not p.eof():
        raise p.err("the end of the line")
    packets, nbytes, used, flags = stats.get("packets", 0), stats.get("bytes", 0), stats.get("used"), stats.get("flags")
    assert isinstance(packets, int) and isinstance(nbytes, int)
    assert used is None or isinstance(used, float)
    assert flags is None or isinstance(flags, int)
    return FlowLine(match, actions, packets, nbytes, used, flags, ufid)
