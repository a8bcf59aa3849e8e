"""Resolving the openvswitch generic netlink families (ids and multicast groups).

Generic netlink families get their numeric ids when the module registers them,
so every process asks the kernel's ``nlctrl`` family once
(``CTRL_CMD_GETFAMILY``).  Two ways, same answer:

- ``method="netlink"`` (the default): the request is built and the reply
  parsed by the shared codec (:func:`odp.netlink.messages.build_get_family`,
  :func:`~odp.netlink.messages.decode_family`) over the backend's own raw
  socket;
- ``method="pyroute2"``: pyroute2's
  :class:`~pyroute2.netlink.generic.GenericNetlinkSocket` asks.

``ovs_meter`` is resolved too but may be missing (kernels before 4.15,
``Feature.METER_FAMILY`` in :mod:`odp.kernels`):
:attr:`Families.meter` is then None and only the meter commands fail.

Measured in the test VM (Debian's 6.1 under qemu TCG): resolving the four
families takes 0.03 s either way once pyroute2 is imported, but importing
pyroute2 for it costs 5.5 s there (0.14-0.37 s on the host), so the default
does without it.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from odp.constants import FAMILY_VERSION, Family
from odp.errors import BackendError, ModuleNotLoaded, NotSupported, PermissionDenied
from odp.netlink import messages as nlm

if TYPE_CHECKING:
    from odp.kernel.netlink import Transport

__all__ = ["MODULE_MISSING", "Families", "FamilyInfo", "resolve_families"]

MODULE_MISSING = "the openvswitch kernel module is not loaded (modprobe openvswitch)"


@dataclass(frozen=True, slots=True)
class FamilyInfo:
    name: str
    id: int
    #: The family version the kernel reports (requests carry the UAPI's OVS_*_VERSION).
    kernel_version: int = 1
    #: Multicast group ids by name.
    groups: dict[str, int] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """The version to put in requests (OVS_DATAPATH_VERSION and friends)."""
        return FAMILY_VERSION[Family(self.name)]


@dataclass(frozen=True, slots=True)
class Families:
    """The families the backend uses: four always, ``meter`` when the kernel has it
    (openvswitch.ko gained ovs_meter in Linux 4.15; None before)."""

    datapath: FamilyInfo
    vport: FamilyInfo
    flow: FamilyInfo
    packet: FamilyInfo
    meter: FamilyInfo | None = None

    @classmethod
    def from_found(cls, found: dict[str, FamilyInfo]) -> Families:
        """The families a resolver found, by name (the required ones are known to be there)."""
        return cls(
            found[Family.DATAPATH.value],
            found[Family.VPORT.value],
            found[Family.FLOW.value],
            found[Family.PACKET.value],
            found.get(Family.METER.value),
        )

    @classmethod
    def fixed(
        cls, datapath: int = 0x20, vport: int = 0x21, flow: int = 0x22, packet: int = 0x23, meter: int | None = 0x24
    ) -> Families:
        """Families with given ids (for tests; no kernel involved; ``meter=None``: a kernel without meters)."""
        return cls(
            FamilyInfo(Family.DATAPATH.value, datapath, 2, {"ovs_datapath": 10}),
            FamilyInfo(Family.VPORT.value, vport, 1, {"ovs_vport": 11}),
            FamilyInfo(Family.FLOW.value, flow, 1, {"ovs_flow": 12}),
            FamilyInfo(Family.PACKET.value, packet, 1, {}),
            None if meter is None else FamilyInfo(Family.METER.value, meter, 1, {"ovs_meter": 13}),
        )


def resolve_families(method: str = "netlink", transport: Transport | None = None) -> Families:
    """Ask the kernel for the ovs families (loading the module if it can).

    ``transport`` (method "netlink") is the socket to ask on; a fresh
    :class:`~odp.kernel.netlink.NetlinkSocket` by default.
    """
    if method == "netlink":
        return _resolve_raw(transport)
    if method != "pyroute2":
        raise ValueError(f"family resolution method {method!r}: 'netlink' or 'pyroute2'")
    return _resolve_pyroute2()


_FAMILIES = (Family.DATAPATH, Family.VPORT, Family.FLOW, Family.PACKET)
#: Families a kernel may lack (ENOENT from the controller once the module is loaded).
_OPTIONAL = (Family.METER,)


def _resolve_raw(transport: Transport | None) -> Families:
    from odp.kernel.netlink import NetlinkSocket

    try:
        sock: Transport = transport if transport is not None else NetlinkSocket()
    except OSError as exc:
        if exc.errno in (_errno.EPERM, _errno.EACCES, _errno.EAFNOSUPPORT):
            raise PermissionDenied(f"cannot open a generic netlink socket: {exc.strerror}") from exc
        raise BackendError(f"cannot open a generic netlink socket: {exc}", exc.errno) from exc
    found: dict[str, FamilyInfo] = {}
    try:
        # ovs_datapath first: resolving it is what autoloads openvswitch.ko.
        for seq, fam in enumerate(_FAMILIES + _OPTIONAL, 1):
            sock.send(nlm.build_get_family(fam.value, seq))
            reply: nlm.FamilyInfo | None = None
            while True:
                data = sock.recv(10.0)
                if data is None:
                    raise BackendError(f"no answer from the generic netlink controller about {fam.value}")
                finished = False
                for msg in nlm.parse_messages(data):
                    if msg.seq != seq:
                        continue
                    if msg.type == nlm.NLMSG_ERROR:
                        if msg.error == -_errno.ENOENT and fam in _OPTIONAL:
                            finished = True
                            break
                        if msg.error == -_errno.ENOENT:
                            raise ModuleNotLoaded(MODULE_MISSING)
                        if msg.error in (-_errno.EPERM, -_errno.EACCES):
                            raise PermissionDenied(
                                f"resolving the generic netlink family {fam.value}: permission denied"
                            )
                        if msg.error:
                            raise BackendError(
                                f"resolving the generic netlink family {fam.value}: errno {-msg.error}", -msg.error
                            )
                        finished = True
                    elif msg.type == nlm.GENL_ID_CTRL:
                        reply = nlm.decode_family(msg)
                if finished:
                    break
            if reply is None:
                if fam in _OPTIONAL:
                    continue
                raise BackendError(f"the generic netlink controller sent nothing about {fam.value}")
            found[fam.value] = FamilyInfo(fam.value, reply.id, reply.version, dict(reply.mcast_groups))
    finally:
        if transport is None:
            sock.close()
    return Families.from_found(found)


def _resolve_pyroute2() -> Families:
    try:
        from pyroute2.netlink import GENL_ID_CTRL, ctrlmsg
        from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error
        from pyroute2.netlink.generic import GenericNetlinkSocket
    except ImportError as exc:  # pragma: no cover - pyroute2 is a dependency
        raise NotSupported(f"the kernel backend needs pyroute2 to resolve the ovs netlink families: {exc}") from exc

    try:
        sock = GenericNetlinkSocket()
    except OSError as exc:
        if exc.errno in (_errno.EPERM, _errno.EACCES):
            raise PermissionDenied(f"cannot open a generic netlink socket: {exc.strerror}") from exc
        raise BackendError(f"cannot open a generic netlink socket: {exc}", exc.errno) from exc
    try:
        core = sock.asyncore
        core.module_err_level = "debug"  # a missing family is our error to explain, not pyroute2's to log
        core.marshal.msg_map[GENL_ID_CTRL] = ctrlmsg
        found: dict[str, FamilyInfo] = {}
        # ovs_datapath first: resolving it is what autoloads openvswitch.ko.
        for fam in _FAMILIES + _OPTIONAL:
            try:
                msg = sock.discovery(fam.value)
            except Pyroute2Error as exc:
                code = getattr(exc, "code", None)
                if code == _errno.ENOENT and fam in _OPTIONAL:
                    continue
                if code == _errno.ENOENT:
                    raise ModuleNotLoaded(MODULE_MISSING) from None
                if code in (_errno.EPERM, _errno.EACCES):
                    raise PermissionDenied(
                        f"resolving the generic netlink family {fam.value}: permission denied"
                    ) from None
                raise BackendError(f"resolving the generic netlink family {fam.value}: {exc}", code) from None
            family_id = msg.get_attr("CTRL_ATTR_FAMILY_ID")
            if family_id is None:
                raise BackendError(f"the kernel's answer for the generic netlink family {fam.value} has no id")
            groups = {
                str(g.get_attr("CTRL_ATTR_MCAST_GRP_NAME")): int(g.get_attr("CTRL_ATTR_MCAST_GRP_ID"))
                for g in (msg.get_attr("CTRL_ATTR_MCAST_GROUPS") or [])
            }
            found[fam.value] = FamilyInfo(
                fam.value, int(family_id), int(msg.get_attr("CTRL_ATTR_VERSION") or 1), groups
            )
    finally:
        sock.close()
    return Families.from_found(found)
