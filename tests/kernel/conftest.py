"""Kernel-only tests: the real openvswitch.ko, in the test VM.

Run them with ``vmtest/run -- /work/venv/bin/python -m pytest tests/kernel -q``.
Elsewhere (not root, no openvswitch module) every test here is skipped with
the reason.  Each test gets fresh objects with names unique to this process
and removes them afterwards, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from kernel_helpers import ip, unique

from odp.datapath import Connection, Datapath
from odp.errors import OdpError

HERE = Path(__file__).resolve().parent


@cache
def kernel_unavailable() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "kernel tests need root (CAP_NET_ADMIN); run them in the VM: vmtest/run -- python -m pytest tests/kernel"
    try:
        from odp.kernel.backend import KernelBackend

        backend = KernelBackend()
    except OdpError as exc:
        return f"the openvswitch kernel module is not usable here: {exc}"
    except OSError as exc:
        return f"no generic netlink here: {exc}"
    backend.close()
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = kernel_unavailable()
    if reason is None:
        return
    if os.environ.get("ODP_REQUIRE_KERNEL"):
        # CI's kernel job: a kernel that cannot be used fails the run instead of skipping it.
        raise pytest.UsageError(f"ODP_REQUIRE_KERNEL is set but {reason}")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def backend() -> Iterator[object]:
    from odp.kernel.backend import KernelBackend

    b = KernelBackend()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def conn(backend: object) -> Connection:
    from odp.kernel.backend import KernelBackend

    assert isinstance(backend, KernelBackend)
    return Connection(backend)


@pytest.fixture
def dp(conn: Connection) -> Iterator[Datapath]:
    d = conn.create_datapath(unique("kdp"))
    try:
        yield d
    finally:
        with contextlib.suppress(OdpError):
            d.delete()


@pytest.fixture
def topo() -> Iterator[object]:
    from odp.testing.kernel_topology import KernelTopology

    t = KernelTopology()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair (both ends up), removed afterwards."""
    a, b = unique("kva"), unique("kvb")
    ip(f"link add {a} type veth peer name {b}")
    try:
        ip(f"link set {a} up")
        ip(f"link set {b} up")
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], check=False, capture_output=True)
