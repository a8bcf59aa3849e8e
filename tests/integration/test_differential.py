"""Differential testing: random flow tables and packets on both backends, compared.

Hypothesis builds a flow table whose flows share one mask (so no two flows
overlap and the winner is never left to chance) and a few packets; each case
runs on the simulator and on the kernel, and the outcomes must be identical:
which flows were accepted (or the error class), what came out of each port,
and the key of every miss.  It needs the kernel backend (run it in the VM with
``--backend=kernel`` or ``all``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from odp.errors import OdpError
from odp.testing import PacketHarness
from odp.testing.plugin import kernel_unavailable_reason, make_topology

SRCS = ["10.0.0.1", "10.0.0.2", "10.0.1.1", "192.168.0.1"]
DSTS = ["10.0.0.9", "10.0.2.9", "172.16.0.1"]
PORTS = [53, 80, 443]

# Mask templates: every flow of one case uses the same template.
TEMPLATES = [
    "in_port(1),eth(),eth_type(0x0800),ipv4(src={src})",
    "in_port(1),eth(),eth_type(0x0800),ipv4(src={src}/255.255.255.0,proto=17),udp(dst={port})",
    "in_port(1),eth(),eth_type(0x0800),ipv4(dst={dst}/255.255.0.0)",
    "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst={port}),tcp_flags(0/0)",
    "in_port(1),eth(dst=02:00:00:00:00:{mac:02x}),eth_type(0x0800),ipv4()",
]
ACTIONS = ["2", "3", "2,3", "drop", "set(ipv4(ttl=9)),2", "push_vlan(vid=7,pcp=1),3", "trunc(30),2,3",
           "clone(set(eth(src=02:00:00:00:00:aa)),2),3", "check_pkt_len(size=70,gt(2),le(3))"]  # fmt: skip


@dataclass(frozen=True)
class Case:
    template: str
    flows: tuple[tuple[dict[str, object], str], ...]
    packets: tuple[bytes, ...]


def _packet(kind: int, src: str, dst: str, port: int, mac: int) -> bytes:
    eth = Ether(src="02:00:00:00:00:01", dst=f"02:00:00:00:00:{mac:02x}")
    if kind == 0:
        return bytes(eth / IP(src=src, dst=dst, ttl=64) / UDP(sport=1000, dport=port) / (b"u" * 20))
    if kind == 1:
        return bytes(eth / IP(src=src, dst=dst, ttl=64) / TCP(sport=1000, dport=port, flags="S"))
    if kind == 2:
        return bytes(eth / Dot1Q(vlan=5) / IP(src=src, dst=dst) / UDP(sport=1, dport=port))
    return bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=src, pdst=dst))


fields = st.fixed_dictionaries(
    {
        "src": st.sampled_from(SRCS),
        "dst": st.sampled_from(DSTS),
        "port": st.sampled_from(PORTS),
        "mac": st.integers(2, 4),
    }
)
cases = st.builds(
    Case,
    template=st.sampled_from(TEMPLATES),
    flows=st.lists(st.tuples(fields, st.sampled_from(ACTIONS)), max_size=4).map(tuple),
    packets=st.lists(
        st.builds(
            _packet,
            st.integers(0, 3),
            st.sampled_from(SRCS),
            st.sampled_from(DSTS),
            st.sampled_from(PORTS),
            st.integers(2, 4),
        ),
        min_size=1,
        max_size=4,
    ).map(tuple),
)


def run_case(backend: str, case: Case) -> list[object]:
    """Everything observable about one case on one backend, in order."""
    topo = make_topology(backend)
    outcome: list[object] = []
    try:
        dp = topo.create_datapath("odpdiff")
        ports = [topo.add_port(dp, f"odpd{i}") for i in (1, 2, 3)]
        harness = PacketHarness(topo)
        harness.register(*ports)
        with dp.listen() as listener:
            for values, actions in case.flows:
                try:
                    dp.add_flow(case.template.format(**values), actions)
                    outcome.append(("flow", "ok"))
                except OdpError as exc:
                    outcome.append(("flow", type(exc).__name__))
            for frame in case.packets:
                harness.send_packet(ports[0], frame)
                out = tuple(tuple(sorted(harness.received(p))) for p in ports[1:])
                misses = tuple(sorted(str(u.key) for u in listener.receive(timeout=0.3) if not topo.is_noise(u.packet)))
                outcome.append(("packet", out, misses))
            outcome.append(("flows", sorted(str(f.match) + " " + str(f.actions) for f in dp.flows())))
            outcome.append(("stats", sorted((f.stats.packets, f.stats.bytes) for f in dp.flows())))
    finally:
        topo.close()
    return outcome


@pytest.mark.kernel_only("compares the simulator with the kernel, so it needs the kernel")
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case=cases)
def test_simulator_agrees_with_kernel(odp_backend: str, case: Case) -> None:
    reason = kernel_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    assert run_case("sim", case) == run_case("kernel", case)
