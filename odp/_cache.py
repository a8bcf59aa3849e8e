"""The two small caches the hot paths share.

- :class:`ComputeCache`: a dict that computes a missing value and stays
  bounded; a hit is a plain C dict lookup.
- :func:`last_by_identity`: a function that remembers its last argument
  (compared with ``is``) and result.  Installing a flow validates its match,
  then its actions against the same match object, then converts that match:
  each step meets the same immutable objects the step before just saw.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

__all__ = ["ComputeCache", "last_by_identity"]

K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")
R = TypeVar("R")


class ComputeCache(dict[K, V]):
    """``cache[key]`` is ``compute(key)``, computed once; at ``maxsize`` entries
    the cache starts over (the working sets are small: attribute classes, match
    shapes, key layouts).  A computation that raises stores nothing."""

    __slots__ = ("compute", "maxsize")

    def __init__(self, compute: Callable[[K], V], maxsize: int) -> None:
        super().__init__()
        self.compute = compute
        self.maxsize = maxsize

    def __missing__(self, key: K) -> V:
        value = self.compute(key)
        if len(self) >= self.maxsize:
            self.clear()
        self[key] = value
        return value


_NOTHING = object()


def last_by_identity(fn: Callable[[A], R]) -> Callable[[A], R]:
    """``fn`` remembering its last argument (by identity) and result.

    For pure functions of immutable values.  The argument is held, so its id
    cannot be reused by another object while it is remembered; the pair is
    replaced in one assignment, so a thread never sees one call's argument
    with another's result.
    """
    last: list[tuple[object, object]] = [(_NOTHING, None)]

    @functools.wraps(fn)
    def remembering(arg: A) -> R:
        seen, result = last[0]
        if seen is arg:
            return result  # type: ignore[return-value]
        value = fn(arg)
        last[0] = (arg, value)
        return value

    return remembering
