"""Packets on the real kernel: veth topologies, execute, misses, userspace actions, listeners."""

from __future__ import annotations

import time

import pytest
from kernel_helpers import unique
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from odp.actions import Actions, Output, Userspace
from odp.constants import DpFeature
from odp.datapath import Datapath
from odp.errors import InvalidFlow
from odp.kernel.backend import KernelBackend
from odp.kernel.upcall import KernelUpcallListener
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match, Tcp, TcpFlags
from odp.records import UpcallKind
from odp.testing.kernel_topology import KernelPort, KernelTopology

FRAME = bytes(
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1, dport=2)
    / (b"x" * 18)
)


def wait_for(port: KernelPort, timeout: float = 2.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = port.receive(0.2)
        if got:
            return got
    return []


def listen(dp: Datapath, **kw: str) -> KernelUpcallListener:
    listener = dp.backend.upcall_listener(dp.name, **kw)  # type: ignore[call-arg]
    assert isinstance(listener, KernelUpcallListener)
    return listener


def test_topology_ports_forward_through_a_flow(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    p1, p2 = topo.add_port(dp, unique("kp")), topo.add_port(dp, unique("kp"))
    assert (p1.port_no, p2.port_no) == (1, 2)
    dp.add_flow(f"in_port({p1.port_no}),eth(),eth_type(0x0800),ipv4()", f"{p2.port_no}")
    p1.send(FRAME)
    got = [f for f in wait_for(p2) if not topo.is_noise(f)]
    assert got[:1] == [FRAME]
    assert p1.receive(0.1) == []  # nothing comes back on the ingress port
    (flow,) = dp.flows()
    assert flow.stats.packets == 1 and flow.stats.bytes == len(FRAME) and flow.used is not None
    assert dp.info().stats.hit == 1


def test_vlan_tag_survives_offload(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    p1, p2 = topo.add_port(dp, unique("kp")), topo.add_port(dp, unique("kp"))
    tagged = bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=10) / IP() / UDP() / (b"y" * 20)
    )
    dp.add_flow(f"in_port({p1.port_no}),eth(),eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4())", "2")
    p1.send(tagged)
    got = [f for f in wait_for(p2) if not topo.is_noise(f)]
    assert got[:1] == [tagged]


def test_execute_outputs_a_packet(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    p1 = topo.add_port(dp, unique("kp"))
    dp.execute(FRAME, [Output(p1.port_no)])
    got = [f for f in wait_for(p1) if not topo.is_noise(f)]
    assert got[:1] == [FRAME]
    assert dp.info().stats.hit == 0  # EXECUTE touches no flow and no counter


def test_execute_refuses_short_packets(dp: Datapath) -> None:
    with pytest.raises(InvalidFlow, match="shorter"):
        dp.execute(b"\x00" * 10, [Output(1)])


def test_execute_with_in_port_out_of_range(dp: Datapath) -> None:
    with pytest.raises(InvalidFlow) as info:
        dp.execute(FRAME, [Output(1)], key=Match(InPort(70000)))
    assert "EINVAL" in str(info.value)


def test_miss_upcall(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    p1 = topo.add_port(dp, unique("kp"))
    with listen(dp) as listener:
        assert dp.vport(p1.port_no).info().upcall_pids == (listener.pid,)
        assert dp.vport(0).info().upcall_pids == (listener.pid,)
        frame = bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / TCP(sport=1000, dport=80, flags="S")
        )
        p1.send(frame)
        ups = [u for u in listener.receive(timeout=3.0) if not topo.is_noise(u.packet)]
        assert ups, "no miss upcall"
        up = ups[0]
        assert up.kind == UpcallKind.MISS and up.in_port == p1.port_no and up.dp_ifindex == dp.ifindex
        assert up.packet == frame
        ipv4 = up.key.get(Ipv4)
        tcp = up.key.get(Tcp)
        assert ipv4 is not None and ipv4.dst.value == 0x0A000002 and ipv4.proto.value == 6
        assert tcp is not None and tcp.dst.value == 80
        # The upcall key is exact in every field (ct_state's 32 bits too), which no flow
        # may be: a flow is made of the attributes that matter.
        with pytest.raises(InvalidFlow):
            dp.add_flow(up.key, [Output(0)])
        attrs = [a for a in up.key.attrs if isinstance(a, (InPort, Ethernet, EthType, Ipv4, Tcp, TcpFlags))]
        dp.add_flow(Match(*attrs), [Output(0)])
        p1.send(frame)
        deadline = time.monotonic() + 3.0
        while dp.info().stats.hit < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dp.info().stats.hit == 1 and dp.info().stats.missed >= 1
    assert dp.vport(p1.port_no).info().upcall_pids == (0,)
    assert dp.vport(0).info().upcall_pids == (0,)


def test_listener_follows_vports_created_later(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    with listen(dp) as listener:
        p1 = topo.add_port(dp, unique("kp"))
        listener.receive(timeout=0.5)  # processes the vport event
        assert dp.vport(p1.port_no).info().upcall_pids == (listener.pid,)
        p1.send(FRAME)
        ups = [u for u in listener.receive(timeout=3.0) if not topo.is_noise(u.packet)]
        assert ups and ups[0].in_port == p1.port_no


def test_userspace_action_upcall(dp: Datapath) -> None:
    with listen(dp) as listener:
        dp.execute(FRAME, Actions.of(Userspace(pid=listener.pid, userdata=b"\x01\x02\x03\x04")))
        ups = listener.receive(timeout=3.0)
        assert len(ups) == 1
        up = ups[0]
        assert up.kind == UpcallKind.ACTION and up.userdata == b"\x01\x02\x03\x04" and up.packet == FRAME


def test_per_cpu_listener(topo: KernelTopology, backend: KernelBackend) -> None:
    per_cpu = int(DpFeature.DISPATCH_UPCALL_PER_CPU)
    if not backend.supported_features() & per_cpu:
        pytest.skip("this kernel has no per-CPU upcall dispatch")
    dp = topo.create_datapath(unique("kdp"), features=per_cpu)
    p1 = topo.add_port(dp, unique("kp"))
    with listen(dp) as listener:
        assert listener.dispatch == "per-cpu"
        assert dp.vport(p1.port_no).info().upcall_pids == (0,)  # vports are not touched
        p1.send(FRAME)
        ups = [u for u in listener.receive(timeout=3.0) if not topo.is_noise(u.packet)]
        assert ups and ups[0].kind == UpcallKind.MISS and ups[0].in_port == p1.port_no
    assert dp.info().features == per_cpu


def test_listener_overflow_counts_lost_and_keeps_going(topo: KernelTopology) -> None:
    dp = topo.create_datapath(unique("kdp"))
    p1 = topo.add_port(dp, unique("kp"))
    with listen(dp) as listener:
        import socket

        # Shrink the upcall socket's buffer so that a burst overflows it.
        sock = socket.socket(fileno=listener.fileno())
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        finally:
            sock.detach()
        for i in range(300):
            p1.send(
                bytes(
                    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                    / IP(dst=f"10.0.{i // 250}.{i % 250}")
                    / UDP()
                    / (b"z" * 200)
                )
            )
        time.sleep(0.5)
        got = []
        for _ in range(10):
            more = listener.receive(timeout=0.3)
            if not more:
                break
            got += more
        assert listener.lost >= 1
        assert len(got) < 300
        p1.send(FRAME)
        assert listener.receive(timeout=3.0), "the listener works after an overflow"
    assert dp.info().stats.lost >= 1
