"""Masked field values and the kinds of field a flow key is made of.

Every field of every flow key attribute is stored as a :class:`Masked` pair of
unsigned integers: MAC addresses as 48-bit, IPv4 as 32-bit, IPv6 and conntrack
labels as 128-bit integers.  Integers keep the model small, hashable and cheap
to pack, and they make mask arithmetic (``value & mask``) uniform.

Natural Python values (``"10.0.0.0/24"``, ``"aa:bb:cc:dd:ee:ff"``,
``ipaddress`` objects, ``(value, mask)`` tuples) are turned into ``Masked``
by :meth:`Kind.coerce`, which raises :class:`~odp.errors.FieldError` naming
the field when a value does not fit.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Any, Union

from odp.errors import FieldError


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Masked:
    """A field value together with its mask.

    Equality is mask-aware: two values are equal when their masks are equal and
    their values agree on the masked bits, so ``Masked(5, 0) == Masked(0, 0)``.
    """

    value: int
    mask: int

    def __init__(self, value: int, mask: int) -> None:
        # The slots' own setters: a frozen dataclass's __init__ goes through
        # object.__setattr__ by name, which costs twice as much, and every
        # field of every key attribute built is one of these.
        _set_value(self, value)
        _set_mask(self, mask)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Masked):
            return NotImplemented
        return self.mask == other.mask and (self.value & self.mask) == (other.value & other.mask)

    def __hash__(self) -> int:
        return hash((self.value & self.mask, self.mask))

    @property
    def masked_value(self) -> int:
        """The value with the wildcarded bits cleared."""
        return self.value & self.mask

    def is_wildcard(self) -> bool:
        return self.mask == 0

    def matches(self, value: int) -> bool:
        """Whether a concrete ``value`` matches this masked value."""
        return (value & self.mask) == (self.value & self.mask)


_set_value: Any = Masked.__dict__["value"].__set__
_set_mask: Any = Masked.__dict__["mask"].__set__

WILDCARD = Masked(0, 0)

#: What may be given for a field when building a key attribute.
FieldInput = Union[  # noqa: UP007 - a runtime alias; ipaddress types read better stacked
    None,
    int,
    str,
    bytes,
    Masked,
    tuple[object, object],
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
]


def format_mac(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def parse_mac(text: str) -> int:
    """Parse ``aa:bb:cc:dd:ee:ff`` (also ``-`` separated) into a 48-bit int."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (six hex bytes separated by ':')")
    try:
        return int.from_bytes(bytes(int(p, 16) for p in parts), "big")
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (six hex bytes separated by ':')") from None


def format_ipv4(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def format_ipv6(value: int) -> str:
    """Format like glibc's inet_ntop (which ovs-dpctl uses), incl. IPv4-mapped forms."""
    addr = ipaddress.IPv6Address(value)
    if value >> 32 == 0xFFFF:
        return "::ffff:" + format_ipv4(value & 0xFFFFFFFF)
    if value >> 32 == 0 and value > 0xFFFF:
        # IPv4-compatible (deprecated) addresses: inet_ntop prints them dotted.
        return "::" + format_ipv4(value)
    return addr.compressed


def _prefix_mask(bits: int, width: int, text: str) -> int:
    if not 0 <= bits <= width:
        raise ValueError(f"prefix length /{bits} in {text!r} is out of range 0..{width}")
    return ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)


class Kind(enum.Enum):
    """How a field is written in text and how wide it is."""

    U8 = ("int", 8)
    U16 = ("int", 16)
    U32 = ("int", 32)
    U64 = ("int", 64)
    U128 = ("int", 128)
    MAC = ("mac", 48)
    IPV4 = ("ipv4", 32)
    IPV6 = ("ipv6", 128)

    def __init__(self, family: str, bits: int) -> None:
        self.family = family
        self.bits = bits
        self.full = (1 << bits) - 1
        #: The exact values 0..255, shared (Masked is immutable): protocols, ports
        #: and flags repeat in every flow, and an object not allocated is one the
        #: garbage collector never walks.
        self.small = tuple(Masked(v, self.full) for v in range(min(256, self.full + 1)))

    # -- text of a single value (no mask) --------------------------------
    def parse_value(self, text: str) -> int:
        """Parse one value of this kind; raises ValueError with a reason."""
        text = text.strip()
        if self.family == "mac":
            return parse_mac(text)
        if self.family == "ipv4":
            try:
                return int(ipaddress.IPv4Address(text))
            except ValueError:
                raise ValueError(f"{text!r} is not an IPv4 address") from None
        if self.family == "ipv6":
            try:
                return int(ipaddress.IPv6Address(text))
            except ValueError:
                raise ValueError(f"{text!r} is not an IPv6 address") from None
        try:
            value = int(text, 0)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        self.check_range(value, text)
        return value

    def check_range(self, value: int, shown: object) -> None:
        if not 0 <= value <= self.full:
            raise ValueError(f"{shown!r} does not fit in {self.bits} bits")

    def parse_masked(self, text: str) -> Masked:
        """Parse ``value`` or ``value/mask`` (``/N`` prefix lengths for addresses)."""
        value_text, slash, mask_text = text.partition("/")
        value = self.parse_value(value_text)
        if not slash:
            return Masked(value, self.full)
        mask_text = mask_text.strip()
        if self.family in ("ipv4", "ipv6") and mask_text.isdigit():
            return Masked(value, _prefix_mask(int(mask_text), self.bits, text))
        return Masked(value, self.parse_value(mask_text))

    def format_value(self, value: int) -> str:
        if self.family == "mac":
            return format_mac(value)
        if self.family == "ipv4":
            return format_ipv4(value)
        if self.family == "ipv6":
            return format_ipv6(value)
        return str(value)

    # -- natural Python values -------------------------------------------
    def coerce(self, raw: object, field: str) -> Masked:
        """Turn a natural Python value into a ``Masked`` for field ``field``."""
        # The common cases first, without the dispatch below (attributes built per flow).
        if raw is None:
            return WILDCARD
        if type(raw) is int and 0 <= raw <= self.full:
            return self.small[raw] if raw < 256 else Masked(raw, self.full)
        try:
            result = self._coerce(raw)
        except (ValueError, TypeError) as exc:
            raise FieldError(f"{field}: {exc}") from None
        if result.value & ~self.full or result.mask & ~self.full:
            raise FieldError(f"{field}: {raw!r} does not fit in {self.bits} bits")
        return result

    def _coerce(self, raw: object) -> Masked:
        if raw is None:
            return WILDCARD
        if isinstance(raw, Masked):
            return raw
        if isinstance(raw, bool):
            raise TypeError(f"expected a value, not {raw!r}")
        if isinstance(raw, int):
            self.check_range(raw, raw)
            return Masked(raw, self.full)
        if isinstance(raw, str):
            return self.parse_masked(raw)
        if isinstance(raw, (bytes, bytearray)):
            if len(raw) * 8 != self.bits:
                raise ValueError(f"{bytes(raw)!r} is {len(raw)} bytes, expected {self.bits // 8}")
            return Masked(int.from_bytes(raw, "big"), self.full)
        if isinstance(raw, tuple) and len(raw) == 2:
            value = self._coerce(raw[0]).value
            mask = self._coerce(raw[1]).value
            return Masked(value, mask)
        if self.family == "ipv4" and isinstance(
            raw, (ipaddress.IPv4Address, ipaddress.IPv4Network, ipaddress.IPv4Interface)
        ):
            return _coerce_ip(raw, self)
        if self.family == "ipv6" and isinstance(
            raw, (ipaddress.IPv6Address, ipaddress.IPv6Network, ipaddress.IPv6Interface)
        ):
            return _coerce_ip(raw, self)
        raise TypeError(f"cannot use {type(raw).__name__} value {raw!r} for a {self.family} field")


def _coerce_ip(raw: object, kind: Kind) -> Masked:
    # Interfaces are Address subclasses: test them first.
    if isinstance(raw, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return Masked(int(raw.ip), int(raw.netmask))
    if isinstance(raw, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return Masked(int(raw), kind.full)
    assert isinstance(raw, (ipaddress.IPv4Network, ipaddress.IPv6Network))
    return Masked(int(raw.network_address), int(raw.netmask))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a fixed-layout key attribute.

    ``fmt`` is the struct code of the field inside the attribute payload
    (``6s``/``16s`` for byte strings, which are packed from the integer
    big-endian); ``text`` is the name the ODP text format uses and ``show``
    how it prints the value (``mac``, ``ip4``, ``ip6``, ``dec``, ``hex``,
    ``frag``, ``label``; empty when the attribute has its own text form);
    ``print_after`` moves the field after another one in that text; ``sw``
    is the odp.validate.swkey field the kernel stores it in.
    """

    name: str
    kind: Kind
    fmt: str
    text: str
    show: str = ""
    sw: str | None = None
    print_after: str | None = None
