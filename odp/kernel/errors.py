"""Kernel errno values to odp's exceptions, with messages that name the object.

The backend catches :class:`~odp.kernel.netlink.NetlinkError` around each
request and calls :func:`translate` with what the request was about; the
mapping is the one both backends share (see :mod:`odp.errors`):

- ENOENT, ENODEV -> :class:`~odp.errors.NotFoundError`
- EEXIST (and EBUSY, EADDRINUSE: "taken") -> :class:`~odp.errors.ExistsError`
- EPERM, EACCES -> :class:`~odp.errors.PermissionDenied` (CAP_NET_ADMIN)
- EINVAL, ERANGE -> :class:`~odp.errors.InvalidFlow` (the backend explains
  flow EINVALs with :mod:`odp.validate` where it can)
- EOPNOTSUPP, EAFNOSUPPORT, EPROTONOSUPPORT -> :class:`~odp.errors.NotSupported`
- anything else -> :class:`~odp.errors.BackendError` carrying the errno
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Mapping

from odp.errors import (
    BackendError,
    ExistsError,
    InvalidFlow,
    NotFoundError,
    NotSupported,
    OdpError,
    PermissionDenied,
)
from odp.kernel.netlink import NetlinkError

__all__ = ["NEEDS_ROOT", "errno_name", "translate"]

NEEDS_ROOT = "this needs CAP_NET_ADMIN (run as root)"

NOT_FOUND = frozenset({_errno.ENOENT, _errno.ENODEV})
EXISTS = frozenset({_errno.EEXIST, _errno.EBUSY, _errno.EADDRINUSE})
PERMISSION = frozenset({_errno.EPERM, _errno.EACCES})
INVALID = frozenset({_errno.EINVAL, _errno.ERANGE})
UNSUPPORTED = frozenset({_errno.EOPNOTSUPP, _errno.EAFNOSUPPORT, _errno.EPROTONOSUPPORT})


def errno_name(code: int) -> str:
    if code == _errno.EOPNOTSUPP:
        return "EOPNOTSUPP"  # not its alias ENOTSUP
    return _errno.errorcode.get(code, f"errno {code}")


def _detail(exc: NetlinkError) -> str:
    text = f"{errno_name(exc.errno)}: {os.strerror(exc.errno)}"
    if exc.message:
        text += f"; kernel says: {exc.message}"
    return text


def translate(
    exc: NetlinkError,
    action: str,
    *,
    messages: Mapping[int, str] | None = None,
    rule: str = "kernel-einval",
) -> OdpError:
    """The odp exception for a failed request.

    ``action`` says what was attempted, naming the object ("creating datapath
    'dp0'"); ``messages`` overrides the message for particular errno values
    (the errno and any extended-ACK text are appended).
    """
    code = exc.errno
    custom = (messages or {}).get(code)
    detail = _detail(exc)
    text = f"{action}: {custom} ({detail})" if custom else f"{action}: {detail}"
    err: OdpError
    if code in NOT_FOUND:
        err = NotFoundError(text)
    elif code in EXISTS:
        err = ExistsError(text)
    elif code in PERMISSION:
        err = PermissionDenied(f"{action}: permission denied, {NEEDS_ROOT}")
    elif code in INVALID:
        err = InvalidFlow(text, rule=rule)
    elif code in UNSUPPORTED:
        err = NotSupported(text)
    else:
        return BackendError(text, code)
    err.errno = code
    return err
