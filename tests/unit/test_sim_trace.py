"""The simulator's trace hook (odp.sim.trace): which events a frame causes, in
which order and at which depth, and that tracing changes nothing."""

from __future__ import annotations

import struct

from odp.actions import Actions, Meter, Output, Recirc
from odp.datapath import Connection, Datapath
from odp.keys import RecircId
from odp.records import MeterBand, UpcallKind, VportKind
from odp.sim import Host, Network, Tracer, observing
from odp.sim.datapath import SimBackend, SimDatapath
from odp.sim.trace import (
    ActionExecuted,
    Drop,
    Event,
    Extract,
    Hit,
    Miss,
    Receive,
    Recirculate,
    Underlay,
    Upcall,
)
from odp.sim.trace import Output as OutputEvent


def udp_frame(dst_ip: int = 0x0A000002, payload: bytes = b"hello") -> bytes:
    udp = struct.pack("!HHHH", 1234, 80, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, 0x0A000001, dst_ip)
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + udp


FRAME = udp_frame()
MATCH = "in_port(1),eth(),eth_type(0x0800),ipv4()"


def one_host() -> tuple[Host, Datapath, SimDatapath]:
    host = Host("t")
    dp = Connection(SimBackend(host)).create_datapath("d")
    for name in ("a", "b", "c"):
        host.add_interface(name)
        dp.add_vport(name)  # ports 1, 2, 3
    return host, dp, host.datapaths["d"]


def shape(events: list[Event]) -> list[tuple[int, str]]:
    return [(e.depth, type(e).__name__) for e in events]


def test_hit() -> None:
    host, dp, sim = one_host()
    dp.add_flow(MATCH, "2")
    events = sim.trace(1, FRAME)
    assert shape(events) == [(0, "Receive"), (1, "Extract"), (1, "Hit"), (1, "ActionExecuted"), (1, "Output")]
    rx, key, hit, act, out = events
    assert isinstance(rx, Receive) and (rx.datapath, rx.port, rx.port_name, rx.packet, rx.tunnel) == (
        "d",
        1,
        "a",
        FRAME,
        None,
    )
    assert isinstance(key, Extract) and "in_port(1)" in str(key.key) and "udp(src=1234,dst=80)" in str(key.key)
    assert isinstance(hit, Hit) and str(hit.flow) == str(dp.flows()[0].match) and str(hit.actions) == "2"
    assert isinstance(act, ActionExecuted) and act.action == Output(2)
    assert isinstance(out, OutputEvent) and (out.port, out.port_name, out.kind, out.packet) == (
        2,
        "b",
        VportKind.NETDEV,
        FRAME,
    )
    # The traced frame went where an untraced one goes, and was counted the same.
    assert host.interface("b").receive() == [FRAME]
    host.interface("a").inject(FRAME)
    assert host.interface("b").receive() == [FRAME]
    assert dp.flows()[0].stats.packets == 2 and sim.observer is None


def test_miss_with_and_without_a_listener() -> None:
    _, dp, sim = one_host()
    events = sim.trace("a", FRAME)
    assert shape(events) == [(0, "Receive"), (1, "Extract"), (1, "Miss"), (1, "Upcall")]
    assert isinstance(events[2], Miss)
    up = events[3]
    assert isinstance(up, Upcall) and (up.kind, up.pid, up.delivered) == (UpcallKind.MISS, 0, False)
    with dp.listen() as listener:
        up = sim.trace(1, FRAME)[-1]
        assert isinstance(up, Upcall) and (up.pid, up.delivered) == (listener.pid, True)  # type: ignore[attr-defined]
        assert len(listener.receive()) == 1


def test_multi_action_flow_reports_each_action_in_order() -> None:
    _, dp, sim = one_host()
    # push_vlan, output, set, output, output to no such port, userspace
    dp.add_flow(MATCH, "push_vlan(vid=10,pcp=0),2,set(ipv4(ttl=9)),3,7,userspace(pid=77)")
    actions = dp.flows()[0].actions
    assert actions is not None and len(actions.items) == 6
    events = sim.trace(1, FRAME)
    assert [e.action for e in events if isinstance(e, ActionExecuted)] == list(actions.items)
    after_hit = [type(e).__name__ for e in events[3:]]
    assert after_hit == [
        "ActionExecuted",  # push_vlan
        "ActionExecuted",
        "Output",
        "ActionExecuted",  # set
        "ActionExecuted",
        "Output",
        "ActionExecuted",
        "Drop",
        "ActionExecuted",  # userspace
        "Upcall",
    ]
    out2, out3 = (e for e in events if isinstance(e, OutputEvent))
    assert out2.packet[12:16] == b"\x81\x00\x00\x0a" and len(out2.packet) == len(FRAME) + 4
    assert out3.packet[26] == 9  # the TTL set before the second output (tag inline: +4)
    drop = next(e for e in events if isinstance(e, Drop))
    assert drop.reason == "output to port 7: datapath d has no such port"
    up = events[-1]
    assert isinstance(up, Upcall) and (up.kind, up.pid, up.delivered) == (UpcallKind.ACTION, 77, False)


def test_recirculation() -> None:
    _, dp, sim = one_host()
    dp.add_flow(f"recirc_id(0),{MATCH}", Actions.of(Recirc(5)))
    dp.add_flow(f"recirc_id(5),{MATCH}", "3")
    events = sim.trace(1, FRAME)
    assert shape(events) == [
        (0, "Receive"),
        (1, "Extract"),
        (1, "Hit"),
        (1, "ActionExecuted"),
        (1, "Recirculate"),
        (1, "Hit"),
        (1, "ActionExecuted"),
        (1, "Output"),
    ]
    first, recirc, second = events[2], events[4], events[5]
    assert isinstance(first, Hit) and isinstance(second, Hit)
    assert "recirc_id(0)" in str(first.flow) and "recirc_id(0x5)" in str(second.flow)
    assert isinstance(recirc, Recirculate) and recirc.recirc_id == 5
    assert RecircId(5) in recirc.key.attrs
    assert isinstance(events[-1], OutputEvent) and events[-1].port == 3


def test_vxlan_encap_and_decap_across_two_hosts() -> None:
    net = Network()
    a, b = net.host("a", "172.16.0.1"), net.host("b", "172.16.0.2")
    dpa = Connection(SimBackend(a)).create_datapath("dpa")
    dpb = Connection(SimBackend(b)).create_datapath("dpb")
    a.add_interface("veth-a")
    b.add_interface("veth-b")
    pa, va = dpa.add_vport("veth-a").port_no, dpa.add_vport("vx", "vxlan").port_no
    pb, vb = dpb.add_vport("veth-b").port_no, dpb.add_vport("vx", "vxlan").port_no
    dpa.add_flow(f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64)),{va}")
    dpb.add_flow(
        f"tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2),in_port({vb}),eth(),eth_type(0x0800),ipv4()", f"{pb}"
    )
    events = a.datapaths["dpa"].trace(pa, FRAME)
    assert [(e.depth, e.datapath, type(e).__name__) for e in events] == [
        (0, "dpa", "Receive"),
        (1, "dpa", "Extract"),
        (1, "dpa", "Hit"),
        (1, "dpa", "ActionExecuted"),  # set(tunnel)
        (1, "dpa", "ActionExecuted"),  # output
        (1, "dpa", "Output"),
        (2, "dpa", "Underlay"),
        (2, "dpb", "Receive"),
        (3, "dpb", "Extract"),
        (3, "dpb", "Hit"),
        (3, "dpb", "ActionExecuted"),
        (3, "dpb", "Output"),
    ]
    out, underlay, rx = events[5], events[6], events[7]
    assert isinstance(out, OutputEvent) and out.kind == VportKind.VXLAN and out.tp_dst == 4789
    assert out.tunnel is not None and (out.tunnel.tun_id, out.tunnel.ipv4_dst) == (0x2A, 0xAC100002)
    assert isinstance(underlay, Underlay) and underlay.dst_ip == 0xAC100002 and underlay.packet == net.log[0]
    assert isinstance(rx, Receive) and (rx.port, rx.packet) == (vb, FRAME)
    assert rx.tunnel is not None and (rx.tunnel.tun_id, rx.tunnel.ipv4_src, rx.tunnel.egress) == (
        0x2A,
        0xAC100001,
        False,
    )
    assert isinstance(events[8], Extract) and "tun_id=0x2a" in str(events[8].key)
    assert b.interface("veth-b").receive() == [FRAME]
    assert all(d.observer is None for h in (a, b) for d in h.datapaths.values())


def test_drops_say_why() -> None:
    host, dp, sim = one_host()
    vx = dp.add_vport("vx", "vxlan").port_no
    dp.add_flow(MATCH, f"{vx}")  # no set(tunnel(...))
    events = sim.trace(1, FRAME)
    assert isinstance(events[-1], Drop) and "no tunnel metadata" in events[-1].reason
    short = sim.trace(1, FRAME[:12] + b"\x81\x00\x00")  # VLAN tag cut short
    assert shape(short) == [(0, "Receive"), (1, "Drop")]
    dp.set_meter(1, MeterBand(rate=1000, burst=0))
    dp.modify_flow(MATCH, Actions.of(Meter(1), Output(2)))
    events = sim.trace(1, FRAME)
    assert [type(e).__name__ for e in events[-2:]] == ["ActionExecuted", "Drop"]
    assert events[-1].reason == "meter(1): over the rate of its drop band"  # type: ignore[attr-defined]
    assert host.interface("b").receive() == []


def test_an_observer_sees_every_datapath_of_the_hosts_only_while_observing() -> None:
    host, dp, _sim = one_host()
    dp.add_flow(MATCH, "2")
    seen: list[Event] = []

    class Collect(Tracer):
        def emit(self, event: Event) -> None:
            seen.append(event)

    with observing([host], Collect()):
        host.interface("a").inject(FRAME)
    host.interface("a").inject(FRAME)
    assert [type(e).__name__ for e in seen] == ["Receive", "Extract", "Hit", "ActionExecuted", "Output"]
