"""The kernel's action rules: ``__ovs_nla_copy_actions`` (net/openvswitch/flow_netlink.c), transcribed.

:func:`validate_actions` answers whether the kernel would refuse a list of
actions with EINVAL; the checks that read the flow key use the key and mask
that :mod:`odp.validate.get_match` stores for the flow.
"""

from __future__ import annotations

import errno as _errno
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from odp._cache import last_by_identity
from odp.actions import (
    Action,
    Actions,
    AddMpls,
    CheckPktLen,
    Clone,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Meter,
    Nat,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
)
from odp.constants import (
    DP_MAX_PORTS,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_UC,
    ETH_P_NSH,
    ETH_P_RARP,
    VLAN_CFI,
    ActionType,
)
from odp.errors import InvalidFlow
from odp.fields import Masked
from odp.kernels import ACTION_FEATURES, HASH_FEATURES, NEWEST, SINCE, Kernel
from odp.keys import (
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    Ipv4,
    Ipv6,
    KeyAttr,
    Match,
    Mpls,
    Nsh,
    UnknownKeyAttr,
    Vlan,
)
from odp.netlink import codec as _codec
from odp.validate.fastpath import _SIGNATURE_CACHE_MAX, _accepted_actions, _accepted_signature
from odp.validate.get_match import (
    _ENCODE_ERRORS,
    _KEY_ATTR_MAX,
    _KEY_LENS,
    _L4_PROTO,
    _MAC_PROTO_ETHERNET,
    _MAC_PROTO_NONE,
    _TUN_GENEVE,
    K,
    _attr_payload,
    _be,
    _blank,
    _fail,
    _get_match,
    _get_opts,
    _ip_tun_from_nlattr,
    _is_mpls_type,
    _is_vlan_type,
    _masked,
    _name,
    _nsh_key_put,
)

#: What ``kernel=None`` means: the newest kernel whose rules this module encodes.
NEWEST_KERNEL: tuple[int, int] = NEWEST.as_tuple()
_TUN_P_FROM_ETH: dict[int, int] = {ETH_P_IP: 1, ETH_P_IPV6: 2, 0x6558: 3, ETH_P_NSH: 4, ETH_P_MPLS_UC: 5}
_TUN_P_ETHERNET = 3
_ETH_P_TEB = 0x6558
_ETH_HLEN = 14
_NF_CT_HELPER_NAME_LEN = 16
_CTNL_TIMEOUT_NAME_MAX = 32
_PSAMPLE_COOKIE_MAX = 16
_COPY_ACTIONS_MAX_DEPTH = 16

# ---------------------------------------------------------------------------
# Actions: __ovs_nla_copy_actions, transcribed.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _FlowInfo:
    """What the action checks read from the (masked) flow key; None = unknown."""

    eth_type: int | None
    ip_proto: int | None
    ip_frag: int | None
    nsh_np: int | None


@dataclass(frozen=True)
class _State:
    """The values __ovs_nla_copy_actions tracks through a list; None = unknown."""

    mac_proto: int | None
    eth_type: int | None
    vlan_tci: int | None
    mpls_count: int | None


_ACTION_NAMES: dict[type[Action], str] = {
    Output: "output", Userspace: "userspace", Set: "set", SetMasked: "set_masked", PushVlan: "push_vlan",
    PopVlan: "pop_vlan", Sample: "sample", Recirc: "recirc", Hash: "hash", PushMpls: "push_mpls",
    PopMpls: "pop_mpls", Ct: "ct", Trunc: "trunc", PushEth: "push_eth", PopEth: "pop_eth",
    CtClear: "ct_clear", PushNsh: "push_nsh", PopNsh: "pop_nsh", Meter: "meter", Clone: "clone",
    CheckPktLen: "check_pkt_len", AddMpls: "add_mpls", DecTtl: "dec_ttl", Drop: "drop", Psample: "psample",
    Nat: "nat",
}  # fmt: skip


def _action_name(action: Action) -> str:
    if isinstance(action, UnknownAction):
        return f"action{action.type}"
    return _ACTION_NAMES.get(type(action), type(action).__name__.lower())


class _ActionChecker:
    def __init__(self, flow: _FlowInfo, kernel: Kernel, key_mac_proto: int | None = None) -> None:
        self.flow = flow
        self.kernel = kernel
        #: The flow key's mac_proto: every nested list (clone, sample, check_pkt_len,
        #: dec_ttl) starts from it, not from the current one (__ovs_nla_copy_actions
        #: recomputes it with ovs_key_mac_proto(key); eth_type, vlan_tci and the MPLS
        #: label count are passed down).
        self.key_mac_proto = key_mac_proto

    # -- helpers -----------------------------------------------------------
    def fail(self, rule: str, field: str, message: str, where: str) -> InvalidFlow:
        return _fail(rule, field, message + (f" (inside {where})" if where else ""))

    def check_list(self, actions: Sequence[Action], state: _State, depth: int, where: str) -> None:
        if depth > _COPY_ACTIONS_MAX_DEPTH:
            exc = self.fail(
                "nesting-too-deep", "actions", f"actions are nested more than {_COPY_ACTIONS_MAX_DEPTH} deep", where
            )
            exc.errno = _errno.EOVERFLOW
            raise exc
        for index, action in enumerate(actions):
            state = self.check(action, state, depth, where, last=index == len(actions) - 1)

    def nested(self, actions: object, state: _State, depth: int, where: str, name: str) -> None:
        if not isinstance(actions, Actions):
            raise self.fail("malformed-action", name, f"{name} needs an Actions list", where)
        path = f"{where} > {name}" if where else name
        if path.count(" > ") > 3:
            path = "... > " + " > ".join(path.split(" > ")[-3:])
        self.check_list(actions.items, replace(state, mac_proto=self.key_mac_proto), depth + 1, path)

    # -- one action ----------------------------------------------------------
    def check(self, action: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        name = _action_name(action)
        type_ = action.TYPE
        if not isinstance(action, Action) or isinstance(action, Nat):
            raise self.fail("nat-outside-ct", name, f"{name}() is only valid inside ct()", where)
        feature = ACTION_FEATURES.get(type_)
        if feature is not None and not self.kernel.has(feature):
            raise self.fail(
                "action-needs-newer-kernel",
                name,
                f"{name} needs Linux {SINCE[feature]} (this kernel is {self.kernel})",
                where,
            )
        method: Callable[[Action, _State, int, str, bool], _State] | None = getattr(
            self, "act_" + type(action).__name__.lower(), None
        )
        if method is None:  # pragma: no cover - every model class has a method
            raise self.fail("unknown-action", name, f"{name} is not an action the kernel knows", where)
        return method(action, s, depth, where, last)

    def act_output(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Output)
        if a.port >= DP_MAX_PORTS:
            raise self.fail(
                "output-port", "output", f"output port {a.port} exceeds the maximum port {DP_MAX_PORTS - 1}", where
            )
        return s

    def act_userspace(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Userspace)
        if a.pid == 0:
            raise self.fail(
                "userspace-pid", "userspace", "userspace(pid=0) is refused: the pid must be non-zero", where
            )
        return s

    def act_set(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Set)
        self.validate_set(a.attr, False, s, where)
        return s

    def act_setmasked(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, SetMasked)
        self.validate_set(a.attr, True, s, where)
        return s

    def act_pushvlan(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushVlan)
        self.need_ethernet(s, "push_vlan", where)
        if not _is_vlan_type(a.tpid):
            raise self.fail(
                "push-vlan-tpid", "push_vlan", f"push_vlan tpid 0x{a.tpid:04x} is not 0x8100 or 0x88a8", where
            )
        if not a.tci & VLAN_CFI:
            raise self.fail(
                "push-vlan-cfi", "push_vlan", f"push_vlan tci 0x{a.tci:04x} lacks the CFI bit 0x1000", where
            )
        return replace(s, vlan_tci=a.tci)

    def act_popvlan(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        self.need_ethernet(s, "pop_vlan", where)
        return replace(s, vlan_tci=0)

    def act_sample(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Sample)
        self.nested(a.actions, s, depth, where, "sample")
        return s

    def act_recirc(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_hash(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Hash)
        allowed = tuple(int(alg) for alg, f in HASH_FEATURES.items() if f is None or self.kernel.has(f))
        if a.alg not in allowed:
            raise self.fail(
                "hash-alg",
                "hash",
                f"hash algorithm {a.alg} is unknown to this kernel (known: "
                + ", ".join({0: "0 (l4)", 1: "1 (sym_l4)"}[x] for x in allowed)
                + ")",
                where,
            )
        return s

    def mpls_push_allowed(self, s: _State, name: str, where: str) -> None:
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("mpls-with-vlan", name, f"{name} is refused on a VLAN-tagged packet", where)
        if s.eth_type is not None and not (
            s.eth_type in (ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_RARP) or _is_mpls_type(s.eth_type)
        ):
            raise self.fail(
                "push-mpls-eth-type",
                name,
                f"{name} needs an IPv4, IPv6, ARP/RARP or MPLS packet (eth_type is 0x{s.eth_type:04x})",
                where,
            )

    def act_pushmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushMpls)
        if not _is_mpls_type(a.ethertype):
            raise self.fail(
                "mpls-ethertype", "push_mpls", f"push_mpls eth_type 0x{a.ethertype:04x} is not 0x8847 or 0x8848", where
            )
        self.mpls_push_allowed(s, "push_mpls", where)
        count = None if s.mpls_count is None else s.mpls_count + 1
        return replace(s, eth_type=a.ethertype, mpls_count=count)

    def act_addmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, AddMpls)
        if not _is_mpls_type(a.ethertype):
            raise self.fail(
                "mpls-ethertype", "add_mpls", f"add_mpls eth_type 0x{a.ethertype:04x} is not 0x8847 or 0x8848", where
            )
        count = s.mpls_count
        mac = s.mac_proto
        if a.tun_flags & 1:  # OVS_MPLS_L3_TUNNEL_FLAG_MASK
            self.mpls_push_allowed(s, "add_mpls", where)
            count = None if count is None else count + 1
        elif mac == _MAC_PROTO_ETHERNET:
            count, mac = 1, _MAC_PROTO_NONE
        elif mac is None:
            count = None
        else:
            count = None if count is None else count + 1
        return _State(mac_proto=mac, eth_type=a.ethertype, vlan_tci=s.vlan_tci, mpls_count=count)

    def act_popmpls(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PopMpls)
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("mpls-with-vlan", "pop_mpls", "pop_mpls is refused on a VLAN-tagged packet", where)
        if s.eth_type is not None and not _is_mpls_type(s.eth_type):
            raise self.fail(
                "pop-mpls-not-mpls",
                "pop_mpls",
                f"pop_mpls needs an MPLS packet (eth_type is 0x{s.eth_type:04x})",
                where,
            )
        if a.ethertype == _ETH_P_TEB and s.mac_proto is not None and s.mac_proto != _MAC_PROTO_NONE:
            raise self.fail(
                "pop-mpls-teb",
                "pop_mpls",
                "pop_mpls to eth_type 0x6558 needs a packet without an Ethernet header",
                where,
            )
        count = None if s.mpls_count is None else s.mpls_count - 1
        if not _is_mpls_type(a.ethertype) or count == 0:
            eth_type: int | None = 0
        elif count is None:
            eth_type = None
        else:
            eth_type = a.ethertype
        return replace(s, eth_type=eth_type, mpls_count=count)

    def act_ct(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Ct)
        eth_type = self.flow.eth_type
        if eth_type is not None and eth_type not in (ETH_P_IP, ETH_P_IPV6):
            raise self.fail(
                "ct-needs-ip", "ct", f"ct() needs an IPv4 or IPv6 flow (the flow's eth_type is 0x{eth_type:04x})", where
            )
        commit = a.commit or a.force_commit
        if a.mark is not None:
            if not a.mark.mask:
                raise self.fail("ct-mark-mask-zero", "ct", "ct(mark=...) needs a non-zero mask", where)
            if not commit:
                raise self.fail("ct-needs-commit", "ct", "ct(mark=...) needs commit", where)
        if a.labels is not None:
            if not a.labels.mask:
                raise self.fail("ct-labels-mask-zero", "ct", "ct(labels=...) needs a non-zero mask", where)
            if not commit:
                raise self.fail("ct-needs-commit", "ct", "ct(labels=...) needs commit", where)
        if a.helper is not None and not 0 < len(a.helper.encode()) < _NF_CT_HELPER_NAME_LEN:
            raise self.fail("ct-helper", "ct", f"ct helper name {a.helper!r} must be 1..15 bytes", where)
        if a.timeout is not None and not len(a.timeout.encode()) < _CTNL_TIMEOUT_NAME_MAX:
            raise self.fail("ct-timeout", "ct", f"ct timeout policy name {a.timeout!r} must be at most 31 bytes", where)
        if a.nat is not None:
            self.check_nat(a.nat, commit, where)
        return s

    def check_nat(self, nat: Nat, commit: bool, where: str) -> None:
        flags = (
            nat.ip_min is not None
            or nat.ip_max is not None
            or nat.proto_min is not None
            or nat.proto_max is not None
            or nat.persistent
            or nat.proto_hash
            or nat.proto_random
        )
        if nat.kind is None:
            if flags:
                raise self.fail(
                    "nat-flags-without-type", "ct", "ct(nat(...)) addresses, ports and flags need src or dst", where
                )
        elif not commit:
            raise self.fail("nat-needs-commit", "ct", f"ct(nat({nat.kind}=...)) needs commit", where)
        eth_type = self.flow.eth_type
        given = nat.ip_min is not None or nat.ip_max is not None
        if given and eth_type in (ETH_P_IP, ETH_P_IPV6) and nat.ipv6 != (eth_type == ETH_P_IPV6):
            raise self.fail(
                "nat-address-family",
                "ct",
                f"ct(nat(...)) gives IPv{'6' if nat.ipv6 else '4'} addresses for an "
                f"IPv{'6' if eth_type == ETH_P_IPV6 else '4'} flow",
                where,
            )

    def act_trunc(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Trunc)
        if a.max_len < _ETH_HLEN:
            raise self.fail(
                "trunc-length", "trunc", f"trunc({a.max_len}) is shorter than an Ethernet header (14)", where
            )
        return s

    def act_pusheth(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if s.mac_proto is not None and s.mac_proto != _MAC_PROTO_NONE:
            raise self.fail(
                "push-eth-has-ethernet", "push_eth", "push_eth on a packet that has an Ethernet header", where
            )
        return replace(s, mac_proto=_MAC_PROTO_ETHERNET)

    def act_popeth(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        self.need_ethernet(s, "pop_eth", where)
        if s.vlan_tci is not None and s.vlan_tci & VLAN_CFI:
            raise self.fail("pop-eth-with-vlan", "pop_eth", "pop_eth on a VLAN-tagged packet (pop_vlan first)", where)
        return replace(s, mac_proto=_MAC_PROTO_NONE)

    def act_ctclear(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_pushnsh(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, PushNsh)
        l3_packet = s.mac_proto is not None and s.mac_proto != _MAC_PROTO_ETHERNET
        if l3_packet and s.eth_type is not None and s.eth_type not in _TUN_P_FROM_ETH:
            raise self.fail(
                "push-nsh-eth-type",
                "push_nsh",
                f"push_nsh on an L3 packet needs eth_type IPv4, IPv6, 0x6558, NSH or MPLS (not 0x{s.eth_type:04x})",
                where,
            )
        nsh = a.nsh
        if isinstance(nsh, Nsh):
            # The kernel reads PUSH_NSH's payload as one nested OVS_KEY_ATTR_NSH attribute.
            try:
                data = _attr_payload(nsh)
            except _ENCODE_ERRORS as exc:
                raise self.fail("unencodable", "push_nsh", f"push_nsh cannot be sent: {exc}", where) from None
        elif isinstance(nsh, UnknownKeyAttr):
            data = bytes(nsh.key)
        else:
            raise self.fail("push-nsh-attr", "push_nsh", "push_nsh needs an nsh() attribute", where)
        try:
            _nsh_key_put(data, None, False, True)
        except InvalidFlow as exc:
            raise self.fail(exc.rule, "push_nsh", str(exc).replace("nsh()", "push_nsh(nsh())"), where) from None
        return replace(s, mac_proto=_MAC_PROTO_NONE)

    def act_popnsh(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if s.eth_type is not None and s.eth_type != ETH_P_NSH:
            raise self.fail(
                "pop-nsh-eth-type", "pop_nsh", f"pop_nsh needs an NSH packet (eth_type is 0x{s.eth_type:04x})", where
            )
        np = self.flow.nsh_np
        if np is None:
            return replace(s, mac_proto=None)
        if np not in (1, 2, 3, 4, 5):
            raise self.fail("pop-nsh-next-proto", "pop_nsh", f"pop_nsh: the flow's nsh np {np} is unknown", where)
        return replace(s, mac_proto=_MAC_PROTO_ETHERNET if np == _TUN_P_ETHERNET else _MAC_PROTO_NONE)

    def act_meter(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        return s

    def act_clone(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Clone)
        self.nested(a.actions, s, depth, where, "clone")
        return s

    def act_checkpktlen(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, CheckPktLen)
        if a.pkt_len == 0:
            raise self.fail("check-pkt-len-zero", "check_pkt_len", "check_pkt_len(size=0) is refused", where)
        self.nested(a.if_less_equal, s, depth, where, "check_pkt_len le")
        self.nested(a.if_greater, s, depth, where, "check_pkt_len gt")
        return s

    def act_decttl(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, DecTtl)
        self.nested(a.actions, s, depth, where, "dec_ttl")
        return s

    def act_drop(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        if not last:
            raise self.fail("drop-not-last", "drop", "drop must be the last action of its list", where)
        return s

    def act_psample(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, Psample)
        if a.cookie is not None and len(a.cookie) > _PSAMPLE_COOKIE_MAX:
            raise self.fail("psample-cookie", "psample", "psample cookie is longer than 16 bytes", where)
        return s

    def act_unknownaction(self, a: Action, s: _State, depth: int, where: str, last: bool) -> _State:
        assert isinstance(a, UnknownAction)
        decoded = _decode_raw_action(a.type, bytes(a.payload))
        if decoded is None:
            raise self.fail(
                "unknown-action",
                _action_name(a),
                f"{_action_name(a)}: action type {a.type} with a {len(a.payload)}-byte payload"
                " is not one the kernel accepts",
                where,
            )
        return self.check(decoded, s, depth, where, last)

    # -- set / set_masked ----------------------------------------------------
    def need_ethernet(self, s: _State, name: str, where: str) -> None:
        if s.mac_proto is not None and s.mac_proto != _MAC_PROTO_ETHERNET:
            raise self.fail("needs-ethernet", name, f"{name} needs a packet with an Ethernet header", where)

    def validate_set(self, attr: KeyAttr, masked: bool, s: _State, where: str) -> None:
        action = "set_masked" if masked else "set"
        type_ = getattr(attr, "TYPE", -1)
        name = _name(type_) if isinstance(type_, int) and type_ >= 0 else type(attr).__name__
        field = f"{action}({name})"
        # As the codec sends them: set() the values, set_masked() value & mask then the mask.
        if isinstance(attr, UnknownKeyAttr):
            value = bytes(attr.key)
            mask = bytes(attr.mask) if attr.mask is not None else b"\xff" * len(value)
        else:
            try:
                if masked and isinstance(attr, (FixedKeyAttr, Mpls)):
                    value = _attr_payload(attr.masked())
                else:
                    value = _attr_payload(attr)
                mask = _attr_payload(attr, mask=True) if masked else b"\xff" * len(value)
            except _ENCODE_ERRORS as exc:
                raise self.fail("unencodable", field, f"{field} cannot be sent: {exc}", where) from None
        if not isinstance(type_, int) or not 0 <= type_ <= 0xFFFF or type_ > _KEY_ATTR_MAX:
            raise self.fail("set-attr-not-settable", field, f"{field}: attribute type {type_} is unknown", where)
        if masked and type_ == K.TUNNEL:
            raise self.fail(
                "set-tunnel-masked", field, f"{field} is refused: tunnel() can only be set whole, with set()", where
            )
        expected = _KEY_LENS.get(type_, 0)
        if expected >= 0 and len(value) != expected:
            raise self.fail(
                "set-attr-length", field, f"{field} payload is {len(value)} bytes, expected {expected}", where
            )
        if masked and len(value) != len(mask):  # pragma: no cover - the model keeps them equal
            raise self.fail("set-attr-length", field, f"{field} value and mask differ in length", where)
        if masked and any(v & ~m for v, m in zip(value, mask, strict=False)):  # pragma: no cover - codec masks
            raise self.fail("set-masked-bits-outside-mask", field, f"{field} sets bits outside its mask", where)
        if type_ in (K.PRIORITY, K.SKB_MARK, K.CT_MARK, K.CT_LABELS):
            return
        if type_ == K.ETHERNET:
            self.need_ethernet(s, field, where)
            return
        if type_ == K.TUNNEL:
            self.validate_set_tunnel(value, field, where)
            return
        flow = self.flow
        if type_ in (K.IPV4, K.IPV6):
            v6 = type_ == K.IPV6
            want = ETH_P_IPV6 if v6 else ETH_P_IP
            if s.eth_type is not None and s.eth_type != want:
                raise self.fail(
                    "set-l3-eth-type",
                    field,
                    f"{field} needs an {'IPv6' if v6 else 'IPv4'} packet (eth_type is 0x{s.eth_type:04x})",
                    where,
                )
            if v6:
                label_v, proto_v, frag_v = struct.unpack_from("!IB2xB", value, 32)
                label_m, proto_m, frag_m = struct.unpack_from("!IB2xB", mask, 32)
            else:
                proto_v, frag_v = value[8], value[11]
                proto_m, frag_m = mask[8], mask[11]
                label_v = label_m = 0
            if masked:
                if proto_m or frag_m:
                    raise self.fail(
                        "set-ip-readonly", field, f"{field} cannot change the ip proto or frag (mask them out)", where
                    )
                if label_m & 0xFFF00000:
                    raise self.fail("set-ipv6-label-range", field, f"{field} label mask exceeds 20 bits", where)
            else:
                if flow.ip_proto is not None and proto_v != flow.ip_proto:
                    raise self.fail(
                        "set-ip-readonly",
                        field,
                        f"{field} proto {proto_v} differs from the flow's proto {flow.ip_proto} (it cannot change)",
                        where,
                    )
                if flow.ip_frag is not None and frag_v != flow.ip_frag:
                    raise self.fail(
                        "set-ip-readonly",
                        field,
                        f"{field} frag {frag_v} differs from the flow's frag {flow.ip_frag} (it cannot change)",
                        where,
                    )
            if label_v & 0xFFF00000:
                raise self.fail("set-ipv6-label-range", field, f"{field} label 0x{label_v:x} exceeds 20 bits", where)
            return
        if type_ in (K.TCP, K.UDP, K.SCTP):
            proto = _L4_PROTO[type_]
            if s.eth_type is not None and s.eth_type not in (ETH_P_IP, ETH_P_IPV6):
                raise self.fail(
                    "set-l4-proto", field, f"{field} needs an IP packet (eth_type is 0x{s.eth_type:04x})", where
                )
            if flow.ip_proto is not None and flow.ip_proto != proto:
                raise self.fail(
                    "set-l4-proto", field, f"{field} needs a flow with ip proto {proto} (it has {flow.ip_proto})", where
                )
            return
        if type_ == K.MPLS:
            if s.eth_type is not None and not _is_mpls_type(s.eth_type):
                raise self.fail(
                    "set-mpls-eth-type", field, f"{field} needs an MPLS packet (eth_type is 0x{s.eth_type:04x})", where
                )
            return
        if type_ == K.NSH:
            if s.eth_type is not None and s.eth_type != ETH_P_NSH:
                raise self.fail(
                    "set-nsh-eth-type", field, f"{field} needs an NSH packet (eth_type is 0x{s.eth_type:04x})", where
                )
            try:
                _nsh_key_put(value, None, masked, False)
            except InvalidFlow as exc:
                raise self.fail(exc.rule, field, f"{field}: {exc}", where) from None
            return
        raise self.fail(
            "set-attr-not-settable", field, f"{field} is refused: {name}() cannot be changed by a set action", where
        )

    def validate_set_tunnel(self, payload: bytes, field: str, where: str) -> None:
        sw = _blank()
        try:
            opts_type = _ip_tun_from_nlattr(payload, sw, sw, False)
        except InvalidFlow as exc:
            raise self.fail(exc.rule, field, f"set(tunnel): {exc}", where) from None
        if sw["tun_opts_len"] and opts_type == _TUN_GENEVE:
            opts = _get_opts(sw, sw["tun_opts_len"])
            offset = 0
            while offset < len(opts):
                if len(opts) - offset < 4:
                    raise self.fail(
                        "geneve-options-tlv", field, f"{field}: geneve options end inside an option header", where
                    )
                size = 4 + (opts[offset + 3] & 0x1F) * 4
                if size > len(opts) - offset:
                    raise self.fail(
                        "geneve-options-tlv", field, f"{field}: a geneve option runs past the end of the options", where
                    )
                offset += size


def _decode_raw_action(type_: int, payload: bytes) -> Action | None:
    """A fixed-size action given raw (UnknownAction) as the model action, or None."""
    try:
        if type_ == ActionType.OUTPUT and len(payload) == 4:
            return Output(struct.unpack("=I", payload)[0])
        if type_ == ActionType.RECIRC and len(payload) == 4:
            return Recirc(struct.unpack("=I", payload)[0])
        if type_ == ActionType.METER and len(payload) == 4:
            return Meter(struct.unpack("=I", payload)[0])
        if type_ == ActionType.TRUNC and len(payload) == 4:
            return Trunc(struct.unpack("=I", payload)[0])
        if type_ == ActionType.DROP and len(payload) == 4:
            return Drop(struct.unpack("=I", payload)[0])
        if type_ == ActionType.HASH and len(payload) == 8:
            alg, basis = struct.unpack("=II", payload)
            return Hash(alg, basis)
        if type_ == ActionType.PUSH_VLAN and len(payload) == 4:
            tpid, tci = struct.unpack("!HH", payload)
            return PushVlan(tci=tci, tpid=tpid)
        if type_ == ActionType.PUSH_MPLS and len(payload) == 8:
            lse, ethertype = struct.unpack("!IH2x", payload)
            return PushMpls(lse, ethertype)
        if type_ == ActionType.POP_MPLS and len(payload) == 2:
            return PopMpls(struct.unpack("!H", payload)[0])
        if type_ == ActionType.ADD_MPLS and len(payload) == 8:
            lse, ethertype, tun_flags = struct.unpack("!IHH", payload)
            return AddMpls(lse, ethertype, tun_flags)
        if type_ == ActionType.PUSH_ETH and len(payload) == 12:
            return PushEth(src=_be(payload[:6]), dst=_be(payload[6:]))
        simple: dict[int, Callable[[], Action]] = {
            ActionType.POP_VLAN: PopVlan,
            ActionType.POP_ETH: PopEth,
            ActionType.CT_CLEAR: CtClear,
            ActionType.POP_NSH: PopNsh,
        }
        if type_ in simple and not payload:
            return simple[type_]()
    except (ValueError, struct.error):  # pragma: no cover - the lengths are checked above
        return None
    return None


def _packet_flow(match: Match) -> tuple[_FlowInfo, _State]:
    """The action-relevant key fields of a packet's key, read as given (no flow validation)."""

    def value(m: object) -> int:
        return m.value & m.mask if isinstance(m, Masked) else 0

    mac_proto = _MAC_PROTO_ETHERNET if any(isinstance(a, Ethernet) for a in match.attrs) else _MAC_PROTO_NONE
    vlan_tci = 0
    eth_type = 0
    proto = frag = np = count = 0
    level: Sequence[KeyAttr] = match.attrs
    first = True
    while True:
        nested: Sequence[KeyAttr] | None = None
        for a in level:
            if isinstance(a, EthType):
                eth_type = value(a.value)
            elif isinstance(a, Vlan) and first:
                vlan_tci = value(a.tci)
            elif isinstance(a, (Ipv4, Ipv6)):
                proto, frag = value(a.proto), value(a.frag)
            elif isinstance(a, Nsh):
                np = value(a.np)
            elif isinstance(a, Mpls):
                count = len(a.lses)
            elif isinstance(a, Encap):
                nested = a.attrs
        if nested is None:
            break
        level, first = nested, False
    flow = _FlowInfo(eth_type, proto, frag, np)
    return flow, _State(mac_proto, eth_type, vlan_tci, count if _is_mpls_type(eth_type) else 0)


@last_by_identity  # flows installed in a loop often share one Actions object
def _encoded_actions(actions: Actions) -> bytes:
    # The cache key holds the bytes, not the Actions: set_masked values compare
    # mask-aware, but the kernel also checks the bits outside the mask.
    return _codec.encode_actions(actions)


def validate_actions(
    actions: Actions,
    match: Match | None = None,
    *,
    kernel: Kernel | tuple[int, int] | None = None,
    packet: bool = False,
) -> None:
    """Raise :class:`InvalidFlow` when the kernel would refuse these actions (EINVAL).

    ``match`` is the flow the actions belong to: it is validated first (the
    kernel parses the key before the actions) and the checks that read the
    flow key use its *masked* key, as the kernel does.  Without it those checks
    wait until an action makes the state known.  ``kernel=(major, minor)``
    refuses actions the given kernel does not have.

    Rules: ``output-port``, ``userspace-pid``, ``trunc-length``, ``hash-alg``,
    ``needs-ethernet`` (push_vlan/pop_vlan/pop_eth/set(eth) on an L3 packet),
    ``push-vlan-tpid``, ``push-vlan-cfi``, ``mpls-ethertype``, ``mpls-with-vlan``,
    ``push-mpls-eth-type``, ``pop-mpls-not-mpls``, ``pop-mpls-teb``,
    ``set-attr-not-settable`` (in_port, eth_type, vlan, arp, icmp, nd, ...),
    ``set-attr-length``, ``set-masked-bits-outside-mask``, ``set-tunnel-masked``,
    ``set-l3-eth-type``, ``set-ip-readonly``, ``set-ipv6-label-range``,
    ``set-l4-proto``, ``set-mpls-eth-type``, ``set-nsh-eth-type``, the tunnel rules
    of :func:`validate_match` for ``set(tunnel(...))`` (``tunnel-needs-dst``,
    ``tunnel-needs-ttl``, ...) and ``geneve-options-tlv``; ``ct-needs-ip``,
    ``ct-mark-mask-zero``, ``ct-labels-mask-zero``, ``ct-needs-commit``, ``ct-helper``,
    ``ct-timeout``, ``nat-flags-without-type``, ``nat-needs-commit``,
    ``nat-address-family``, ``nat-outside-ct``; ``push-eth-has-ethernet``,
    ``pop-eth-with-vlan``, ``push-nsh-eth-type``, ``push-nsh-attr``, the NSH rules,
    ``pop-nsh-eth-type``, ``pop-nsh-next-proto``; ``check-pkt-len-zero``,
    ``drop-not-last``, ``psample-cookie``, ``unknown-action``,
    ``action-needs-newer-kernel``, ``malformed-action``; ``nesting-too-deep``
    (more than 16 nested lists; the kernel answers EOVERFLOW, so the error's
    ``errno`` is EOVERFLOW).

    ``packet=True`` is for OVS_PACKET_CMD_EXECUTE: ``match`` is then the exact
    key of the packet (as a MISS upcall reports it); it is not validated as a
    flow and its values are read as they are (the kernel extracts that key
    from the packet itself, so e.g. a truncated VLAN tag keeps eth_type 0x8100).
    """
    cache_key: tuple[int, bytes, object] | None = None
    if match is not None and not packet and isinstance(match, Match) and isinstance(actions, Actions):
        try:
            signature = _accepted_signature(match)
            if signature is not None:
                cache_key = (id(signature), _encoded_actions(actions), kernel)
        except (ValueError, TypeError, OverflowError, struct.error):  # the full path explains it
            cache_key = None
        if cache_key is not None and cache_key in _accepted_actions:
            return
    _validate_actions(actions, match, kernel=kernel, packet=packet)
    if cache_key is not None:
        if len(_accepted_actions) >= _SIGNATURE_CACHE_MAX:
            _accepted_actions.clear()
        _accepted_actions.add(cache_key)


def _validate_actions(
    actions: Actions, match: Match | None, *, kernel: Kernel | tuple[int, int] | None, packet: bool
) -> None:
    if match is not None and packet:
        flow, state = _packet_flow(match)
    elif match is None:
        flow = _FlowInfo(None, None, None, None)
        state = _State(None, None, None, None)
    else:
        parsed = _get_match(match)
        masked = _masked(parsed.key, parsed.mask)
        flow = _FlowInfo(masked["eth_type"], masked["ip_proto"], masked["ip_frag"], masked["nsh_np"])
        count = bin(masked["mpls_labels"]).count("1") if _is_mpls_type(masked["eth_type"]) else 0
        state = _State(masked["mac_proto"], masked["eth_type"], masked["vlan_tci"], count)
    if not isinstance(actions, Actions):
        raise _fail("malformed-action", "actions", f"{actions!r} is not an Actions list")
    if kernel is not None and not (
        isinstance(kernel, Kernel)
        or (isinstance(kernel, tuple) and len(kernel) == 2 and all(isinstance(x, int) for x in kernel))
    ):
        raise _fail("malformed-action", "kernel", f"kernel must be a Kernel or a (major, minor) tuple, not {kernel!r}")
    checker = _ActionChecker(flow, NEWEST if kernel is None else Kernel.parse(kernel), state.mac_proto)
    checker.check_list(actions.items, state, 0, "")
