"""The generated constructors (keys._compile_init, Match's shape check) behave as the general code does."""

from __future__ import annotations

import enum
import ipaddress

import pytest

from odp.errors import FieldError
from odp.fields import Masked
from odp.keys import FIXED_ATTRS, EthType, FixedKeyAttr, InPort, Ipv4, KeyAttr, Match, Udp, UnknownKeyAttr


class _Proto(enum.IntEnum):
    UDP = 17


#: Values of every sort a caller may give a field: None, ints in and out of
#: range (also bool and an IntEnum, which take the general path), (value, mask)
#: pairs, text, bytes, Masked, ipaddress objects, junk.
_VALUES: list[object] = [
    None, 0, 1, 255, 256, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32, (1 << 128) - 1, 1 << 128, -1, True, _Proto.UDP,
    (1, 0xFF), (0, 0), (1 << 40, 1), (1, -1), ("1", 3), (True, 1), "7", "10.0.0.0/8", "aa:bb:cc:dd:ee:ff", "x",
    b"\x01\x02", b"\x00" * 4, b"\x00" * 6, Masked(3, 7), Masked(1 << 70, 1), ipaddress.IPv4Network("10.0.0.0/8"),
    1.5, [1], (1, 2, 3),
]  # fmt: skip


def _general(cls: type[FixedKeyAttr], *args: object, **kwargs: object) -> object:
    """What FixedKeyAttr.__init__ (the general path) builds, or the error it raises."""
    obj = cls.__new__(cls)
    try:
        FixedKeyAttr.__init__(obj, *args, **kwargs)
    except FieldError as exc:
        return ("error", str(exc))
    return ("ok", tuple((m.value, m.mask) for m in (getattr(obj, s.name) for s in cls.FIELDS)))


def _generated(cls: type[FixedKeyAttr], *args: object, **kwargs: object) -> object:
    try:
        obj = cls(*args, **kwargs)
    except FieldError as exc:
        return ("error", str(exc))
    return ("ok", tuple((m.value, m.mask) for m in (getattr(obj, s.name) for s in cls.FIELDS)))


@pytest.mark.parametrize("cls", sorted(FIXED_ATTRS.values(), key=lambda c: c.NAME), ids=lambda c: c.NAME)
def test_generated_init_matches_the_general_one(cls: type[FixedKeyAttr]) -> None:
    assert cls.__init__ is not FixedKeyAttr.__init__
    first = cls.FIELDS[0].name
    last = cls.FIELDS[-1].name
    for value in _VALUES:
        assert _generated(cls, value) == _general(cls, value), (cls.NAME, value)
        assert _generated(cls, **{first: value}) == _general(cls, **{first: value}), (cls.NAME, value)
        assert _generated(cls, **{last: value}) == _general(cls, **{last: value}), (cls.NAME, value)
    n = len(cls.FIELDS)
    for args, kwargs in [
        ((1,) * n, {}),
        ((1,) * (n + 1), {}),
        ((1,), {first: 2}),
        ((), {"bogus": 1, "another": 2}),
        ((), {first: 1, "zz": 2}),
        ((None,) * n, {}),
    ]:
        assert _generated(cls, *args, **kwargs) == _general(cls, *args, **kwargs), (cls.NAME, args, kwargs)


def test_small_exact_values_are_shared_and_equal() -> None:
    assert InPort(1).port is InPort(1).port
    assert Ipv4(proto=17).proto == Masked(17, 0xFF)
    assert Udp(dst=53) == Udp(dst=(53, 0xFFFF))
    assert EthType(0x0800).value == Masked(0x0800, 0xFFFF)


def test_match_of_a_known_shape_still_refuses_duplicates_and_non_attributes() -> None:
    Match(InPort(1), EthType(0x0800))  # the shape is now known
    with pytest.raises(FieldError, match="duplicate attribute in_port"):
        Match(InPort(1), InPort(2))
    with pytest.raises(FieldError, match="is not a flow key attribute"):
        Match(InPort(1), 3)  # type: ignore[arg-type]
    # UnknownKeyAttr's TYPE is per instance: its shapes are never remembered.
    a, b = UnknownKeyAttr(100, b"\x01"), UnknownKeyAttr(100, b"\x02")
    assert isinstance(a, KeyAttr)
    Match(a, UnknownKeyAttr(101, b""))
    with pytest.raises(FieldError, match="duplicate attribute"):
        Match(a, b)
