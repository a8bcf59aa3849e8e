"""What the simulator does with a packet, as events: the analogue of the kernel's
tracepoints (``net/openvswitch/openvswitch_trace.h``).

A datapath with an observer (a :class:`Tracer`, ``SimDatapath.observer``)
reports, in order: the frame's arrival on a vport (:class:`Receive`), the key
extracted from it (:class:`Extract`), the flow table lookup (:class:`Hit` /
:class:`Miss`), each action executed (:class:`ActionExecuted`), recirculation
(:class:`Recirculate`), conntrack's decision (:class:`Conntrack`), what leaves a vport (:class:`Output`, and
:class:`Underlay` for the outer frame a tunnel vport puts on the underlay),
upcalls (:class:`Upcall`) and drops with their reason (:class:`Drop`).

Events are small immutable values.  ``depth`` nests them the way the packet
went: the events caused by a receive are one deeper than the :class:`Receive`,
those caused by an output (an encapsulated frame and the datapath that
receives it) one deeper than the :class:`Output`.

Without an observer each event site costs one ``if observer is not None``.
:func:`observing` sets an observer on every datapath of some hosts for the
duration of a ``with`` block; ``SimDatapath.trace(port, frame)`` is the short
way to get the events of one frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from odp.actions import Action, Actions
from odp.keys import Match
from odp.records import UpcallKind, VportKind
from odp.sim.packet import TunnelInfo

if TYPE_CHECKING:
    from odp.sim.network import Host

__all__ = [
    "ActionExecuted",
    "Conntrack",
    "Drop",
    "Event",
    "Extract",
    "Hit",
    "Miss",
    "Observer",
    "Output",
    "Receive",
    "Recirculate",
    "Tracer",
    "Underlay",
    "Upcall",
    "observing",
]


@dataclass(frozen=True, slots=True)
class Event:
    #: Nesting of the event in the packet's path (see the module doc).
    depth: int
    #: The datapath the event happened in.
    datapath: str


@dataclass(frozen=True, slots=True)
class Receive(Event):
    """A frame arrives on vport ``port`` (``ovs_vport_receive()``)."""

    port: int
    port_name: str
    packet: bytes
    #: The ingress tunnel metadata a tunnel vport attached, else None.
    tunnel: TunnelInfo | None = None


@dataclass(frozen=True, slots=True)
class Extract(Event):
    """The flow key extracted from a received frame (``ovs_flow_key_extract()``)."""

    key: Match


@dataclass(frozen=True, slots=True)
class Hit(Event):
    """The lookup found a flow (``ovs_flow_tbl_lookup_stats()``)."""

    #: The flow as a dump reports it (masked key and mask).
    flow: Match
    ufid: bytes | None
    actions: Actions


@dataclass(frozen=True, slots=True)
class Miss(Event):
    """No flow matches: the packet becomes a MISS upcall."""


@dataclass(frozen=True, slots=True)
class ActionExecuted(Event):
    """One action is about to run (``do_execute_actions()``)."""

    action: Action


@dataclass(frozen=True, slots=True)
class Recirculate(Event):
    """A ``recirc`` action looks the packet up again with ``key``."""

    recirc_id: int
    key: Match


@dataclass(frozen=True, slots=True)
class Conntrack(Event):
    """``ct(...)`` ran (``ovs_ct_execute()``): ``key`` is the flow key it left -
    ct_state (+new/+est/+rel/+rpl/+inv, +snat/+dnat), ct_zone, ct_mark, ct_label,
    the connection's original tuple, the NATed addresses - or None when conntrack
    kept the packet (a fragment) or NAT dropped it."""

    action: Action
    key: Match | None


@dataclass(frozen=True, slots=True)
class Output(Event):
    """A frame leaves vport ``port`` (``ovs_vport_send()``)."""

    port: int
    port_name: str
    kind: VportKind
    packet: bytes
    #: For a tunnel vport: the egress metadata and the outer UDP destination port.
    tunnel: TunnelInfo | None = None
    tp_dst: int | None = None


@dataclass(frozen=True, slots=True)
class Underlay(Event):
    """A tunnel vport puts an outer frame on the underlay towards ``dst_ip``."""

    packet: bytes
    dst_ip: int


@dataclass(frozen=True, slots=True)
class Upcall(Event):
    """An upcall to netlink port ``pid``; ``delivered`` False when it was lost."""

    kind: UpcallKind
    pid: int
    delivered: bool


@dataclass(frozen=True, slots=True)
class Drop(Event):
    """The packet (or this copy of it) goes no further, for ``reason``."""

    reason: str


class Observer(Protocol):
    """What a datapath reports events to.

    The simulator reads :attr:`depth` to build events and moves it around a
    receive and a tunnel's send; the observer may start it elsewhere than 0.
    """

    depth: int

    def emit(self, event: Event) -> None: ...


class Tracer:
    """The observer that collects the events in a list."""

    def __init__(self) -> None:
        self.depth = 0
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


_O = TypeVar("_O", bound=Observer)


@contextlib.contextmanager
def observing(hosts: Iterable[Host], observer: _O) -> Iterator[_O]:
    """Observe every datapath of ``hosts`` with ``observer`` while the block runs."""
    saved = [(d, d.observer) for h in hosts for d in h.datapaths.values()]
    for d, _ in saved:
        d.observer = observer
    try:
        yield observer
    finally:
        for d, previous in saved:
            d.observer = previous
