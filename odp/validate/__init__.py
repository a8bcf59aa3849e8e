"""The kernel's key, mask and action rules (openvswitch.ko's EINVAL answers) and the key it stores.

The specification is ``net/openvswitch/flow_netlink.c`` (``ovs_nla_get_match``,
``__ovs_nla_copy_actions`` and ``__ovs_nla_put_key``) and the parts of
``conntrack.c`` they call.  Rather than a list of hand-written conditions, the
match checks *replay the kernel's parser*: a :class:`~odp.keys.Match` is turned
into the netlink bytes odp's codec sends (a KEY attribute and a MASK attribute
that carries every attribute's mask, ``Match.mask_only`` attributes only in the
mask) and those bytes go through a Python transcription of
``parse_flow_nlattrs``, ``parse_vlan_from_nlattrs``, ``ovs_key_from_nlattrs``
and ``match_validate``, filling the same ``sw_flow_key`` fields the kernel
fills.  So the quirks come for free: all-zero mask attributes count as absent,
the VLAN mask code reads the key's attribute when the mask has none, a mask can
only name attributes the key allows, and so on.

Public functions
----------------
``validate_match(match)``
    Raises :class:`~odp.errors.InvalidFlow` exactly when the kernel would answer
    EINVAL to OVS_FLOW_CMD_NEW with this key and mask.
``validate_actions(actions, match=None, *, kernel=None)``
    The checks of ``__ovs_nla_copy_actions`` that do not depend on datapath
    state.  Without ``match`` the checks that need the flow key are skipped
    until an action makes the relevant state known (e.g. after ``push_eth``).
    ``kernel=(6, 1)`` (or an :class:`odp.kernels.Kernel`) applies the action set
    of that kernel (see :data:`odp.kernels.SINCE`); the default is the newest
    kernel that table knows.
    ``packet=True`` checks actions for OVS_PACKET_CMD_EXECUTE against a packet key.
``kernel_mask(match, *, masked_key=False)``
    The match as the kernel stores and dumps it (see its docstring).
``stored_key_and_mask(match)``
    The kernel's ``sw_flow_key`` key and mask as two dicts of field -> int.

Modules
-------
``get_match`` (ovs_nla_get_match: validation, and the key and mask the flow
table stores), ``put_key`` (__ovs_nla_put_key: dumps, miss keys,
kernel_mask), ``copy_actions`` (__ovs_nla_copy_actions), ``swkey`` (the
sw_flow_key layout: one int per key or mask), ``fastpath`` (generated
per-shape conversions, tested against get_match).

What is checked is what odp sends
---------------------------------
Keys and masks are encoded with :mod:`odp.netlink.codec` (``encode_key`` /
``encode_mask``), so the codec's conventions apply (for instance it always
sends a tunnel TTL, 0 when wildcarded, so the kernel's TTL requirement only
bites raw attributes; ``set_masked`` is sent as ``value & mask`` then the
mask).  ``set()`` payloads are ``encode_key_attr``'s.  A model value the codec
cannot encode (a mask-only twin of a key attribute, a value too wide for its
field) is reported as rule ``unencodable``.  ``push_nsh`` is checked as the
kernel reads it: one nested ``OVS_KEY_ATTR_NSH`` attribute inside PUSH_NSH.

Simplifications (documented where they matter): the kernel overlays IPv4, IPv6,
ARP, ND, NSH, the tunnel addresses and the conntrack original tuple in unions;
here they are separate fields, which changes nothing for validation and only matters for dumps of keys
that carry attributes of two different L3 protocols (their masks must then be
zero).  Limits that need datapath state (unknown conntrack helpers, meters,
MAX_ACTIONS_BUFSIZE, CONFIG_* options) are not checked: all conntrack options
are assumed built in.
"""

from __future__ import annotations

from odp.validate.copy_actions import NEWEST_KERNEL, validate_actions
from odp.validate.fastpath import (
    _accepted_matches,  # noqa: F401 - tests inspect the cache of accepted shapes
    validate_match,
)
from odp.validate.get_match import stored_key_and_mask
from odp.validate.put_key import kernel_mask

__all__ = [
    "NEWEST_KERNEL",
    "kernel_mask",
    "stored_key_and_mask",
    "validate_actions",
    "validate_match",
]
