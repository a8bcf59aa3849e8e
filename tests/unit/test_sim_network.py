"""Frame storage of the simulated world (odp.sim.network): bounded queues and captures.

A 64-host VXLAN mesh once kept every frame forever (314 MB more after 100k
packets, issue 15): interface queues now drop and count what finds them full,
captures keep the newest frames and count the rest.
"""

from __future__ import annotations

import pytest

from odp.datapath import Connection
from odp.demo import udp_frame
from odp.sim import Network
from odp.sim.datapath import SimBackend
from odp.sim.network import DEFAULT_CAPTURE_LIMIT, DEFAULT_QUEUE_LIMIT, Host
from odp.testing.topology import SimUnderlayPort


def frame(i: int) -> bytes:
    return udp_frame("02:00:00:00:00:0a", "02:00:00:00:00:0b", "10.0.0.1", "10.0.0.2", 1000 + i, 80, b"x")


def forwarding_host(**kw: object) -> Host:
    host = Host("h", **kw)  # type: ignore[arg-type]
    host.add_interface("in")
    host.add_interface("out")
    dp = Connection(SimBackend(host)).create_datapath("dp")
    dp.add_vport("in")
    dp.add_vport("out")
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    return host


def vxlan_pair(limit: int | None) -> tuple[Network, Host, Host]:
    net = Network(capture_limit=limit)
    a, b = net.host("a", "172.16.0.1", capture_limit=limit), net.host("b", "172.16.0.2", capture_limit=limit)
    dp_a, dp_b = (Connection(SimBackend(h)).create_datapath("dp") for h in (a, b))
    a.add_interface("veth")
    b.add_interface("veth")
    dp_a.add_vport("veth")
    dp_a.add_vport("vx", "vxlan")
    dp_b.add_vport("veth")
    dp_b.add_vport("vx", "vxlan")
    dp_a.add_flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4()", "set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64,flags(key))),2"
    )
    dp_b.add_flow(
        "tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2,flags(+key)),in_port(2),eth(),eth_type(0x0800),ipv4()", "1"
    )
    return net, a, b


def test_documented_defaults() -> None:
    host = Host("h")
    iface = host.add_interface("v")
    assert iface.sent.limit == DEFAULT_QUEUE_LIMIT == 1024
    assert host.underlay_sent.maxlen == Network().log.maxlen == DEFAULT_CAPTURE_LIMIT == 1024


def test_queue_keeps_unread_frames_and_counts_what_it_drops() -> None:
    host = forwarding_host(queue_limit=3)
    inp, out = host.interface("in"), host.interface("out")
    for i in range(5):
        inp.inject(frame(i))
    assert out.sent.dropped == 2
    with pytest.warns(RuntimeWarning, match=r"2 frame\(s\) sent out of out on host h were dropped"):
        got = out.receive()
    assert got == [frame(0), frame(1), frame(2)]  # the oldest, unread frames are the ones kept
    inp.inject(frame(5))
    assert out.receive() == [frame(5)]  # no new loss: no warning (pytest's config keeps warnings visible)
    assert out.sent.dropped == 2


def test_queue_of_default_size_loses_nothing_a_test_sends() -> None:
    host = forwarding_host()
    for i in range(DEFAULT_QUEUE_LIMIT):
        host.interface("in").inject(frame(i))
    assert host.interface("out").receive() == [frame(i) for i in range(DEFAULT_QUEUE_LIMIT)]
    assert host.interface("out").sent.dropped == 0


def test_unbounded_queue_on_request() -> None:
    host = forwarding_host(queue_limit=None)
    for i in range(DEFAULT_QUEUE_LIMIT + 5):
        host.interface("in").inject(frame(i))
    assert len(host.interface("out").receive()) == DEFAULT_QUEUE_LIMIT + 5


def test_underlay_captures_are_rings_with_counted_overflow() -> None:
    net, a, b = vxlan_pair(limit=4)
    port = SimUnderlayPort(a)
    for i in range(3):
        a.interface("veth").inject(frame(i))
    first = port.receive()
    assert len(first) == 3
    for i in range(3, 10):
        a.interface("veth").inject(frame(i))
    assert len(b.interface("veth").receive()) == 10  # delivered end to end
    for capture in (net.log, a.underlay_sent):
        assert (len(capture), capture.total, capture.dropped) == (4, 10, 6)
    assert list(net.log) == list(a.underlay_sent)
    assert b.underlay_sent.total == 0
    again = port.receive()  # 7 were sent since the last read; the ring kept the newest 4 of them
    assert again == list(a.underlay_sent)
    assert port.receive() == []


def test_unbounded_captures_on_request() -> None:
    net, a, _ = vxlan_pair(limit=None)
    for i in range(DEFAULT_CAPTURE_LIMIT + 1):
        a.interface("veth").inject(frame(i))
    assert len(net.log) == len(a.underlay_sent) == DEFAULT_CAPTURE_LIMIT + 1
    assert net.log.dropped == 0
