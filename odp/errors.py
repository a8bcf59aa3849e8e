"""One exception hierarchy for every part of odp and both backends.

Every error a caller can provoke with bad input or a refused request is an
``OdpError``; catching that one class is enough for a command-line tool.  The
subclasses say *what kind* of refusal it was, mirroring the errno values the
kernel answers with, so code written against the simulator handles the kernel
backend's errors unchanged.
"""

from __future__ import annotations

import errno as _errno


class OdpError(Exception):
    """Base class of every error odp raises on purpose."""

    #: The errno the kernel would answer with, where one applies.
    errno: int | None = None


class FieldError(OdpError, ValueError):
    """A Python value given for a flow field cannot be represented.

    Raised when building model objects directly (``Ipv4(src="10.0.0.300")``).
    """


class ParseError(OdpError, ValueError):
    """ODP flow text could not be parsed.

    ``position`` is the 0-based offset in ``text`` where parsing failed and
    ``expected`` says what would have been acceptable there.
    """

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        snippet = text[position : position + 20]
        where = f"at position {position}" + (f" ({snippet!r})" if snippet else " (end of text)")
        super().__init__(f"{where}: expected {expected}")


class DecodeError(OdpError, ValueError):
    """Netlink attribute bytes are malformed (truncated, bad length, bad nesting)."""


class InvalidArgument(OdpError):
    """The kernel would refuse the request as invalid (EINVAL)."""

    errno = _errno.EINVAL


class InvalidFlow(InvalidArgument):
    """A flow key, mask or action list breaks one of the kernel's rules (EINVAL).

    ``rule`` is a short stable identifier of the rule (for programs), ``field``
    names the attribute or field at fault, and the message explains it in words.
    """

    def __init__(self, message: str, *, rule: str = "invalid", field: str | None = None) -> None:
        self.rule = rule
        self.field = field
        super().__init__(message)


class ExistsError(OdpError):
    """The object already exists (EEXIST)."""

    errno = _errno.EEXIST


class NotFoundError(OdpError, LookupError):
    """No such datapath, vport or flow (ENOENT / ENODEV)."""

    errno = _errno.ENOENT


class NotSupported(OdpError):
    """The backend or the running kernel does not support this (EOPNOTSUPP)."""

    errno = _errno.EOPNOTSUPP


class PermissionDenied(OdpError, PermissionError):
    """The caller lacks CAP_NET_ADMIN (EPERM)."""

    errno = _errno.EPERM


class ModuleNotLoaded(NotSupported):
    """The openvswitch kernel module is not loaded and could not be autoloaded."""


class BackendError(OdpError):
    """Any other errno the kernel answered with."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        self.errno = errno
        super().__init__(message)
