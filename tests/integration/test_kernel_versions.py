"""Kernel versions: each backend behaves as its kernel (odp.kernels), and the
simulator as the kernel it is told to be.

The first tests run on every backend and hold the table in odp.kernels to
the running kernel (in the VM: Debian's 6.1); the rest connect the
simulator as two versions and see the difference.
"""

from __future__ import annotations

import pytest
from packets import udp4

import odp
from odp.actions import Action, Actions, Drop, Hash, Meter, Output, Psample
from odp.datapath import Datapath, UpcallListener
from odp.errors import InvalidArgument, InvalidFlow, NotSupported
from odp.kernels import TESTED, Feature, Kernel
from odp.records import MeterBand, VportUpcallStats
from odp.sim import Host
from odp.testing import PacketHarness, Port

MATCH = "in_port(1),eth(),eth_type(0x0800),ipv4()"

VERSIONED = [
    pytest.param(Drop(), Feature.DROP_ACTION, id="drop"),
    pytest.param(Psample(7, b"ab"), Feature.PSAMPLE_ACTION, id="psample"),
    pytest.param(Hash(1), Feature.HASH_SYM_L4, id="hash-sym-l4"),
]


@pytest.mark.parametrize(("action", "feature"), VERSIONED)
def test_versioned_actions_follow_the_backends_kernel(
    dp: Datapath, ports: list[Port], action: Action, feature: Feature
) -> None:
    actions = Actions([action]) if isinstance(action, Drop) else Actions([action, Output(2)])
    if dp.backend.kernel.has(feature):
        dp.add_flow(MATCH, actions)
        assert dp.flows()[0].actions == actions
    else:
        with pytest.raises(InvalidFlow) as info:
            dp.add_flow(MATCH, actions)
        assert info.value.rule in ("action-needs-newer-kernel", "hash-alg")
        assert dp.flows() == []


def test_vport_upcall_stats_follow_the_backends_kernel(
    dp: Datapath, ports: list[Port], harness: PacketHarness, listener: UpcallListener
) -> None:
    harness.send_packet(ports[0], udp4())
    harness.expect_miss(listener, in_port=1)
    stats = dp.vport(1).info().upcall_stats
    if dp.backend.kernel.has(Feature.VPORT_UPCALL_STATS):
        assert stats is not None and stats.success >= 1 and stats.fail == 0
    else:
        assert stats is None


# -- the simulator as two kernels ---------------------------------------------


def _sim_dp(kernel: str) -> Datapath:
    conn = odp.connect("sim", kernel=kernel)
    dp = conn.create_datapath("dp")
    for name in ("p1", "p2"):
        conn.backend.host.add_interface(name)  # type: ignore[attr-defined]
        dp.add_vport(name)
    return dp


def test_the_simulator_defaults_to_the_tested_kernel() -> None:
    assert odp.connect("sim").backend.kernel == TESTED
    assert odp.connect("sim", kernel="6.1.0-50-amd64").backend.kernel == Kernel(6, 1)
    assert odp.connect("sim", kernel=(6, 12)).backend.kernel == Kernel(6, 12)


@pytest.mark.parametrize(("action", "feature"), VERSIONED)
def test_the_simulator_as_61_refuses_what_611_accepts(action: Action, feature: Feature) -> None:
    actions = Actions([action]) if isinstance(action, Drop) else Actions([action, Output(2)])
    new = _sim_dp("6.11")
    new.add_flow(MATCH, actions)
    old = _sim_dp("6.1")
    with pytest.raises(InvalidFlow) as info:
        old.add_flow(MATCH, actions)
    assert info.value.rule in ("action-needs-newer-kernel", "hash-alg")
    assert old.flows() == []
    # EXECUTE checks the actions the same way.
    with pytest.raises(InvalidFlow):
        old.execute(bytes(udp4()), actions)
    new.execute(bytes(udp4()), actions)


def test_drop_needs_66_not_64() -> None:
    with pytest.raises(InvalidFlow, match=r"needs Linux 6\.6"):
        _sim_dp("6.5").add_flow(MATCH, Actions([Drop()]))
    _sim_dp("6.6").add_flow(MATCH, Actions([Drop()]))


def test_vport_upcall_stats_from_62() -> None:
    for version, reported in (("6.1", False), ("6.2", True)):
        dp = _sim_dp(version)
        host = dp.backend.host  # type: ignore[attr-defined]
        with dp.listen() as listener:
            host.interface("p1").inject(bytes(udp4()))
            assert len(listener.receive()) == 1
        # Closing the listener restored pid 0: an upcall to no one is lost
        # before the kernel counts it ...
        host.interface("p1").inject(bytes(udp4()))
        # ... one to a pid without a socket fails.
        dp.vport("p1").set_upcall_pids((4242,))
        host.interface("p1").inject(bytes(udp4()))
        stats = dp.vport("p1").info().upcall_stats
        assert stats == (VportUpcallStats(success=1, fail=1) if reported else None)


def test_meters_from_415() -> None:
    old = _sim_dp("4.14")
    with pytest.raises(NotSupported, match="ovs_meter"):
        old.set_meter(1, MeterBand(rate=10, burst=10))
    with pytest.raises(InvalidFlow, match=r"needs Linux 4\.15"):
        old.add_flow(MATCH, Actions([Meter(1), Output(2)]))
    new = _sim_dp("4.15")
    new.set_meter(1, MeterBand(rate=10, burst=10))
    new.add_flow(MATCH, Actions([Meter(1), Output(2)]))


def test_a_bad_kernel_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match=r"'6\.x'"):
        odp.connect("sim", kernel="6.x")


def test_a_host_does_not_change_kernels_under_its_datapaths() -> None:
    host = Host("h")
    odp.connect("sim", host=host, kernel="6.6")
    assert host.kernel == Kernel(6, 6)
    conn = odp.connect("sim", host=host)
    assert conn.backend.kernel == Kernel(6, 6)
    conn.create_datapath("dp")
    odp.connect("sim", host=host, kernel="6.6")  # the same kernel: fine
    with pytest.raises(InvalidArgument, match=r"runs Linux 6\.6"):
        odp.connect("sim", host=host, kernel="6.1")
    assert host.kernel == Kernel(6, 6)
