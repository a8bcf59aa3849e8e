"""Datapath life cycle and errors (OVS_DP_CMD_*)."""

from __future__ import annotations

import pytest

from odp import ExistsError, FieldError, NotFoundError
from odp.datapath import Datapath
from odp.records import VportKind
from odp.testing import Topology


def test_create_then_get_by_name_and_ifindex(topology: Topology) -> None:
    dp = topology.create_datapath("odptest")
    assert topology.conn.datapath("odptest").ifindex == dp.ifindex
    assert topology.conn.datapath(dp.ifindex).name == "odptest"


def test_list_contains_created_datapath(topology: Topology) -> None:
    topology.create_datapath("odptest")
    assert "odptest" in [d.name for d in topology.conn.datapaths()]


def test_duplicate_datapath_is_exists_error(topology: Topology, dp: Datapath) -> None:
    with pytest.raises(ExistsError):
        topology.conn.create_datapath("odptest")


def test_deleted_datapath_is_gone(topology: Topology, dp: Datapath) -> None:
    dp.delete()
    with pytest.raises(NotFoundError):
        topology.conn.datapath("odptest")
    assert "odptest" not in [d.name for d in topology.conn.datapaths()]


def test_delete_missing_datapath_is_not_found(topology: Topology) -> None:
    with pytest.raises(NotFoundError):
        topology.conn.delete_datapath("odpnosuch")


def test_get_missing_ifindex_is_not_found(topology: Topology) -> None:
    with pytest.raises(NotFoundError):
        topology.conn.datapath(999999)


@pytest.mark.parametrize("name", ["", "a" * 16, "has space", "a/b"])
def test_bad_datapath_name_is_rejected(topology: Topology, name: str) -> None:
    with pytest.raises(FieldError):
        topology.conn.create_datapath(name)
    assert name not in [d.name for d in topology.conn.datapaths()]


def test_new_datapath_has_zero_stats(dp: Datapath) -> None:
    info = dp.info()
    assert (info.stats.hit, info.stats.missed, info.stats.lost, info.stats.flows) == (0, 0, 0, 0)
    assert info.megaflow.masks == 0


def test_new_datapath_has_local_internal_port_zero(dp: Datapath) -> None:
    local = dp.vport(0).info()
    assert local.name == "odptest"
    assert local.kind == VportKind.INTERNAL
    assert [v.port_no for v in dp.vports()] == [0]
