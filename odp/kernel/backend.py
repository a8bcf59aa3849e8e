"""The kernel backend: the shared datapath API over generic netlink to openvswitch.ko.

``KernelBackend()`` resolves the ovs generic netlink families once (through
pyroute2; this is also what autoloads the module) and then talks to the
kernel over its own raw netlink socket, with requests built and replies
parsed by the shared sans-IO codec (:mod:`odp.netlink.messages`).  Each
method is one kernel command; errors are :mod:`odp.errors` exceptions whose
messages name the object (see :mod:`odp.kernel.errors`).

Kernel behaviours this module relies on or works around (Linux 6.1, read in
``net/openvswitch/datapath.c`` and seen in the VM):

- Replies to NEW/SET/DEL carry the object only with ``NLM_F_ECHO``; every
  request here also asks for an ACK, so a request without a reply (a flush)
  completes too.  Before ``Feature.REPLY_CMD_OF_REQUEST`` (Linux 4.19, see
  :mod:`odp.kernels`) GET/SET replies came back as ``*_CMD_NEW``: reply
  commands are not checked.
- ``OVS_DP_CMD_SET`` without ``USER_FEATURES`` resets the features to 0, so
  :meth:`KernelBackend.dp_set` always sends them (the current ones when the
  caller does not change them).  It ignores ``UPCALL_PID``: the datapath's
  upcall pid is its local port's, set through ``OVS_VPORT_CMD_SET`` on port 0.
- ``OVS_FLOW_CMD_SET`` with ``ACTIONS`` needs the ``KEY`` even when the flow is
  named by UFID: the backend fetches the key first.
- ``ovs_meter`` (Linux 6.1 ``meter.c``) always replies, without ECHO: SET with
  the replaced meter's stats (none when it was created with CLEAR), DEL with
  the deleted meter's (an empty reply when there was none, not ENOENT), GET
  with counters only.  Meters sit in an array indexed by ``id % size`` (1024
  at first): a different meter in the slot is EBUSY; adding the meter that
  makes the count reach ``max_meters`` is EFBIG (the id itself is not limited).
- Features the kernel does not know make datapath creation fail with
  EOPNOTSUPP; the backend remembers which feature sets failed (the probe
  happens once per backend) and :meth:`KernelBackend.supported_features`
  probes explicitly with a scratch datapath.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

import odp.kernel.conntrack as conntrack
from odp.actions import Actions
from odp.constants import DP_MAX_PORTS, OVSP_LOCAL, Cmd, DpFeature, MeterBandType, MeterCmd, PacketCmd
from odp.datapath import Backend, UpcallListener
from odp.errors import (
    BackendError,
    ExistsError,
    FieldError,
    InvalidFlow,
    NotFoundError,
    NotSupported,
    OdpError,
)
from odp.kernel.errors import translate
from odp.kernel.families import Families, FamilyInfo, resolve_families
from odp.kernel.netlink import (
    Channel,
    NetlinkError,
    NetlinkSocket,
    Transport,
    dump_messages,
)
from odp.kernels import SINCE, Feature, Kernel
from odp.keys import InPort, Match
from odp.netlink import messages as nlm
from odp.netlink.messages import NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL
from odp.records import (
    ConntrackEntry,
    DatapathInfo,
    DpRef,
    Flow,
    FlowCreate,
    FlowStats,
    MeterBand,
    MeterFeatures,
    MeterStats,
    PortRef,
    VportInfo,
    VportKind,
    check_ifname,
    check_meter_request,
    check_ufid,
    check_vport_args,
)

if TYPE_CHECKING:
    from odp.kernel.upcall import KernelUpcallListener, VportEvents

__all__ = ["KNOWN_FEATURES", "KernelBackend", "describe_match"]

T = TypeVar("T")

KNOWN_FEATURES = int(
    DpFeature.UNALIGNED | DpFeature.VPORT_PIDS | DpFeature.TC_RECIRC_SHARING | DpFeature.DISPATCH_UPCALL_PER_CPU
)
ETH_HLEN = 14


def describe_match(match: Match | None) -> str:
    """The ODP text of a match for messages (never fails)."""
    if match is None:
        return "(none)"
    try:
        return str(match)
    except Exception:
        return ",".join(repr(a) for a in match.attrs)


def describe_actions(actions: Actions | None) -> str:
    if actions is None:
        return "(none)"
    try:
        return str(actions) or "drop"
    except Exception:
        return ",".join(repr(a) for a in actions.items) or "drop"


def _too_many_pids(pids: tuple[int, ...]) -> str:
    return (
        f"{len(pids)} upcall pids for {os.cpu_count() or 1} CPU(s): recent kernels accept at most one "
        "upcall pid per CPU"
    )


def _feature_names(bits: int) -> str:
    names = [f.name.lower() for f in DpFeature if f & bits and f.name]
    unknown = bits & ~KNOWN_FEATURES
    if unknown:
        names.append(f"{unknown:#x}")
    return ", ".join(names) or "none"


# ---------------------------------------------------------------------------
# Reply conversion
# ---------------------------------------------------------------------------


def flow_value(msg: nlm.Message) -> Flow:
    f = nlm.decode_flow(msg)
    return Flow(
        match=f.match,
        actions=f.actions,
        ufid=f.ufid,
        stats=FlowStats(f.n_packets, f.n_bytes),
        used=f.used,
        tcp_flags=f.tcp_flags,
    )


def meter_stats(msg: nlm.Message) -> MeterStats | None:
    """The stats of an ovs_meter reply; None when it carries none (SET of a new
    meter, SET over a meter created with CLEAR, DEL of a missing meter)."""
    m = nlm.decode_meter(msg)
    if m.stats is None or m.meter_id is None:
        return None
    return MeterStats(
        meter_id=m.meter_id,
        packets=m.stats[0],
        bytes=m.stats[1],
        used=m.used or 0,
        bands=tuple(FlowStats(b.n_packets, b.n_bytes) for b in m.bands or ()),
    )


def _band_type(number: int) -> int:
    try:
        return MeterBandType(number)
    except ValueError:
        return number


def _one(replies: list[nlm.Message], what: str) -> nlm.Message:
    if not replies:
        raise BackendError(f"the kernel sent no reply to {what}")
    return replies[0]


# ---------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------


class KernelBackend(Backend):
    """The shared Backend API over the real openvswitch kernel module.

    ``families`` and ``transport_factory`` exist for tests: given fixed family
    ids and a fake transport, no kernel is involved.  ``resolver`` picks how the
    families are resolved ("netlink", the default, or "pyroute2"; see
    :mod:`odp.kernel.families`).  Not thread-safe: use one backend per thread.
    """

    name = "kernel"

    def __init__(
        self,
        *,
        families: Families | None = None,
        transport_factory: Callable[[], Transport] | None = None,
        resolver: str = "netlink",
    ) -> None:
        self._factory: Callable[[], Transport] = transport_factory or NetlinkSocket
        transport = self._factory()
        try:
            if families is None:
                families = resolve_families(resolver, transport if resolver == "netlink" else None)
        except BaseException:
            transport.close()
            raise
        self.families = families
        self._chan = Channel(transport)
        self._dp_names: dict[str, int] = {}
        self._failed_features: list[int] = []
        self._supported: int | None = None
        self._listeners: list[UpcallListener] = []
        self._kernel = Kernel.running()

    @property
    def kernel(self) -> Kernel:
        """The running kernel: for odp.validate's action rules and what depends on the version."""
        return self._kernel

    # -- plumbing ----------------------------------------------------------------
    def new_transport(self) -> Transport:
        """A fresh socket of the kind this backend uses (listeners and event streams take one)."""
        return self._factory()

    @property
    def port_id(self) -> int:
        """The netlink port id of the backend's request socket."""
        return self._chan.port_id

    def _request(
        self, fam: FamilyInfo, cmd: int, dp_ifindex: int, attrs: Iterable[tuple[int, bytes]], flags: int = 0
    ) -> list[nlm.Message]:
        return self._chan.request(fam.id, cmd, fam.version, dp_ifindex, attrs, flags)

    def _dump(self, fam: FamilyInfo, cmd: int, dp_ifindex: int, attrs: Iterable[tuple[int, bytes]] = ()) -> list[bytes]:
        return self._chan.dump(fam.id, cmd, fam.version, dp_ifindex, attrs)

    def _ifindex(self, dp: DpRef) -> int:
        if isinstance(dp, int):
            return dp
        cached = self._dp_names.get(dp)
        if cached is not None:
            return cached
        return self.dp_get(dp).ifindex

    def _on_dp(self, dp: DpRef, call: Callable[[int], T]) -> T:
        """Run ``call(dp_ifindex)``; a cached name whose datapath is gone is resolved again once."""
        ifindex = self._ifindex(dp)
        try:
            return call(ifindex)
        except NetlinkError as exc:
            if exc.errno == _errno.ENODEV and isinstance(dp, str) and self._dp_names.pop(dp, None) is not None:
                return call(self._ifindex(dp))
            raise

    def _dp_label(self, dp: DpRef) -> str:
        if isinstance(dp, str):
            return f"datapath {dp!r}"
        name = next((n for n, i in self._dp_names.items() if i == dp), None)
        return f"datapath {name!r}" if name else f"datapath with ifindex {dp}"

    def _not_found_dp(self, dp: DpRef) -> Mapping[int, str]:
        return {_errno.ENODEV: f"no datapath {dp!r}"}

    # -- datapaths -----------------------------------------------------------------
    def dp_new(self, name: str, *, features: int = 0, upcall_pid: int = 0) -> DatapathInfo:
        check_ifname(name, "datapath")
        if features & ~KNOWN_FEATURES:
            raise FieldError(f"unknown datapath feature bits {features & ~KNOWN_FEATURES:#x}")
        for failed in self._failed_features:
            if failed & features == failed:
                raise NotSupported(
                    f"creating datapath {name!r}: the running kernel does not support the datapath "
                    f"feature(s) {_feature_names(failed)} (EOPNOTSUPP, found out earlier)"
                )
        attrs = nlm.datapath_attrs(name, upcall_pid=upcall_pid, user_features=features)
        try:
            replies = self._request(self.families.datapath, Cmd.NEW, 0, attrs, NLM_F_ECHO)
        except NetlinkError as exc:
            if exc.errno == _errno.EOPNOTSUPP and features:
                optional = features & ~int(DpFeature.UNALIGNED | DpFeature.VPORT_PIDS)
                self._failed_features.append(optional or features)
                raise NotSupported(
                    f"creating datapath {name!r}: the running kernel does not support the datapath "
                    f"feature(s) {_feature_names(optional or features)} (EOPNOTSUPP)"
                ) from None
            if exc.errno in (_errno.EEXIST, _errno.EBUSY):
                raise ExistsError(self._exists_reason(name)) from None
            raise translate(exc, f"creating datapath {name!r}") from None
        info = nlm.decode_datapath(_one(replies, f"creating datapath {name!r}"))
        self._dp_names[info.name] = info.ifindex
        return info

    def _exists_reason(self, name: str) -> str:
        try:
            self.dp_get(name)
        except NotFoundError:
            return f"a network device named {name!r} already exists"
        return f"datapath {name!r} already exists"

    def _dp_target(self, dp: DpRef) -> tuple[int, list[tuple[int, bytes]]]:
        if isinstance(dp, int):
            return dp, []
        try:
            check_ifname(dp, "datapath")
        except FieldError:
            raise NotFoundError(f"no datapath {dp!r} (not a valid datapath name)") from None
        return 0, nlm.datapath_attrs(dp)

    def dp_get(self, dp: DpRef) -> DatapathInfo:
        ifindex, attrs = self._dp_target(dp)
        try:
            replies = self._request(self.families.datapath, Cmd.GET, ifindex, attrs)
        except NetlinkError as exc:
            raise translate(exc, f"getting {self._dp_label(dp)}", messages=self._not_found_dp(dp)) from None
        info = nlm.decode_datapath(_one(replies, f"getting {self._dp_label(dp)}"))
        self._dp_names[info.name] = info.ifindex
        return info

    def dp_list(self) -> list[DatapathInfo]:
        try:
            data = self._dump(self.families.datapath, Cmd.GET, 0)
        except NetlinkError as exc:
            raise translate(exc, "listing datapaths") from None
        out = [nlm.decode_datapath(m) for m in dump_messages(data, self.families.datapath.id)]
        for info in out:
            self._dp_names[info.name] = info.ifindex
        return out

    def dp_del(self, dp: DpRef) -> None:
        ifindex, attrs = self._dp_target(dp)
        try:
            self._request(self.families.datapath, Cmd.DEL, ifindex, attrs)
        except NetlinkError as exc:
            raise translate(exc, f"deleting {self._dp_label(dp)}", messages=self._not_found_dp(dp)) from None
        for name, idx in list(self._dp_names.items()):
            if name == dp or idx == dp:
                del self._dp_names[name]
        from odp.kernel.upcall import KernelUpcallListener

        for listener in list(self._listeners):
            if isinstance(listener, KernelUpcallListener) and (listener.dp_name == dp or listener.dp_ifindex == dp):
                listener.abandon()

    def dp_set(
        self,
        dp: DpRef,
        *,
        features: int | None = None,
        upcall_pid: int | None = None,
        masks_cache_size: int | None = None,
        per_cpu_pids: tuple[int, ...] | None = None,
    ) -> DatapathInfo:
        """Change a datapath: features, upcall pid (its local port's), masks cache size.

        ``per_cpu_pids`` (kernel backend only) sets the netlink port per CPU for
        the per-CPU upcall dispatch mode (feature DISPATCH_UPCALL_PER_CPU).
        """
        label = self._dp_label(dp)
        if features is not None and features & ~KNOWN_FEATURES:
            raise FieldError(f"unknown datapath feature bits {features & ~KNOWN_FEATURES:#x}")
        current = self.dp_get(dp)
        if upcall_pid is not None:
            self.vport_set_upcall_pids(current.ifindex, OVSP_LOCAL, (upcall_pid,))
        if features is None and masks_cache_size is None and per_cpu_pids is None:
            return self.dp_get(current.ifindex) if upcall_pid is not None else current
        # SET without USER_FEATURES would reset them to 0: always send them.
        send_features = current.features if features is None else features
        attrs = nlm.datapath_attrs(
            user_features=send_features, masks_cache_size=masks_cache_size, per_cpu_pids=per_cpu_pids
        )
        try:
            replies = self._request(self.families.datapath, Cmd.SET, current.ifindex, attrs, NLM_F_ECHO)
        except NetlinkError as exc:
            if exc.errno in (_errno.EINVAL, _errno.ERANGE) and masks_cache_size is not None:
                raise InvalidFlow(
                    f"{label}: masks cache size {masks_cache_size} must be 0 or a power of two "
                    f"(and at most what a per-CPU unit holds) ({exc})",
                    rule="masks-cache-size",
                ) from None
            if exc.errno == _errno.EOPNOTSUPP and features is not None:
                raise NotSupported(
                    f"{label}: the running kernel does not support the datapath feature(s) "
                    f"{_feature_names(features)} (EOPNOTSUPP)"
                ) from None
            raise translate(exc, f"changing {label}", messages=self._not_found_dp(dp)) from None
        return nlm.decode_datapath(_one(replies, f"changing {label}"))

    def supported_features(self) -> int:
        """The datapath feature bits the running kernel accepts (probed once with a scratch datapath)."""
        if self._supported is not None:
            return self._supported
        name = f"odpprobe{os.getpid() % 1000000}"
        supported = 0
        for bit in DpFeature:
            attrs = nlm.datapath_attrs(name, upcall_pid=0, user_features=int(bit))
            try:
                self._request(self.families.datapath, Cmd.NEW, 0, attrs)
            except NetlinkError as exc:
                if exc.errno == _errno.EOPNOTSUPP:
                    continue
                raise translate(exc, f"probing datapath features with scratch datapath {name!r}") from None
            supported |= int(bit)
            try:
                self._request(self.families.datapath, Cmd.DEL, 0, nlm.datapath_attrs(name))
            except NetlinkError as exc:
                raise translate(exc, f"deleting scratch datapath {name!r}") from None
        self._supported = supported
        return supported

    # -- vports --------------------------------------------------------------------
    def vport_new(
        self,
        dp: DpRef,
        name: str,
        kind: VportKind,
        *,
        port_no: int | None = None,
        dst_port: int | None = None,
        upcall_pids: tuple[int, ...] = (0,),
        extensions: tuple[str, ...] = (),
    ) -> VportInfo:
        kind = check_vport_args(kind, name, port_no, dst_port, extensions)
        pids = tuple(upcall_pids) or (0,)
        label = self._dp_label(dp)
        claimed_by: list[KernelUpcallListener] = []

        def call(ifindex: int) -> list[nlm.Message]:
            send_pids = pids
            listener = self._listener_of(ifindex) if pids == (0,) else None
            if listener is not None:
                # As the simulator does: a vport added while this backend listens to the
                # datapath sends its misses to the listener at once (the multicast event
                # would come too late for a packet sent right after the vport is made).
                send_pids = (listener.pid,)
                claimed_by[:] = [listener]
            attrs = nlm.vport_attrs(
                name,
                kind.number,
                port_no=port_no,
                upcall_pids=send_pids,
                dst_port=dst_port,
                options=nlm.vport_extension_options(extensions),
            )
            return self._request(self.families.vport, Cmd.NEW, ifindex, attrs, NLM_F_ECHO)

        try:
            replies = self._on_dp(dp, call)
        except NetlinkError as exc:
            raise self._vport_new_error(exc, dp, label, name, kind, port_no, dst_port, pids) from None
        info = nlm.decode_vport(_one(replies, f"adding vport {name!r} to {label}"))
        for listener in claimed_by:
            listener.claimed(info.port_no)
        return info

    def _listener_of(self, dp_ifindex: int) -> KernelUpcallListener | None:
        """The newest open per-vport listener of this backend on the datapath."""
        from odp.kernel.upcall import KernelUpcallListener

        for listener in reversed(self._listeners):
            if (
                isinstance(listener, KernelUpcallListener)
                and listener.dp_ifindex == dp_ifindex
                and listener.dispatch == "per-vport"
                and not listener.closed
            ):
                return listener
        return None

    def _vport_new_error(
        self,
        exc: NetlinkError,
        dp: DpRef,
        label: str,
        name: str,
        kind: VportKind,
        port_no: int | None,
        dst_port: int | None,
        pids: tuple[int, ...],
    ) -> OdpError:
        what = f"adding {kind.value} vport {name!r} to {label}"
        code = exc.errno
        messages: dict[int, str] = {}
        if code == _errno.EINVAL and len(pids) > (os.cpu_count() or 1):
            return InvalidFlow(f"{what}: {_too_many_pids(pids)} ({exc})", rule="upcall-pids")
        if code in (_errno.ENODEV, _errno.ENOENT):
            try:
                self.dp_get(dp)
            except NotFoundError:
                return NotFoundError(f"{what}: no datapath {dp!r}")
            if kind == VportKind.NETDEV:
                messages[code] = f"no network device named {name!r} (create it first)"
        elif code == _errno.EBUSY:
            if port_no is not None and any(v.port_no == port_no for v in self._vports_quiet(dp)):
                messages[code] = f"{label} already has a port {port_no}"
            elif kind == VportKind.NETDEV:
                messages[code] = f"network device {name!r} is already attached to a datapath (or a bridge)"
            else:
                messages[code] = f"a network device named {name!r} already exists"
        elif code == _errno.EEXIST:
            if kind == VportKind.NETDEV:
                messages[code] = f"network device {name!r} is already attached to a datapath"
            else:
                messages[code] = f"a network device named {name!r} already exists"
        elif code == _errno.EADDRINUSE:
            messages[code] = f"UDP port {dst_port} is already in use"
        elif code in (_errno.EAFNOSUPPORT, _errno.EOPNOTSUPP, _errno.EPROTONOSUPPORT):
            messages[code] = (
                f"the running kernel cannot create {kind.value} vports (is the vport_{kind.value} module available?)"
            )
        elif code == _errno.EINVAL and kind == VportKind.NETDEV:
            messages[code] = (
                "the kernel refused the device (a loopback, non-Ethernet or "
                "datapath-internal device cannot be a netdev vport)"
            )
        elif code == _errno.EFBIG:
            return FieldError(f"{what}: port number {port_no} is out of range ({exc})")
        return translate(exc, what, messages=messages, rule="vport")

    def _vports_quiet(self, dp: DpRef) -> list[VportInfo]:
        try:
            return self.vport_list(dp)
        except OdpError:
            return []

    def _vport_target(self, port: PortRef) -> list[tuple[int, bytes]]:
        if isinstance(port, int):
            return nlm.vport_attrs(port_no=port)
        return nlm.vport_attrs(port)

    def _vport_missing(self, dp: DpRef, port: PortRef) -> dict[int, str]:
        text = f"{self._dp_label(dp)} has no vport {port!r}"
        return {_errno.ENOENT: text, _errno.ENODEV: text}

    def vport_get(self, dp: DpRef, port: PortRef) -> VportInfo:
        attrs = self._vport_target(port)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.vport, Cmd.GET, i, attrs))
        except NetlinkError as exc:
            raise translate(
                exc, f"getting vport {port!r} of {self._dp_label(dp)}", messages=self._vport_missing(dp, port)
            ) from None
        return nlm.decode_vport(_one(replies, f"getting vport {port!r}"))

    def vport_list(self, dp: DpRef) -> list[VportInfo]:
        try:
            data = self._on_dp(dp, lambda i: self._dump(self.families.vport, Cmd.GET, i))
        except NetlinkError as exc:
            raise translate(
                exc, f"listing the vports of {self._dp_label(dp)}", messages=self._not_found_dp(dp)
            ) from None
        vports = (nlm.decode_vport(m) for m in dump_messages(data, self.families.vport.id))
        return sorted(vports, key=lambda v: v.port_no)

    def vport_del(self, dp: DpRef, port: PortRef) -> VportInfo:
        attrs = self._vport_target(port)
        label = self._dp_label(dp)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.vport, Cmd.DEL, i, attrs, NLM_F_ECHO))
        except NetlinkError as exc:
            if exc.errno == _errno.EINVAL:
                raise InvalidFlow(
                    f"the datapath's local port cannot be deleted (delete the datapath) ({label}, {exc})",
                    rule="local-port",
                ) from None
            raise translate(
                exc, f"deleting vport {port!r} of {label}", messages=self._vport_missing(dp, port)
            ) from None
        return nlm.decode_vport(_one(replies, f"deleting vport {port!r}"))

    def vport_set_upcall_pids(self, dp: DpRef, port: PortRef, pids: tuple[int, ...]) -> VportInfo:
        if not pids:
            raise FieldError("upcall pids: at least one pid (0 disables upcalls)")
        attrs = self._vport_target(port) + nlm.vport_attrs(upcall_pids=pids)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.vport, Cmd.SET, i, attrs, NLM_F_ECHO))
        except NetlinkError as exc:
            if exc.errno == _errno.EINVAL and len(pids) > (os.cpu_count() or 1):
                what = f"setting the upcall pids of vport {port!r} of {self._dp_label(dp)}"
                raise InvalidFlow(f"{what}: {_too_many_pids(pids)} ({exc})", rule="upcall-pids") from None
            raise translate(
                exc, f"setting the upcall pids of vport {port!r} of {self._dp_label(dp)}",
                messages=self._vport_missing(dp, port),
            ) from None  # fmt: skip
        return nlm.decode_vport(_one(replies, f"setting the upcall pids of vport {port!r}"))

    def vport_events(self, dp: DpRef | None = None) -> VportEvents:
        """A stream of vport changes (new, deleted, changed), for one datapath or all."""
        from odp.kernel.upcall import VportEvents

        return VportEvents(self, None if dp is None else self._ifindex(dp))

    # -- flows ---------------------------------------------------------------------
    def _flow_error(
        self,
        exc: NetlinkError,
        dp: DpRef,
        action: str,
        *,
        match: Match | None = None,
        ufid: bytes | None = None,
        actions: Actions | None = None,
        not_found: str | None = None,
    ) -> OdpError:
        code = exc.errno
        if code in (_errno.EINVAL, _errno.ERANGE):
            return self._explain_einval(exc, action, match, actions)
        messages: dict[int, str] = {_errno.ENODEV: f"no datapath {dp!r}"}
        if code == _errno.ENOENT:
            if not_found is not None:
                messages[code] = not_found
            elif ufid is not None:
                messages[code] = f"no flow with ufid {ufid.hex()} in {self._dp_label(dp)}"
            else:
                messages[code] = f"no flow with key {describe_match(match)} in {self._dp_label(dp)}"
        elif code == _errno.EEXIST:
            messages[code] = (
                "a flow matching this key already exists (use replace/modify to change its actions): "
                f"{describe_match(match)} in {self._dp_label(dp)}"
            )
        return translate(exc, action, messages=messages)

    def _explain_einval(
        self, exc: NetlinkError, action: str, match: Match | None, actions: Actions | None
    ) -> InvalidFlow:
        """Why the kernel said EINVAL, from odp.validate's replay of its rules when it can tell."""
        from odp.validate import validate_actions, validate_match  # only on a refusal: it costs import time

        try:
            if match is not None:
                validate_match(match)
            if actions is not None:
                validate_actions(actions, match, kernel=self.kernel)
        except InvalidFlow as why:
            return InvalidFlow(f"{action}: {why} (the kernel said {exc})", rule=why.rule, field=why.field)
        except OdpError:
            pass
        details = f"key {describe_match(match)}" if match is not None else "no key"
        if actions is not None:
            details += f", actions {describe_actions(actions)}"
        return InvalidFlow(f"{action}: the kernel refused it with EINVAL ({details}; {exc})", rule="kernel-einval")

    def flow_new(
        self,
        dp: DpRef,
        match: Match,
        actions: Actions,
        *,
        ufid: bytes | None = None,
        create: FlowCreate = FlowCreate.EXCLUSIVE,
    ) -> Flow:
        check_ufid(ufid)
        flags = NLM_F_ECHO | (NLM_F_CREATE | NLM_F_EXCL if create == FlowCreate.EXCLUSIVE else 0)
        attrs = nlm.flow_attrs(match, actions, ufid=ufid)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.flow, Cmd.NEW, i, attrs, flags))
        except NetlinkError as exc:
            raise self._flow_error(
                exc, dp, f"adding a flow to {self._dp_label(dp)}", match=match, ufid=ufid, actions=actions,
                not_found="an overlapping flow with a different key exists; the flow was not replaced: "
                f"{describe_match(match)}",
            ) from None  # fmt: skip
        return flow_value(_one(replies, "adding a flow"))

    def flow_new_many(
        self, dp: DpRef, flows: Iterable[tuple[Match, Actions]], *, create: FlowCreate = FlowCreate.EXCLUSIVE
    ) -> int:
        """Install many flows, batching up to 256 NEW requests per ``sendmsg``; returns the count.

        On the first refused flow the ACKs of its batch are still collected, no
        further batch is sent, and the flow's error is raised (flows of the same
        batch, before and after it, may have been installed).
        """
        items = flows if isinstance(flows, list) else list(flows)
        if not items:
            return 0
        flags = NLM_F_CREATE | NLM_F_EXCL if create == FlowCreate.EXCLUSIVE else 0
        fam = self.families.flow
        ifindex = self._ifindex(dp)
        requests = (nlm.flow_attrs(m, a) for m, a in items)
        installed = 0
        first_error: tuple[int, NetlinkError] | None = None
        batch = self._chan.batch(fam.id, Cmd.NEW, fam.version, ifindex, requests, flags)
        try:
            for results in batch:
                for index, err in results:
                    if err is None:
                        installed += 1
                    elif first_error is None:
                        first_error = (index, err)
                if first_error is not None:
                    break  # no further batch
        finally:
            batch.close()
        if first_error is not None:
            index, err = first_error
            match, actions = items[index]
            raise self._flow_error(
                err, dp, f"adding flow #{index} of a batch to {self._dp_label(dp)} ({installed} installed)",
                match=match, actions=actions,
            ) from None  # fmt: skip
        return installed

    def _flow_lookup_attrs(self, match: Match | None, ufid: bytes | None) -> list[tuple[int, bytes]]:
        if ufid is not None:
            check_ufid(ufid)
            return nlm.flow_attrs(ufid=ufid)
        if match is None:
            raise InvalidFlow("a flow key or a ufid is needed", rule="missing-key")
        return nlm.flow_attrs(match, mask=False)

    def flow_set(
        self,
        dp: DpRef,
        *,
        match: Match | None = None,
        ufid: bytes | None = None,
        actions: Actions | None = None,
        clear_stats: bool = False,
    ) -> Flow:
        """Replace a flow's actions and/or clear its stats.

        As the kernel does, the flow returned shows the statistics from before
        they were cleared.
        """
        if match is None and ufid is None:
            raise InvalidFlow("a flow key or a ufid is needed", rule="missing-key")
        check_ufid(ufid)
        if actions is not None and match is None:
            # The kernel needs the key to check the actions against, even by UFID.
            match = self.flow_get(dp, ufid=ufid).match
        attrs = nlm.flow_attrs(match, actions, ufid=ufid, clear=clear_stats, mask=actions is not None)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.flow, Cmd.SET, i, attrs, NLM_F_ECHO))
        except NetlinkError as exc:
            raise self._flow_error(
                exc, dp, f"changing a flow of {self._dp_label(dp)}", match=match, ufid=ufid, actions=actions
            ) from None
        return flow_value(_one(replies, "changing a flow"))

    def flow_get(
        self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None, ufid_flags: int = 0
    ) -> Flow:
        attrs = self._flow_lookup_attrs(match, ufid)
        if ufid_flags:
            attrs += nlm.flow_attrs(ufid_flags=ufid_flags)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.flow, Cmd.GET, i, attrs))
        except NetlinkError as exc:
            raise self._flow_error(exc, dp, f"getting a flow of {self._dp_label(dp)}", match=match, ufid=ufid) from None
        return flow_value(_one(replies, "getting a flow"))

    def flow_del(self, dp: DpRef, *, match: Match | None = None, ufid: bytes | None = None) -> Flow:
        if match is None and ufid is None:
            self.flow_flush(dp)
            return Flow(match=None, actions=None)
        attrs = self._flow_lookup_attrs(match, ufid)
        try:
            replies = self._on_dp(dp, lambda i: self._request(self.families.flow, Cmd.DEL, i, attrs, NLM_F_ECHO))
        except NetlinkError as exc:
            raise self._flow_error(
                exc, dp, f"deleting a flow of {self._dp_label(dp)}", match=match, ufid=ufid
            ) from None
        return flow_value(_one(replies, "deleting a flow"))

    def flow_flush(self, dp: DpRef) -> None:
        try:
            self._on_dp(dp, lambda i: self._request(self.families.flow, Cmd.DEL, i, ()))
        except NetlinkError as exc:
            raise self._flow_error(exc, dp, f"flushing the flows of {self._dp_label(dp)}") from None

    def flow_dump(self, dp: DpRef, *, ufid_flags: int = 0) -> Iterator[Flow]:
        """Every flow of the datapath.  The dump is complete before the first flow is yielded
        (so a dump the kernel flags interrupted can be restarted).

        Each datagram is decoded as it arrives (:func:`~odp.netlink.messages.walk_flow_dump`),
        into flows whose match and actions are decoded on first access
        (:class:`~odp.netlink.messages.WireFlow`): a caller that reads only
        stats or UFIDs does not pay for building 100k matches.

        The cyclic garbage collector is paused while the flows are built: they
        are acyclic immutable values, and with 100k flows its repeated passes
        over the growing set of young objects cost about a quarter of the decoding.
        """
        attrs = nlm.flow_attrs(ufid_flags=ufid_flags) if ufid_flags else []
        fam = self.families.flow
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            flows: list[Flow] = self._on_dp(
                dp, lambda i: self._chan.dump(fam.id, Cmd.GET, fam.version, i, attrs, nlm.walk_flow_dump)
            )
        except NetlinkError as exc:
            raise self._flow_error(exc, dp, f"dumping the flows of {self._dp_label(dp)}") from None
        finally:
            if paused:
                gc.enable()
        return iter(flows)

    # -- conntrack (ctnetlink: the namespace's table, not the datapath's) ---------------
    def conntrack_dump(self, dp: DpRef, zone: int | None = None) -> list[ConntrackEntry]:
        self._ifindex(dp)  # NotFoundError for a missing datapath, as on the simulator
        return conntrack.conntrack_dump(zone)

    def conntrack_flush(self, dp: DpRef, zone: int | None = None) -> None:
        self._ifindex(dp)
        conntrack.conntrack_flush(zone)

    # -- meters ----------------------------------------------------------------------
    def _meter_family(self) -> FamilyInfo:
        if self.families.meter is None:
            raise NotSupported(
                "this kernel's openvswitch module has no ovs_meter generic netlink family "
                f"(meters need Linux {SINCE[Feature.METER_FAMILY]}+)"
            )
        return self.families.meter

    def _meter_request(
        self, dp: DpRef, cmd: MeterCmd, meter_id: int | None, attrs: list[tuple[int, bytes]]
    ) -> nlm.Message:
        fam = self._meter_family()
        action = {
            MeterCmd.FEATURES: "asking for meter features",
            MeterCmd.SET: f"setting meter {meter_id}",
            MeterCmd.GET: f"getting meter {meter_id}",
            MeterCmd.DEL: f"deleting meter {meter_id}",
        }[cmd]
        try:
            replies = self._on_dp(dp, lambda i: self._request(fam, cmd, i, attrs))
        except NetlinkError as exc:
            messages = {
                _errno.ENODEV: f"no datapath {dp!r}",
                _errno.ENOENT: f"{self._dp_label(dp)} has no meter {meter_id}",
                _errno.EBUSY: (
                    f"the slot of meter {meter_id} in the kernel's meter array (indexed by id modulo its size, "
                    "1024 at first) holds another meter"
                ),
                _errno.EFBIG: "the datapath has as many meters as the kernel allows (see meter_features)",
            }
            raise translate(exc, f"{action} in {self._dp_label(dp)}", messages=messages, rule="meter") from None
        return _one(replies, action)

    def meter_features(self, dp: DpRef) -> MeterFeatures:
        m = nlm.decode_meter(self._meter_request(dp, MeterCmd.FEATURES, None, []))
        return MeterFeatures(
            max_meters=m.max_meters or 0,
            max_bands=m.max_bands or 0,
            band_types=tuple(_band_type(b.type) for b in m.bands or () if b.type is not None),
        )

    def meter_set(
        self,
        dp: DpRef,
        meter_id: int,
        bands: tuple[MeterBand, ...],
        *,
        kbps: bool = False,
        clear: bool = False,
        stats: FlowStats | None = None,
    ) -> MeterStats | None:
        bands = tuple(bands)
        check_meter_request(meter_id, bands, stats)
        attrs = nlm.meter_attrs(
            meter_id,
            bands=[(int(b.type), b.rate, b.burst) for b in bands],
            kbps=kbps,
            clear=clear,
            stats=None if stats is None else (stats.packets, stats.bytes),
        )
        return meter_stats(self._meter_request(dp, MeterCmd.SET, meter_id, attrs))

    def meter_get(self, dp: DpRef, meter_id: int) -> MeterStats:
        check_meter_request(meter_id, ())
        got = meter_stats(self._meter_request(dp, MeterCmd.GET, meter_id, nlm.meter_attrs(meter_id)))
        if got is None:
            raise BackendError(f"the kernel's reply to getting meter {meter_id} has no stats")
        return got

    def meter_del(self, dp: DpRef, meter_id: int) -> MeterStats | None:
        check_meter_request(meter_id, ())
        return meter_stats(self._meter_request(dp, MeterCmd.DEL, meter_id, nlm.meter_attrs(meter_id)))

    # -- packets -----------------------------------------------------------------------
    def packet_execute(
        self, dp: DpRef, packet: bytes, actions: Actions, *, key: Match | None = None, mru: int | None = None
    ) -> None:
        if len(packet) < ETH_HLEN:
            raise InvalidFlow(f"packet of {len(packet)} bytes is shorter than an Ethernet header", rule="short-packet")
        if mru is not None and not 0 <= mru <= 0xFFFF:
            raise FieldError(f"mru {mru} is out of range 0..65535")
        attrs = nlm.execute_attrs(packet, key if key is not None else Match(), actions, mru=mru)
        fam = self.families.packet
        try:
            self._on_dp(dp, lambda i: self._chan.request(fam.id, PacketCmd.EXECUTE, fam.version, i, attrs))
        except NetlinkError as exc:
            action = f"executing actions on a {len(packet)}-byte packet in {self._dp_label(dp)}"
            if exc.errno in (_errno.EINVAL, _errno.ERANGE):
                in_port = key.get(InPort) if key is not None else None
                if in_port is not None and in_port.port.value >= DP_MAX_PORTS:
                    raise InvalidFlow(
                        f"{action}: in_port {in_port.port.value} exceeds the maximum port {DP_MAX_PORTS - 1} ({exc})",
                        rule="in-port-range",
                    ) from None
                raise self._explain_einval(exc, action, None, actions) from None
            raise translate(exc, action, messages={_errno.ENODEV: f"no datapath {dp!r}"}) from None

    def upcall_listener(self, dp: DpRef, *, dispatch: str = "auto") -> UpcallListener:
        """A listener for the datapath's upcalls (see :class:`odp.kernel.upcall.KernelUpcallListener`)."""
        from odp.kernel.upcall import KernelUpcallListener

        listener = KernelUpcallListener(self, dp, dispatch=dispatch)
        self._listeners.append(listener)
        return listener

    def _forget_listener(self, listener: UpcallListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close(self) -> None:
        for listener in list(self._listeners):
            with contextlib.suppress(OdpError):
                listener.close()
        self._listeners.clear()
        self._chan.close()
