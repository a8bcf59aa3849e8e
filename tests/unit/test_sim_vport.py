"""The simulator's vport ops (odp.sim.vport, odp.sim.vport_vxlan): each type's
device, send and receive, the registry, and the types that carry no traffic."""

from __future__ import annotations

import struct

import pytest

from odp.actions import Actions, Clone, Output
from odp.datapath import Connection, Datapath
from odp.errors import ExistsError, NotFoundError, NotSupported
from odp.records import VportKind
from odp.sim import Host, Network
from odp.sim.datapath import SimBackend, SimDatapath
from odp.sim.packet import TunnelInfo
from odp.sim.trace import Drop, Tracer, Underlay, observing
from odp.sim.trace import Output as OutputEvent
from odp.sim.vport import CarriesNoTraffic, InternalVport, NetdevVport, SimVport, vport_class, vport_type
from odp.sim.vport_geneve import GeneveVport
from odp.sim.vport_gre import GreVport
from odp.sim.vport_vxlan import VXLAN_DEFAULT_PORT, VxlanVport, decapsulate, encapsulate


def udp_frame(src_mac: int = 0x020000000001, dst_mac: int = 0x020000000002, payload: bytes = b"hello") -> bytes:
    udp = struct.pack("!HHHH", 1234, 80, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, 0x0A000001, 0x0A000002)
    return dst_mac.to_bytes(6, "big") + src_mac.to_bytes(6, "big") + b"\x08\x00" + ip + udp


FRAME = udp_frame()


def setup(host: Host | None = None) -> tuple[Host, Datapath, SimDatapath]:
    host = host if host is not None else Host("t")
    dp = Connection(SimBackend(host)).create_datapath("d")
    return host, dp, host.datapaths["d"]


def egress(dst: int, tun_id: int = 7) -> TunnelInfo:
    return TunnelInfo(tun_id=tun_id, ipv4_dst=dst, ttl=64, flags=0, egress=True)


def test_registry_maps_kinds_to_their_ops() -> None:
    assert vport_class(VportKind.NETDEV) is NetdevVport
    assert vport_class(VportKind.INTERNAL) is InternalVport
    assert vport_class(VportKind.VXLAN) is VxlanVport
    assert vport_class(VportKind.GENEVE) is GeneveVport
    assert vport_class(VportKind.GRE) is GreVport


def test_netdev_vport_sends_onto_its_device_and_receives_from_it() -> None:
    host, dp, sim = setup()
    a, b = host.add_interface("a"), host.add_interface("b")
    pa, pb = dp.add_vport("a").port_no, dp.add_vport("b").port_no
    va, vb = sim.vports[pa], sim.vports[pb]
    assert type(va) is NetdevVport and va.interface is a
    vb.send(sim, FRAME, None)
    assert b.receive() == [FRAME]
    assert (vb.counters.tx_packets, vb.counters.tx_bytes) == (1, len(FRAME))
    # Receive: the device's frames go to the datapath (here a flow back out of b).
    dp.add_flow(f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"{pb}")
    a.inject(FRAME)
    assert (va.counters.rx_packets, va.counters.rx_bytes) == (1, len(FRAME))
    assert b.receive() == [FRAME]


def test_netdev_vport_needs_a_free_existing_device() -> None:
    host, dp, _ = setup()
    with pytest.raises(NotFoundError, match="no network device named 'nope'"):
        dp.add_vport("nope")
    host.add_interface("a")
    dp.add_vport("a")
    with pytest.raises(ExistsError, match="already attached"):
        dp.add_vport("a", port_no=9)


def test_internal_vport_has_a_device_of_its_own() -> None:
    host, dp, sim = setup()
    port = dp.add_vport("i0", "internal").port_no
    vport = sim.vports[port]
    assert type(vport) is InternalVport and host.interfaces["i0"] is vport.interface
    assert vport.interface.owned_by_vport
    vport.send(sim, FRAME, egress(1))  # tunnel metadata means nothing to a device
    assert host.interface("i0").receive() == [FRAME]
    assert type(sim.vports[0]) is InternalVport  # the local port
    dp.delete_vport("i0")
    assert "i0" not in host.interfaces


def two_hosts() -> tuple[Network, SimDatapath, VxlanVport, SimDatapath, VxlanVport]:
    net = Network()
    a, b = net.host("a", "172.16.0.1"), net.host("b", "172.16.0.2")
    _, dpa, sa = setup(a)
    _, dpb, sb = setup(b)
    va = sa.vports[dpa.add_vport("vx", "vxlan").port_no]
    vb = sb.vports[dpb.add_vport("vx", "vxlan", dst_port=4790).port_no]
    assert isinstance(va, VxlanVport) and isinstance(vb, VxlanVport)
    return net, sa, va, sb, vb


def test_vxlan_send_encapsulates_onto_the_underlay() -> None:
    net, sa, va, sb, vb = two_hosts()
    assert va.udp_port == VXLAN_DEFAULT_PORT and vb.udp_port == 4790
    tun = TunnelInfo(tun_id=0x2A, ipv4_dst=0xAC100002, tp_dst=4790, ttl=64, egress=True)
    va.send(sa, FRAME, tun)
    assert len(net.log) == 1 and sa.host.underlay_sent == net.log
    expected = encapsulate(FRAME, tun, vport_dst_port=4789, src_mac=sa.host.mac, dst_mac=sb.host.mac, src_ip=sa.host.ip)
    assert net.log[0] == expected
    assert (va.counters.tx_packets, va.counters.tx_bytes) == (1, len(FRAME))


def test_vxlan_send_without_egress_metadata_drops() -> None:
    net, sa, va, _, _ = two_hosts()
    with observing([sa.host], Tracer()) as tracer:
        va.send(sa, FRAME, None)
        va.send(sa, FRAME, TunnelInfo(tun_id=1, egress=True))  # no destination
    assert list(net.log) == [] and va.counters.tx_errors == 2 and va.counters.tx_packets == 0
    # Without a destination the output happens and the driver's route lookup fails.
    assert [type(e) for e in tracer.events] == [Drop, OutputEvent, Drop]
    assert "no tunnel metadata" in tracer.events[0].reason  # type: ignore[attr-defined]
    assert "no underlay route" in tracer.events[2].reason  # type: ignore[attr-defined]


def test_vxlan_receive_underlay_takes_only_its_udp_port() -> None:
    _net, sa, _va, sb, vb = two_hosts()
    listener = Connection(SimBackend(sb.host)).datapath("d").listen()
    outer = encapsulate(FRAME, egress(0xAC100002, 5), vport_dst_port=4789, src_mac=1, dst_mac=2, src_ip=sa.host.ip)
    assert outer is not None
    assert not vb.receive_underlay(sb, outer)  # to 4789, vb listens on 4790
    to_vb = encapsulate(FRAME, egress(0xAC100002, 5), vport_dst_port=4790, src_mac=1, dst_mac=2, src_ip=sa.host.ip)
    assert to_vb is not None
    assert vb.receive_underlay(sb, to_vb)
    assert (vb.counters.rx_packets, vb.counters.rx_bytes) == (1, len(FRAME))
    (miss,) = listener.receive()
    inner, tun = decapsulate(to_vb, local_ips={sb.host.ip or 0}, vport_dst_port=4790, vxlan_mac=None)  # type: ignore[misc]
    assert miss.packet == inner == FRAME
    assert miss.in_port == vb.port_no and f"tun_id=0x5,src=172.16.0.1,dst=172.16.0.2,ttl=64,tp_src={tun.tp_src}" in str(
        miss.key
    )
    # Addressed to the vport but broken (no VXLAN I flag): dropped and counted, consumed.
    broken = bytearray(to_vb)
    broken[42] = 0  # the flags byte; the UDP checksum is 0 (none)
    assert vb.receive_underlay(sb, bytes(broken))
    assert vb.counters.rx_dropped == 1 and listener.receive() == []


def test_host_offers_underlay_frames_to_tunnel_vports() -> None:
    _net, sa, va, sb, vb = two_hosts()
    listener = Connection(SimBackend(sb.host)).datapath("d").listen()
    va.send(sa, FRAME, TunnelInfo(tun_id=9, ipv4_dst=0xAC100002, tp_dst=4790, egress=True))
    assert [u.packet for u in listener.receive()] == [FRAME]
    va.send(sa, FRAME, TunnelInfo(tun_id=9, ipv4_dst=0xAC100002, tp_dst=4000, egress=True))
    assert listener.receive() == [] and vb.counters.rx_packets == 1  # no vport on UDP port 4000


def test_listeners_belong_to_the_host() -> None:
    host, dp, _sim = setup()
    with dp.listen() as listener:
        assert host.listeners == {listener.pid: listener}  # type: ignore[attr-defined]
        other = Host("other")
        assert other.listeners == {}
    assert host.listeners == {}


# ---------------------------------------------------------------------------
# Types the simulator cannot carry traffic through (none today: gre stands in,
# with its ops unregistered)
# ---------------------------------------------------------------------------


@pytest.fixture
def gre_without_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    from odp.sim import vport as vport_module

    monkeypatch.delitem(vport_module._TYPES, VportKind.GRE)
    assert not vport_class(VportKind.GRE).carries_traffic


@pytest.mark.usefixtures("gre_without_traffic")
@pytest.mark.parametrize("kind", ["gre"])
def test_output_to_a_type_without_traffic_is_refused_at_install(kind: str) -> None:
    host, dp, sim = setup()
    host.add_interface("a")
    pa = dp.add_vport("a").port_no
    tp = dp.add_vport("t0", kind).port_no  # created, as on the kernel
    assert type(sim.vports[tp]) is CarriesNoTraffic
    match = f"in_port({pa}),eth(),eth_type(0x0800),ipv4()"
    with pytest.raises(NotSupported, match=f"{kind} vports"):
        dp.add_flow(match, f"{tp}")
    with pytest.raises(NotSupported, match=f"{kind} vports"):
        dp.add_flow(match, Actions.of(Clone(Actions.of(Output(tp)))))
    assert dp.flows() == []
    dp.add_flow(match, f"{pa}")
    with pytest.raises(NotSupported, match=f"{kind} vports"):
        dp.modify_flow(match, f"{pa},{tp}")
    assert str(dp.flows()[0].actions) == f"{pa}"
    with pytest.raises(NotSupported, match=f"{kind} vports"):
        dp.execute(FRAME, Actions.of(Output(pa), Output(tp)))
    assert host.interface("a").receive() == []  # refused before any action ran
    host.interface("a").inject(FRAME)  # the packet path is unaffected


@pytest.mark.usefixtures("gre_without_traffic")
def test_a_type_without_traffic_is_refused_on_a_port_a_flow_outputs_to() -> None:
    host, dp, sim = setup()
    host.add_interface("a")
    pa = dp.add_vport("a").port_no
    dp.add_flow(f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", "5")
    with pytest.raises(NotSupported, match=r"gre vports .*outputs to port 5"):
        dp.add_vport("gr", "gre", port_no=5)
    assert "gr" not in host.interfaces and 5 not in sim.vports
    assert dp.add_vport("gr", "gre", port_no=6).port_no == 6
    assert dp.add_vport("vx", "vxlan", port_no=5).port_no == 5


@pytest.mark.usefixtures("gre_without_traffic")
def test_a_type_without_traffic_drops_if_ever_reached() -> None:
    # Only a flow restored from a saved state can get there: a drop, never a raise.
    _, dp, sim = setup()
    vport = sim.vports[dp.add_vport("gr", "gre").port_no]
    with observing([sim.host], Tracer()) as tracer:
        vport.send(sim, FRAME, None)
    assert vport.counters.tx_dropped == 1
    assert [type(e) for e in tracer.events] == [Drop]


def test_a_new_type_is_one_registered_subclass(monkeypatch: pytest.MonkeyPatch) -> None:
    from odp.sim import vport as vport_module

    sent: list[tuple[bytes, TunnelInfo | None]] = []

    class Loopback(SimVport):
        __slots__ = ()

        def send(self, dp: SimDatapath, frame: bytes, tunnel: TunnelInfo | None) -> None:
            sent.append((frame, tunnel))
            obs = dp.observer
            if obs is not None:
                obs.emit(OutputEvent(obs.depth, dp.name, self.port_no, self.name, self.kind, frame))

    monkeypatch.setitem(vport_module._TYPES, VportKind.GRE, Loopback)
    assert vport_type(VportKind.GRE)(Loopback) is Loopback
    host, dp, sim = setup()
    host.add_interface("a")
    pa = dp.add_vport("a").port_no
    gre = dp.add_vport("gr", "gre").port_no
    assert type(sim.vports[gre]) is Loopback
    dp.add_flow(f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", f"{gre}")
    events = sim.trace(pa, FRAME)
    assert sent == [(FRAME, None)]
    assert any(isinstance(e, OutputEvent) and e.port == gre for e in events)
    assert not any(isinstance(e, Underlay) for e in events)
