"""Datapaths and vports on the real kernel (OVS_DP_CMD_*, OVS_VPORT_CMD_*)."""

from __future__ import annotations

import os

import pytest
from kernel_helpers import ip, unique

from odp.constants import DpFeature
from odp.datapath import Connection, Datapath
from odp.errors import ExistsError, FieldError, InvalidArgument, InvalidFlow, NotFoundError, NotSupported
from odp.kernel.backend import KernelBackend
from odp.records import VportKind


def test_create_get_list_delete(conn: Connection) -> None:
    name = unique("kdp")
    dp = conn.create_datapath(name)
    try:
        assert dp.ifindex > 0
        assert conn.datapath(name).ifindex == dp.ifindex
        assert conn.datapath(dp.ifindex).name == name
        assert name in [d.name for d in conn.datapaths()]
        info = dp.info()
        assert (info.stats.hit, info.stats.missed, info.stats.lost, info.stats.flows) == (0, 0, 0, 0)
        assert info.masks_cache_size == 256  # the kernel's default
    finally:
        dp.delete()
    with pytest.raises(NotFoundError, match=name):
        conn.datapath(name)
    with pytest.raises(NotFoundError):
        conn.delete_datapath(name)
    assert name not in [d.name for d in conn.datapaths()]


def test_duplicate_datapath_and_device_names(conn: Connection, dp: Datapath, veth: tuple[str, str]) -> None:
    with pytest.raises(ExistsError, match=r"datapath .* already exists"):
        conn.create_datapath(dp.name)
    with pytest.raises(ExistsError, match="network device"):
        conn.create_datapath(veth[0])


def test_features_round_trip_and_survive_set(conn: Connection) -> None:
    features = int(DpFeature.UNALIGNED | DpFeature.VPORT_PIDS)
    dp = conn.create_datapath(unique("kdp"), features=features)
    try:
        assert dp.info().features == features
        # The kernel resets features a SET does not carry: the backend resends them.
        assert dp.backend.dp_set(dp.name, masks_cache_size=512).features == features
        assert dp.info().masks_cache_size == 512
        assert dp.set_features(int(DpFeature.UNALIGNED)).features == int(DpFeature.UNALIGNED)
    finally:
        dp.delete()


def test_masks_cache_size_must_be_a_power_of_two(dp: Datapath) -> None:
    with pytest.raises(InvalidFlow) as info:
        dp.backend.dp_set(dp.name, masks_cache_size=100)
    assert info.value.rule == "masks-cache-size"
    assert dp.backend.dp_set(dp.name, masks_cache_size=0).masks_cache_size == 0


def test_dp_upcall_pid_is_the_local_port_pid(dp: Datapath) -> None:
    dp.backend.dp_set(dp.name, upcall_pid=4242)
    assert dp.vport(0).info().upcall_pids == (4242,)
    dp.backend.dp_set(dp.name, upcall_pid=0)
    assert dp.vport(0).info().upcall_pids == (0,)


def test_per_cpu_dispatch_feature(backend: KernelBackend, conn: Connection) -> None:
    supported = backend.supported_features()
    per_cpu = int(DpFeature.DISPATCH_UPCALL_PER_CPU)
    name = unique("kdp")
    if not supported & per_cpu:
        with pytest.raises(NotSupported, match="dispatch_upcall_per_cpu"):
            conn.create_datapath(name, features=per_cpu)
        return
    dp = conn.create_datapath(name, features=per_cpu)
    try:
        assert dp.info().features & per_cpu
    finally:
        dp.delete()


def test_unsupported_feature_is_not_supported(backend: KernelBackend, conn: Connection) -> None:
    tc = int(DpFeature.TC_RECIRC_SHARING)
    if backend.supported_features() & tc:
        pytest.skip("this kernel supports tc_recirc_sharing")
    with pytest.raises(NotSupported, match="tc_recirc_sharing"):
        conn.create_datapath(unique("kdp"), features=tc)


def test_local_port_is_internal_port_zero(dp: Datapath) -> None:
    local = dp.vport(0).info()
    assert (local.port_no, local.kind, local.name) == (0, VportKind.INTERNAL, dp.name)
    assert local.dp_ifindex == dp.ifindex
    with pytest.raises(InvalidFlow) as info:
        dp.delete_vport(0)
    assert info.value.rule == "local-port"


def test_internal_vport_life_cycle(dp: Datapath) -> None:
    name = unique("kin")
    vp = dp.add_vport(name, "internal")
    assert vp.port_no == 1 and vp.kind == VportKind.INTERNAL
    info = dp.vport(name).info()
    assert info.port_no == 1 and info.upcall_pids == (0,) and info.ifindex
    assert dp.vport(1).name == name
    assert [v.name for v in dp.vports()] == [dp.name, name]
    deleted = dp.delete_vport(name)
    assert deleted.name == name
    with pytest.raises(NotFoundError, match="no vport"):
        dp.vport(name)
    with pytest.raises(NotFoundError, match="no vport"):
        dp.vport(1)


def test_vport_with_port_number_and_duplicates(dp: Datapath) -> None:
    vp = dp.add_vport(unique("kin"), "internal", port_no=7)
    assert vp.port_no == 7
    with pytest.raises(ExistsError, match="port 7"):
        dp.add_vport(unique("kin"), "internal", port_no=7)
    with pytest.raises(ExistsError):
        dp.add_vport(vp.name, "internal")
    with pytest.raises(FieldError):
        dp.add_vport(unique("kin"), "internal", port_no=70000)


def test_netdev_vport(dp: Datapath, veth: tuple[str, str]) -> None:
    vp = dp.add_vport(veth[0])
    info = vp.info()
    assert info.kind == VportKind.NETDEV and info.name == veth[0]
    with pytest.raises(ExistsError, match="already attached"):
        dp.add_vport(veth[0])
    with pytest.raises(NotFoundError, match="no network device"):
        dp.add_vport(unique("knone"))


def test_netdev_vport_on_another_datapath_is_busy(conn: Connection, dp: Datapath, veth: tuple[str, str]) -> None:
    dp.add_vport(veth[0])
    other = conn.create_datapath(unique("kdp"))
    try:
        with pytest.raises(ExistsError):
            other.add_vport(veth[0])
    finally:
        other.delete()


@pytest.mark.parametrize(("kind", "port"), [("vxlan", 4789), ("geneve", 6081)])
def test_udp_tunnel_vports_report_their_port(dp: Datapath, kind: str, port: int) -> None:
    try:
        vp = dp.add_vport(unique("ktun"), kind, dst_port=port + 1000)
    except NotSupported as exc:
        pytest.skip(f"this kernel has no {kind} vports: {exc}")
    info = vp.info()
    assert info.kind == VportKind(kind) and info.dst_port == port + 1000
    assert str(info) == f"port {info.port_no}: {info.name} (type: {kind}, dst_port={port + 1000})"
    assert dp.vports()[-1].dst_port == port + 1000


def test_vxlan_port_in_use(dp: Datapath) -> None:
    dp.add_vport(unique("ktun"), "vxlan", dst_port=14789)
    with pytest.raises(ExistsError):
        dp.add_vport(unique("ktun"), "vxlan", dst_port=14789)


def test_gre_vport(dp: Datapath) -> None:
    try:
        vp = dp.add_vport(unique("kgre"), "gre")
    except NotSupported as exc:
        pytest.skip(f"this kernel has no gre vports: {exc}")
    assert vp.info().kind == VportKind.GRE and vp.info().dst_port is None


def test_tunnel_without_port_is_refused(dp: Datapath) -> None:
    with pytest.raises(InvalidArgument, match="UDP destination port"):
        dp.backend.vport_new(dp.name, unique("ktun"), VportKind.VXLAN)


def test_upcall_pids_of_a_vport(dp: Datapath) -> None:
    # Without the VPORT_PIDS feature the kernel keeps the array but reports (and uses) the first pid only.
    vp = dp.add_vport(unique("kin"), "internal", upcall_pids=(11, 12))
    assert vp.info().upcall_pids == (11,)
    assert vp.set_upcall_pids((13,)).upcall_pids == (13,)


def test_upcall_pid_arrays_with_vport_pids(conn: Connection) -> None:
    ncpu = os.cpu_count() or 1
    dp = conn.create_datapath(unique("kdp"), features=int(DpFeature.VPORT_PIDS))
    try:
        pids = tuple(range(11, 11 + max(ncpu, 2)))
        vp = dp.add_vport(unique("kin"), "internal", upcall_pids=pids[:2])
        assert vp.info().upcall_pids == pids[:2]
        assert vp.set_upcall_pids(pids[:ncpu]).upcall_pids == pids[:ncpu]
        # Recent kernels (and Debian's 6.1 stable updates) refuse more pids than CPUs.
        too_many = tuple(range(20, 21 + ncpu))
        try:
            got = vp.set_upcall_pids(too_many).upcall_pids
        except InvalidFlow as exc:
            assert exc.rule == "upcall-pids" and "per CPU" in str(exc)
        else:
            assert got == too_many  # an older kernel
    finally:
        dp.delete()


def test_vport_event_stream(backend: KernelBackend, dp: Datapath) -> None:
    with backend.vport_events(dp.name) as events:
        name = unique("kin")
        vp = dp.add_vport(name, "internal")
        vp.set_upcall_pids((5,))
        vp.delete()
        got = []
        for _ in range(20):
            got += events.receive(timeout=0.5)
            if any(e.kind == "del" for e in got):
                break
    assert [(e.kind, e.vport.name) for e in got] == [("new", name), ("set", name), ("del", name)]
    assert got[1].vport.upcall_pids == (5,)


def test_vport_stats_count_traffic(dp: Datapath) -> None:
    name = unique("kin")
    vp = dp.add_vport(name, "internal")
    ip(f"link set {name} up")
    assert vp.stats().tx_packets >= 0  # present and readable
