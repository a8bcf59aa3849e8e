"""Vport life cycle and errors (OVS_VPORT_CMD_*)."""

from __future__ import annotations

import pytest

from odp import ExistsError, InvalidArgument, NotFoundError
from odp.datapath import Datapath
from odp.records import VportKind
from odp.testing import Port, Topology


def test_ports_are_numbered_from_one(ports: list[Port]) -> None:
    assert [p.port_no for p in ports] == [1, 2, 3]


def test_vport_get_by_name_and_number(dp: Datapath, ports: list[Port]) -> None:
    by_name = dp.vport("odpp2").info()
    assert by_name.port_no == 2
    assert by_name.kind == VportKind.NETDEV
    assert dp.vport(2).info().name == "odpp2"


def test_vport_list_in_port_order(dp: Datapath, ports: list[Port]) -> None:
    assert [(v.port_no, v.name) for v in dp.vports()] == [
        (0, "odptest"), (1, "odpp1"), (2, "odpp2"), (3, "odpp3"),
    ]  # fmt: skip


def test_internal_vport(dp: Datapath) -> None:
    vp = dp.add_vport("odpint", VportKind.INTERNAL)
    assert vp.info().kind == VportKind.INTERNAL
    assert "odpint" in [v.name for v in dp.vports()]


def test_vxlan_vport_reports_its_udp_port(dp: Datapath) -> None:
    vp = dp.add_vport("odpvx", "vxlan", dst_port=4790)
    info = vp.info()
    assert info.kind == VportKind.VXLAN
    assert info.dst_port == 4790


def test_vxlan_default_port_is_4789(dp: Datapath) -> None:
    assert dp.add_vport("odpvx", "vxlan").info().dst_port == 4789


def test_duplicate_vport_name_is_exists_error(dp: Datapath, ports: list[Port]) -> None:
    with pytest.raises(ExistsError):
        dp.add_vport("odpint", VportKind.INTERNAL)
        dp.add_vport("odpint", VportKind.INTERNAL)


def test_netdev_vport_on_missing_device_is_not_found(dp: Datapath) -> None:
    with pytest.raises(NotFoundError):
        dp.add_vport("odpnosuch0", VportKind.NETDEV)
    assert [v.port_no for v in dp.vports()] == [0]


def test_delete_vport(dp: Datapath, ports: list[Port]) -> None:
    dp.delete_vport("odpp2")
    assert [v.name for v in dp.vports()] == ["odptest", "odpp1", "odpp3"]
    with pytest.raises(NotFoundError):
        dp.vport("odpp2")


def test_delete_missing_vport_is_not_found(dp: Datapath) -> None:
    with pytest.raises(NotFoundError):
        dp.delete_vport(42)


def test_local_port_cannot_be_deleted(dp: Datapath) -> None:
    with pytest.raises(InvalidArgument):
        dp.delete_vport(0)


def test_requested_port_number_is_used(topology: Topology, dp: Datapath) -> None:
    vp = dp.add_vport("odpint", VportKind.INTERNAL, port_no=7)
    assert vp.port_no == 7
    assert dp.vport(7).info().name == "odpint"


def test_upcall_pids_are_reported(dp: Datapath, ports: list[Port]) -> None:
    info = dp.vport(1).set_upcall_pids((0,))
    assert info.upcall_pids == (0,)


def test_new_vport_stats_are_zero(dp: Datapath, ports: list[Port]) -> None:
    s = dp.vport(1).stats()
    assert (s.rx_packets, s.tx_packets) == (0, 0)
