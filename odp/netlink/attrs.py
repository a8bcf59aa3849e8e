"""Generic netlink attribute helpers (pure functions, no sockets).

A netlink attribute is ``struct nlattr {u16 nla_len; u16 nla_type}`` in host
byte order followed by the payload; ``nla_len`` counts the 4-byte header and
the payload but not the padding that aligns the next attribute to 4 bytes.
The two top bits of ``nla_type`` are flags (``NLA_F_NESTED``,
``NLA_F_NET_BYTEORDER``); the openvswitch module parses its attributes in
legacy mode, so ``NLA_F_NESTED`` is optional and odp does not set it unless
asked.

Packing:

- :func:`pack_attr` (one attribute: header, payload, zero padding) and the
  typed shortcuts :func:`attr_u8`, :func:`attr_u16`, :func:`attr_u32`,
  :func:`attr_u64`, :func:`attr_be16`, :func:`attr_be32`, :func:`attr_be64`,
  :func:`attr_flag`, :func:`attr_string` (NUL terminated), :func:`attr_nested`.

Parsing (every problem raises :class:`~odp.errors.DecodeError`, never
``IndexError`` or ``struct.error``):

- :func:`iter_attrs` / :func:`attr_list` walk a buffer of attributes and yield
  ``(type, payload)`` with the flag bits stripped from the type;
- :func:`get_u8`, :func:`get_u16`, :func:`get_u32`, :func:`get_u64`,
  :func:`get_be16`, :func:`get_be32`, :func:`get_be64`, :func:`get_s32`,
  :func:`get_flag`, :func:`get_string` check the payload length exactly and
  name the attribute in the error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import TypeAlias

from odp.errors import DecodeError, FieldError

__all__ = [
    "NLA_ALIGNTO",
    "NLA_F_NESTED",
    "NLA_F_NET_BYTEORDER",
    "NLA_HDRLEN",
    "NLA_TYPE_MASK",
    "BytesLike",
    "align4",
    "as_bytes",
    "attr_be16",
    "attr_be32",
    "attr_be64",
    "attr_flag",
    "attr_list",
    "attr_nested",
    "attr_string",
    "attr_u8",
    "attr_u16",
    "attr_u32",
    "attr_u64",
    "get_be16",
    "get_be32",
    "get_be64",
    "get_flag",
    "get_s32",
    "get_string",
    "get_u8",
    "get_u16",
    "get_u32",
    "get_u64",
    "iter_attrs",
    "pack_attr",
]

NLA_HDRLEN = 4
NLA_ALIGNTO = 4
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF
_MAX_LEN = 0xFFFF

_HDR = struct.Struct("=HH")

#: What the public decoders accept: any bytes-like buffer (a ``recv_into`` bytearray, a memoryview slice).
BytesLike: TypeAlias = bytes | bytearray | memoryview


def as_bytes(data: BytesLike) -> bytes:
    """``data`` as ``bytes``, copied only when it is not already.

    The decoders hash their input (caches), slice it into the values they
    return (userdata, UFIDs) and compare it with ``bytes``: bytearray and
    memoryview differ there (unhashable, mutable, views), so public entry
    points take any buffer and work on bytes.
    """
    return data if type(data) is bytes else bytes(data)


_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by len(payload) & 3

_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")
_U64 = struct.Struct("=Q")
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_BE64 = struct.Struct("!Q")


def align4(n: int) -> int:
    """``n`` rounded up to the netlink alignment (4 bytes)."""
    return (n + 3) & ~3


# ---------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------


def pack_attr(type_: int, payload: bytes = b"", nested: bool = False) -> bytes:
    """One attribute: header, ``payload`` and zero padding to 4 bytes.

    ``nested=True`` sets ``NLA_F_NESTED`` in the type (optional for the ovs
    families).  Raises :class:`~odp.errors.FieldError` when the payload does
    not fit in a netlink attribute (more than 65531 bytes) or the type is out
    of range.
    """
    length = len(payload) + 4
    if length > _MAX_LEN:
        raise FieldError(f"netlink attribute type {type_}: payload of {len(payload)} bytes is too long (max 65531)")
    if not 0 <= type_ <= NLA_TYPE_MASK:
        raise FieldError(f"netlink attribute type {type_} is out of range 0..{NLA_TYPE_MASK}")
    return _HDR.pack(length, type_ | NLA_F_NESTED if nested else type_) + payload + _PAD[length & 3]


def attr_nested(type_: int, attrs: Iterable[bytes], nested: bool = False) -> bytes:
    """A nested attribute whose payload is the concatenation of packed ``attrs``."""
    return pack_attr(type_, b"".join(attrs), nested)


def attr_flag(type_: int) -> bytes:
    """A flag attribute (no payload)."""
    return pack_attr(type_)


def attr_u8(type_: int, value: int) -> bytes:
    return pack_attr(type_, _U8.pack(value))


def attr_u16(type_: int, value: int) -> bytes:
    """Host byte order u16."""
    return pack_attr(type_, _U16.pack(value))


def attr_u32(type_: int, value: int) -> bytes:
    """Host byte order u32."""
    return pack_attr(type_, _U32.pack(value))


def attr_u64(type_: int, value: int) -> bytes:
    """Host byte order u64."""
    return pack_attr(type_, _U64.pack(value))


def attr_be16(type_: int, value: int) -> bytes:
    return pack_attr(type_, _BE16.pack(value))


def attr_be32(type_: int, value: int) -> bytes:
    return pack_attr(type_, _BE32.pack(value))


def attr_be64(type_: int, value: int) -> bytes:
    return pack_attr(type_, _BE64.pack(value))


def attr_string(type_: int, value: str) -> bytes:
    """A NUL-terminated string (undecodable bytes kept with ``surrogateescape``)."""
    return pack_attr(type_, value.encode("utf-8", "surrogateescape") + b"\0")


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def iter_attrs(data: BytesLike, what: str = "attributes") -> Iterator[tuple[int, bytes]]:
    """Yield ``(type, payload)`` for each attribute in ``data``.

    The type has the ``NLA_F_*`` flag bits removed.  The padding after the last
    attribute may be missing.  ``what`` names the buffer in error messages.
    """
    data = as_bytes(data)
    n = len(data)
    off = 0
    unpack_from = _HDR.unpack_from
    while off < n:
        if n - off < 4:
            raise DecodeError(
                f"{what}: {n - off} trailing byte(s) at offset {off}, too short for an attribute header (4 bytes)"
            )
        length, type_ = unpack_from(data, off)
        if length < 4:
            raise DecodeError(f"{what}: attribute at offset {off} has nla_len {length}, less than its 4-byte header")
        end = off + length
        if end > n:
            raise DecodeError(
                f"{what}: attribute type {type_ & NLA_TYPE_MASK} at offset {off} has nla_len {length} "
                f"but only {n - off} byte(s) remain (truncated)"
            )
        yield type_ & NLA_TYPE_MASK, data[off + 4 : end]
        off = (end + 3) & ~3


def attr_list(data: BytesLike, what: str = "attributes") -> list[tuple[int, bytes]]:
    """Like :func:`iter_attrs` but returns a list (faster for small buffers)."""
    data = as_bytes(data)
    out: list[tuple[int, bytes]] = []
    append = out.append
    n = len(data)
    off = 0
    unpack_from = _HDR.unpack_from
    while off < n:
        if n - off < 4:
            raise DecodeError(
                f"{what}: {n - off} trailing byte(s) at offset {off}, too short for an attribute header (4 bytes)"
            )
        length, type_ = unpack_from(data, off)
        if length < 4:
            raise DecodeError(f"{what}: attribute at offset {off} has nla_len {length}, less than its 4-byte header")
        end = off + length
        if end > n:
            raise DecodeError(
                f"{what}: attribute type {type_ & NLA_TYPE_MASK} at offset {off} has nla_len {length} "
                f"but only {n - off} byte(s) remain (truncated)"
            )
        append((type_ & NLA_TYPE_MASK, data[off + 4 : end]))
        off = (end + 3) & ~3
    return out


def _bad_len(what: str, got: int, expected: int) -> DecodeError:
    return DecodeError(f"{what}: payload is {got} byte(s), expected {expected}")


def _unpack_exact(st: struct.Struct, payload: bytes, what: str) -> int:
    """The one integer of ``st`` in a payload that must be exactly its size."""
    if len(payload) != st.size:
        raise _bad_len(what, len(payload), st.size)
    return int(st.unpack(payload)[0])


def get_u8(payload: bytes, what: str) -> int:
    if len(payload) != 1:
        raise _bad_len(what, len(payload), 1)
    return payload[0]


def get_u16(payload: bytes, what: str) -> int:
    return _unpack_exact(_U16, payload, what)


def get_u32(payload: bytes, what: str) -> int:
    return _unpack_exact(_U32, payload, what)


def get_s32(payload: bytes, what: str) -> int:
    return _unpack_exact(_S32, payload, what)


def get_u64(payload: bytes, what: str) -> int:
    return _unpack_exact(_U64, payload, what)


def get_be16(payload: bytes, what: str) -> int:
    return _unpack_exact(_BE16, payload, what)


def get_be32(payload: bytes, what: str) -> int:
    return _unpack_exact(_BE32, payload, what)


def get_be64(payload: bytes, what: str) -> int:
    return _unpack_exact(_BE64, payload, what)


def get_flag(payload: bytes, what: str) -> bool:
    """A flag attribute must have an empty payload; returns True."""
    if payload:
        raise _bad_len(what, len(payload), 0)
    return True


def get_string(payload: bytes, what: str) -> str:
    """A (normally NUL-terminated) string: cut at the first NUL.

    Bytes that are not UTF-8 are kept with ``surrogateescape`` so that
    :func:`attr_string` gives them back unchanged.
    """
    nul = payload.find(b"\0")
    if nul >= 0:
        payload = payload[:nul]
    return payload.decode("utf-8", "surrogateescape")
