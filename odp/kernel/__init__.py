"""The kernel backend: the shared datapath API over generic netlink to openvswitch.ko.

``odp.connect("kernel")`` uses :class:`~odp.kernel.backend.KernelBackend`.
Modules: :mod:`~odp.kernel.netlink` (sockets, requests, dumps, batches),
:mod:`~odp.kernel.families` (family resolution and module autoload),
:mod:`~odp.kernel.errors` (errno to odp exceptions), :mod:`~odp.kernel.backend`
(the commands) and :mod:`~odp.kernel.upcall` (upcall listener, vport events).
"""

from __future__ import annotations

from odp.kernel.backend import KernelBackend
from odp.kernel.upcall import KernelUpcallListener, VportEvent, VportEvents

__all__ = ["KernelBackend", "KernelUpcallListener", "VportEvent", "VportEvents"]
