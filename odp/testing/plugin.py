"""pytest plugin: run the same tests against the simulator and the kernel.

Installed as the ``odp`` pytest11 entry point.  Options:

``--backend=sim|kernel|all|auto`` (default ``auto``: the simulator, plus the
kernel where this process is root and openvswitch.ko is available).

``--sim-kernel=VERSION`` (or ``$ODP_SIM_KERNEL``): the Linux version the
simulator behaves as (see :mod:`odp.kernels`); default: the kernel the tests
run on where the kernel backend is usable (so the two backends are compared
as the same kernel), else :data:`odp.kernels.TESTED`.

Fixtures:

- ``odp_backend``: the backend name of the current parametrisation;
- ``topology``: a fresh :class:`~odp.testing.topology.Topology` on it;
- ``harness``: a :class:`~odp.testing.harness.PacketHarness` over ``topology``.

Markers: ``@pytest.mark.sim_only("why")`` and ``@pytest.mark.kernel_only("why")``
for tests that only make sense on one backend; the other backend reports them
skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache

import pytest

from odp.errors import OdpError
from odp.kernels import TESTED, Kernel
from odp.testing.harness import PacketHarness
from odp.testing.topology import SimTopology, Topology

BACKENDS = ("sim", "kernel")

#: What --sim-kernel asked for (None: see sim_kernel()).
_sim_kernel: Kernel | None = None


def sim_kernel() -> Kernel:
    """The kernel the simulator behaves as in these tests: --sim-kernel, else
    the running kernel where the kernel backend is usable, else TESTED."""
    if _sim_kernel is not None:
        return _sim_kernel
    return Kernel.running() if kernel_unavailable_reason() is None else TESTED


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("odp")
    group.addoption(
        "--backend",
        action="store",
        default=os.environ.get("ODP_TEST_BACKEND", "auto"),
        choices=("sim", "kernel", "all", "auto"),
        help="datapath backend(s) for odp tests: sim, kernel, all, or auto "
        "(sim, plus kernel where root and openvswitch.ko are available)",
    )
    group.addoption(
        "--sim-kernel",
        action="store",
        default=os.environ.get("ODP_SIM_KERNEL"),
        metavar="VERSION",
        help="the Linux version the simulator behaves as, e.g. 6.1 (default: the running kernel where "
        "the kernel backend is usable, else the newest kernel the project tests)",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _sim_kernel
    value = config.getoption("--sim-kernel")
    try:
        _sim_kernel = Kernel.parse(value) if value else None
    except OdpError as exc:
        raise pytest.UsageError(f"--sim-kernel: {exc}") from None
    config.addinivalue_line("markers", "sim_only(reason): the test only makes sense on the simulator")
    config.addinivalue_line("markers", "kernel_only(reason): the test only makes sense on the kernel")


@cache
def kernel_unavailable_reason() -> str | None:
    """Why the kernel backend cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the kernel backend needs root (CAP_NET_ADMIN)"
    try:
        from odp.kernel.backend import KernelBackend
    except ImportError as exc:
        return f"the kernel backend is not importable: {exc}"
    try:
        backend = KernelBackend()
        backend.dp_list()
        backend.close()
    except Exception as exc:
        return f"the openvswitch kernel datapath is not usable here: {exc}"
    return None


def selected_backends(config: pytest.Config) -> list[str]:
    choice = config.getoption("--backend")
    if choice in ("sim", "kernel"):
        return [choice]
    if choice == "all":
        return list(BACKENDS)
    return ["sim", "kernel"] if kernel_unavailable_reason() is None else ["sim"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "odp_backend" in metafunc.fixturenames:
        metafunc.parametrize("odp_backend", selected_backends(metafunc.config), scope="function")


def _marker_reason(item: pytest.Item, name: str) -> str | None:
    marker = item.get_closest_marker(name)
    if marker is None:
        return None
    return str(marker.args[0]) if marker.args else marker.kwargs.get("reason", "no reason given")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("odp_backend") if callspec is not None else None
        if backend is None:
            continue
        if backend == "kernel" and (why := _marker_reason(item, "sim_only")):
            item.add_marker(pytest.mark.skip(reason=f"simulator only: {why}"))
        if backend == "sim" and (why := _marker_reason(item, "kernel_only")):
            item.add_marker(pytest.mark.skip(reason=f"kernel only: {why}"))


def make_topology(backend: str) -> Topology:
    if backend == "sim":
        return SimTopology(kernel=sim_kernel())
    reason = kernel_unavailable_reason()
    if reason is not None:
        if os.environ.get("ODP_REQUIRE_KERNEL"):
            # CI's kernel job: a kernel that cannot be used is a failure, not a skip.
            pytest.fail(f"ODP_REQUIRE_KERNEL is set but {reason}", pytrace=False)
        pytest.skip(reason)
    from odp.testing.kernel_topology import KernelTopology

    return KernelTopology()


@pytest.fixture
def topology(odp_backend: str) -> Iterator[Topology]:
    topo = make_topology(odp_backend)
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def harness(topology: Topology) -> PacketHarness:
    return PacketHarness(topology)
