"""Datapath actions (OVS_ACTION_ATTR_*) as small immutable values.

An action list is an :class:`Actions` value (a tuple of actions); an empty
list drops the packet.  Nested actions (sample, clone, check_pkt_len, dec_ttl)
hold ``Actions`` themselves.  ``str()`` gives the ODP text ovs-dpctl prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

from odp.constants import TUNNEL_FLAGS_ALL, ActionType, HashAlg, TunnelFlag
from odp.errors import FieldError
from odp.fields import Kind, Masked
from odp.keys import FixedKeyAttr, KeyAttr, MaskedBytes, Mpls, Tunnel


class Action:
    """Base of every action."""

    __slots__ = ()
    TYPE: ClassVar[int]

    def __str__(self) -> str:
        from odp.text import format_action

        return format_action(self)


def _check_u(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise FieldError(f"{what}: {value!r} must be an integer 0..{(1 << bits) - 1}")


@dataclass(frozen=True, slots=True)
class Actions:
    """An ordered list of actions; empty means drop."""

    items: tuple[Action, ...] = ()

    def __init__(self, items: Iterable[Action] = ()) -> None:
        items = tuple(items)
        for a in items:
            if not isinstance(a, Action):
                raise FieldError(f"actions: {a!r} is not an action")
        object.__setattr__(self, "items", items)

    @classmethod
    def of(cls, *items: Action) -> Actions:
        for a in items:
            if not isinstance(a, Action):
                raise FieldError(f"actions: {a!r} is not an action")
        self = object.__new__(cls)
        _set_items(self, items)
        return self

    def __iter__(self) -> Iterator[Action]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> Action: ...
    @overload
    def __getitem__(self, i: slice) -> Actions: ...
    def __getitem__(self, i: int | slice) -> Action | Actions:
        if isinstance(i, slice):
            return Actions(self.items[i])
        return self.items[i]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        from odp.text import format_actions

        return format_actions(self)

    def __repr__(self) -> str:
        return f"Actions({str(self)!r})"


_set_items: Any = Actions.__dict__["items"].__set__


def _actions(value: Iterable[Action] | Actions) -> Actions:
    return value if isinstance(value, Actions) else Actions(value)


@dataclass(frozen=True, slots=True)
class Output(Action):
    port: int
    TYPE: ClassVar[int] = ActionType.OUTPUT

    def __post_init__(self) -> None:
        _check_u(self.port, 32, "output port")


@dataclass(frozen=True, slots=True)
class Userspace(Action):
    """Send the packet to userspace (an ACTION upcall) at netlink port ``pid``."""

    pid: int
    userdata: bytes | None = None
    egress_tun_port: int | None = None
    actions: bool = False
    TYPE: ClassVar[int] = ActionType.USERSPACE

    def __post_init__(self) -> None:
        _check_u(self.pid, 32, "userspace pid")
        if self.egress_tun_port is not None:
            _check_u(self.egress_tun_port, 32, "userspace tunnel_out_port")
        if self.userdata is not None and not isinstance(self.userdata, bytes):
            raise FieldError("userspace userdata must be bytes")


@dataclass(frozen=True, slots=True)
class Set(Action):
    """OVS_ACTION_ATTR_SET: overwrite a whole key attribute (its mask is ignored)."""

    attr: KeyAttr
    TYPE: ClassVar[int] = ActionType.SET

    def __post_init__(self) -> None:
        if not isinstance(self.attr, KeyAttr):
            raise FieldError(f"set: {self.attr!r} is not a key attribute")
        if isinstance(self.attr, Tunnel):
            object.__setattr__(self, "attr", _set_tunnel(self.attr))


def _set_tunnel(t: Tunnel) -> Tunnel:
    """The tunnel a SET carries, as the kernel receives it and a dump gives it back.

    A SET sends values only and the kernel sets tunnel() whole, so this is the
    value the action has: fields present exact, absent ones absent; TTL always
    (the kernel requires it; odp and OVS send 0 when none is given); flags
    whole, as presence-coded attributes (absent is off); the tunnel ID present
    exactly when the key flag is (its attribute is that flag).
    """
    kw: dict[str, Masked] = {}
    for spec, m in t.items():
        value = m.value & m.mask
        if spec.name == "flags":
            kw["flags"] = Masked(value, TUNNEL_FLAGS_ALL)
        elif m.mask or spec.name == "ttl":
            kw[spec.name] = Masked(value, spec.kind.full)
    has_key = bool(kw["flags"].value & TunnelFlag.KEY)
    if "tun_id" in kw and not has_key:
        raise FieldError(
            f"set(tunnel()): tun_id={kw['tun_id'].value:#x} without the key flag: the ID's attribute is the key "
            "flag, so the kernel would never see the ID"
        )
    if has_key and "tun_id" not in kw:
        kw["tun_id"] = Masked(0, Kind.U64.full)

    def exact(b: MaskedBytes | None) -> MaskedBytes | None:
        return None if b is None else MaskedBytes.exact(b.value)  # option bytes are sent as they are

    # An unknown sub-attribute is sent with its key bytes (an empty one only when its mask is empty too).
    extra = tuple((typ, key, b"\xff" * len(key)) for typ, key, mask in t.extra if key or not mask)
    return Tunnel(geneve=exact(t.geneve), erspan=exact(t.erspan), extra=extra, normalize=False, **kw)


@dataclass(frozen=True, slots=True)
class SetMasked(Action):
    """OVS_ACTION_ATTR_SET_MASKED: overwrite only the masked bits of a key attribute.

    The attribute is a fixed-size one or ``mpls`` (the kernel applies the
    masked top label stack entry); tunnel can only be set whole, with Set.
    """

    attr: FixedKeyAttr | Mpls
    TYPE: ClassVar[int] = ActionType.SET_MASKED

    def __post_init__(self) -> None:
        if not isinstance(self.attr, (FixedKeyAttr, Mpls)):
            raise FieldError(f"set_masked: {self.attr!r} must be a fixed-size key attribute or mpls (not tunnel)")


@dataclass(frozen=True, slots=True)
class PushVlan(Action):
    tci: int
    tpid: int = 0x8100
    TYPE: ClassVar[int] = ActionType.PUSH_VLAN

    def __post_init__(self) -> None:
        _check_u(self.tci, 16, "push_vlan tci")
        _check_u(self.tpid, 16, "push_vlan tpid")

    @classmethod
    def of(cls, vid: int, pcp: int = 0, tpid: int = 0x8100) -> PushVlan:
        _check_u(vid, 12, "push_vlan vid")
        _check_u(pcp, 3, "push_vlan pcp")
        return cls(tci=(pcp << 13) | 0x1000 | vid, tpid=tpid)


@dataclass(frozen=True, slots=True)
class PopVlan(Action):
    TYPE: ClassVar[int] = ActionType.POP_VLAN


@dataclass(frozen=True, slots=True)
class Sample(Action):
    """Run ``actions`` on a clone with probability ``probability / 2**32-1``."""

    probability: int
    actions: Actions = field(default_factory=Actions)
    TYPE: ClassVar[int] = ActionType.SAMPLE
    ALWAYS: ClassVar[int] = 0xFFFFFFFF

    def __post_init__(self) -> None:
        _check_u(self.probability, 32, "sample probability")
        object.__setattr__(self, "actions", _actions(self.actions))


@dataclass(frozen=True, slots=True)
class Recirc(Action):
    recirc_id: int
    TYPE: ClassVar[int] = ActionType.RECIRC

    def __post_init__(self) -> None:
        _check_u(self.recirc_id, 32, "recirc id")


@dataclass(frozen=True, slots=True)
class Hash(Action):
    alg: int = HashAlg.L4
    basis: int = 0
    TYPE: ClassVar[int] = ActionType.HASH

    def __post_init__(self) -> None:
        _check_u(self.alg, 32, "hash algorithm")
        _check_u(self.basis, 32, "hash basis")


@dataclass(frozen=True, slots=True)
class PushMpls(Action):
    lse: int
    ethertype: int = 0x8847
    TYPE: ClassVar[int] = ActionType.PUSH_MPLS

    def __post_init__(self) -> None:
        _check_u(self.lse, 32, "push_mpls lse")
        _check_u(self.ethertype, 16, "push_mpls eth_type")


@dataclass(frozen=True, slots=True)
class PopMpls(Action):
    ethertype: int
    TYPE: ClassVar[int] = ActionType.POP_MPLS

    def __post_init__(self) -> None:
        _check_u(self.ethertype, 16, "pop_mpls eth_type")


@dataclass(frozen=True, slots=True)
class AddMpls(Action):
    lse: int
    ethertype: int = 0x8847
    tun_flags: int = 0
    TYPE: ClassVar[int] = ActionType.ADD_MPLS

    def __post_init__(self) -> None:
        _check_u(self.lse, 32, "add_mpls lse")
        _check_u(self.ethertype, 16, "add_mpls eth_type")
        _check_u(self.tun_flags, 16, "add_mpls tun_flags")


@dataclass(frozen=True, slots=True)
class Nat(Action):
    """The NAT part of a ct() action. ``kind`` is "src", "dst" or None (reverse NAT)."""

    kind: str | None = None
    ip_min: int | None = None
    ip_max: int | None = None
    ipv6: bool = False
    proto_min: int | None = None
    proto_max: int | None = None
    persistent: bool = False
    proto_hash: bool = False
    proto_random: bool = False
    TYPE: ClassVar[int] = -1  # only inside Ct

    def __post_init__(self) -> None:
        if self.kind not in (None, "src", "dst"):
            raise FieldError(f"nat: kind must be 'src', 'dst' or None, not {self.kind!r}")
        bits = 128 if self.ipv6 else 32
        for name in ("ip_min", "ip_max"):
            v = getattr(self, name)
            if v is not None:
                _check_u(v, bits, f"nat {name}")
        for name in ("proto_min", "proto_max"):
            v = getattr(self, name)
            if v is not None:
                _check_u(v, 16, f"nat {name}")


@dataclass(frozen=True, slots=True)
class Ct(Action):
    """Send the packet through conntrack."""

    commit: bool = False
    force_commit: bool = False
    zone: int | None = None
    mark: Masked | None = None
    labels: Masked | None = None
    helper: str | None = None
    timeout: str | None = None
    eventmask: int | None = None
    nat: Nat | None = None
    TYPE: ClassVar[int] = ActionType.CT

    def __post_init__(self) -> None:
        if self.zone is not None:
            _check_u(self.zone, 16, "ct zone")
        if self.eventmask is not None:
            _check_u(self.eventmask, 32, "ct eventmask")
        if self.mark is not None and not isinstance(self.mark, Masked):
            object.__setattr__(self, "mark", Kind.U32.coerce(self.mark, "ct mark"))
        if self.labels is not None and not isinstance(self.labels, Masked):
            object.__setattr__(self, "labels", Kind.U128.coerce(self.labels, "ct labels"))


@dataclass(frozen=True, slots=True)
class Trunc(Action):
    max_len: int
    TYPE: ClassVar[int] = ActionType.TRUNC

    def __post_init__(self) -> None:
        _check_u(self.max_len, 32, "trunc length")


@dataclass(frozen=True, slots=True)
class PushEth(Action):
    src: int = 0
    dst: int = 0
    TYPE: ClassVar[int] = ActionType.PUSH_ETH

    def __post_init__(self) -> None:
        for name in ("src", "dst"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, Kind.MAC.coerce(v, f"push_eth {name}").value)
            else:
                _check_u(v, 48, f"push_eth {name}")


@dataclass(frozen=True, slots=True)
class PopEth(Action):
    TYPE: ClassVar[int] = ActionType.POP_ETH


@dataclass(frozen=True, slots=True)
class CtClear(Action):
    TYPE: ClassVar[int] = ActionType.CT_CLEAR


@dataclass(frozen=True, slots=True)
class PushNsh(Action):
    """Push an NSH header described by an Nsh key attribute (exact values)."""

    nsh: KeyAttr
    TYPE: ClassVar[int] = ActionType.PUSH_NSH


@dataclass(frozen=True, slots=True)
class PopNsh(Action):
    TYPE: ClassVar[int] = ActionType.POP_NSH


@dataclass(frozen=True, slots=True)
class Meter(Action):
    meter_id: int
    TYPE: ClassVar[int] = ActionType.METER

    def __post_init__(self) -> None:
        _check_u(self.meter_id, 32, "meter id")


@dataclass(frozen=True, slots=True)
class Clone(Action):
    actions: Actions = field(default_factory=Actions)
    TYPE: ClassVar[int] = ActionType.CLONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", _actions(self.actions))


@dataclass(frozen=True, slots=True)
class CheckPktLen(Action):
    pkt_len: int
    if_greater: Actions = field(default_factory=Actions)
    if_less_equal: Actions = field(default_factory=Actions)
    TYPE: ClassVar[int] = ActionType.CHECK_PKT_LEN

    def __post_init__(self) -> None:
        _check_u(self.pkt_len, 16, "check_pkt_len size")
        object.__setattr__(self, "if_greater", _actions(self.if_greater))
        object.__setattr__(self, "if_less_equal", _actions(self.if_less_equal))


@dataclass(frozen=True, slots=True)
class DecTtl(Action):
    """Decrement the IP TTL; run ``actions`` when it would reach zero (le_1)."""

    actions: Actions = field(default_factory=Actions)
    TYPE: ClassVar[int] = ActionType.DEC_TTL

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", _actions(self.actions))


@dataclass(frozen=True, slots=True)
class Drop(Action):
    """Explicit drop with a reason (kernel 6.4+; older kernels reject it)."""

    reason: int = 0
    TYPE: ClassVar[int] = ActionType.DROP

    def __post_init__(self) -> None:
        _check_u(self.reason, 32, "drop reason")


@dataclass(frozen=True, slots=True)
class Psample(Action):
    group: int
    cookie: bytes | None = None
    TYPE: ClassVar[int] = ActionType.PSAMPLE

    def __post_init__(self) -> None:
        _check_u(self.group, 32, "psample group")
        if self.cookie is not None and len(self.cookie) > 16:
            raise FieldError("psample cookie: at most 16 bytes")


@dataclass(frozen=True, slots=True)
class UnknownAction(Action):
    """An action odp does not model, kept raw so it round-trips."""

    type: int
    payload: bytes = b""

    @property
    def TYPE(self) -> int:  # type: ignore[override]  # noqa: N802
        return self.type


def set_tunnel(**fields: Any) -> Set:
    """``Set(Tunnel(...))`` with exact values, e.g. ``set_tunnel(tun_id=5, ipv4_dst="10.0.0.2", ttl=64)``."""
    tunnel = Tunnel(**fields)
    # A set() carries whole values: every flag not given is "off", exactly.
    return Set(tunnel.with_fields(flags=Masked(tunnel.flags.value, 0xF)))


ACTION_CLASSES: tuple[type[Action], ...] = (
    Output, Userspace, Set, SetMasked, PushVlan, PopVlan, Sample, Recirc, Hash, PushMpls, PopMpls,
    Ct, Trunc, PushEth, PopEth, CtClear, PushNsh, PopNsh, Meter, Clone, CheckPktLen, AddMpls,
    DecTtl, Drop, Psample,
)  # fmt: skip
