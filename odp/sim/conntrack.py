"""Connection tracking for ``ct()``: net/openvswitch/conntrack.c over netfilter (Linux 6.1).

One :class:`ConntrackTable` per host, as the kernel has one conntrack table
per network namespace (every datapath of the host shares it).  Connections
are keyed by zone and tuple - addresses, protocol and ports (TCP/UDP), ICMP
id, type and code (echo-like ICMP), or addresses and protocol alone (any
other protocol, netfilter's generic tracker) - in both directions, the reply
tuple being the inverse of the original one.

:meth:`ConntrackTable.execute` is ``ovs_ct_execute()``: it runs
``nf_conntrack_in()`` (``__ovs_ct_lookup()``), commits with ``commit``
(``ovs_ct_commit()``: mark and labels, then ``nf_conntrack_confirm()``), and
fills the flow key as ``ovs_ct_update_key()`` does.  The kernel attaches the
connection to the skb (``skb->_nfct``) so that a later ``ct()`` in the same
zone, after recirculation, does not run the packet through conntrack again;
the simulator finds that connection the way the kernel does for a packet
that lost its ``_nfct`` in an upcall (``ovs_ct_executed()``: the key says
+trk, not +inv, same zone, and the packet's tuple is in the table).  An
unconfirmed connection is never in the table, so a packet whose first
``ct()`` had no ``commit`` is looked up afresh by a later ``ct(commit)``:
netfilter reaches the same new connection from the same packet, so the
result is the kernel's.

Protocol trackers (``nf_conntrack_proto_*.c``):

* TCP: ``tcp_error()`` (header length, ``tcp_valid_flags``), ``tcp_new()``
  (only a SYN starts a connection; ``nf_conntrack_tcp_loose`` is 1, so
  other packets pick one up mid-stream) and ``nf_conntrack_tcp_packet()``
  with the ``tcp_conntracks`` table, the ignore cases, reopening from
  TIME_WAIT/CLOSE, simultaneous open, RST handling and the per-state
  timeouts (retransmissions of an ACK counted as ``tcp_in_window()`` counts
  them).  **Limitation**: the sequence/window checks of ``tcp_in_window()``
  are not transcribed: a segment outside the window is accepted where the
  kernel marks it +inv before the connection is established (once it is,
  OVS makes the kernel liberal too: ``nf_ct_set_tcp_be_liberal()``), and
  the UNACK timeout for unacknowledged data is not applied.
* UDP: 30 s unreplied, 120 s once replied and still active after 2 s.
* ICMP/ICMPv6: echo (and timestamp/info/address-mask, node information)
  requests start connections, 30 s; errors (destination unreachable, time
  exceeded ...) are +rel to the connection of the header they carry;
  other types are +inv (ND and MLD are untracked: +inv too, in OVS's key).
* Anything else: the generic tracker (addresses and protocol), 600 s.

**Limitations** (besides the window checks): L4 checksums are not
verified (netfilter marks a packet with a bad TCP/UDP/ICMP checksum +inv
when it arrives on a device that did not check it); SCTP, DCCP, GRE and
UDP-Lite use the generic tracker; IP fragments are not reassembled
(``ct()`` holds a fragment as the kernel holds the first ones, but never
completes the packet).  NAT is :mod:`odp.sim.nat` (``ovs_ct_nat()``: once per
packet and zone, on a new connection only with ``commit``).  Helpers and
timeout policies are refused when a flow is installed
(:func:`check_ct_supported`); zone limits (``ovs_ct_limit``) do not exist.

Time is the host's millisecond clock (``Host.clock``); a connection expires
when the clock reaches its timeout and is then gone from lookups and
listings, as ``nf_ct_is_expired()`` makes it.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Callable, Iterator

import odp.validate.swkey as sk
from odp.actions import Actions, Ct
from odp.constants import CtState
from odp.errors import NotSupported
from odp.records import TCP_STATE_NAMES, ConntrackEntry, CtTuple
from odp.sim.ct_tuple import (
    _ICMP,
    _ICMPV6,
    _IPV4,
    _L3,
    _TCP,
    _UDP,
    _VLAN_TPID_BYTES,
    Tuple,
    _invert,
    _ipv6,
    _network_offset,
    _parse_l3,
    _pkt_to_tuple,
)
from odp.sim.nat import (
    IPS_DST_NAT,
    IPS_DST_NAT_DONE,
    IPS_NAT_MASK,
    IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
    MANIP_DST,
    MANIP_SRC,
    Nat44,
    Range,
    icmp_reply_translation,
    manip_pkt,
)

__all__ = ["Conn", "ConntrackTable", "check_ct_supported"]

# -- key fields ---------------------------------------------------------------
_GEO = sk.GEOMETRY


def _set(key: int, name: str, value: int) -> int:
    shift, width = _GEO[name]
    return (key & ~(((1 << width) - 1) << shift)) | (value << shift)


def _get(key: int, name: str) -> int:
    shift, width = _GEO[name]
    return (key >> shift) & ((1 << width) - 1)


_SH_ETH_TYPE = _GEO["eth_type"][0]
_SH_FRAG = _GEO["ip_frag"][0]
_SH_STATE = _GEO["ct_state"][0]
_SH_ZONE = _GEO["ct_zone"][0]
_SH_MARK = _GEO["ct_mark"][0]
_SH_LABELS = _GEO["ct_labels"][0]
_SH_ORIG_SRC = _GEO["ct_orig_src"][0]
_SH_ORIG_DST = _GEO["ct_orig_dst"][0]
_SH_ORIG_PROTO = _GEO["ct_orig_proto"][0]
_SH_ORIG_TP_SRC = _GEO["ct_orig_tp_src"][0]
_SH_ORIG_TP_DST = _GEO["ct_orig_tp_dst"][0]
_MARK_MASK = sk.field_mask("ct_mark")
#: eth_type IPv4, not a fragment, ct_state 0: what the fast path of execute() takes.
_FAST_MASK = sk.field_mask("eth_type") | sk.field_mask("ip_frag") | sk.field_mask("ct_state")
_FAST_KEY = 0x0800 << _GEO["eth_type"][0]
_UDP_HDR = struct.Struct("!HHH")
_LABELS_MASK = sk.field_mask("ct_labels")
_CT_CLEAR = sk.FULL
for _name in sk.NAMES:
    if _name.startswith("ct_"):
        _CT_CLEAR &= ~sk.field_mask(_name)
del _name

_TRK = int(CtState.TRACKED)
_NEW = int(CtState.NEW)
_EST = int(CtState.ESTABLISHED)
_REL = int(CtState.RELATED)
_RPL = int(CtState.REPLY_DIR)
_INV = int(CtState.INVALID)
_NAT_MASK = int(CtState.SRC_NAT | CtState.DST_NAT)


# enum ip_conntrack_info
IP_CT_ESTABLISHED, IP_CT_RELATED, IP_CT_NEW = 0, 1, 2
IP_CT_ESTABLISHED_REPLY, IP_CT_RELATED_REPLY = 3, 4
_ORIGINAL, _REPLY = 0, 1

_SECS = 1000  # the clock is in milliseconds
_MINS = 60 * _SECS
_DAYS = 24 * 60 * _MINS

# -- TCP (nf_conntrack_proto_tcp.c) ---------------------------------------------
(
    TCP_NONE,
    TCP_SYN_SENT,
    TCP_SYN_RECV,
    TCP_ESTABLISHED,
    TCP_FIN_WAIT,
    TCP_CLOSE_WAIT,
    TCP_LAST_ACK,
    TCP_TIME_WAIT,
    TCP_CLOSE,
    TCP_SYN_SENT2,
    TCP_MAX,
    TCP_IGNORE,
    TCP_RETRANS,
    TCP_UNACK,
) = range(14)

#: Names as /proc/net/nf_conntrack and conntrack(8) print them.

_TCP_TIMEOUTS = {
    TCP_NONE: 2 * _MINS,  # timeouts[0] is unused: same as SYN_SENT
    TCP_SYN_SENT: 2 * _MINS,
    TCP_SYN_RECV: 60 * _SECS,
    TCP_ESTABLISHED: 5 * _DAYS,
    TCP_FIN_WAIT: 2 * _MINS,
    TCP_CLOSE_WAIT: 60 * _SECS,
    TCP_LAST_ACK: 30 * _SECS,
    TCP_TIME_WAIT: 2 * _MINS,
    TCP_CLOSE: 10 * _SECS,
    TCP_SYN_SENT2: 2 * _MINS,
    TCP_RETRANS: 5 * _MINS,
    TCP_UNACK: 5 * _MINS,
}
_TCP_MAX_RETRANS = 3

_SYN_SET, _SYNACK_SET, _FIN_SET, _ACK_SET, _RST_SET, _NONE_SET = range(6)
_SNO, _SSS, _SSR, _SES, _SFW, _SCW = TCP_NONE, TCP_SYN_SENT, TCP_SYN_RECV, TCP_ESTABLISHED, TCP_FIN_WAIT, TCP_CLOSE_WAIT
_SLA, _STW, _SCL, _SS2, _SIV, _SIG = TCP_LAST_ACK, TCP_TIME_WAIT, TCP_CLOSE, TCP_SYN_SENT2, TCP_MAX, TCP_IGNORE

#: tcp_conntracks[dir][index][old state] -> new state.
tcp_conntracks: tuple[tuple[tuple[int, ...], ...], ...] = (
    (  # ORIGINAL;  sNO   sSS   sSR   sES   sFW   sCW   sLA   sTW   sCL   sS2
        (_SSS, _SSS, _SIG, _SIG, _SIG, _SIG, _SIG, _SSS, _SSS, _SS2),  # syn
        (_SIV, _SIV, _SSR, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SSR),  # synack
        (_SIV, _SIV, _SFW, _SFW, _SLA, _SLA, _SLA, _STW, _SCL, _SIV),  # fin
        (_SES, _SIV, _SES, _SES, _SCW, _SCW, _STW, _STW, _SCL, _SIV),  # ack
        (_SIV, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL),  # rst
        (_SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV),  # none
    ),
    (  # REPLY
        (_SIV, _SS2, _SIV, _SIV, _SIV, _SIV, _SIV, _SSS, _SIV, _SS2),  # syn
        (_SIV, _SSR, _SIG, _SIG, _SIG, _SIG, _SIG, _SIG, _SIG, _SSR),  # synack
        (_SIV, _SIV, _SFW, _SFW, _SLA, _SLA, _SLA, _STW, _SCL, _SIV),  # fin
        (_SIV, _SIG, _SSR, _SES, _SCW, _SCW, _STW, _STW, _SCL, _SIG),  # ack
        (_SIV, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL, _SCL),  # rst
        (_SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV, _SIV),  # none
    ),
)

_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
#: tcp_valid_flags: the combinations of FIN/SYN/RST/ACK/URG a packet may have.
tcp_valid_flags = frozenset(
    (_SYN, _SYN | _URG, _SYN | _ACK, _RST, _RST | _ACK, _FIN | _ACK, _FIN | _ACK | _URG, _ACK, _ACK | _URG)
)


def get_conntrack_index(flags: int) -> int:
    if flags & _RST:
        return _RST_SET
    if flags & _SYN:
        return _SYNACK_SET if flags & _ACK else _SYN_SET
    if flags & _FIN:
        return _FIN_SET
    if flags & _ACK:
        return _ACK_SET
    return _NONE_SET


# -- UDP, ICMP, generic -------------------------------------------------------------
UDP_CT_UNREPLIED = 30 * _SECS
UDP_CT_REPLIED = 120 * _SECS
_UDP_STREAM_DELAY = 2 * _SECS
ICMP_TIMEOUT = 30 * _SECS
ICMPV6_TIMEOUT = 30 * _SECS
GENERIC_TIMEOUT = 600 * _SECS

_ICMP_VALID_NEW = frozenset((8, 13, 15, 17))
_ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))  # icmp_is_err()
_NR_ICMP_TYPES = 18
_ICMPV6_VALID_NEW = frozenset((128, 139))
#: ICMPv6 types conntrack leaves untracked (noct_valid_new): MLD and ND.
_ICMPV6_NOCT = frozenset((130, 131, 132, 133, 134, 135, 136, 143))


class Conn:
    """One connection (``struct nf_conn``): both tuples, status, mark, labels, TCP state."""

    __slots__ = (
        "assured",
        "bits",
        "challenge_ack",
        "close_init",
        "confirmed",
        "family",
        "labels",
        "last_ack",
        "last_dir",
        "last_end",
        "last_index",
        "last_seq",
        "last_win",
        "mark",
        "orig",
        "reply",
        "retrans",
        "seen_reply",
        "simultaneous_open",
        "status",
        "tcp_state",
        "timeout",
        "udp_stream_ts",
        "zone",
    )

    def __init__(self, zone: int, family: int, orig: Tuple, reply: Tuple) -> None:
        self.zone = zone
        self.family = family
        self.orig = orig
        self.reply = reply
        self.confirmed = False
        self.seen_reply = False
        self.assured = False
        #: Absolute (ms) once confirmed; relative before, as the kernel keeps it.
        self.timeout = 0
        self.mark = 0
        self.labels = 0
        self.tcp_state = TCP_NONE
        self.last_index = _NONE_SET
        self.last_dir = _ORIGINAL
        self.last_seq = self.last_end = self.last_win = self.last_ack = 0
        self.retrans = 0
        self.close_init = [False, False]
        self.challenge_ack = False
        self.simultaneous_open = False
        #: IPS_* NAT bits (odp.sim.nat).
        self.status = 0
        #: The key bits of zone, mark, labels and original tuple (None: to compute).
        self.bits: int | None = None

    def key_bits(self) -> int:
        bits = self.bits
        if bits is None:
            src, dst, proto, a, b = self.orig
            if proto == (_ICMP if self.family == 4 else _ICMPV6):
                a, b = b >> 8, b & 0xFF  # __ovs_ct_update_key_orig_tp(): type and code
            bits = self.bits = (
                (self.zone << _SH_ZONE)
                | (self.mark << _SH_MARK)
                | (self.labels << _SH_LABELS)
                | (src << _SH_ORIG_SRC)
                | (dst << _SH_ORIG_DST)
                | (proto << _SH_ORIG_PROTO)
                | (a << _SH_ORIG_TP_SRC)
                | (b << _SH_ORIG_TP_DST)
            )
        return bits
        self.udp_stream_ts: int = 0

    @property
    def proto(self) -> int:
        return self.orig[2]

    def addr(self, value: int) -> str:
        return str(ipaddress.IPv4Address(value) if self.family == 4 else ipaddress.IPv6Address(value))

    def tuple_record(self, t: Tuple) -> CtTuple:
        src, dst, proto, a, b = t
        if proto == (_ICMP if self.family == 4 else _ICMPV6):
            return CtTuple(self.addr(src), self.addr(dst), proto, icmp_id=a, icmp_type=b >> 8, icmp_code=b & 0xFF)
        return CtTuple(self.addr(src), self.addr(dst), proto, a, b)

    def entry(self, now: int) -> ConntrackEntry:
        """What ctnetlink reports of the connection (timeout in whole seconds left)."""
        return ConntrackEntry(
            family=self.family,
            orig=self.tuple_record(self.orig),
            reply=self.tuple_record(self.reply),
            zone=self.zone,
            mark=self.mark,
            labels=self.labels,
            timeout=max(0, (self.timeout - now) // _SECS),
            tcp_state=TCP_STATE_NAMES[self.tcp_state] if self.proto == _TCP else None,
            seen_reply=self.seen_reply,
            assured=self.assured,
        )


def check_ct_supported(actions: Actions) -> None:
    """NotSupported for a ct() the simulator cannot run (checked at flow install)."""
    for a in actions.items:
        if type(a) is Ct:
            assert isinstance(a, Ct)
            if a.helper is not None:
                raise NotSupported(f"ct(helper={a.helper}): conntrack helpers are not supported by the simulator yet")
            if a.timeout is not None:
                raise NotSupported(
                    f"ct(timeout={a.timeout}): conntrack timeout policies are not supported by the simulator"
                )
            continue
        for value in getattr(a, "__slots__", ()):
            nested = getattr(a, value, None)
            if isinstance(nested, Actions):
                check_ct_supported(nested)


class ConntrackTable:
    """A network namespace's conntrack table (``net->ct``), shared by the host's datapaths."""

    __slots__ = ("by_tuple", "clock", "count", "nat")

    def __init__(self, clock: Callable[[], int], seed: int = 0) -> None:
        self.clock = clock
        #: NAT's state and its random choices (seeded: the simulator is deterministic).
        self.nat = Nat44(self, random.Random(seed))
        #: (zone, family, tuple) -> (connection, direction of that tuple).
        self.by_tuple: dict[tuple[int, int, Tuple], tuple[Conn, int]] = {}
        self.count = 0

    # -- the table --------------------------------------------------------------
    def find(self, zone: int, family: int, t: Tuple, now: int) -> tuple[Conn, int] | None:
        """nf_conntrack_find_get(): an expired connection is deleted, not found."""
        h = self.by_tuple.get((zone, family, t))
        if h is not None and h[0].timeout <= now:
            self.delete(h[0])
            return None
        return h

    def insert(self, ct: Conn, now: int) -> None:
        """nf_conntrack_confirm(): the timeout becomes absolute."""
        ct.confirmed = True
        ct.timeout += now
        self.by_tuple[(ct.zone, ct.family, ct.orig)] = (ct, _ORIGINAL)
        self.by_tuple[(ct.zone, ct.family, ct.reply)] = (ct, _REPLY)
        self.count += 1

    def delete(self, ct: Conn) -> None:
        if self.by_tuple.pop((ct.zone, ct.family, ct.orig), None) is not None:
            self.by_tuple.pop((ct.zone, ct.family, ct.reply), None)
            self.count -= 1

    def connections(self, zone: int | None = None) -> Iterator[Conn]:
        """The live connections (expired ones are removed), in insertion order."""
        now = self.clock()
        for ct, d in list(self.by_tuple.values()):
            if d != _ORIGINAL:
                continue
            if ct.timeout <= now:
                self.delete(ct)
            elif zone is None or ct.zone == zone:
                yield ct

    def flush(self, zone: int | None = None) -> None:
        for ct in list(self.connections(zone)):
            self.delete(ct)

    # -- ovs_ct_execute -----------------------------------------------------------
    def execute(self, frame: bytes, key: int, info: Ct) -> tuple[bytes, int] | None:
        """Run ``ct(...)`` on a packet: the (possibly trimmed, NATed) frame and
        the new key, or None when conntrack holds the packet (a fragment) or NAT
        drops it (an ICMP error it cannot translate)."""
        now = self.clock()
        zone = info.zone or 0
        if (key & _FAST_MASK) == _FAST_KEY and frame[12:14] == b"\x08\x00" and len(frame) >= 42:
            # Fast path: an untracked IPv4 UDP datagram of a confirmed connection,
            # without commit or NAT.  The same steps as below, inlined.
            vihl, tot, _frag, proto, src, dst = _IPV4.unpack_from(frame, 14)
            if (
                vihl == 0x45
                and proto == _UDP
                and 28 <= tot <= len(frame) - 14
                and not (info.commit or info.force_commit)
                and info.nat is None
            ):
                sport, dport, ulen = _UDP_HDR.unpack_from(frame, 34)
                h = self.by_tuple.get((zone, 4, (src, dst, _UDP, sport, dport)))
                if h is not None and h[0].timeout > now and 8 <= ulen <= tot - 20:
                    conn, direction = h
                    # nf_conntrack_udp_packet() on a confirmed connection (udp_update()).
                    seen_reply = conn.seen_reply
                    if seen_reply and now > conn.udp_stream_ts:
                        conn.timeout = now + UDP_CT_REPLIED
                        conn.assured = True
                    else:
                        conn.timeout = now + UDP_CT_UNREPLIED
                    if direction:
                        conn.seen_reply = True  # after the tracker, as nf_conntrack_in() sets it
                        state = _TRK | _EST | _RPL
                    else:
                        state = _TRK | (_EST if seen_reply else _NEW)
                    bits = conn.bits
                    if bits is None:
                        bits = conn.key_bits()
                    if len(frame) > tot + 14:
                        frame = frame[: tot + 14]
                    return frame, (key & _CT_CLEAR) | bits | (state << _SH_STATE)
        nh = 14 if frame[12:14] not in _VLAN_TPID_BYTES else _network_offset(frame)
        p = _parse_l3(frame, nh, (key >> _SH_ETH_TYPE) & 0xFFFF)
        if p is not None and len(frame) > p.end:
            frame = frame[: p.end]  # ovs_skb_network_trim(): lower-layer padding goes
        if (key >> _SH_FRAG) & 0xFF:
            # ovs_ct_handle_fragments(): held for reassembly (see the module doc).
            return None
        ct, ctinfo, cached = self.lookup(frame, key, info, p, zone, now)
        if not cached:
            # nf_conntrack_in() ran: the key is refilled (no NAT flags yet).
            key = self.update_key(key, self.ct_state(ct, ctinfo) if ct is not None else _TRK | _INV, zone, ct)
        commit = info.commit or info.force_commit
        if (
            info.nat is not None
            and ct is not None
            and p is not None
            and not (key >> _SH_STATE) & _NAT_MASK
            and (ct.confirmed or commit)
        ):
            # NAT once per packet and zone, and a new connection only when committed.
            done = self.ovs_ct_nat(frame, key, info, ct, ctinfo, p, now)
            if done is None:
                return None  # NF_DROP: the packet is freed
            frame, key = done
        if ct is not None and commit:
            self.commit(ct, info, now)
            # ovs_ct_set_mark()/ovs_ct_init_labels()/ovs_ct_set_labels() write
            # what they set into the key (ct_state stays as looked up).
            if info.mark is not None and info.mark.mask:
                key = (key & ~_MARK_MASK) | (ct.mark << _SH_MARK)
            if info.labels is not None and info.labels.mask:
                key = (key & ~_LABELS_MASK) | (ct.labels << _SH_LABELS)
        return frame, key

    @staticmethod
    def ct_state(ct: Conn, ctinfo: int) -> int:
        """ovs_ct_get_state() and what ovs_ct_update_key() adds."""
        state = _TRK
        if ctinfo in (IP_CT_ESTABLISHED_REPLY, IP_CT_RELATED_REPLY):
            state |= _RPL
        if ctinfo in (IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY):
            state |= _EST
        elif ctinfo in (IP_CT_RELATED, IP_CT_RELATED_REPLY):
            state |= _REL
        elif ctinfo == IP_CT_NEW:
            state |= _NEW
        if not ct.confirmed:
            state |= _NEW
        return state

    @staticmethod
    def update_key(key: int, state: int, zone: int, ct: Conn | None) -> int:
        """__ovs_ct_update_key(): state, zone, mark, labels and the original
        tuple (its protocol 0 when there is no connection).  A connection's own
        fields are one precomputed int (:meth:`Conn.key_bits`); its family is
        always the packet's (the tuple came from this packet or the header an
        ICMP error of the same family carries, and ND is never tracked)."""
        bits = (zone << _SH_ZONE) if ct is None else ct.key_bits()
        return (key & _CT_CLEAR) | bits | (state << _SH_STATE)

    def lookup(
        self, frame: bytes, key: int, info: Ct, p: _L3 | None, zone: int, now: int
    ) -> tuple[Conn | None, int, bool]:
        """__ovs_ct_lookup() without NAT and helpers: skb_nfct_cached() (the
        connection, its ctinfo, True), else nf_conntrack_in() (..., False)."""
        key_state = _get(key, "ct_state")
        force = info.force_commit
        executed = bool(key_state & _TRK) and not key_state & _INV and _get(key, "ct_zone") == zone
        if p is not None and (executed or (not key_state and force)):
            found = self.find_existing(frame, p, zone, now, natted=bool(key_state & _NAT_MASK))
            if found is not None:
                ct, ctinfo = found
                if force and ctinfo >= IP_CT_ESTABLISHED_REPLY:
                    self.delete(ct)  # force the direction: start afresh
                elif executed:
                    return ct, ctinfo, True
        if p is None:
            return None, 0, False
        return (*self.conntrack_in(frame, p, zone, now), False)

    def find_existing(
        self, frame: bytes, p: _L3, zone: int, now: int, *, natted: bool = False
    ) -> tuple[Conn, int] | None:
        """ovs_ct_find_existing(): the confirmed connection of the packet's tuple
        (inverted when the packet was NATed: its tuple is then the other direction's)."""
        if p.later_frag:
            return None
        t = _pkt_to_tuple(frame, p, p.dataoff, p.proto)
        if t is not None and natted:
            t = _invert(t, p.family)
        if t is None:
            return None
        h = self.find(zone, p.family, t, now)
        if h is None:
            return None
        return h[0], self.get_info(h[0], 1 - h[1] if natted else h[1])

    @staticmethod
    def get_info(ct: Conn, direction: int) -> int:
        if direction == _REPLY:
            return IP_CT_ESTABLISHED_REPLY
        return IP_CT_ESTABLISHED if ct.seen_reply else IP_CT_NEW

    def conntrack_in(self, frame: bytes, p: _L3, zone: int, now: int) -> tuple[Conn | None, int]:
        """nf_conntrack_in(): the packet's connection (new ones unconfirmed) or None (invalid)."""
        if p.later_frag:
            return None, 0
        proto, dataoff = p.proto, p.dataoff
        if (proto == _ICMP and p.family == 4) or (proto == _ICMPV6 and p.family == 6):
            if p.end < dataoff + 8:
                return None, 0  # "short packet"
            icmp_type = frame[dataoff]
            if p.family == 4:
                if icmp_type > _NR_ICMP_TYPES:
                    return None, 0
                if icmp_type in _ICMP_ERRORS:
                    return self.inet_error(frame, p, zone, now)
            else:
                if icmp_type in _ICMPV6_NOCT:
                    return None, 0  # untracked
                if icmp_type < 128:
                    return self.inet_error(frame, p, zone, now)
        t = _pkt_to_tuple(frame, p, dataoff, proto)
        if t is None:
            return None, 0
        for _repeat in range(2):
            h = self.find(zone, p.family, t, now)
            if h is None:
                inv = _invert(t, p.family)
                if inv is None:
                    return None, 0  # init_conntrack(): cannot invert the tuple
                ct, direction = Conn(zone, p.family, t, inv), _ORIGINAL
                ctinfo = IP_CT_NEW
            else:
                ct, direction = h
                ctinfo = self.get_info(ct, direction)
            verdict = self.handle_packet(ct, direction, frame, p, now)
            if verdict == _REPEAT:
                continue
            if verdict == _INVALID:
                return None, 0
            if ctinfo == IP_CT_ESTABLISHED_REPLY:
                ct.seen_reply = True
            return ct, ctinfo
        return None, 0

    def inet_error(self, frame: bytes, p: _L3, zone: int, now: int) -> tuple[Conn | None, int]:
        """nf_conntrack_inet_error(): an ICMP error is related to the connection of the header inside."""
        inner_nh = p.dataoff + 8
        inner = _parse_inner(frame, inner_nh, p)
        if inner is None or inner.later_frag:
            return None, 0
        t = _pkt_to_tuple(frame, inner, inner.dataoff, inner.proto)
        if t is None:
            return None, 0
        inv = _invert(t, p.family)
        if inv is None:
            return None, 0
        h = self.find(zone, p.family, inv, now)
        if h is None:
            return None, 0
        ct, direction = h
        # The outer destination must be the one the connection expects.
        ct_dst = (ct.orig if direction == _ORIGINAL else ct.reply)[1]
        if ct_dst != p.dst:
            return None, 0
        return ct, IP_CT_RELATED_REPLY if direction == _REPLY else IP_CT_RELATED

    # -- protocol trackers ------------------------------------------------------
    def handle_packet(self, ct: Conn, direction: int, frame: bytes, p: _L3, now: int) -> int:
        proto = p.proto
        if proto == _TCP:
            return self.tcp_packet(ct, direction, frame, p, now)
        if proto == _UDP:
            return self.udp_packet(ct, frame, p, now)
        if proto == _ICMP and p.family == 4:
            if (ct.orig[4] >> 8) not in _ICMP_VALID_NEW:
                return _INVALID
            self.refresh(ct, ICMP_TIMEOUT, now)
            return _ACCEPT
        if proto == _ICMPV6 and p.family == 6:
            if not ct.confirmed and (ct.orig[4] >> 8) not in _ICMPV6_VALID_NEW:
                return _INVALID
            self.refresh(ct, ICMPV6_TIMEOUT, now)
            return _ACCEPT
        self.refresh(ct, GENERIC_TIMEOUT, now)
        return _ACCEPT

    @staticmethod
    def refresh(ct: Conn, extra: int, now: int) -> None:
        """nf_ct_refresh_acct(): relative until confirmed."""
        ct.timeout = extra + now if ct.confirmed else extra

    def udp_packet(self, ct: Conn, frame: bytes, p: _L3, now: int) -> int:
        """nf_conntrack_udp_packet() (udp_error() but the checksum)."""
        off = p.dataoff
        udplen = p.end - off
        if udplen < 8:
            return _INVALID
        length = int.from_bytes(frame[off + 4 : off + 6], "big")
        if length > udplen or length < 8:
            return _INVALID
        self.udp_update(ct, now)
        return _ACCEPT

    def udp_update(self, ct: Conn, now: int) -> None:
        """The timeouts of nf_conntrack_udp_packet() (udp_error() passed)."""
        if not ct.confirmed:
            ct.udp_stream_ts = now + _UDP_STREAM_DELAY
        if ct.seen_reply:
            extra = UDP_CT_UNREPLIED
            if now > ct.udp_stream_ts:
                extra = UDP_CT_REPLIED
                ct.assured = True
            self.refresh(ct, extra, now)
        else:
            self.refresh(ct, UDP_CT_UNREPLIED, now)

    def tcp_packet(self, ct: Conn, direction: int, frame: bytes, p: _L3, now: int) -> int:
        """nf_conntrack_tcp_packet() without tcp_in_window()'s checks (see the module doc)."""
        off = p.dataoff
        if p.end < off + 20:
            return _INVALID
        doff = (frame[off + 12] >> 4) * 4
        tcplen = p.end - off
        if doff < 20 or tcplen < doff:
            return _INVALID  # tcp_error(): truncated
        flags = frame[off + 13]
        if (flags & ~(_ECE | _CWR | _PSH)) & 0x3F not in tcp_valid_flags:
            return _INVALID  # tcp_error(): invalid flag combination
        seq = int.from_bytes(frame[off + 4 : off + 8], "big")
        ack = int.from_bytes(frame[off + 8 : off + 12], "big")
        win = int.from_bytes(frame[off + 14 : off + 16], "big")
        end = (seq + tcplen - doff + (1 if flags & _SYN else 0) + (1 if flags & _FIN else 0)) & 0xFFFFFFFF
        index = get_conntrack_index(flags)
        if not ct.confirmed:
            # tcp_new(): the table from NONE; with tcp_loose, anything valid picks up.
            if tcp_conntracks[0][index][TCP_NONE] >= TCP_MAX:
                return _INVALID
            ct.last_index = _NONE_SET
        old_state = ct.tcp_state
        new_state = tcp_conntracks[direction][index][old_state]
        in_window = False
        if (
            new_state == TCP_SYN_SENT
            and old_state >= TCP_TIME_WAIT
            and (any(ct.close_init) or (ct.last_dir == direction and ct.last_index == _RST_SET))
        ):
            # Reopening a closed/aborted connection: delete it, look up again.
            self.delete(ct)
            return _REPEAT
        if new_state == TCP_SYN_SENT and old_state < TCP_TIME_WAIT:
            pass
        elif new_state in (TCP_SYN_SENT, TCP_IGNORE):
            if index == _SYNACK_SET and ct.last_index == _SYN_SET and ct.last_dir != direction and ack == ct.last_end:
                old_state, new_state = TCP_SYN_SENT, TCP_SYN_RECV
            else:
                ct.last_index = index
                ct.last_dir = direction
                ct.last_seq = seq
                ct.last_end = end
                ct.last_win = win
                if index == _SYN_SET and direction == _ORIGINAL:
                    # A SYN we let through in LAST_ACK may draw an RFC 5961 challenge ACK.
                    ct.challenge_ack = old_state == TCP_LAST_ACK
                if old_state == TCP_SYN_SENT and index == _ACK_SET and direction == _REPLY:
                    ct.last_ack = ack
                return _ACCEPT  # ignored: no state change, no refresh
        elif new_state == TCP_MAX:
            return _INVALID
        elif new_state == TCP_TIME_WAIT:
            if (
                old_state == TCP_LAST_ACK
                and index == _ACK_SET
                and ct.last_dir != direction
                and ct.last_index == _SYN_SET
                and ct.challenge_ack
            ):
                ct.challenge_ack = False
                return _ACCEPT  # the challenge ACK does not ack the last FIN
        elif new_state == TCP_SYN_SENT2:
            ct.simultaneous_open = True
        elif new_state == TCP_SYN_RECV:
            if direction == _REPLY and index == _ACK_SET and ct.simultaneous_open:
                new_state = TCP_ESTABLISHED
        elif new_state == TCP_CLOSE and index == _RST_SET:
            in_window = True  # the RST sequence checks need tcp_in_window()'s state
        if not in_window and index == _ACK_SET:
            # tcp_in_window(): retransmissions of the same ACK segment.
            if (ct.last_dir, ct.last_seq, ct.last_ack, ct.last_end, ct.last_win) == (direction, seq, ack, end, win):
                ct.retrans += 1
            else:
                ct.last_dir, ct.last_seq, ct.last_ack, ct.last_end, ct.last_win = direction, seq, ack, end, win
                ct.retrans = 0
        ct.last_index = index
        ct.last_dir = direction
        ct.tcp_state = new_state
        if old_state != new_state and new_state == TCP_FIN_WAIT:
            ct.close_init[direction] = True
        timeouts = _TCP_TIMEOUTS
        if ct.retrans >= _TCP_MAX_RETRANS and timeouts[new_state] > timeouts[TCP_RETRANS]:
            timeout = timeouts[TCP_RETRANS]
        elif index == _RST_SET:
            timeout = timeouts[TCP_CLOSE]
        elif ct.last_win == 0 and timeouts[new_state] > timeouts[TCP_RETRANS]:
            timeout = timeouts[TCP_RETRANS]
        else:
            timeout = timeouts[new_state]
        if not ct.seen_reply:
            if flags & _RST:
                self.delete(ct)  # nf_ct_kill_acct(): only a RST came back
                return _ACCEPT
            if index == _SYN_SET and old_state == TCP_SYN_SENT:
                return _ACCEPT  # a retransmitted SYN does not renew the timeout
            if new_state == TCP_ESTABLISHED and timeout > timeouts[TCP_UNACK]:
                timeout = timeouts[TCP_UNACK]
        elif not ct.assured and old_state in (TCP_SYN_RECV, TCP_ESTABLISHED) and new_state == TCP_ESTABLISHED:
            ct.assured = True
        self.refresh(ct, timeout, now)
        return _ACCEPT

    # -- ovs_ct_nat ----------------------------------------------------------------
    def ovs_ct_nat(
        self, frame: bytes, key: int, info: Ct, ct: Conn, ctinfo: int, p: _L3, now: int
    ) -> tuple[bytes, int] | None:
        """ovs_ct_nat(): which manipulation, then ovs_ct_nat_execute() (twice when
        the connection is destination-NATed: its source too, a null binding)."""
        nat = info.nat
        assert nat is not None
        reply_dir = ctinfo >= IP_CT_ESTABLISHED_REPLY
        if ctinfo != IP_CT_NEW and ct.status & IPS_NAT_MASK and (ctinfo != IP_CT_RELATED or info.commit):
            src_natted = bool(ct.status & IPS_SRC_NAT)
            manip = (MANIP_DST if src_natted else MANIP_SRC) if reply_dir else (MANIP_SRC if src_natted else MANIP_DST)
        elif nat.kind == "src":
            manip = MANIP_SRC
        elif nat.kind == "dst":
            manip = MANIP_DST
        else:
            return frame, key  # the connection is not NATed
        rng = Range(nat)
        done = self.nat_execute(frame, key, ct, ctinfo, rng, manip, p, now)
        if done is not None and ct.status & IPS_DST_NAT:
            if ct.status & IPS_SRC_NAT:
                other = MANIP_DST if manip == MANIP_SRC else MANIP_SRC
                done = self.nat_execute(*done, ct, ctinfo, rng, other, p, now)
            elif not reply_dir:
                done = self.nat_execute(*done, ct, ctinfo, None, MANIP_SRC, p, now)
        return done

    def nat_execute(
        self, frame: bytes, key: int, ct: Conn, ctinfo: int, rng: Range | None, manip: int, p: _L3, now: int
    ) -> tuple[bytes, int] | None:
        """ovs_ct_nat_execute(): set the mapping up for a new connection, apply it
        (nf_nat_packet()), and write the packet's addresses into the key."""
        icmp = p.proto == (_ICMP if p.family == 4 else _ICMPV6)
        if ctinfo in (IP_CT_RELATED, IP_CT_RELATED_REPLY) and icmp:
            if p.family == 4:
                translated = icmp_reply_translation(frame, p.nh, p.dataoff, ct, ctinfo == IP_CT_RELATED_REPLY, manip)
                if translated is None:
                    return None
                frame = translated
        elif ctinfo in (IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY):
            done = ct.status & (IPS_SRC_NAT_DONE if manip == MANIP_SRC else IPS_DST_NAT_DONE)
            if not done:
                if rng is not None and rng.map_ips:
                    self.nat.setup_info(ct, rng, manip, now)
                else:
                    self.nat.null_binding(ct, manip, now)
        if not (ctinfo in (IP_CT_RELATED, IP_CT_RELATED_REPLY) and icmp):
            # nf_nat_packet()
            statusbit = IPS_SRC_NAT if manip == MANIP_SRC else IPS_DST_NAT
            reply_dir = ctinfo >= IP_CT_ESTABLISHED_REPLY
            if reply_dir:
                statusbit ^= IPS_NAT_MASK
            if ct.status & statusbit:
                target = _invert(ct.orig if reply_dir else ct.reply, ct.family)
                if target is not None:
                    frame = manip_pkt(frame, p.nh, p.family, target, manip)
        return frame, self.nat_update_key(frame, key, manip, p)

    @staticmethod
    def nat_update_key(frame: bytes, key: int, manip: int, p: _L3) -> int:
        """ovs_nat_update_key(): +snat/+dnat and the packet's (new) address and port."""
        nh, l4 = p.nh, p.dataoff
        if manip == MANIP_SRC:
            key |= int(CtState.SRC_NAT) << _SH_STATE
            if p.family == 4:
                key = _set(key, "ipv4_src", int.from_bytes(frame[nh + 12 : nh + 16], "big"))
            else:
                key = _set(key, "ipv6_src", int.from_bytes(frame[nh + 8 : nh + 24], "big"))
            if p.proto in (_TCP, _UDP, 132) and len(frame) >= l4 + 4:
                key = _set(key, "tp_src", int.from_bytes(frame[l4 : l4 + 2], "big"))
        else:
            key |= int(CtState.DST_NAT) << _SH_STATE
            if p.family == 4:
                key = _set(key, "ipv4_dst", int.from_bytes(frame[nh + 16 : nh + 20], "big"))
            else:
                key = _set(key, "ipv6_dst", int.from_bytes(frame[nh + 24 : nh + 40], "big"))
            if p.proto in (_TCP, _UDP, 132) and len(frame) >= l4 + 4:
                key = _set(key, "tp_dst", int.from_bytes(frame[l4 + 2 : l4 + 4], "big"))
        return key

    # -- ovs_ct_commit ------------------------------------------------------------
    def commit(self, ct: Conn, info: Ct, now: int) -> None:
        """Mark and labels (ovs_ct_set_mark, ovs_ct_init_labels / ovs_ct_set_labels), then confirm."""
        if info.mark is not None and info.mark.mask:
            ct.mark = (info.mark.value | (ct.mark & ~info.mark.mask)) & 0xFFFFFFFF
        if info.labels is not None and info.labels.mask:
            mask = info.labels.mask
            if not ct.confirmed:
                ct.labels = (ct.labels & ~mask) | (info.labels.value & mask)
            else:
                ct.labels = (ct.labels & ~mask) ^ info.labels.value  # nf_connlabels_replace()
            ct.labels &= (1 << 128) - 1
        ct.bits = None
        if not ct.confirmed:
            self.insert(ct, now)


_ACCEPT, _INVALID, _REPEAT = 0, 1, 2


def _parse_inner(frame: bytes, nh: int, outer: _L3) -> _L3 | None:
    """The IP header an ICMP error carries (only its first bytes need be there)."""
    if outer.family == 4:
        if outer.end < nh + 20:
            return None
        ihl = (frame[nh] & 0x0F) * 4
        if ihl < 20:
            return None
        frag = int.from_bytes(frame[nh + 6 : nh + 8], "big")
        return _L3(
            4,
            nh,
            int.from_bytes(frame[nh + 12 : nh + 16], "big"),
            int.from_bytes(frame[nh + 16 : nh + 20], "big"),
            frame[nh + 9],
            nh + ihl,
            outer.end,
            bool(frag & 0x1FFF),
        )
    if outer.end < nh + 40:
        return None
    return _ipv6(frame, nh, outer.end)
