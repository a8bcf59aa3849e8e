"""Hypothesis strategies for the flow model: key attributes, matches and actions.

Shared by the text and netlink round-trip tests.  The public entry points are
:func:`key_attrs`, :func:`matches`, :func:`actions` and :func:`action_lists`;
the smaller builders (:func:`masked`, :func:`tunnels`, ...) are exported too.

Everything generated here survives a trip through the ODP text format
unchanged (``parse(format(x)) == x``).  That rules out the text format's lossy
cases (see ``odp.text``), so the strategies:

* give ``tcp_flags`` masks that are 0xffff or lack one of the low 12 bits, and
  IPv6 ``label`` masks that are 0xffffffff or lack one of the low 20 bits;
* give vxlan gbp values of 24 bits, with a mask that is 0xffffffff or not
  exact on both id and flags; geneve option length masks of 0xff or 0..0x1e
  (reserved bits zero), and malformed ("raw") geneve bytes with a reserved bit
  set so that they stay raw;
* make ``Set`` attributes exact (the kernel ignores a SET's mask), ``SetMasked``
  attributes partial, ``Set(Tunnel)`` tunnels exact on the fields they carry
  (always ``ttl``; exact ``flags``, with the key flag exactly when ``tun_id``
  is given), ``Set(UnknownKeyAttr)`` keys without mask;
* give ``Nsh`` its default ``has_md1``, ``PushNsh`` exact values with MD1
  exactly for mdtype 1, ``Sample`` probabilities from a 0.1 % grid, ``Nat``
  ranges OVS prints (max != min and non-zero, ports only with an address,
  non-zero ``proto_min``), ``Ct`` helper/timeout names without separators,
  mask-only ``EthType`` with value 0.

With ``exact_text=True`` (:func:`fixed_attrs`, :func:`key_attrs`,
:func:`matches`, :func:`action_strategies`, :func:`actions`,
:func:`action_lists`) the values also cover what only the exact text
(``format_*(..., exact=True)``) keeps: IPv6 ``label`` masks with the low 20
bits set, ``tcp_flags`` masks with the low 12 bits set, any ``Sample`` probability; and ``Set(Tunnel)`` of any tunnel
(``Set`` makes it the tunnel the kernel receives).
"""

from __future__ import annotations

import math
import struct
import sys
from functools import cache

from hypothesis import strategies as st

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
from odp.fields import Masked
from odp.keys import (
    FIXED_ATTRS,
    Encap,
    EthType,
    FixedKeyAttr,
    Ipv6,
    KeyAttr,
    MaskedBytes,
    Match,
    Mpls,
    Nsh,
    TcpFlags,
    Tunnel,
    UnknownKeyAttr,
)

__all__ = [
    "action_lists",
    "action_strategies",
    "actions",
    "exact_fixed_attrs",
    "fixed_attrs",
    "geneve_options",
    "key_attrs",
    "masked",
    "matches",
    "mpls",
    "nsh",
    "set_tunnels",
    "tunnels",
    "unknown_key_attrs",
]

U32 = 0xFFFFFFFF

# Strategies are built once and reused: building them inside composites costs more than drawing.
_ints = cache(st.integers)
_booleans = st.booleans()


_geneve_raw = st.binary(min_size=4, max_size=12)


@cache
def _bin(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


@cache
def _bin_upto(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=size)


@cache
def masked(bits: int) -> st.SearchStrategy[Masked]:
    """A masked value of ``bits`` bits: exact, wildcarded or partially masked."""
    full = (1 << bits) - 1
    mask = st.one_of(st.just(full), st.just(0), _ints(0, full))
    return st.builds(Masked, _ints(0, full), mask)


@cache
def _mask_not_full_on(bits: int, low: int) -> st.SearchStrategy[int]:
    """Masks that are all ones or miss at least one of the ``low`` bits (text shows them faithfully)."""
    full, low_mask = (1 << bits) - 1, (1 << low) - 1
    return st.one_of(st.just(full), _ints(0, full).filter(lambda m: m & low_mask != low_mask))


@cache
@st.composite
def fixed_attrs(draw: st.DrawFn, cls: type[FixedKeyAttr] | None = None, exact_text: bool = False) -> FixedKeyAttr:
    """A fixed-layout attribute (of class ``cls`` or any) with text-lossless masks."""
    if cls is None:
        cls = draw(st.sampled_from(sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE)))
    values: list[int] = []
    masks: list[int] = []
    for spec in cls.FIELDS:
        m = draw(masked(spec.kind.bits))
        mask = m.mask
        if cls is TcpFlags and not exact_text:
            mask = draw(_mask_not_full_on(16, 12))
        elif cls is Ipv6 and spec.name == "label" and not exact_text:
            mask = draw(_mask_not_full_on(32, 20))
        values.append(m.value)
        masks.append(mask)
    return cls.from_values(values, masks)


@cache
@st.composite
def exact_fixed_attrs(draw: st.DrawFn, cls: type[FixedKeyAttr] | None = None) -> FixedKeyAttr:
    """A fixed-layout attribute with every field exact."""
    if cls is None:
        cls = draw(st.sampled_from(sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE)))
    return cls.exact([draw(_ints(0, s.kind.full)) for s in cls.FIELDS])


@cache
@st.composite
def _geneve_option(draw: st.DrawFn, exact: bool) -> tuple[bytes, bytes]:
    dlen = 4 * draw(_ints(0, 4))
    head = draw(_ints(0, 0xFFFF)).to_bytes(2, "big") + bytes([draw(_ints(0, 255)), dlen // 4])
    data = draw(_bin(dlen))
    if exact:
        return head + data, b"\xff" * (4 + dlen)
    mask = (
        draw(_ints(0, 0xFFFF)).to_bytes(2, "big")
        + bytes([draw(_ints(0, 255)), draw(st.one_of(st.just(0xFF), _ints(0, 0x1E)))])
        + draw(_bin(dlen))
    )
    return head + data, mask


@cache
@st.composite
def geneve_options(draw: st.DrawFn, exact: bool = False) -> MaskedBytes:
    """Geneve option bytes: well-formed options, or (not exact) malformed bytes printed raw."""
    if not exact and draw(_ints(0, 4)) == 0:
        value = bytearray(draw(_geneve_raw))
        value[3] |= 0x80  # a reserved bit: not printable as {class=..}, so kept raw
        return MaskedBytes(bytes(value), draw(_bin(len(value))))
    opts = draw(st.lists(_geneve_option(exact), max_size=3))
    return MaskedBytes(b"".join(v for v, _ in opts), b"".join(m for _, m in opts))


def _erspan_bytes(version: int, idx: int, dir_: int, hwid: int) -> bytes:
    out = bytearray(version.to_bytes(4, sys.byteorder) + bytes(8))
    if version == 1:
        out[4:8] = idx.to_bytes(4, "big")
    elif version == 2:
        out[10], out[11] = hwid >> 4, (dir_ << 3) | ((hwid & 0xF) << 4)
    return bytes(out)


@cache
@st.composite
def _erspan(draw: st.DrawFn) -> MaskedBytes:
    kind = draw(st.sampled_from(["v1", "v2", "raw"]))
    if kind == "raw":
        n = draw(_ints(0, 16))
        return MaskedBytes(draw(_bin(n)), draw(_bin(n)))
    version = 1 if kind == "v1" else 2
    value = _erspan_bytes(version, draw(_ints(0, U32)), draw(_ints(0, 1)), draw(_ints(0, 63)))
    mask = (
        _erspan_bytes(U32, 0, 0, 0)[:4]
        + _erspan_bytes(version, draw(_ints(0, U32)), draw(_ints(0, 1)), draw(_ints(0, 63)))[4:]
    )
    return MaskedBytes(value, mask)


_TUNNEL_BITS = {
    "tun_id": 64, "ipv4_src": 32, "ipv4_dst": 32, "ipv6_src": 128, "ipv6_dst": 128,
    "tos": 8, "ttl": 8, "tp_src": 16, "tp_dst": 16,
}  # fmt: skip


@cache
@st.composite
def _gbp(draw: st.DrawFn) -> Masked:
    value = draw(_ints(0, 0xFFFFFF))
    if draw(_booleans):
        return Masked(value, U32)
    id_mask, flags_mask = draw(_ints(0, 0xFFFF)), draw(_ints(0, 0xFF))
    if id_mask == 0xFFFF and flags_mask == 0xFF:
        flags_mask = 0xFE
    return Masked(value, (flags_mask << 16) | id_mask)


@cache
@st.composite
def tunnels(draw: st.DrawFn) -> Tunnel:
    """A tunnel key with any subset of fields, vxlan gbp, geneve/erspan options and unknown sub-attributes."""
    kw: dict[str, object] = {}
    for name, bits in _TUNNEL_BITS.items():
        if draw(_booleans):
            kw[name] = draw(masked(bits))
    if draw(_booleans):
        kw["vxlan_gbp"] = draw(_gbp())
    if draw(_booleans):
        kw["flags"] = Masked(draw(_ints(0, 15)), draw(_ints(0, 15)))
    geneve = draw(st.none() | geneve_options())
    erspan = draw(st.none() | _erspan())
    extra = draw(st.lists(st.tuples(_ints(16, 40), _bin_upto(6), _bin_upto(6)), max_size=2))
    return Tunnel(geneve=geneve, erspan=erspan, extra=tuple(extra), **kw)  # type: ignore[arg-type]


@cache
@st.composite
def set_tunnels(draw: st.DrawFn) -> Tunnel:
    """A tunnel as a SET action carries it: exact values on the fields given, ttl and flags always."""
    kw: dict[str, object] = {"ttl": draw(_ints(0, 255))}
    for name, bits in _TUNNEL_BITS.items():
        if name != "ttl" and draw(_booleans):
            kw[name] = draw(_ints(0, (1 << bits) - 1))
    flag_bits = draw(_ints(0, 7)) | (0x8 if "tun_id" in kw else 0)  # key flag <=> tunnel ID present
    kw["flags"] = Masked(flag_bits, 0xF)
    if draw(_booleans):
        kw["vxlan_gbp"] = draw(_ints(0, 0xFFFFFF))
    geneve = draw(st.none() | geneve_options(exact=True))
    erspan = None
    if draw(_booleans):  # printed raw: a version other than 1 and 2
        erspan = MaskedBytes.exact((draw(_ints(3, 100))).to_bytes(4, sys.byteorder) + bytes(8))
    extra = draw(st.lists(st.tuples(_ints(16, 40), _bin_upto(6)), max_size=2))
    return Tunnel(
        geneve=geneve,
        erspan=erspan,
        extra=tuple((t, k, b"\xff" * len(k)) for t, k in extra),
        **kw,  # type: ignore[arg-type]
    )


@cache
def mpls() -> st.SearchStrategy[Mpls]:
    """One to three label stack entries, each masked any way."""
    return st.lists(masked(32), min_size=1, max_size=3).map(lambda lses: Mpls(*lses))


@cache
@st.composite
def nsh(draw: st.DrawFn) -> Nsh:
    """An NSH key: base header, MD1 contexts, optional MD2 bytes (``has_md1`` derived)."""
    kw: dict[str, object] = {name: draw(masked(8)) for name in ("flags", "ttl", "mdtype", "np")}
    kw["path_hdr"] = draw(masked(32))
    for name in ("c1", "c2", "c3", "c4"):
        kw[name] = draw(masked(32))
    if draw(_booleans):
        n = draw(_ints(0, 8))
        kw["md2"] = MaskedBytes(draw(_bin(n)), draw(_bin(n)))
    return Nsh(**kw)  # type: ignore[arg-type]


@cache
def unknown_key_attrs(with_mask: bool = True) -> st.SearchStrategy[UnknownKeyAttr]:
    """An attribute type odp does not model (33..90), kept raw."""
    mask = _bin_upto(8) if with_mask else st.none()
    return st.builds(UnknownKeyAttr, _ints(33, 90), _bin_upto(8), mask)


_L2_INNER = st.one_of(*(fixed_attrs(cls) for cls in FIXED_ATTRS.values() if cls.TYPE in (4, 5, 6, 7, 8, 9, 10, 11)))


@cache
@st.composite
def _encap(draw: st.DrawFn, depth: int = 1) -> Encap:
    inner = draw(st.lists(_L2_INNER, max_size=4, unique_by=lambda a: a.TYPE))
    if depth > 0 and draw(_booleans) and not any(a.TYPE == 1 for a in inner):
        inner.append(draw(_encap(depth - 1)))
    return Encap(*inner)


@cache
def key_attrs(exact_text: bool = False) -> st.SearchStrategy[KeyAttr]:
    """Any key attribute: every fixed-layout class, Tunnel, Mpls, Nsh, Encap and UnknownKeyAttr."""
    return st.one_of(fixed_attrs(None, exact_text), tunnels(), mpls(), nsh(), _encap(), unknown_key_attrs())


@cache
@st.composite
def matches(draw: st.DrawFn, exact_text: bool = False) -> Match:
    """A match with distinct attribute types and maybe a mask-only ``eth_type``."""
    attrs = draw(st.lists(key_attrs(exact_text), max_size=8, unique_by=lambda a: a.TYPE))
    mask_only = []
    if draw(_ints(0, 3)) == 0:
        mask_only.append(EthType.from_values([0], [draw(_ints(0, 0xFFFF))]))
    return Match(*attrs, mask_only=mask_only)


# --- actions -----------------------------------------------------------------


@cache
@st.composite
def _nat(draw: st.DrawFn) -> Nat:
    kind = draw(st.sampled_from([None, "src", "dst"]))
    if kind is None:
        return Nat()
    ipv6 = draw(_booleans)
    bits = 128 if ipv6 else 32
    ip_min = ip_max = proto_min = proto_max = None
    if draw(_booleans):
        ip_min = draw(_ints(0, (1 << bits) - 1))
        if draw(_booleans):
            ip_max = draw(_ints(1, (1 << bits) - 1).filter(lambda v: v != ip_min))
        if draw(_booleans):
            proto_min = draw(_ints(1, 0xFFFF))
            if draw(_booleans):
                proto_max = draw(_ints(1, 0xFFFF).filter(lambda v: v != proto_min))
    else:
        ipv6 = False
    return Nat(kind, ip_min, ip_max, ipv6, proto_min, proto_max, draw(_booleans), draw(_booleans), draw(_booleans))


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=15)


@cache
@st.composite
def _ct(draw: st.DrawFn) -> Ct:
    return Ct(
        commit=draw(_booleans),
        force_commit=draw(_booleans),
        zone=draw(st.none() | _ints(0, 0xFFFF)),
        mark=draw(st.none() | masked(32)),
        labels=draw(st.none() | masked(128)),
        helper=draw(st.none() | _NAMES),
        timeout=draw(st.none() | _NAMES),
        eventmask=draw(st.none() | _ints(0, U32)),
        nat=draw(st.none() | _nat()),
    )


def _probability(tenths: int) -> int:
    return max(0, min(U32, math.floor(U32 * (tenths / 1000.0) + 0.5)))


@cache
@st.composite
def _push_nsh(draw: st.DrawFn) -> PushNsh:
    mdtype = draw(_ints(0, 255))
    kw: dict[str, object] = {name: Masked(draw(_ints(0, 255)), 0xFF) for name in ("flags", "ttl", "np")}
    kw["mdtype"] = Masked(mdtype, 0xFF)
    kw["path_hdr"] = Masked(draw(_ints(0, U32)), U32)
    has_md1 = mdtype == 1 or (mdtype != 2 and draw(_booleans))
    if has_md1:
        for name in ("c1", "c2", "c3", "c4"):
            kw[name] = Masked(draw(_ints(0, U32)), U32)
    md2 = None
    if not has_md1 and draw(_booleans):
        md2 = MaskedBytes.exact(draw(_bin_upto(12)))
    return PushNsh(Nsh(has_md1=has_md1, md2=md2, **kw))  # type: ignore[arg-type]


def _key_flag_with_id(t: Tunnel) -> bool:
    """Whether a SET can carry ``t``: a tunnel ID goes with the key flag (it is that flag's attribute)."""
    return not t.tun_id.mask or bool(t.flags.value & t.flags.mask & 0x8)


@cache
def action_strategies(depth: int = 2, exact_text: bool = False) -> dict[type[Action], st.SearchStrategy[Action]]:
    """One strategy per action class (nested lists down to ``depth`` levels), for per-class tests."""
    u32 = _ints(0, U32)
    u16 = _ints(0, 0xFFFF)
    set_attrs: st.SearchStrategy[KeyAttr] = st.one_of(
        exact_fixed_attrs(),
        set_tunnels(),
        mpls().map(lambda m: Mpls(*(Masked(x.value, U32) for x in m.lses))),
        nsh(),
        unknown_key_attrs(with_mask=False),
    )
    if exact_text:
        set_attrs = set_attrs | tunnels().filter(_key_flag_with_id)
    out: dict[type[Action], st.SearchStrategy[Action]] = {
        Output: st.builds(Output, u32),
        Userspace: st.builds(Userspace, u32, st.none() | _bin_upto(12), st.none() | u32, st.booleans()),
        Set: st.builds(Set, set_attrs),
        SetMasked: st.builds(SetMasked, fixed_attrs(None, exact_text).filter(lambda a: not a.is_exact())),
        PushVlan: st.builds(PushVlan, u16, st.sampled_from([0x8100, 0x88A8]) | u16),
        PopVlan: st.just(PopVlan()),
        Recirc: st.builds(Recirc, u32),
        Hash: st.builds(Hash, _ints(0, 3), u32),
        PushMpls: st.builds(PushMpls, u32, u16),
        PopMpls: st.builds(PopMpls, u16),
        AddMpls: st.builds(AddMpls, u32, u16, u16),
        Ct: _ct(),
        Trunc: st.builds(Trunc, u32),
        PushEth: st.builds(PushEth, _ints(0, (1 << 48) - 1), _ints(0, (1 << 48) - 1)),
        PopEth: st.just(PopEth()),
        CtClear: st.just(CtClear()),
        PushNsh: _push_nsh(),
        PopNsh: st.just(PopNsh()),
        Meter: st.builds(Meter, u32),
        Drop: st.builds(Drop, u32),
        Psample: st.builds(Psample, u32, st.none() | _bin_upto(16)),
        UnknownAction: st.builds(UnknownAction, _ints(26, 200), _bin_upto(8)),
    }
    inner = action_lists(depth - 1, exact_text=exact_text) if depth > 0 else st.just(Actions())
    probability = _ints(0, 1000).map(_probability)
    if exact_text:
        probability = probability | u32
    out[Sample] = st.builds(Sample, probability, inner)
    out[Clone] = st.builds(Clone, inner)
    out[CheckPktLen] = st.builds(CheckPktLen, u16, inner, inner)
    out[DecTtl] = st.builds(DecTtl, inner)
    return out


@cache
def actions(depth: int = 2, exact_text: bool = False) -> st.SearchStrategy[Action]:
    """Any action, nested actions (sample, clone, check_pkt_len, dec_ttl) down to ``depth`` levels."""
    strategies = dict(action_strategies(depth, exact_text))
    if depth <= 0:
        for nested in (Sample, Clone, CheckPktLen, DecTtl):
            del strategies[nested]
    return st.one_of(*strategies.values())


@cache
def action_lists(depth: int = 2, max_size: int = 4, exact_text: bool = False) -> st.SearchStrategy[Actions]:
    """An action list (possibly empty) of :func:`actions`."""
    return st.lists(st.deferred(lambda: actions(depth, exact_text)), max_size=max_size).map(Actions)


@st.composite
def corrupted(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` cut short at some offset, or with one aligned 16-bit word or one byte replaced:
    the malformed netlink input the decoders must refuse with DecodeError only."""
    i = draw(st.integers(0, len(raw) - 1))
    mode = draw(st.sampled_from(["truncate", "word", "byte"]))
    if mode == "truncate":
        return raw[:i]
    if mode == "word":
        i &= ~1
        return raw[:i] + struct.pack("=H", draw(st.integers(0, 0xFFFF))) + raw[i + 2 :]
    return raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
