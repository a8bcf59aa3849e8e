"""Netlink sockets and the request/reply machinery of the kernel backend.

This module knows netlink (``nlmsghdr``, ACKs, multi-part dumps, sequence
numbers, extended ACKs) and generic netlink (``genlmsghdr``) but nothing of
openvswitch: the ovs payloads (``ovs_header`` plus attributes) are built and
parsed by :mod:`odp.netlink.messages`.

- :class:`Transport` is what a :class:`Channel` talks through: the real
  :class:`NetlinkSocket` (``AF_NETLINK``/``NETLINK_GENERIC``), or a fake one in
  the unit tests, which then see exactly the bytes that would go to the kernel.
- :class:`Channel` sends requests and collects their replies: :meth:`Channel.request`
  (one request, its replies, its ACK), :meth:`Channel.dump` (a whole multi-part
  dump, restarted when the kernel flags it ``NLM_F_DUMP_INTR``) and
  :meth:`Channel.batch` (many requests per ``sendmsg``, one ACK each).

Errors come back as :class:`NetlinkError` (errno plus the kernel's extended
ACK message when there is one); the backend turns them into :mod:`odp.errors`.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
import struct
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, Protocol

from odp.errors import BackendError
from odp.netlink.messages import (
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_MIN_TYPE,
    NLMSGERR_ATTR_MSG,
    Message,
    build_request,
    parse_messages,
)

__all__ = [
    "Channel",
    "DumpWalk",
    "NetlinkError",
    "NetlinkSocket",
    "Transport",
    "dump_messages",
    "iter_messages",
    "keep_datagram",
    "parse_error",
]

# <linux/netlink.h>
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_NO_ENOBUFS = 5
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_HDR = struct.Struct("=IHHII")
_ERR = struct.Struct("=i")
_NLA = struct.Struct("=HH")

#: Receive buffer for one datagram: dumps come in skbs of at most 32 KiB, an
#: upcall carries up to a 64 KiB (GSO) packet plus its key.
RECV_BUFFER = 1 << 18
#: Socket buffer sizes asked for (SO_*BUFFORCE as root, else capped by sysctl).
SOCKET_BUFFER = 4 << 20
#: How many times a dump interrupted by a concurrent change is restarted.
DUMP_RETRIES = 8
#: Safety net: a reply the kernel owes that has not come after this long is an error.
REPLY_TIMEOUT = 60.0


class NetlinkError(Exception):
    """The kernel answered a request with an error (an NLMSG_ERROR with errno != 0).

    ``message`` is the extended ACK text (``NLMSGERR_ATTR_MSG``) when the kernel
    gave one; ``index`` is the position of the failing request in a batch.
    """

    def __init__(self, errno: int, message: str | None = None, index: int | None = None) -> None:
        self.errno = errno
        self.message = message
        self.index = index
        super().__init__(errno, message)

    def __str__(self) -> str:
        name = "EOPNOTSUPP" if self.errno == _errno.EOPNOTSUPP else _errno.errorcode.get(self.errno, "errno")
        text = f"{name} {self.errno}: {os.strerror(self.errno)}"
        return f"{text}; kernel says: {self.message}" if self.message else text


def iter_messages(data: bytes) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Walk the netlink messages of a datagram: ``(type, flags, seq, pid, start, end)``.

    ``start:end`` is the message body (after the nlmsghdr).  A truncated or
    malformed datagram raises :class:`~odp.errors.BackendError`.
    """
    off = 0
    n = len(data)
    unpack = NLMSG_HDR.unpack_from
    while off + NLMSG_HDR.size <= n:
        length, type_, flags, seq, pid = unpack(data, off)
        if length < NLMSG_HDR.size or off + length > n:
            raise BackendError(
                f"malformed netlink datagram: message at offset {off} claims {length} bytes of {n - off}"
            )
        yield type_, flags, seq, pid, off + NLMSG_HDR.size, off + length
        off += (length + 3) & ~3


def parse_error(body: bytes, flags: int) -> tuple[int, str | None]:
    """The errno (positive, 0 for an ACK) and extended ACK message of an NLMSG_ERROR body."""
    if len(body) < 4:
        raise BackendError("malformed netlink error message (shorter than 4 bytes)")
    (err,) = _ERR.unpack_from(body, 0)
    message: str | None = None
    if flags & NLM_F_ACK_TLVS and len(body) >= 4 + NLMSG_HDR.size:
        if flags & NLM_F_CAPPED:
            off = 4 + NLMSG_HDR.size
        else:
            (orig_len,) = struct.unpack_from("=I", body, 4)
            off = 4 + ((orig_len + 3) & ~3)
        while off + 4 <= len(body):
            alen, atype = _NLA.unpack_from(body, off)
            if alen < 4 or off + alen > len(body):
                break
            if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
                message = body[off + 4 : off + alen].split(b"\0", 1)[0].decode("utf-8", "replace") or None
            off += (alen + 3) & ~3
    return -err, message


# ---------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------


class Transport(Protocol):
    """A datagram channel to the kernel's generic netlink (or a fake of it)."""

    @property
    def port_id(self) -> int:
        """The netlink port id (``nl_pid``) the kernel assigned to this socket."""

    def send(self, data: bytes) -> None:
        """Send one datagram (which may hold many messages)."""

    def recv(self, timeout: float | None) -> bytes | None:
        """One datagram, waiting up to ``timeout`` seconds (None: forever); None on timeout.

        Raises ``OSError(ENOBUFS)`` when the kernel dropped messages for this socket.
        """

    def fileno(self) -> int: ...

    def add_membership(self, group: int) -> None: ...

    def close(self) -> None: ...


class NetlinkSocket:
    """A real ``AF_NETLINK``/``NETLINK_GENERIC`` socket.

    Bound to a kernel-assigned port id, with extended ACKs on and capped ACKs
    (an ACK does not echo the whole request back), and large buffers.
    """

    def __init__(self, *, rcvbuf: int = SOCKET_BUFFER, sndbuf: int = SOCKET_BUFFER, no_enobufs: bool = False) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_GENERIC)
        try:
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                with contextlib.suppress(OSError):  # older kernels: plain ACKs
                    sock.setsockopt(SOL_NETLINK, opt, 1)
            if no_enobufs:
                sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            _set_buffer(sock, socket.SO_RCVBUF, 33, rcvbuf)  # 33 = SO_RCVBUFFORCE
            _set_buffer(sock, socket.SO_SNDBUF, 32, sndbuf)  # 32 = SO_SNDBUFFORCE
            sock.bind((0, 0))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._port_id = int(sock.getsockname()[0])
        self._buf = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buf)
        self._timeout: float | None = -1.0

    @property
    def port_id(self) -> int:
        return self._port_id

    @property
    def rcvbuf(self) -> int:
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def send(self, data: bytes) -> None:
        self._settimeout(REPLY_TIMEOUT)
        self._sock.sendto(data, (0, 0))

    def recv(self, timeout: float | None) -> bytes | None:
        self._settimeout(None if timeout is None else max(timeout, 0.0))
        try:
            n, _, flags, _ = self._sock.recvmsg_into([self._view])
        except (TimeoutError, BlockingIOError):
            return None
        if flags & socket.MSG_TRUNC:
            raise BackendError(f"netlink datagram larger than the {len(self._buf)}-byte receive buffer was truncated")
        return bytes(self._view[:n])

    def _settimeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout

    def fileno(self) -> int:
        return self._sock.fileno()

    def add_membership(self, group: int) -> None:
        self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def close(self) -> None:
        self._sock.close()


def _set_buffer(sock: socket.socket, opt: int, force_opt: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force_opt, size)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, size)


# ---------------------------------------------------------------------------
# Requests and replies
# ---------------------------------------------------------------------------


class DumpInterrupted(Exception):
    """Internal: a dump saw NLM_F_DUMP_INTR and must be restarted."""


#: ``walk(datagram, seq, family, out) -> (last, interrupted)``: how :meth:`Channel.dump`
#: consumes each datagram of a dump as it arrives.  It adds what the datagram
#: holds for the dump's request ``seq`` to ``out``, and returns the offset of the
#: message that ends the dump (NLMSG_DONE or NLMSG_ERROR of ``seq``; -1 if the
#: dump goes on) and whether a message of ``seq`` carried NLM_F_DUMP_INTR.
#: :func:`odp.netlink.messages.walk_flow_dump` decodes flows this way.
DumpWalk = Callable[[bytes, int, int, list[Any]], tuple[int, bool]]


def keep_datagram(data: bytes, seq: int, family: int, out: list[Any]) -> tuple[int, bool]:
    """The default :data:`DumpWalk`: keep each datagram that holds messages of the dump."""
    interrupted = mine = False
    for type_, mflags, mseq, _pid, start, _end in iter_messages(data):
        if mseq != seq:
            continue
        mine = True
        if mflags & NLM_F_DUMP_INTR:
            interrupted = True
        if type_ in (NLMSG_DONE, NLMSG_ERROR):
            out.append(data)
            return start - NLMSG_HDR.size, interrupted
    if mine:
        out.append(data)
    return -1, interrupted


Attrs = Iterable[tuple[int, bytes]]


class Channel:
    """Requests over one transport: sequence numbers, ACKs, dumps, batches.

    A channel is used by one caller at a time (the backend is not thread-safe;
    use one backend per thread).  Messages that do not belong to the request in
    progress (stale replies of an abandoned request) are discarded.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._seq = 0

    @property
    def port_id(self) -> int:
        return self.transport.port_id

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    # -- one request -------------------------------------------------------------
    def request(
        self, family: int, cmd: int, version: int, dp_ifindex: int, attrs: Attrs, flags: int = 0
    ) -> list[Message]:
        """Send one request (with NLM_F_ACK) and return its reply messages.

        Raises :class:`NetlinkError` when the kernel answers with an error.
        """
        seq = self.next_seq()
        self.transport.send(
            build_request(family, cmd, version, NLM_F_REQUEST | NLM_F_ACK | flags, seq, dp_ifindex, attrs)
        )
        replies: list[Message] = []
        while True:
            for msg in parse_messages(self._recv()):
                if msg.seq != seq:
                    continue
                if msg.type == NLMSG_ERROR or msg.done:
                    if msg.error:
                        raise NetlinkError(-msg.error, msg.extack)
                    return replies
                if msg.type >= NLMSG_MIN_TYPE:
                    replies.append(msg)

    # -- dumps -------------------------------------------------------------------
    def dump(
        self,
        family: int,
        cmd: int,
        version: int,
        dp_ifindex: int,
        attrs: Attrs,
        walk: DumpWalk | None = None,
    ) -> list[Any]:
        """A whole multi-part dump (NLM_F_DUMP), complete (NLMSG_DONE seen) when this returns.

        Each datagram is handed to ``walk`` as it arrives (see :data:`DumpWalk`),
        which adds what it holds to the list returned; the default keeps the
        datagrams themselves, to be parsed with :func:`dump_messages`.  When the
        kernel flags the dump interrupted (NLM_F_DUMP_INTR) it is restarted
        with a fresh list.
        """
        request_attrs = list(attrs)
        for _ in range(DUMP_RETRIES):
            try:
                return self._dump_once(family, cmd, version, dp_ifindex, request_attrs, walk or keep_datagram)
            except DumpInterrupted:
                continue
        raise BackendError(
            f"a netlink dump was interrupted by concurrent changes {DUMP_RETRIES} times in a row; giving up"
        )

    def _dump_once(
        self, family: int, cmd: int, version: int, dp_ifindex: int, attrs: list[tuple[int, bytes]], walk: DumpWalk
    ) -> list[Any]:
        seq = self.next_seq()
        self.transport.send(build_request(family, cmd, version, NLM_F_REQUEST | NLM_F_DUMP, seq, dp_ifindex, attrs))
        out: list[Any] = []
        interrupted = False
        while True:
            data = self._recv()
            last, intr = walk(data, seq, family, out)
            interrupted |= intr
            if last >= 0:
                _type, mflags, _seq, _pid, start, end = next(iter_messages(data[last:]))
                err, text = parse_error(data[last + start : last + end], mflags)
                if err:
                    raise NetlinkError(err, text)
                if interrupted:
                    raise DumpInterrupted
                return out

    # -- batches -----------------------------------------------------------------
    def batch(
        self,
        family: int,
        cmd: int,
        version: int,
        dp_ifindex: int,
        requests: Iterable[Attrs],
        flags: int = 0,
        *,
        max_messages: int = 256,
        max_bytes: int = 1 << 18,
    ) -> Generator[list[tuple[int, NetlinkError | None]], None, None]:
        """Send many requests, several per ``sendmsg``, each with NLM_F_ACK.

        Yields, chunk by chunk, the list of ``(index, error or None)`` of the
        chunk's requests in order: a chunk of at most ``max_messages`` requests
        and ``max_bytes`` bytes is sent and all of its ACKs collected before the
        next chunk goes out (so the ACKs never overflow the socket's receive
        buffer, and a caller that stops iterating sends nothing more).
        """
        base = NLM_F_REQUEST | NLM_F_ACK | flags
        chunk: list[bytes] = []
        seqs: list[int] = []
        size = 0
        index = 0
        for attrs in requests:
            seq = self.next_seq()
            msg = build_request(family, cmd, version, base, seq, dp_ifindex, attrs)
            if chunk and (len(chunk) >= max_messages or size + len(msg) > max_bytes):
                yield self._flush_batch(chunk, seqs, index - len(chunk))
                chunk, seqs, size = [], [], 0
            chunk.append(msg)
            seqs.append(seq)
            size += len(msg)
            index += 1
        if chunk:
            yield self._flush_batch(chunk, seqs, index - len(chunk))

    def _flush_batch(
        self, chunk: Sequence[bytes], seqs: Sequence[int], first: int
    ) -> list[tuple[int, NetlinkError | None]]:
        self.transport.send(b"".join(chunk))
        position = {seq: first + i for i, seq in enumerate(seqs)}
        results: dict[int, NetlinkError | None] = {}
        while len(results) < len(seqs):
            data = self._recv()
            for type_, mflags, mseq, _pid, start, end in iter_messages(data):
                if type_ != NLMSG_ERROR:
                    continue  # an echo or notification: batches do not ask for replies
                idx = position.get(mseq)
                if idx is None:
                    continue
                err, text = parse_error(data[start:end], mflags)
                results[idx] = NetlinkError(err, text, idx) if err else None
        return [(i, results[i]) for i in range(first, first + len(seqs))]

    # -- plumbing ----------------------------------------------------------------
    def _recv(self) -> bytes:
        try:
            data = self.transport.recv(REPLY_TIMEOUT)
        except OSError as exc:
            if exc.errno == _errno.ENOBUFS:
                raise NetlinkError(_errno.ENOBUFS, "replies were lost: the socket receive buffer overflowed") from None
            raise
        if data is None:
            raise BackendError(f"the kernel did not answer a netlink request within {REPLY_TIMEOUT:.0f} s")
        return data

    def close(self) -> None:
        self.transport.close()


def dump_messages(datagrams: Iterable[bytes], family: int) -> Iterator[Message]:
    """The ``family`` messages of a dump's datagrams (DONE and strays skipped)."""
    for data in datagrams:
        for msg in parse_messages(data):
            if msg.type == family:
                yield msg
