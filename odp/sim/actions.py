"""Executing datapath actions on a packet: the simulator's ``net/openvswitch/actions.c``.

:func:`execute_actions` runs an :class:`odp.actions.Actions` list on one frame
the way ``ovs_execute_actions()`` / ``do_execute_actions()`` do, calling back
into an :class:`ActionContext` (implemented by the datapath glue) for
everything outside actions.c: sending to a vport, ACTION upcalls,
recirculation, meters, conntrack and randomness.

The packet model
================

A packet is ``bytes`` from the Ethernet header on, with VLAN tags *inline*
(what a netdev puts on the wire).  The kernel keeps the outer tag out of band
(``skb->vlan_tci``) while actions run; where that is visible it is
reproduced from the inline frame:

* ``skb->len`` (compared by ``check_pkt_len``, cut by ``trunc``, given to
  meters) excludes the outer tag: it is ``len(frame) - 4`` for a frame whose
  outer tag the kernel would have moved out of band (TPID 0x8100/0x88a8 and
  at least 18 bytes).  So ``trunc(100)`` on a tagged frame outputs 104 bytes,
  as the wire shows with the kernel.
* ``push_vlan`` inserts the new tag after the MAC addresses (it becomes the
  outer tag); the wire TCI is the action's TCI without the CFI bit
  (``tci & ~0x1000``); ``pop_vlan`` removes the outer tag.
* ``skb->protocol`` is tracked as the kernel tracks it (the ethertype after
  the outer tag, the MPLS ethertype after ``push_mpls`` ...).

The flow key is a :mod:`odp.validate.swkey` int, kept in step the way the kernel
keeps ``struct sw_flow_key`` in step: each ``set``/``set_masked``,
``dec_ttl``, ``push_vlan`` on an untagged packet, ``pop_vlan`` leaving no
tag, ``hash`` and ``ct_clear`` update their fields, so a later
``userspace()`` reports the new values.  ``push/pop_mpls``, ``push/pop_eth``
and VLAN pushes/pops that leave a tag in the packet *invalidate* the key
instead (the kernel sets ``SW_FLOW_KEY_INVALID`` and leaves the fields stale:
an upcall reports the stale key); ``recirc`` and ``ct`` re-extract an invalid
key with :func:`odp.sim.flow.extract` first (``ovs_flow_key_update()``),
keeping the metadata fields.

Semantics decisions (all from actions.c unless said otherwise)
==============================================================

* Actions run in order on the current frame; ``output`` hands the current
  frame (``bytes`` are immutable, so that is the kernel's clone) to
  :meth:`ActionContext.output`.  A frame without an Ethernet header (after
  ``pop_eth``) is dropped at output: ``ovs_vport_send()`` drops it for
  ARPHRD_ETHER devices, which every vport type the simulator has is.
* ``trunc(N)`` records ``cutlen = N`` (the last one wins, whatever the
  length then); the next ``output`` trims a longer skb to ``max(N, 14)``
  (the accelerated outer VLAN tag, not in ``skb->len``, goes back on at
  transmit), the next ``userspace`` sends at most N bytes (tag inline), and
  both reset it, as ``psample`` does.  Clones (``clone``, ``sample``,
  ``check_pkt_len``) inherit the pending cut.
* ``set(tunnel(...))`` attaches egress tunnel metadata (a
  :class:`TunnelInfo` with ``egress=True``), passed to every later
  ``output``/``userspace``; it does not change the key.  Outputs see only
  *egress* metadata: ingress metadata given to :func:`execute_actions` is
  carried (to recirculation) but passed to ``output`` as None, because
  ``vxlan_xmit()`` drops packets whose metadata is not in TX mode.
* ``set``/``set_masked`` on eth, ipv4 (src, dst, tos, ttl; proto/frag are
  ignored), ipv6 (src, dst, tclass, label, hlimit), tcp/udp/sctp ports,
  skb_priority, skb_mark and the top MPLS LSE.  Checksums are updated
  incrementally like the kernel's (a wrong checksum stays wrong): the IPv4
  header checksum, the TCP/UDP (and ICMPv6) pseudo-header checksum on
  address changes (not for IPv4 non-first fragments; a zero UDP checksum
  stays zero and a computed zero becomes 0xffff), the port checksums, SCTP's
  CRC32C (recomputed, carrying any previous error through).  IPv6 dst
  changes skip the L4 update when a routing header with segments left is
  present.  A masked set uses ``(old & ~mask) | (value & mask)``.  A set on
  a frame too short for the header drops the packet (an error: see below);
  set of a conntrack field drops it as the kernel does (EINVAL at run time).
* ``push_mpls``/``add_mpls``/``pop_mpls``/``push_eth``/``pop_eth``
  as ``skb_mpls_push/pop`` and ``skb_eth_push/pop`` do, with the kernel's
  error cases (pop_eth of a tagged frame, push_eth onto an Ethernet frame,
  a non-MPLS ethertype ...).
* ``sample``: runs with probability ``(P + 1) / 2**32`` (the kernel skips
  when ``get_random_u32() > P``), using ``int(ctx.random() * 2**32)``;
  ``P = 0`` never runs and ``P = 0xffffffff`` always, both without calling
  ``ctx.random()``.  ``sample``/``clone``/``check_pkt_len`` run their actions
  on a copy of the packet and key: nothing they do is seen afterwards.
* ``check_pkt_len``: ``len = mru + mac_len if mru else skb->len`` (``mac_len``
  without the out-of-band outer tag); ``len <= pkt_len`` runs ``le``, else
  ``gt``.  ``mru`` is the EXECUTE ``MRU`` attribute (0: none).
* ``dec_ttl``: for IPv4/IPv6 (by ``skb->protocol``), a TTL/hop limit <= 1 runs
  the ``le_1`` actions on the packet *and ends the action list*; otherwise it
  is decremented (IPv4 checksum updated) and the key's ttl follows.
  Non-IP packets are left alone.
* ``recirc(id)``: ``ctx.recirculate`` gets a copy of the packet and a copy of
  the key with ``recirc_id`` replaced; the key of the running list keeps its
  recirc_id.
* ``hash``: ``dp_hash = jhash_1word(flow_hash(packet), basis)``, 0 made 1,
  with :func:`odp.sim.packet.flow_hash` standing in for ``skb_get_hash()``
  (addresses, protocol, ports; ``sym_l4`` orders the endpoints first).
* ``meter``: ``ctx.meter(id, skb->len)``; False consumes the packet (the list
  stops, no error).  ``drop`` stops the list.  ``ct_clear`` zeroes
  ct_state/zone/mark/labels and the original tuple in the key.
  ``psample`` is accepted and does nothing but reset a pending ``trunc``.
* ``push_nsh``/``pop_nsh``, ``set(nsh(...))`` and unknown actions raise
  :class:`odp.errors.NotSupported`; a ``set`` of an attribute the kernel
  never writes (in_port, eth_type, ...) raises :class:`odp.errors.InvalidFlow`
  (the kernel refuses it when the flow is installed).
* Errors: when an action fails in the kernel (a set on a truncated header,
  pop_eth of a tagged frame ...), the packet is dropped silently: the rest
  of the list does not run, *and* the error propagates out of an enclosing
  ``clone``/``sample``/``check_pkt_len``/``dec_ttl``, stopping the parent
  lists too (``clone_execute()`` returns the error).  Nothing is raised.
* Nesting, as per-CPU state in the kernel: :func:`execute_actions` calls
  nest one level deeper when made from inside :meth:`ActionContext.recirculate`;
  beyond 5 levels the packet is dropped (``OVS_RECURSION_LIMIT``).  A
  ``clone``/``sample``/``check_pkt_len`` whose actions may change the
  packet, or a ``recirc``, that would need a fourth level of flow key is
  *deferred*: it runs after the outermost action list finishes (at most 9
  deferred per packet; more are dropped), exactly as ``clone_execute()``
  does.  Calls made from inside ``output`` (a frame delivered to another
  simulated host, say) start afresh, as the kernel's receive path does.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import odp.validate.swkey as sk
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
    Userspace,
)
from odp.constants import HashAlg
from odp.errors import InvalidFlow, NotSupported
from odp.keys import (
    CtLabels,
    CtMark,
    CtState,
    CtTupleIpv4,
    CtTupleIpv6,
    CtZone,
    Ethernet,
    FixedKeyAttr,
    Ipv4,
    Ipv6,
    KeyAttr,
    Mpls,
    Nsh,
    Priority,
    Sctp,
    SkbMark,
    Tcp,
    Tunnel,
    Udp,
)
from odp.sim.flow import extract
from odp.sim.packet import TunnelInfo, crc32c, csum_replace, flow_hash, jhash_1word

__all__ = [
    "DEFERRED_ACTION_FIFO_SIZE",
    "OVS_DEFERRED_ACTION_THRESHOLD",
    "OVS_RECURSION_LIMIT",
    "ActionContext",
    "TunnelInfo",
    "execute_actions",
]

#: ``ovs_execute_actions()`` nesting (recirculation) beyond which packets are dropped.
OVS_RECURSION_LIMIT = 5
#: OVS_CB(skb)->cutlen when no trunc is pending (U32_MAX).
NO_CUT = 0xFFFFFFFF
#: Flow key copies available for nested clone-like actions before they are deferred.
OVS_DEFERRED_ACTION_THRESHOLD = OVS_RECURSION_LIMIT - 2
#: Size of the deferred action FIFO; one slot is never used (``action_fifo_put()``).
DEFERRED_ACTION_FIFO_SIZE = 10


class ActionContext(Protocol):
    """What the action executor needs from the datapath (the glue implements it).

    Every frame handed over is ``bytes`` with VLAN tags inline; every key is
    a :mod:`odp.validate.swkey` int.  ``tunnel`` arguments are the packet's
    attached tunnel metadata (see each method).
    """

    def output(self, port_no: int, frame: bytes, tunnel: TunnelInfo | None) -> None:
        """Send ``frame`` out of vport ``port_no`` (``do_output()``/``ovs_vport_send()``).

        ``tunnel`` is the egress metadata set by ``set(tunnel(...))`` (always
        ``egress=True``) or None; a tunnel vport drops the frame when it is
        None.  A missing port, the MTU check and fragmentation for a non-zero
        MRU are the glue's business.
        """
        ...

    def upcall_action(self, frame: bytes, key: int, action: Userspace, tunnel: TunnelInfo | None) -> None:
        """An ACTION upcall for ``userspace(...)`` (``output_userspace()``).

        ``frame`` is already cut by a pending ``trunc``; ``key`` is the current
        (possibly stale, see module doc) flow key to report; ``tunnel`` the
        egress metadata, the base of OVS_PACKET_ATTR_EGRESS_TUN_KEY when
        ``action.egress_tun_port`` is set (None: no such attribute).
        """
        ...

    def recirculate(self, frame: bytes, key: int, tunnel: TunnelInfo | None, *, cutlen: int = NO_CUT) -> None:
        """Look the packet up again (``ovs_dp_process_packet()``) with ``key``,
        whose ``recirc_id`` is already the one of the ``recirc`` action.

        ``tunnel`` is the metadata attached to the packet (ingress or egress)
        and ``cutlen`` a pending ``trunc`` (OVS_CB(skb) goes along with the
        skb): pass both back to :func:`execute_actions` for the new flow's actions.
        Call :func:`execute_actions` from here, synchronously, to get the
        kernel's nesting limits and ordering.
        """
        ...

    def meter(self, meter_id: int, frame_len: int) -> bool:
        """Account ``frame_len`` bytes (``skb->len``) to meter ``meter_id``; False drops the packet."""
        ...

    #: Called with each action before it runs (the trace hook; None: nobody asked).
    on_action: Callable[[Action], None] | None

    def random(self) -> float:
        """A random float in [0, 1) for ``sample`` (seedable by the glue)."""
        ...

    def ct(self, frame: bytes, key: int, action: Ct) -> tuple[bytes, int] | None:
        """Run the packet through conntrack: the new (frame, key), or None if
        conntrack consumed it.  May raise ``NotSupported("conntrack (ct) is not
        supported by the simulator")``."""
        ...


# ---------------------------------------------------------------------------
# Key field access.  Shifts are precomputed: sk.put/get cost a dict lookup and
# a range check each.
# ---------------------------------------------------------------------------

_GEO = sk.GEOMETRY


def _put(key: int, name: str, value: int) -> int:
    shift, width = _GEO[name]
    return (key & ~(((1 << width) - 1) << shift)) | (value << shift)


def _get(key: int, name: str) -> int:
    shift, width = _GEO[name]
    return (key >> shift) & ((1 << width) - 1)


_SH_MAC_PROTO = _GEO["mac_proto"][0]
_META_MASK = 0
for _name in sk.NAMES:
    if _name in ("recirc_id", "dp_hash", "priority", "skb_mark", "in_port") or _name.startswith(("tun_", "ct_")):
        _META_MASK |= sk.field_mask(_name)
_CT_MASK = 0
for _name in sk.NAMES:
    if _name.startswith("ct_"):
        _CT_MASK |= sk.field_mask(_name)
_ETH_ADDR_MASK = sk.field_mask("eth_src") | sk.field_mask("eth_dst")
del _name

MAC_PROTO_ETHERNET = 0
MAC_PROTO_NONE = 1

_VLAN_TPIDS = (0x8100, 0x88A8)
_MPLS_TYPES = (0x8847, 0x8848)
_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_ETH_P_TEB = 0x6558
_ETH_P_802_3 = 0x0001
_ETH_P_802_2 = 0x0004
_VLAN_CFI = 0x1000
_IPV6_EXT_HDRS = frozenset((0, 43, 44, 51, 60))

#: Actions that cannot change the packet or key (``actions_may_change_flow()``).
_NO_CHANGE = frozenset((Output, Recirc, Trunc, Userspace, Drop, Psample))


def _may_change(actions: Actions) -> bool:
    return any(type(a) not in _NO_CHANGE for a in actions.items)


# ---------------------------------------------------------------------------
# Per-packet state: the skb and its flow key.
# ---------------------------------------------------------------------------


class _Pkt:
    """The skb (frame, protocol, control block, tunnel dst) and its flow key."""

    __slots__ = ("cutlen", "frame", "key", "l2", "mru", "offsets", "proto", "tun", "valid")

    def __init__(self, frame: bytes, key: int, tun: TunnelInfo | None, mru: int) -> None:
        self.frame = frame
        self.key = key
        #: False once an action invalidated the key (SW_FLOW_KEY_INVALID).
        self.valid = True
        #: Whether the frame starts with an Ethernet header (key mac_proto).
        self.l2 = not (key >> _SH_MAC_PROTO) & 0xFF
        #: skb->protocol; -1 until first needed (then derived from the key).
        self.proto = -1
        self.tun = tun
        self.cutlen = NO_CUT
        self.mru = mru
        #: (network offset, transport offset) cache for the current frame layout.
        self.offsets: tuple[int | None, int | None] | None = None

    def copy(self) -> _Pkt:
        c = _Pkt.__new__(_Pkt)
        c.frame = self.frame
        c.key = self.key
        c.valid = self.valid
        c.l2 = self.l2
        c.proto = self.proto
        c.tun = self.tun
        c.cutlen = self.cutlen
        c.mru = self.mru
        c.offsets = self.offsets
        return c

    # -- derived skb state --------------------------------------------------
    def protocol(self) -> int:
        if self.proto < 0:
            key = self.key
            if _get(key, "cvlan_tci") & _VLAN_CFI:
                self.proto = _get(key, "cvlan_tpid")
            else:
                self.proto = _get(key, "eth_type")
        return self.proto

    def outer_tag(self) -> bool:
        """Whether the kernel would hold the outer VLAN tag out of band."""
        f = self.frame
        return self.l2 and len(f) >= 18 and (f[12] << 8 | f[13]) in _VLAN_TPIDS

    def skb_len(self) -> int:
        return len(self.frame) - 4 if self.outer_tag() else len(self.frame)

    def layout(self) -> tuple[int | None, int | None]:
        """(network offset, transport offset) in the frame, as key extraction leaves them."""
        if self.offsets is None:
            self.offsets = _layout(self.frame, self.l2, self.protocol())
        return self.offsets

    def invalidate(self) -> None:
        self.valid = False
        self.offsets = None

    def set_mac_proto(self, l2: bool) -> None:
        self.l2 = l2
        self.key = _put(self.key, "mac_proto", MAC_PROTO_ETHERNET if l2 else MAC_PROTO_NONE)

    def update_key(self) -> bool:
        """``ovs_flow_key_update()``: re-extract an invalid key; False if extraction fails."""
        if self.valid:
            return True
        meta = self.key & _META_MASK
        if self.l2:
            ext = extract(self.frame, meta)
            if ext is None:
                return False
            self.key = ext.key
        else:
            proto = self.protocol()
            if proto in _VLAN_TPIDS:
                return False  # key_extract(): -EINVAL
            if proto < 0x600:
                key = _put(meta, "eth_type", proto)
            else:
                ext = extract(b"\x00" * 12 + proto.to_bytes(2, "big") + self.frame, meta)
                if ext is None:
                    return False
                key = ext.key & ~_ETH_ADDR_MASK
            self.key = _put(key, "mac_proto", MAC_PROTO_NONE)
        self.valid = True
        self.proto = -1
        return True


def _layout(frame: bytes, l2: bool, proto: int) -> tuple[int | None, int | None]:
    if l2:
        ext = extract(frame)
        if ext is None:
            return None, None
        return ext.network_offset, ext.transport_offset
    if proto < 0x600 or proto in _VLAN_TPIDS:
        return 0, None
    ext = extract(b"\x00" * 12 + proto.to_bytes(2, "big") + frame)
    if ext is None or ext.transport_offset is None:
        return 0, None
    return 0, ext.transport_offset - 14


def _masked(old: int, value: int, mask: int) -> int:
    return (old & ~mask) | (value & mask)


def _encap_proto(frame: bytes | bytearray, off: int) -> int:
    """``vlan_set_encap_proto()``: skb->protocol from the ethertype at ``off``."""
    if len(frame) < off + 2:
        return 0
    proto = frame[off] << 8 | frame[off + 1]
    if proto >= 0x600:
        return proto
    if frame[off + 2 : off + 4] == b"\xff\xff":
        return _ETH_P_802_3
    return _ETH_P_802_2


# ---------------------------------------------------------------------------
# Nesting state (the kernel's per-CPU exec_actions_level and action FIFO).
# ---------------------------------------------------------------------------


class _Cpu:
    __slots__ = ("fifo", "level", "puts")

    def __init__(self) -> None:
        self.level = 0
        self.puts = 0
        self.fifo: deque[tuple[_Exec, _Pkt, Actions | None, int]] = deque()


class _Tls(threading.local):
    #: The nesting state of the executor that is inside ctx.recirculate(), if any.
    recirculating: _Cpu | None = None


_tls = _Tls()


def check_supported(actions: Actions, *, conntrack: bool = False) -> None:
    """Raise :class:`odp.errors.NotSupported` naming the first action (nested lists included)
    that :func:`execute_actions` could not run: the simulator refuses such a flow at install
    rather than accept it and fail on its packets.  ``conntrack``: whether the context runs ``ct``.
    """
    for a in actions:
        t = type(a)
        if t is Ct and not conntrack:
            raise NotSupported(f"{a}: conntrack (ct) is not supported by the simulator")
        if t is PushNsh or t is PopNsh:
            raise NotSupported(f"{a}: NSH actions are not supported by the simulator")
        if (t is Set or t is SetMasked) and type(a.attr) is Nsh:  # type: ignore[attr-defined]
            raise NotSupported("set(nsh(...)) is not supported by the simulator")
        if t is Hash and a.alg not in (HashAlg.L4, HashAlg.SYM_L4):  # type: ignore[attr-defined]
            raise NotSupported(f"hash algorithm {a.alg} is not supported")  # type: ignore[attr-defined]
        if t not in _EXECUTED:
            raise NotSupported(f"the simulator cannot execute action {a!r}")
        for sub in (getattr(a, "actions", None), getattr(a, "if_greater", None), getattr(a, "if_less_equal", None)):
            if isinstance(sub, Actions):
                check_supported(sub, conntrack=conntrack)


#: The action classes :class:`_Exec` runs (the others raise NotSupported).
_EXECUTED: frozenset[type[Action]] = frozenset(
    {
        Output, Userspace, Set, SetMasked, PushVlan, PopVlan, Sample, Recirc, Hash, PushMpls, PopMpls, Ct,
        Trunc, PushEth, PopEth, CtClear, Meter, Clone, CheckPktLen, AddMpls, DecTtl, Drop, Psample,
    }
)  # fmt: skip


def execute_actions(
    ctx: ActionContext,
    frame: bytes,
    key: int,
    actions: Actions,
    *,
    tunnel: TunnelInfo | None = None,
    mru: int = 0,
    cutlen: int = NO_CUT,
) -> None:
    """Run ``actions`` on ``frame`` (with flow key ``key``), as ``ovs_execute_actions()``.

    ``tunnel`` is the tunnel metadata attached to the packet: the ingress
    metadata of a packet a tunnel vport received (``egress=False``; it is
    never used for output) or, for a recirculated packet, whatever
    :meth:`ActionContext.recirculate` was given.  ``mru`` is the EXECUTE
    command's MRU (0 for none; only ``check_pkt_len`` looks at it).  ``cutlen``
    is a ``trunc`` still pending on a recirculated packet.

    Never raises for packet problems (they drop the packet silently, as the
    kernel does); raises :class:`odp.errors.NotSupported` for actions the
    simulator cannot run and whatever the context raises.
    """
    items = actions.items
    tls = _tls
    parent = tls.recirculating
    fast = cutlen == NO_CUT  # (a pending cut needs the slow path's output)
    if fast:
        for a in items:
            if type(a) is not Output:
                fast = False
                break
    if fast:
        # Fast path: only outputs (the common case): no state to track.
        if parent is not None:
            if parent.level >= OVS_RECURSION_LIMIT:
                return
            tls.recirculating = None
        try:
            if not (key >> _SH_MAC_PROTO) & 0xFF:
                tun = tunnel if tunnel is not None and tunnel.egress else None
                output = ctx.output
                on_action = ctx.on_action
                for a in items:
                    if on_action is not None:
                        on_action(a)
                    output(a.port, frame, tun)  # type: ignore[attr-defined]
        finally:
            if parent is not None:
                tls.recirculating = parent
        return
    tls.recirculating = None
    cpu = parent if parent is not None else _Cpu()
    cpu.level += 1
    try:
        if cpu.level > OVS_RECURSION_LIMIT:
            return  # "ovs: recursion limit reached": dropped
        ex = _Exec(ctx, cpu)
        pkt = _Pkt(frame, key, tunnel, mru)
        pkt.cutlen = cutlen
        ex.run(pkt, items)
        if cpu.level == 1:
            while cpu.fifo:
                owner, pkt, acts, recirc_id = cpu.fifo.popleft()
                if acts is not None:
                    owner.run(pkt, acts.items)
                else:
                    owner.recirculate(pkt, recirc_id)
    finally:
        cpu.level -= 1
        if cpu.level == 0:
            cpu.fifo.clear()
            cpu.puts = 0
        tls.recirculating = parent


class _Exec:
    """``do_execute_actions()`` and the action helpers, bound to one context."""

    __slots__ = ("cpu", "ctx")

    def __init__(self, ctx: ActionContext, cpu: _Cpu) -> None:
        self.ctx = ctx
        self.cpu = cpu

    # -- the loop -----------------------------------------------------------
    def run(self, pkt: _Pkt, items: tuple[Action, ...]) -> bool:
        """Execute ``items``; True when an action failed (the kernel's error return)."""
        n = len(items)
        on_action = self.ctx.on_action
        for i, a in enumerate(items):
            if on_action is not None:
                on_action(a)
            t = type(a)
            if t is Output:
                self.output(pkt, a.port)  # type: ignore[attr-defined]
                continue
            if t is Set or t is SetMasked:
                if self.set(pkt, a.attr, t is SetMasked):  # type: ignore[attr-defined]
                    return True
                continue
            if t is Ct:  # before the long chain below: conntrack pipelines are common
                assert isinstance(a, Ct)
                if not pkt.update_key():
                    return True
                result = self.ctx.ct(pkt.frame, pkt.key, a)
                if result is None:
                    return False  # consumed (e.g. a fragment being reassembled)
                pkt.frame, pkt.key = result
                pkt.proto = -1
                pkt.offsets = None
                continue
            last = i == n - 1
            if t is Userspace:
                assert isinstance(a, Userspace)
                self.ctx.upcall_action(self.cut(pkt, for_output=False), pkt.key, a, _egress(pkt.tun))
                pkt.cutlen = NO_CUT
            elif t is Trunc:
                assert isinstance(a, Trunc)
                pkt.cutlen = a.max_len
            elif t is PushVlan:
                assert isinstance(a, PushVlan)
                if self.push_vlan(pkt, a):
                    return True
            elif t is PopVlan:
                if self.pop_vlan(pkt):
                    return True
            elif t is Recirc:
                assert isinstance(a, Recirc)
                if not pkt.update_key():
                    return True
                err = self.clone_execute(pkt, None, a.recirc_id, last, True)
                if last:
                    return err
            elif t is Hash:
                assert isinstance(a, Hash)
                self.hash(pkt, a)
            elif t is Sample:
                assert isinstance(a, Sample)
                p = a.probability
                if p != 0xFFFFFFFF and (p == 0 or int(self.ctx.random() * 4294967296.0) > p):
                    if last:
                        return False
                    continue
                err = self.clone_execute(pkt, a.actions, 0, last, not last and _may_change(a.actions))
                if last:
                    return err
                if err:
                    return True
            elif t is Clone:
                assert isinstance(a, Clone)
                err = self.clone_execute(pkt, a.actions, 0, last, not last and _may_change(a.actions))
                if last:
                    return err
                if err:
                    return True
            elif t is CheckPktLen:
                assert isinstance(a, CheckPktLen)
                if pkt.mru:
                    net = pkt.layout()[0] or 0
                    length = pkt.mru + net - (4 if pkt.outer_tag() else 0)
                else:
                    length = pkt.skb_len()
                branch = a.if_less_equal if length <= a.pkt_len else a.if_greater
                err = self.clone_execute(pkt, branch, 0, last, not last and _may_change(branch))
                if last:
                    return err
                if err:
                    return True
            elif t is DecTtl:
                assert isinstance(a, DecTtl)
                res = self.dec_ttl(pkt)
                if res == _DEC_TTL_ERROR:
                    return True
                if res == _DEC_TTL_EXPIRED:
                    if a.actions:
                        return self.clone_execute(pkt, a.actions, 0, True, False)
                    return False
            elif t is Meter:
                assert isinstance(a, Meter)
                if not self.ctx.meter(a.meter_id, pkt.skb_len()):
                    return False
            elif t is PushMpls:
                assert isinstance(a, PushMpls)
                if self.push_mpls(pkt, a.lse, a.ethertype, self.mac_len(pkt)):
                    return True
            elif t is AddMpls:
                assert isinstance(a, AddMpls)
                mac_len = self.mac_len(pkt) if a.tun_flags & 1 else 0
                if self.push_mpls(pkt, a.lse, a.ethertype, mac_len):
                    return True
            elif t is PopMpls:
                assert isinstance(a, PopMpls)
                if self.pop_mpls(pkt, a.ethertype):
                    return True
            elif t is PushEth:
                assert isinstance(a, PushEth)
                if self.push_eth(pkt, a):
                    return True
            elif t is PopEth:
                if self.pop_eth(pkt):
                    return True
            elif t is CtClear:
                pkt.key &= ~_CT_MASK
            elif t is Drop:
                return False
            elif t is Psample:
                pkt.cutlen = NO_CUT
            elif t is PushNsh or t is PopNsh:
                raise NotSupported(f"{a}: NSH actions are not supported by the simulator")
            else:
                raise NotSupported(f"the simulator cannot execute action {a!r}")
        return False

    # -- output -------------------------------------------------------------
    def output(self, pkt: _Pkt, port: int) -> None:
        frame = self.cut(pkt, for_output=True) if pkt.cutlen != NO_CUT else pkt.frame
        pkt.cutlen = NO_CUT
        if not pkt.l2:
            return  # ovs_vport_send(): no Ethernet header for an Ethernet device
        tun = pkt.tun
        self.ctx.output(port, frame, tun if tun is not None and tun.egress else None)

    @staticmethod
    def cut(pkt: _Pkt, *, for_output: bool) -> bytes:
        """The frame with a pending ``trunc`` applied (``do_output()`` / upcall)."""
        frame = pkt.frame
        cutlen = pkt.cutlen
        if not for_output:
            # queue_userspace_packet(): min(skb->len, cutlen), the tag pushed back inline first.
            return frame[:cutlen]
        skb_len = pkt.skb_len()
        if cutlen >= skb_len:
            return frame
        # do_output(): pskb_trim(skb, max(cutlen, ovs_mac_header_len(key))); an
        # accelerated outer tag is not in skb->len and goes back on at transmit.
        mac_hdr = 14 if pkt.l2 else 0
        return frame[: max(cutlen, mac_hdr) + len(frame) - skb_len]

    # -- clone_execute ------------------------------------------------------
    def clone_execute(
        self, pkt: _Pkt, actions: Actions | None, recirc_id: int, last: bool, clone_flow_key: bool
    ) -> bool:
        child = pkt if last else pkt.copy()
        cpu = self.cpu
        if clone_flow_key and cpu.level > OVS_DEFERRED_ACTION_THRESHOLD:
            # Out of flow key copies: defer to the end of the outermost list.
            if cpu.puts < DEFERRED_ACTION_FIFO_SIZE - 1:
                cpu.puts += 1
                cpu.fifo.append((self, child, actions, recirc_id))
            return False
        if actions is None:
            self.recirculate(child, recirc_id)
            return False
        if clone_flow_key:
            cpu.level += 1
            try:
                return self.run(child, actions.items)
            finally:
                cpu.level -= 1
        return self.run(child, actions.items)

    def recirculate(self, pkt: _Pkt, recirc_id: int) -> None:
        tls = _tls
        tls.recirculating = self.cpu
        try:
            self.ctx.recirculate(pkt.frame, _put(pkt.key, "recirc_id", recirc_id), pkt.tun, cutlen=pkt.cutlen)
        finally:
            tls.recirculating = None

    # -- VLAN ---------------------------------------------------------------
    @staticmethod
    def push_vlan(pkt: _Pkt, a: PushVlan) -> bool:
        if not pkt.l2 or len(pkt.frame) < 14:
            return True
        frame = pkt.frame
        if pkt.outer_tag():
            # skb_vlan_push(): the current outer tag goes inline (behind the new one).
            pkt.proto = frame[12] << 8 | frame[13]
            pkt.invalidate()
        else:
            pkt.protocol()
            pkt.key = _put(_put(pkt.key, "vlan_tci", a.tci), "vlan_tpid", a.tpid)
            pkt.offsets = None
        tag = bytes((a.tpid >> 8, a.tpid & 0xFF, (a.tci >> 8) & 0xEF, a.tci & 0xFF))
        pkt.frame = frame[:12] + tag + frame[12:]
        return False

    @staticmethod
    def pop_vlan(pkt: _Pkt) -> bool:
        proto = pkt.protocol()
        frame = pkt.frame
        if pkt.outer_tag():
            frame = frame[:12] + frame[16:]
        elif proto in _VLAN_TPIDS:
            # An in-band tag only (not reachable with an offloaded outer tag).
            if len(frame) < 18:
                return True
            proto = _encap_proto(frame, 16)
            frame = frame[:12] + frame[16:]
        if proto in _VLAN_TPIDS:
            # skb_vlan_pop(): the next tag moves out of band; the key is stale.
            if len(frame) < 18:
                pkt.frame = frame
                return True
            proto = _encap_proto(frame, 16)
            pkt.proto = proto
            pkt.frame = frame
            pkt.invalidate()
            return False
        pkt.proto = proto
        pkt.frame = frame
        pkt.offsets = None
        pkt.key = _put(_put(pkt.key, "vlan_tci", 0), "vlan_tpid", 0)
        return False

    # -- MPLS ---------------------------------------------------------------
    @staticmethod
    def mac_len(pkt: _Pkt) -> int:
        """skb->mac_len in our inline frame (with the outer tag): the network offset."""
        if not pkt.l2:
            return 0
        net = pkt.layout()[0]
        return net if net is not None else 14

    @staticmethod
    def push_mpls(pkt: _Pkt, lse: int, ethertype: int, mac_len: int) -> bool:
        if ethertype not in _MPLS_TYPES:
            return True  # skb_mpls_push(): -EINVAL
        frame = pkt.frame
        if len(frame) < mac_len:
            return True
        new = bytearray(frame[:mac_len])
        new += lse.to_bytes(4, "big")
        new += frame[mac_len:]
        if mac_len >= 14:
            new[mac_len - 2] = ethertype >> 8
            new[mac_len - 1] = ethertype & 0xFF
        pkt.frame = bytes(new)
        pkt.proto = ethertype
        if not mac_len:
            pkt.set_mac_proto(False)
        pkt.invalidate()
        return False

    def pop_mpls(self, pkt: _Pkt, ethertype: int) -> bool:
        if pkt.protocol() in _MPLS_TYPES:
            mac_len = self.mac_len(pkt)
            frame = pkt.frame
            if len(frame) < mac_len + 4:
                return True
            new = bytearray(frame[:mac_len])
            new += frame[mac_len + 4 :]
            if pkt.l2 and mac_len >= 14:
                new[mac_len - 2] = ethertype >> 8
                new[mac_len - 1] = ethertype & 0xFF
            pkt.frame = bytes(new)
            pkt.proto = ethertype
        if ethertype == _ETH_P_TEB:
            pkt.set_mac_proto(True)
        pkt.invalidate()
        return False

    # -- Ethernet -------------------------------------------------------------
    @staticmethod
    def push_eth(pkt: _Pkt, a: PushEth) -> bool:
        if pkt.l2:
            return True  # skb_eth_push(): network offset != 0, -EPROTO
        proto = pkt.protocol()
        pkt.frame = a.dst.to_bytes(6, "big") + a.src.to_bytes(6, "big") + proto.to_bytes(2, "big") + pkt.frame
        pkt.set_mac_proto(True)
        pkt.invalidate()
        return False

    @staticmethod
    def pop_eth(pkt: _Pkt) -> bool:
        if not pkt.l2 or len(pkt.frame) < 14 or pkt.outer_tag() or pkt.protocol() in _VLAN_TPIDS:
            return True  # skb_eth_pop(): -EPROTO
        pkt.frame = pkt.frame[14:]
        pkt.set_mac_proto(False)
        pkt.invalidate()
        return False

    # -- dec_ttl --------------------------------------------------------------
    @staticmethod
    def dec_ttl(pkt: _Pkt) -> int:
        proto = pkt.protocol()
        if proto != _ETH_P_IP and proto != _ETH_P_IPV6:
            return _DEC_TTL_OK
        net = pkt.layout()[0]
        frame = pkt.frame
        if proto == _ETH_P_IPV6:
            if net is None or len(frame) < net + 40:
                return _DEC_TTL_ERROR
            hl = frame[net + 7]
            if hl <= 1:
                return _DEC_TTL_EXPIRED
            buf = bytearray(frame)
            buf[net + 7] = hl - 1
            pkt.frame = bytes(buf)
            pkt.key = _put(pkt.key, "ip_ttl", hl - 1)
            return _DEC_TTL_OK
        if net is None or len(frame) < net + 20:
            return _DEC_TTL_ERROR
        ttl = frame[net + 8]
        if ttl <= 1:
            return _DEC_TTL_EXPIRED
        buf = bytearray(frame)
        _set_ip_byte(buf, net, 8, ttl - 1)
        pkt.frame = bytes(buf)
        pkt.key = _put(pkt.key, "ip_ttl", ttl - 1)
        return _DEC_TTL_OK

    # -- hash -----------------------------------------------------------------
    @staticmethod
    def hash(pkt: _Pkt, a: Hash) -> None:
        if a.alg not in (HashAlg.L4, HashAlg.SYM_L4):
            raise NotSupported(f"hash algorithm {a.alg} is not supported")
        base = flow_hash(pkt.frame, has_eth=pkt.l2, protocol=pkt.protocol(), symmetric=a.alg == HashAlg.SYM_L4)
        h = jhash_1word(base, a.basis) or 1
        pkt.key = _put(pkt.key, "dp_hash", h)

    # -- set / set_masked ---------------------------------------------------
    def set(self, pkt: _Pkt, attr: KeyAttr, masked: bool) -> bool:
        t = type(attr)
        if isinstance(attr, Tunnel):
            pkt.tun = TunnelInfo.from_attr(attr, egress=True)
            return False
        if t is Nsh:
            raise NotSupported("set(nsh(...)) is not supported by the simulator")
        if t is Mpls:
            assert isinstance(attr, Mpls)
            top = attr.lses[0]
            return _set_mpls(pkt, top.value, top.mask if masked else 0xFFFFFFFF)
        if not isinstance(attr, FixedKeyAttr):
            raise InvalidFlow(f"set({attr.NAME}(...)) cannot be executed", rule="set-not-writable", field=attr.NAME)
        values = attr.values()
        if masked:
            masks = attr.masks()
        else:
            masks = tuple(spec.kind.full for spec in attr.FIELDS)
            if t is Ipv6:
                masks = (*masks[:2], 0xFFFFF, *masks[3:])
        handler = _SETTERS.get(t)
        if handler is None:
            if t in _CT_ATTRS:
                return True  # execute_masked_set_action(): -EINVAL, the packet is dropped
            raise InvalidFlow(f"set({attr.NAME}(...)) cannot be executed", rule="set-not-writable", field=attr.NAME)
        return handler(pkt, values, masks)


def _egress(tun: TunnelInfo | None) -> TunnelInfo | None:
    return tun if tun is not None and tun.egress else None


_DEC_TTL_OK = 0
_DEC_TTL_EXPIRED = 1
_DEC_TTL_ERROR = 2


# ---------------------------------------------------------------------------
# Header writers.  Each returns True when the kernel would fail (drop).
# ---------------------------------------------------------------------------


def _set_ip_byte(buf: bytearray, net: int, off: int, value: int) -> None:
    """Change one byte of the IPv4 header and its header checksum (``csum_replace2``)."""
    word = off & ~1
    old = bytes(buf[net + word : net + word + 2])
    buf[net + off] = value
    new = bytes(buf[net + word : net + word + 2])
    check = buf[net + 10] << 8 | buf[net + 11]
    check = csum_replace(check, old, new)
    buf[net + 10] = check >> 8
    buf[net + 11] = check & 0xFF


def _read16(buf: bytearray, off: int) -> int:
    return buf[off] << 8 | buf[off + 1]


def _write16(buf: bytearray, off: int, value: int) -> None:
    buf[off] = value >> 8
    buf[off + 1] = value & 0xFF


def _l4_csum_replace(buf: bytearray, proto: int, l4: int | None, old: bytes, new: bytes, *, icmpv6: bool) -> None:
    """``update_ip_l4_checksum()`` / ``update_ipv6_checksum()``: a pseudo-header change."""
    if l4 is None:
        return
    tlen = len(buf) - l4
    if proto == 6:
        if tlen >= 20:
            _write16(buf, l4 + 16, csum_replace(_read16(buf, l4 + 16), old, new))
    elif proto == 17:
        if tlen >= 8:
            check = _read16(buf, l4 + 6)
            if check:
                check = csum_replace(check, old, new) or 0xFFFF
                _write16(buf, l4 + 6, check)
    elif proto == 58 and icmpv6 and tlen >= 8:
        _write16(buf, l4 + 2, csum_replace(_read16(buf, l4 + 2), old, new))


def _set_eth(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    frame = pkt.frame
    if not pkt.l2 or len(frame) < 14:
        return True
    dst = _masked(int.from_bytes(frame[0:6], "big"), values[1], masks[1])
    src = _masked(int.from_bytes(frame[6:12], "big"), values[0], masks[0])
    pkt.frame = dst.to_bytes(6, "big") + src.to_bytes(6, "big") + frame[12:]
    pkt.key = _put(_put(pkt.key, "eth_src", src), "eth_dst", dst)
    return False


def _set_ipv4(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    net, l4 = pkt.layout()
    frame = pkt.frame
    if net is None or len(frame) < net + 20:
        return True
    src_v, dst_v, _proto, tos_v, ttl_v, _frag = values
    src_m, dst_m, _pm, tos_m, ttl_m, _fm = masks
    buf = bytearray(frame)
    key = pkt.key
    for value, mask, off, name in ((src_v, src_m, 12, "ipv4_src"), (dst_v, dst_m, 16, "ipv4_dst")):
        if not mask:
            continue
        old_b = bytes(buf[net + off : net + off + 4])
        old = int.from_bytes(old_b, "big")
        new = _masked(old, value, mask)
        if new == old:
            continue
        new_b = new.to_bytes(4, "big")
        if not (_read16(buf, net + 6) & 0x1FFF):  # not a later fragment
            _l4_csum_replace(buf, buf[net + 9], l4, old_b, new_b, icmpv6=False)
        _write16(buf, net + 10, csum_replace(_read16(buf, net + 10), old_b, new_b))
        buf[net + off : net + off + 4] = new_b
        key = _put(key, name, new)
    if tos_m:
        tos = _masked(buf[net + 1], tos_v, tos_m)
        _set_ip_byte(buf, net, 1, tos)
        key = _put(key, "ip_tos", tos)
    if ttl_m:
        ttl = _masked(buf[net + 8], ttl_v, ttl_m)
        _set_ip_byte(buf, net, 8, ttl)
        key = _put(key, "ip_ttl", ttl)
    pkt.frame = bytes(buf)
    pkt.key = key
    return False


def _routing_header_pending(buf: bytearray, net: int) -> bool:
    """``ipv6_find_hdr(NEXTHDR_ROUTING, IP6_FH_F_SKIP_RH)`` finds a routing header with segments left."""
    nexthdr = buf[net + 6]
    pos = net + 40
    n = len(buf)
    while nexthdr in _IPV6_EXT_HDRS:
        if n < pos + 8:
            return False
        if nexthdr == 43:
            if buf[pos + 3]:
                return True
        elif nexthdr == 44 and _read16(buf, pos + 2) & 0xFFF8:
            return False
        if nexthdr == 51:
            hdrlen = (buf[pos + 1] + 2) << 2
        elif nexthdr == 44:
            hdrlen = 8
        else:
            hdrlen = (buf[pos + 1] + 1) << 3
        nexthdr = buf[pos]
        pos += hdrlen
    return False


def _set_ipv6(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    net, l4 = pkt.layout()
    frame = pkt.frame
    if net is None or len(frame) < net + 40:
        return True
    src_v, dst_v, label_v, _proto, tclass_v, hlimit_v, _frag = values
    src_m, dst_m, label_m, _pm, tclass_m, hlimit_m, _fm = masks
    buf = bytearray(frame)
    key = pkt.key
    l4_proto = _get(key, "ip_proto")
    for value, mask, off, name in ((src_v, src_m, 8, "ipv6_src"), (dst_v, dst_m, 24, "ipv6_dst")):
        if not mask:
            continue
        old_b = bytes(buf[net + off : net + off + 16])
        old = int.from_bytes(old_b, "big")
        new = _masked(old, value, mask)
        if new == old:
            continue
        new_b = new.to_bytes(16, "big")
        recalc = True
        if name == "ipv6_dst" and buf[net + 6] in _IPV6_EXT_HDRS:
            recalc = not _routing_header_pending(buf, net)
        if recalc:
            _l4_csum_replace(buf, l4_proto, l4, old_b, new_b, icmpv6=True)
        buf[net + off : net + off + 16] = new_b
        key = _put(key, name, new)
    if tclass_m:
        word = _read16(buf, net)
        tclass = _masked((word >> 4) & 0xFF, tclass_v, tclass_m)
        _write16(buf, net, (word & 0xF00F) | (tclass << 4))
        key = _put(key, "ip_tos", tclass)
    if label_m:
        ofl = int.from_bytes(buf[net + 1 : net + 4], "big")
        fl = _masked(ofl, label_v, label_m & 0xFFFFF)
        buf[net + 1 : net + 4] = fl.to_bytes(3, "big")
        key = _put(key, "ipv6_label", fl & 0xFFFFF)
    if hlimit_m:
        hl = _masked(buf[net + 7], hlimit_v, hlimit_m)
        buf[net + 7] = hl
        key = _put(key, "ip_ttl", hl)
    pkt.frame = bytes(buf)
    pkt.key = key
    return False


def _set_tcp(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    l4 = pkt.layout()[1]
    frame = pkt.frame
    if l4 is None or len(frame) < l4 + 20:
        return True
    buf = bytearray(frame)
    key = pkt.key
    for i, name in ((0, "tp_src"), (1, "tp_dst")):
        old = _read16(buf, l4 + 2 * i)
        new = _masked(old, values[i], masks[i])
        if new != old:
            check = csum_replace(_read16(buf, l4 + 16), old.to_bytes(2, "big"), new.to_bytes(2, "big"))
            _write16(buf, l4 + 16, check)
            _write16(buf, l4 + 2 * i, new)
            key = _put(key, name, new)
    pkt.frame = bytes(buf)
    pkt.key = key
    return False


def _set_udp(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    l4 = pkt.layout()[1]
    frame = pkt.frame
    if l4 is None or len(frame) < l4 + 8:
        return True
    buf = bytearray(frame)
    key = pkt.key
    src = _masked(_read16(buf, l4), values[0], masks[0])
    dst = _masked(_read16(buf, l4 + 2), values[1], masks[1])
    check = _read16(buf, l4 + 6)
    if check:
        for i, new, name in ((0, src, "tp_src"), (1, dst, "tp_dst")):
            old = _read16(buf, l4 + 2 * i)
            if new != old:
                check = csum_replace(check, old.to_bytes(2, "big"), new.to_bytes(2, "big"))
                _write16(buf, l4 + 2 * i, new)
                key = _put(key, name, new)
        _write16(buf, l4 + 6, check or 0xFFFF)
    else:
        _write16(buf, l4, src)
        _write16(buf, l4 + 2, dst)
        key = _put(_put(key, "tp_src", src), "tp_dst", dst)
    pkt.frame = bytes(buf)
    pkt.key = key
    return False


def _sctp_crc(buf: bytearray, l4: int) -> int:
    return crc32c(bytes(buf[l4 : l4 + 8]) + b"\x00\x00\x00\x00" + bytes(buf[l4 + 12 :]))


def _set_sctp(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    l4 = pkt.layout()[1]
    frame = pkt.frame
    if l4 is None or len(frame) < l4 + 12:
        return True
    buf = bytearray(frame)
    old_csum = int.from_bytes(buf[l4 + 8 : l4 + 12], "little")
    old_correct = _sctp_crc(buf, l4)
    src = _masked(_read16(buf, l4), values[0], masks[0])
    dst = _masked(_read16(buf, l4 + 2), values[1], masks[1])
    _write16(buf, l4, src)
    _write16(buf, l4 + 2, dst)
    new_csum = old_csum ^ old_correct ^ _sctp_crc(buf, l4)  # carries any checksum error through
    buf[l4 + 8 : l4 + 12] = new_csum.to_bytes(4, "little")
    pkt.frame = bytes(buf)
    pkt.key = _put(_put(pkt.key, "tp_src", src), "tp_dst", dst)
    return False


def _set_mpls(pkt: _Pkt, value: int, mask: int) -> bool:
    if pkt.protocol() not in _MPLS_TYPES:
        # skb_mpls_update_lse(): -EINVAL unless skb->protocol is MPLS, which it is
        # not under a second VLAN tag (skb->protocol is the inner tag's TPID).
        return True
    net = pkt.layout()[0] if pkt.l2 else 0
    frame = pkt.frame
    if net is None or len(frame) < net + 4:
        return True
    lse = _masked(int.from_bytes(frame[net : net + 4], "big"), value, mask)
    pkt.frame = frame[:net] + lse.to_bytes(4, "big") + frame[net + 4 :]
    pkt.key = _put(pkt.key, "mpls_lse0", lse)
    return False


def _set_priority(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    pkt.key = _put(pkt.key, "priority", _masked(_get(pkt.key, "priority"), values[0], masks[0]))
    return False


def _set_skb_mark(pkt: _Pkt, values: tuple[int, ...], masks: tuple[int, ...]) -> bool:
    pkt.key = _put(pkt.key, "skb_mark", _masked(_get(pkt.key, "skb_mark"), values[0], masks[0]))
    return False


_Setter = Callable[[_Pkt, tuple[int, ...], tuple[int, ...]], bool]
_SETTERS: dict[type, _Setter] = {
    Ethernet: _set_eth,
    Ipv4: _set_ipv4,
    Ipv6: _set_ipv6,
    Tcp: _set_tcp,
    Udp: _set_udp,
    Sctp: _set_sctp,
    Priority: _set_priority,
    SkbMark: _set_skb_mark,
}
_CT_ATTRS = frozenset((CtState, CtZone, CtMark, CtLabels, CtTupleIpv4, CtTupleIpv6))
