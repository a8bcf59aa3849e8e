"""Flow key attributes and matches (a key with its mask).

Each ``OVS_KEY_ATTR_*`` attribute is a small immutable class whose fields are
:class:`~odp.fields.Masked` values: the key attribute and its mask live
together (as in go-odp).  A :class:`Match` is an ordered set of attributes, at
most one of each type, plus the rare mask attributes that have no key
counterpart (kernel dumps report ``eth_type(0/0x0000)`` that way).

Build attributes from natural values::

    Ipv4(src="10.0.0.0/24", proto=6)        # src masked /24, proto exact
    Ethernet(dst="ff:ff:ff:ff:ff:ff")
    InPort(1)                                # single-field attributes take a positional value

Unspecified fields are wildcarded.  Equality is mask-aware.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from odp._codegen import define
from odp.constants import VLAN_CFI, KeyAttrType, TunnelFlag
from odp.errors import FieldError
from odp.fields import WILDCARD, FieldSpec, Kind, Masked, _set_mask, _set_value

A = TypeVar("A", bound="KeyAttr")
F = TypeVar("F", bound="FixedKeyAttr")


class KeyAttr:
    """Base of every flow key attribute."""

    __slots__ = ()
    TYPE: ClassVar[int]
    #: The attribute's name in the ODP text format (``ipv4``, ``eth``, ...).
    NAME: ClassVar[str]

    def is_wildcard(self) -> bool:
        """True when the mask of this attribute is all zero."""
        raise NotImplementedError

    def masked(self: A) -> A:
        """The same attribute with wildcarded key bits cleared (how dumps show UFID flows)."""
        raise NotImplementedError

    def __str__(self) -> str:
        from odp.text import format_key_attr

        return format_key_attr(self)


class FixedKeyAttr(KeyAttr):
    """An attribute whose payload is one fixed-size C struct."""

    __slots__ = ()
    #: struct format of the payload (with byte order prefix).
    FORMAT: ClassVar[str]
    FIELDS: ClassVar[tuple[FieldSpec, ...]]
    SIZE: ClassVar[int]
    #: FIELDS in the order the text format prints them as ``name=value``
    #: (empty: the attribute has its own text form).
    TEXT_FIELDS: ClassVar[tuple[FieldSpec, ...]]

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Each class gets a generated __init__ (_compile_init) with the same
        # behaviour; this one is what it falls back to for positional values.
        specs = self.FIELDS
        given = _given(self, args, kwargs)
        unknown = sorted(set(given) - {s.name for s in specs})
        if unknown:
            _unknown_field(self, unknown)
        for spec in specs:
            object.__setattr__(self, spec.name, spec.kind.coerce(given.get(spec.name), f"{self.NAME}.{spec.name}"))

    @classmethod
    def from_values(cls: type[F], values: Iterable[int], masks: Iterable[int]) -> F:
        """Build from raw per-field integers (no coercion: used by codecs)."""
        obj = cls.__new__(cls)
        for spec, v, m in zip(cls.FIELDS, values, masks):
            object.__setattr__(obj, spec.name, Masked(v, m))
        return obj

    @classmethod
    def exact(cls: type[F], values: Iterable[int]) -> F:
        return cls.from_values(values, (s.kind.full for s in cls.FIELDS))

    def values(self) -> tuple[int, ...]:
        return tuple(cast(Masked, getattr(self, s.name)).value for s in self.FIELDS)

    def masks(self) -> tuple[int, ...]:
        return tuple(cast(Masked, getattr(self, s.name)).mask for s in self.FIELDS)

    def items(self) -> Iterator[tuple[FieldSpec, Masked]]:
        for spec in self.FIELDS:
            yield spec, cast(Masked, getattr(self, spec.name))

    def is_wildcard(self) -> bool:
        # A loop that stops at the first set mask: called for every attribute
        # of every flow printed, most of them wildcards of one field.
        for spec in self.FIELDS:  # noqa: SIM110 - all() over a generator is slower here
            if cast(Masked, getattr(self, spec.name)).mask:
                return False
        return True

    def is_exact(self) -> bool:
        return all(m == s.kind.full for s, m in zip(self.FIELDS, self.masks()))

    def masked(self: F) -> F:
        return type(self).from_values((v & m for v, m in zip(self.values(), self.masks())), self.masks())

    def with_fields(self: F, **changes: object) -> F:
        """A copy with some fields replaced (natural values accepted)."""
        current: dict[str, object] = {s.name: getattr(self, s.name) for s in self.FIELDS}
        current.update(changes)
        return type(self)(**current)

    def __repr__(self) -> str:
        shown = []
        for spec, m in self.items():
            if m.mask == 0 and m.value == 0:
                continue
            text = spec.kind.format_value(m.value)
            if m.mask != spec.kind.full:
                text += "/" + spec.kind.format_value(m.mask)
            shown.append(f"{spec.name}={text!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _given(attr: FixedKeyAttr, args: tuple[object, ...], kwargs: dict[str, object]) -> dict[str, object]:
    """The field values given positionally and by name, by field name."""
    specs = attr.FIELDS
    if len(args) > len(specs):
        raise FieldError(f"{attr.NAME}: takes at most {len(specs)} positional values, got {len(args)}")
    given: dict[str, object] = {}
    for spec, arg in zip(specs, args):
        given[spec.name] = arg
    for name, value in kwargs.items():
        if name in given:
            raise FieldError(f"{attr.NAME}: {name} given twice")
        given[name] = value
    return given


def _unknown_field(attr: FixedKeyAttr, names: Iterable[str]) -> None:
    first = sorted(names)[0]
    raise FieldError(f"{attr.NAME}: unknown field {first!r} (fields: {', '.join(s.name for s in attr.FIELDS)})")


_INIT_FIELD = """
    if v{i} is None:
        v{i} = WILDCARD
    elif type(v{i}) is int and 0 <= v{i} <= {full}:
        if v{i} < 256:
            v{i} = small{i}[v{i}]
        else:
            m = new(Masked)
            set_value(m, v{i})
            set_mask(m, {full})
            v{i} = m
    elif type(v{i}) is tuple and len(v{i}) == 2 and type(v{i}[0]) is int and type(v{i}[1]) is int \\
            and 0 <= v{i}[0] <= {full} and 0 <= v{i}[1] <= {full}:
        m = new(Masked)
        set_value(m, v{i}[0])
        set_mask(m, v{i}[1])
        v{i} = m
    else:
        v{i} = coerce{i}(v{i}, {where!r})
    set{i}(self, v{i})"""


def _compile_init(cls: type[FixedKeyAttr]) -> Callable[..., None]:
    """``cls.__init__`` generated from its FIELDS, as dataclasses does.

    A controller builds a fresh attribute for every flow it installs, with
    unique values: FixedKeyAttr.__init__'s loop over the fields, its dicts
    and Kind.coerce's type dispatch cost several times the work.  The
    generated one reads each field by name, turns None, a plain in-range int
    (below 256: Kind.small's shared one) or a (value, mask) pair of them (the
    common cases) into a Masked inline,
    and hands every other value to Kind.coerce; errors take the general path,
    so behaviour and messages are the same.
    """
    specs = cls.FIELDS
    n = len(specs)
    names = "".join(f"v{i}, " for i in range(n))
    lines = [
        "def __init__(self, *args, **kwargs):",
        # Positional values only (InPort(1), EthType(0x0800)): no dict at all.
        f"    if args and not kwargs and len(args) <= {n}:",
        f"        {names}= args + NONES[len(args):]",
        "    else:",
        "        if args:",
        "            kwargs = given(self, args, kwargs)",
        *(f"        v{i} = kwargs.pop({s.name!r}, None)" for i, s in enumerate(specs)),
        "        if kwargs:",
        "            unknown_field(self, kwargs)",
    ]
    namespace: dict[str, Any] = {
        "given": _given,
        "NONES": (None,) * n,
        "unknown_field": _unknown_field,
        "WILDCARD": WILDCARD,
        "Masked": Masked,
        "new": object.__new__,
        "set_value": _set_value,
        "set_mask": _set_mask,
    }
    for i, s in enumerate(specs):
        lines.append(_INIT_FIELD.format(i=i, full=s.kind.full, where=f"{cls.NAME}.{s.name}"))
        namespace[f"coerce{i}"] = s.kind.coerce
        namespace[f"small{i}"] = s.kind.small
        namespace[f"set{i}"] = cls.__dict__[s.name].__set__
    return cast(Callable[..., None], define("\n".join(lines) + "\n", namespace)["__init__"])


T = KeyAttrType
U8, U16, U32, U64 = Kind.U8, Kind.U16, Kind.U32, Kind.U64


def _field(
    kind: Kind, fmt: str, *, text: str = "", show: str = "", sw: str | None = None, print_after: str | None = None
) -> Any:
    """One field of a fixed-layout attribute, declared once where the class lists it.

    ``kind`` and ``fmt`` are its value kind and its struct code in the payload;
    ``text`` and ``show`` its name and value format in the ODP text format
    (``show`` set: the attribute prints as a ``name=value`` list, in field order
    except that a field with ``print_after`` follows the named one); ``sw`` the
    odp.validate.swkey field ovs_nla_get_match stores it in (None: handled
    specially, like in_port, eth_type and the VLAN TCI).
    """
    return field(metadata={"spec": (kind, fmt, text, show, sw, print_after)})


def _fixed(type_: KeyAttrType, name: str, fmt: str) -> Callable[[type[F]], type[F]]:
    """Install an attribute class's metadata: its type, text name, payload
    format, and FIELDS built from the fields its body declares with :func:`_field`."""

    def install(cls: type[F]) -> type[F]:
        fields = dataclasses.fields(cast(Any, cls))
        specs = tuple(FieldSpec(f.name, *f.metadata["spec"]) for f in fields)
        cls.TYPE = int(type_)
        cls.NAME = name
        cls.FORMAT = fmt
        cls.FIELDS = specs
        cls.SIZE = struct.calcsize(fmt)
        cls.TEXT_FIELDS = _print_order(specs) if all(s.show for s in specs) else ()
        cls.__init__ = _compile_init(cls)  # type: ignore[method-assign]
        return cls

    return install


def _print_order(specs: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    ordered: list[FieldSpec] = []
    for spec in specs:
        if spec.print_after is None:
            ordered.append(spec)
            ordered += [s for s in specs if s.print_after == spec.name]
    return tuple(ordered)


# ---------------------------------------------------------------------------
# Fixed-layout attributes.  Each class declares each of its fields once, with
# its wire format, text form and swkey field (_field); _fixed() installs the rest.
# ---------------------------------------------------------------------------


@_fixed(T.PRIORITY, "skb_priority", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Priority(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="priority")


@_fixed(T.IN_PORT, "in_port", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class InPort(FixedKeyAttr):
    port: Masked = _field(U32, "I")


@_fixed(T.ETHERNET, "eth", "!6s6s")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Ethernet(FixedKeyAttr):
    src: Masked = _field(Kind.MAC, "6s", text="src", show="mac", sw="eth_src")
    dst: Masked = _field(Kind.MAC, "6s", text="dst", show="mac", sw="eth_dst")


@_fixed(T.VLAN, "vlan", "!H")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Vlan(FixedKeyAttr):
    """802.1Q TCI; the kernel requires the CFI bit (0x1000) to mean "tag present"."""

    tci: Masked = _field(U16, "H", text="tci")

    @classmethod
    def of(cls, vid: int, pcp: int = 0) -> Vlan:
        """An exact match on a tag with this VID and PCP."""
        if not 0 <= vid <= 0xFFF or not 0 <= pcp <= 7:
            raise FieldError(f"vlan: vid {vid} must be 0..4095 and pcp {pcp} 0..7")
        return cls(tci=(pcp << 13) | VLAN_CFI | vid)

    @property
    def vid(self) -> int:
        return self.tci.value & 0xFFF

    @property
    def pcp(self) -> int:
        return self.tci.value >> 13


@_fixed(T.ETHERTYPE, "eth_type", "!H")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class EthType(FixedKeyAttr):
    value: Masked = _field(U16, "H")


@_fixed(T.IPV4, "ipv4", "!IIBBBB")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Ipv4(FixedKeyAttr):
    src: Masked = _field(Kind.IPV4, "I", text="src", show="ip4", sw="ipv4_src")
    dst: Masked = _field(Kind.IPV4, "I", text="dst", show="ip4", sw="ipv4_dst")
    proto: Masked = _field(U8, "B", text="proto", show="dec", sw="ip_proto")
    tos: Masked = _field(U8, "B", text="tos", show="hex", sw="ip_tos")
    ttl: Masked = _field(U8, "B", text="ttl", show="dec", sw="ip_ttl")
    frag: Masked = _field(U8, "B", text="frag", show="frag", sw="ip_frag")


@_fixed(T.IPV6, "ipv6", "!16s16sIBBBB")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Ipv6(FixedKeyAttr):
    src: Masked = _field(Kind.IPV6, "16s", text="src", show="ip6", sw="ipv6_src")
    dst: Masked = _field(Kind.IPV6, "16s", text="dst", show="ip6", sw="ipv6_dst")
    label: Masked = _field(U32, "I", text="label", show="label", sw="ipv6_label")
    proto: Masked = _field(U8, "B", text="proto", show="dec", sw="ip_proto")
    tclass: Masked = _field(U8, "B", text="tclass", show="hex", sw="ip_tos")
    hlimit: Masked = _field(U8, "B", text="hlimit", show="dec", sw="ip_ttl")
    frag: Masked = _field(U8, "B", text="frag", show="frag", sw="ip_frag")


@_fixed(T.TCP, "tcp", "!HH")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Tcp(FixedKeyAttr):
    src: Masked = _field(U16, "H", text="src", show="dec", sw="tp_src")
    dst: Masked = _field(U16, "H", text="dst", show="dec", sw="tp_dst")


@_fixed(T.UDP, "udp", "!HH")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Udp(FixedKeyAttr):
    src: Masked = _field(U16, "H", text="src", show="dec", sw="tp_src")
    dst: Masked = _field(U16, "H", text="dst", show="dec", sw="tp_dst")


@_fixed(T.SCTP, "sctp", "!HH")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Sctp(FixedKeyAttr):
    src: Masked = _field(U16, "H", text="src", show="dec", sw="tp_src")
    dst: Masked = _field(U16, "H", text="dst", show="dec", sw="tp_dst")


@_fixed(T.ICMP, "icmp", "!BB")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Icmp(FixedKeyAttr):
    type: Masked = _field(U8, "B", text="type", show="dec", sw="tp_src")
    code: Masked = _field(U8, "B", text="code", show="dec", sw="tp_dst")


@_fixed(T.ICMPV6, "icmpv6", "!BB")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Icmpv6(FixedKeyAttr):
    type: Masked = _field(U8, "B", text="type", show="dec", sw="tp_src")
    code: Masked = _field(U8, "B", text="code", show="dec", sw="tp_dst")


@_fixed(T.ARP, "arp", "!IIH6s6s2x")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Arp(FixedKeyAttr):
    sip: Masked = _field(Kind.IPV4, "I", text="sip", show="ip4", sw="ipv4_src")
    tip: Masked = _field(Kind.IPV4, "I", text="tip", show="ip4", sw="ipv4_dst")
    op: Masked = _field(U16, "H", text="op", show="dec", sw="arp_op")
    sha: Masked = _field(Kind.MAC, "6s", text="sha", show="mac", sw="arp_sha")
    tha: Masked = _field(Kind.MAC, "6s", text="tha", show="mac", sw="arp_tha")


@_fixed(T.ND, "nd", "!16s6s6s")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Nd(FixedKeyAttr):
    target: Masked = _field(Kind.IPV6, "16s", text="target", show="ip6", sw="nd_target")
    sll: Masked = _field(Kind.MAC, "6s", text="sll", show="mac", sw="nd_sll")
    tll: Masked = _field(Kind.MAC, "6s", text="tll", show="mac", sw="nd_tll")


@_fixed(T.SKB_MARK, "skb_mark", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class SkbMark(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="skb_mark")


@_fixed(T.TCP_FLAGS, "tcp_flags", "!H")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class TcpFlags(FixedKeyAttr):
    value: Masked = _field(U16, "H", sw="tcp_flags")


@_fixed(T.DP_HASH, "dp_hash", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class DpHash(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="dp_hash")


@_fixed(T.RECIRC_ID, "recirc_id", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class RecircId(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="recirc_id")


# ct_state is a u32 on the wire but the kernel keeps 8 bits and refuses any
# other bit, in the mask too: match it with +flag/-flag masks (0xff at most);
# a fully exact u32 (how a miss key reports it) is EINVAL, as with ovs-dpctl.
@_fixed(T.CT_STATE, "ct_state", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtState(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="ct_state")


@_fixed(T.CT_ZONE, "ct_zone", "=H")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtZone(FixedKeyAttr):
    value: Masked = _field(U16, "H", sw="ct_zone")


@_fixed(T.CT_MARK, "ct_mark", "=I")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtMark(FixedKeyAttr):
    value: Masked = _field(U32, "I", sw="ct_mark")


@_fixed(T.CT_LABELS, "ct_label", "!16s")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtLabels(FixedKeyAttr):
    value: Masked = _field(Kind.U128, "16s", sw="ct_labels")


@_fixed(T.CT_ORIG_TUPLE_IPV4, "ct_tuple4", "!IIHHB3x")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtTupleIpv4(FixedKeyAttr):
    src: Masked = _field(Kind.IPV4, "I", text="src", show="ip4", sw="ct_orig_src")
    dst: Masked = _field(Kind.IPV4, "I", text="dst", show="ip4", sw="ct_orig_dst")
    tp_src: Masked = _field(U16, "H", text="tp_src", show="dec", sw="ct_orig_tp_src")
    tp_dst: Masked = _field(U16, "H", text="tp_dst", show="dec", sw="ct_orig_tp_dst")
    proto: Masked = _field(U8, "B", text="proto", show="dec", sw="ct_orig_proto", print_after="dst")


@_fixed(T.CT_ORIG_TUPLE_IPV6, "ct_tuple6", "!16s16sHHB3x")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class CtTupleIpv6(FixedKeyAttr):
    src: Masked = _field(Kind.IPV6, "16s", text="src", show="ip6", sw="ct_orig_src")
    dst: Masked = _field(Kind.IPV6, "16s", text="dst", show="ip6", sw="ct_orig_dst")
    tp_src: Masked = _field(U16, "H", text="src_port", show="dec", sw="ct_orig_tp_src")
    tp_dst: Masked = _field(U16, "H", text="dst_port", show="dec", sw="ct_orig_tp_dst")
    proto: Masked = _field(U8, "B", text="proto", show="dec", sw="ct_orig_proto", print_after="dst")


@_fixed(T.PACKET_TYPE, "packet_type", "!HH")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class PacketType(FixedKeyAttr):
    """Userspace-only (OVS_KEY_ATTR_PACKET_TYPE); the kernel rejects it in a key."""

    namespace: Masked = _field(U16, "H", text="ns", show="dec")
    type: Masked = _field(U16, "H", text="id", show="hex")


@_fixed(T.IPV6_EXTHDRS, "ipv6_exthdrs", "=H")
@dataclass(frozen=True, slots=True, init=False, repr=False)
class Ipv6Exthdrs(FixedKeyAttr):
    """Bitmap of IPv6 extension headers seen (OVS_KEY_ATTR_IPV6_EXTHDRS, newer kernels)."""

    value: Masked = _field(U16, "H", sw="ipv6_exthdrs")


FIXED_ATTRS: dict[int, type[FixedKeyAttr]] = {
    c.TYPE: c
    for c in (
        Priority, InPort, Ethernet, Vlan, EthType, Ipv4, Ipv6, Tcp, Udp, Icmp, Icmpv6, Arp, Nd,
        SkbMark, Sctp, TcpFlags, DpHash, RecircId, CtState, CtZone, CtMark, CtLabels,
        CtTupleIpv4, CtTupleIpv6, PacketType, Ipv6Exthdrs,
    )
}  # fmt: skip


# ---------------------------------------------------------------------------
# Variable-layout attributes.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class MaskedBytes:
    """A byte string with a byte mask of the same length; equality is mask-aware."""

    value: bytes
    mask: bytes

    def __post_init__(self) -> None:
        if len(self.value) != len(self.mask):
            raise FieldError(f"masked bytes: value is {len(self.value)} bytes but mask is {len(self.mask)}")

    def _masked(self) -> bytes:
        return bytes(v & m for v, m in zip(self.value, self.mask))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskedBytes):
            return NotImplemented
        return self.mask == other.mask and self._masked() == other._masked()

    def __hash__(self) -> int:
        return hash((self._masked(), self.mask))

    @classmethod
    def exact(cls, value: bytes) -> MaskedBytes:
        return cls(bytes(value), b"\xff" * len(value))


_TUNNEL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("tun_id", Kind.U64, "Q", "tun_id"),
    FieldSpec("ipv4_src", Kind.IPV4, "I", "src"),
    FieldSpec("ipv4_dst", Kind.IPV4, "I", "dst"),
    FieldSpec("ipv6_src", Kind.IPV6, "16s", "ipv6_src"),
    FieldSpec("ipv6_dst", Kind.IPV6, "16s", "ipv6_dst"),
    FieldSpec("tos", Kind.U8, "B", "tos"),
    FieldSpec("ttl", Kind.U8, "B", "ttl"),
    FieldSpec("tp_src", Kind.U16, "H", "tp_src"),
    FieldSpec("tp_dst", Kind.U16, "H", "tp_dst"),
    FieldSpec("vxlan_gbp", Kind.U32, "I", "gbp"),
    FieldSpec("flags", Kind.U8, "B", "flags"),
)


_TUNNEL_NAMES = frozenset(s.name for s in _TUNNEL_FIELDS)
_TUNNEL_COERCE = tuple((s.name, s.kind, f"tunnel.{s.name}") for s in _TUNNEL_FIELDS)


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Tunnel(KeyAttr):
    """OVS_KEY_ATTR_TUNNEL: tunnel metadata of a received packet, or to set before output.

    ``flags`` holds :class:`~odp.constants.TunnelFlag` bits (oam, df, csum, key).
    In netlink DF/CSUM/OAM are presence-only attributes and KEY is the presence
    of the tunnel ID, so ``tun_id`` is carried exactly when the key (or, for the
    mask, the mask) has the KEY flag; building a Tunnel with a ``tun_id`` sets
    KEY in the flags value and mask accordingly.

    ``vxlan_gbp`` is carried (as VXLAN_OPTS) when its mask is non-zero.
    ``geneve`` and ``erspan`` hold the raw option bytes, masked.
    ``extra`` keeps tunnel sub-attributes odp does not know, as
    ``(type, key payload, mask payload)``, so they round-trip.
    """

    tun_id: Masked
    ipv4_src: Masked
    ipv4_dst: Masked
    ipv6_src: Masked
    ipv6_dst: Masked
    tos: Masked
    ttl: Masked
    tp_src: Masked
    tp_dst: Masked
    vxlan_gbp: Masked
    flags: Masked
    geneve: MaskedBytes | None
    erspan: MaskedBytes | None
    extra: tuple[tuple[int, bytes, bytes], ...]

    TYPE: ClassVar[int] = int(KeyAttrType.TUNNEL)
    NAME: ClassVar[str] = "tunnel"
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = _TUNNEL_FIELDS

    def __init__(
        self,
        *,
        geneve: MaskedBytes | bytes | None = None,
        erspan: MaskedBytes | bytes | None = None,
        extra: tuple[tuple[int, bytes, bytes], ...] = (),
        normalize: bool = True,
        **kwargs: object,
    ) -> None:
        unknown = sorted(kwargs.keys() - _TUNNEL_NAMES)
        if unknown:
            raise FieldError(
                f"tunnel: unknown field {unknown[0]!r} (fields: {', '.join(s.name for s in _TUNNEL_FIELDS)},"
                " geneve, erspan)"
            )
        values = {name: kind.coerce(kwargs.get(name), where) for name, kind, where in _TUNNEL_COERCE}
        fl = values["flags"]
        if fl.value & ~0xF or fl.mask & ~0xF:
            raise FieldError("tunnel.flags: only oam, df, csum and key (0x1..0x8) exist")
        if normalize:
            tid = values["tun_id"]
            key_bit = int(TunnelFlag.KEY)
            fv, fm = fl.value, fl.mask
            if tid.value & tid.mask or (tid.mask and "flags" not in kwargs):
                fv |= key_bit
            if tid.mask:
                fm |= key_bit
            values["flags"] = Masked(fv, fm)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "geneve", MaskedBytes.exact(geneve) if isinstance(geneve, bytes) else geneve)
        object.__setattr__(self, "erspan", MaskedBytes.exact(erspan) if isinstance(erspan, bytes) else erspan)
        object.__setattr__(self, "extra", tuple(extra))

    def items(self) -> Iterator[tuple[FieldSpec, Masked]]:
        for spec in _TUNNEL_FIELDS:
            yield spec, cast(Masked, getattr(self, spec.name))

    def is_wildcard(self) -> bool:
        return (
            all(m.mask == 0 for _, m in self.items())
            and (self.geneve is None or not any(self.geneve.mask))
            and (self.erspan is None or not any(self.erspan.mask))
            and not any(any(mask) for _, _, mask in self.extra)
        )

    def masked(self) -> Tunnel:
        kw: dict[str, Any] = {s.name: Masked(m.value & m.mask, m.mask) for s, m in self.items()}
        return Tunnel(geneve=self.geneve, erspan=self.erspan, extra=self.extra, normalize=False, **kw)

    def with_fields(self, **changes: object) -> Tunnel:
        kw: dict[str, Any] = {s.name: m for s, m in self.items()}
        kw.update(changes)
        return Tunnel(geneve=self.geneve, erspan=self.erspan, extra=self.extra, **kw)

    def __repr__(self) -> str:
        return f"Tunnel({self})"


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Mpls(KeyAttr):
    """OVS_KEY_ATTR_MPLS: up to three label stack entries (each a masked be32 LSE).

    ``Mpls()`` (no entry) is what a packet key holds when the frame ends before
    the bottom of the stack: the kernel then reports an empty attribute.  A
    flow's key needs at least one entry (the kernel refuses an empty one)."""

    lses: tuple[Masked, ...]

    TYPE: ClassVar[int] = int(KeyAttrType.MPLS)
    NAME: ClassVar[str] = "mpls"

    def __init__(self, *lses: object, label: int | None = None, tc: int = 0, ttl: int = 0, bos: int = 1) -> None:
        coerced = tuple(Kind.U32.coerce(x, f"mpls.lse{i}") for i, x in enumerate(lses))
        if label is not None:
            if coerced:
                raise FieldError("mpls: give either LSE values or label/tc/ttl/bos, not both")
            if not 0 <= label < 1 << 20 or not 0 <= tc < 8 or not 0 <= ttl < 256 or bos not in (0, 1):
                raise FieldError("mpls: label must be 0..0xfffff, tc 0..7, ttl 0..255, bos 0 or 1")
            coerced = (Masked((label << 12) | (tc << 9) | (bos << 8) | ttl, 0xFFFFFFFF),)
        object.__setattr__(self, "lses", coerced)

    def is_wildcard(self) -> bool:
        # An empty attribute is reported as such, not as a wildcard.
        return bool(self.lses) and all(m.mask == 0 for m in self.lses)

    def masked(self) -> Mpls:
        return Mpls(*(Masked(m.value & m.mask, m.mask) for m in self.lses))

    def __repr__(self) -> str:
        return f"Mpls({self})"


_NSH_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("flags", Kind.U8, "B", "flags"),
    FieldSpec("ttl", Kind.U8, "B", "ttl"),
    FieldSpec("mdtype", Kind.U8, "B", "mdtype"),
    FieldSpec("np", Kind.U8, "B", "np"),
    FieldSpec("path_hdr", Kind.U32, "I", "path_hdr"),
    FieldSpec("c1", Kind.U32, "I", "c1"),
    FieldSpec("c2", Kind.U32, "I", "c2"),
    FieldSpec("c3", Kind.U32, "I", "c3"),
    FieldSpec("c4", Kind.U32, "I", "c4"),
)


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Nsh(KeyAttr):
    """OVS_KEY_ATTR_NSH: the NSH base header (``path_hdr`` = SPI << 8 | SI) and MD1 context.

    ``has_md1`` says whether the MD1 sub-attribute is present; ``md2`` keeps
    MD type 2 TLVs as raw bytes.
    """

    flags: Masked
    ttl: Masked
    mdtype: Masked
    np: Masked
    path_hdr: Masked
    c1: Masked
    c2: Masked
    c3: Masked
    c4: Masked
    has_md1: bool
    md2: MaskedBytes | None

    TYPE: ClassVar[int] = int(KeyAttrType.NSH)
    NAME: ClassVar[str] = "nsh"
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = _NSH_FIELDS

    def __init__(
        self,
        *,
        spi: int | None = None,
        si: int | None = None,
        has_md1: bool | None = None,
        md2: MaskedBytes | bytes | None = None,
        **kwargs: object,
    ) -> None:
        names = {s.name for s in _NSH_FIELDS}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise FieldError(f"nsh: unknown field {unknown[0]!r}")
        if spi is not None or si is not None:
            if "path_hdr" in kwargs:
                raise FieldError("nsh: give spi/si or path_hdr, not both")
            spi_v, si_v = spi or 0, si or 0
            if not 0 <= spi_v < 1 << 24 or not 0 <= si_v < 256:
                raise FieldError("nsh: spi must be 0..0xffffff and si 0..255")
            mask = (0xFFFFFF00 if spi is not None else 0) | (0xFF if si is not None else 0)
            kwargs["path_hdr"] = Masked((spi_v << 8) | si_v, mask)
        for s in _NSH_FIELDS:
            object.__setattr__(self, s.name, s.kind.coerce(kwargs.get(s.name), f"nsh.{s.name}"))
        if has_md1 is None:
            has_md1 = any(cast(Masked, getattr(self, c)).mask for c in ("c1", "c2", "c3", "c4"))
        object.__setattr__(self, "has_md1", has_md1)
        object.__setattr__(self, "md2", MaskedBytes.exact(md2) if isinstance(md2, bytes) else md2)

    def items(self) -> Iterator[tuple[FieldSpec, Masked]]:
        for spec in _NSH_FIELDS:
            yield spec, cast(Masked, getattr(self, spec.name))

    def is_wildcard(self) -> bool:
        return all(m.mask == 0 for _, m in self.items()) and (self.md2 is None or not any(self.md2.mask))

    def masked(self) -> Nsh:
        kw: dict[str, Any] = {s.name: Masked(m.value & m.mask, m.mask) for s, m in self.items()}
        return Nsh(has_md1=self.has_md1, md2=self.md2, **kw)

    def __repr__(self) -> str:
        return f"Nsh({self})"


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Encap(KeyAttr):
    """OVS_KEY_ATTR_ENCAP: the key attributes of what follows a VLAN tag."""

    attrs: tuple[KeyAttr, ...]

    TYPE: ClassVar[int] = int(KeyAttrType.ENCAP)
    NAME: ClassVar[str] = "encap"

    def __init__(self, *attrs: KeyAttr) -> None:
        _check_unique(attrs, "encap")
        object.__setattr__(self, "attrs", tuple(attrs))

    def is_wildcard(self) -> bool:
        return all(a.is_wildcard() for a in self.attrs)

    def masked(self) -> Encap:
        return Encap(*(a.masked() for a in self.attrs))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Encap):
            return NotImplemented
        return _identity(self.attrs, ()) == _identity(other.attrs, ())

    def __hash__(self) -> int:
        return hash(_identity(self.attrs, ()))

    def __repr__(self) -> str:
        return f"Encap({self})"


@dataclass(frozen=True, slots=True, repr=False)
class UnknownKeyAttr(KeyAttr):
    """A key attribute odp does not model: kept as raw payloads so it round-trips.

    ``mask`` is None when the mask has no such attribute.
    """

    type: int
    key: bytes
    mask: bytes | None = None

    NAME: ClassVar[str] = "key"

    @property
    def TYPE(self) -> int:  # type: ignore[override]  # noqa: N802
        return self.type

    def is_wildcard(self) -> bool:
        return self.mask is None or not any(self.mask)

    def masked(self) -> UnknownKeyAttr:
        if self.mask is None:
            return self
        return UnknownKeyAttr(self.type, bytes(k & m for k, m in zip(self.key, self.mask)), self.mask)

    def __repr__(self) -> str:
        return f"UnknownKeyAttr(type={self.type}, key={self.key.hex()}, mask={self.mask.hex() if self.mask else None})"


ALL_ATTR_CLASSES: dict[int, type[KeyAttr]] = {
    **FIXED_ATTRS,
    int(KeyAttrType.TUNNEL): Tunnel,
    int(KeyAttrType.MPLS): Mpls,
    int(KeyAttrType.NSH): Nsh,
    int(KeyAttrType.ENCAP): Encap,
}

# Attributes whose mere presence changes what a flow means even when fully
# wildcarded (Ethernet vs L3 packet, tagged vs untagged), so equality keeps them.
_STRUCTURAL = frozenset({int(KeyAttrType.ETHERNET), int(KeyAttrType.VLAN), int(KeyAttrType.ENCAP)})


def _attr_type(a: KeyAttr) -> int:
    return a.TYPE


def _check_unique(attrs: Iterable[KeyAttr], where: str) -> None:
    seen: set[int] = set()
    for a in attrs:
        if not isinstance(a, KeyAttr):
            raise FieldError(f"{where}: {a!r} is not a flow key attribute")
        t = _attr_type(a)
        if t in seen:
            raise FieldError(f"{where}: duplicate attribute {a.NAME} (type {t})")
        seen.add(t)


#: Tuples of attribute classes _check_unique has passed: a Match of a shape
#: seen before (a controller builds many) skips the loop.  Only classes whose
#: TYPE is a class constant (not UnknownKeyAttr's per-instance one) qualify.
_UNIQUE_SHAPES: set[tuple[type, ...]] = set()
_UNIQUE_SHAPES_MAX = 4096


def _remember_shape(attrs: tuple[KeyAttr, ...]) -> None:
    shape = tuple(map(type, attrs))
    if all(isinstance(c.__dict__.get("TYPE"), int) for c in shape):
        if len(_UNIQUE_SHAPES) >= _UNIQUE_SHAPES_MAX:
            _UNIQUE_SHAPES.clear()
        _UNIQUE_SHAPES.add(shape)


def _identity(attrs: Iterable[KeyAttr], mask_only: Iterable[KeyAttr]) -> frozenset[object]:
    ident: set[object] = set()
    for a in attrs:
        if not a.is_wildcard() or _attr_type(a) in _STRUCTURAL:
            ident.add(a)
    for a in mask_only:
        if not a.is_wildcard():
            ident.add(("mask-only", a))
    return frozenset(ident)


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Match:
    """A flow's key and mask: an ordered set of key attributes, at most one per type.

    ``Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst="10.0.0.0/8"))``

    ``mask_only`` holds mask attributes that have no key attribute (as kernel
    dumps report ``eth_type(0/0x0000)``).  Equality and hashing are mask-aware
    and ignore order: fully wildcarded attributes count as absent, except
    ``eth``, ``vlan`` and ``encap`` whose presence changes the flow's meaning.
    """

    attrs: tuple[KeyAttr, ...]
    mask_only: tuple[KeyAttr, ...] = field(default=())

    def __init__(self, *attrs: KeyAttr, mask_only: Iterable[KeyAttr] = ()) -> None:
        if tuple(map(type, attrs)) not in _UNIQUE_SHAPES:
            _check_unique(attrs, "match")
            _remember_shape(attrs)
        mo = tuple(mask_only)
        if mo:
            _check_unique(mo, "match mask")
        _set_attrs(self, attrs)
        _set_mask_only(self, mo)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return _identity(self.attrs, self.mask_only) == _identity(other.attrs, other.mask_only)

    def __hash__(self) -> int:
        return hash(_identity(self.attrs, self.mask_only))

    def __iter__(self) -> Iterator[KeyAttr]:
        return iter(self.attrs)

    def __len__(self) -> int:
        return len(self.attrs)

    def __contains__(self, cls: object) -> bool:
        return any(type(a) is cls for a in self.attrs)

    def get(self, cls: type[A]) -> A | None:
        """The attribute of class ``cls`` (e.g. ``match.get(Ipv4)``) or None."""
        for a in self.attrs:
            if type(a) is cls:
                return a
        return None

    def __getitem__(self, cls: type[A]) -> A:
        found = self.get(cls)
        if found is None:
            raise KeyError(cls.NAME)
        return found

    def by_type(self, type_: int) -> KeyAttr | None:
        for a in self.attrs:
            if _attr_type(a) == type_:
                return a
        return None

    def replace(self, *attrs: KeyAttr) -> Match:
        """A copy with these attributes added or replacing those of the same type."""
        new_types = {_attr_type(a) for a in attrs}
        kept = [a for a in self.attrs if _attr_type(a) not in new_types]
        return Match(*kept, *attrs, mask_only=self.mask_only)

    def without(self, *classes: type[KeyAttr]) -> Match:
        return Match(*(a for a in self.attrs if type(a) not in classes), mask_only=self.mask_only)

    def masked(self) -> Match:
        """The match with wildcarded key bits cleared (as the kernel stores it)."""
        return Match(*(a.masked() for a in self.attrs), mask_only=self.mask_only)

    def __str__(self) -> str:
        from odp.text import format_match

        return format_match(self)

    def __repr__(self) -> str:
        return f"Match({str(self)!r})"


_set_attrs: Any = Match.__dict__["attrs"].__set__
_set_mask_only: Any = Match.__dict__["mask_only"].__set__
