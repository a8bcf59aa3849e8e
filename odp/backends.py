"""Opening a backend by name: the top of the package.

This is the only module that imports both backends (lazily, so that using the
simulator never imports the kernel backend's netlink code and the reverse);
everything else depends on the shared API in :mod:`odp.datapath` and the
records in :mod:`odp.records`.
"""

from __future__ import annotations

from odp.datapath import Connection
from odp.errors import InvalidArgument

__all__ = ["BACKENDS", "connect"]

#: The backend names :func:`connect` accepts.
BACKENDS = ("sim", "kernel")


def connect(backend: str = "sim", **options: object) -> Connection:
    """Open a backend: ``"sim"`` (in-memory simulator) or ``"kernel"`` (openvswitch.ko).

    Simulator options: ``host`` (an :class:`odp.sim.Host`; a fresh one by
    default) and ``kernel``, the kernel version the simulator behaves as
    (see :mod:`odp.kernels`).  An unknown backend name is an
    :class:`~odp.errors.InvalidArgument`.
    """
    if backend == "sim":
        from odp.sim.datapath import SimBackend

        return Connection(SimBackend(**options))  # type: ignore[arg-type]
    if backend == "kernel":
        from odp.kernel.backend import KernelBackend

        return Connection(KernelBackend(**options))  # type: ignore[arg-type]
    raise InvalidArgument(f"unknown backend {backend!r} (use {' or '.join(repr(b) for b in BACKENDS)})")
