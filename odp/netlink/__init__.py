"""Sans-IO netlink encoding shared by the kernel backend and the simulator.

- :mod:`odp.netlink.attrs`: generic attribute packing and bounds-checked parsing.
- :mod:`odp.netlink.codec`: flow keys, masks and actions <-> ``OVS_KEY_ATTR_*`` /
  ``OVS_ACTION_ATTR_*`` bytes.
- :mod:`odp.netlink.messages`: whole ovs generic netlink messages and typed replies.
"""

from __future__ import annotations

from odp.netlink.codec import (
    decode_actions,
    decode_key_attr,
    decode_match,
    decode_tunnel,
    encode_actions,
    encode_key,
    encode_key_attr,
    encode_mask,
    encode_tunnel,
)
from odp.netlink.messages import (
    DatapathInfo,
    FamilyInfo,
    FlowInfo,
    Message,
    PacketInfo,
    VportInfo,
    build_get_family,
    build_request,
    decode_datapath,
    decode_family,
    decode_flow,
    decode_packet,
    decode_vport,
    parse_messages,
)

__all__ = [
    "DatapathInfo",
    "FamilyInfo",
    "FlowInfo",
    "Message",
    "PacketInfo",
    "VportInfo",
    "build_get_family",
    "build_request",
    "decode_actions",
    "decode_datapath",
    "decode_family",
    "decode_flow",
    "decode_key_attr",
    "decode_match",
    "decode_packet",
    "decode_tunnel",
    "decode_vport",
    "encode_actions",
    "encode_key",
    "encode_key_attr",
    "encode_mask",
    "encode_tunnel",
    "parse_messages",
]
