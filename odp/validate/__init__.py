"""The kernel's key, mask and action rules (openvswitch.ko's EINVAL answers).

The rules are transcribed from ``net/openvswitch/flow_netlink.c``; see
:mod:`odp.validate.get_match` for what is checked and how.
"""

from __future__ import annotations

from odp.validate.copy_actions import NEWEST_KERNEL, validate_actions
from odp.validate.get_match import (
    _accepted_matches,  # noqa: F401 - tests inspect the cache of accepted shapes
    kernel_mask,
    stored_key_and_mask,
    validate_match,
)

__all__ = [
    "NEWEST_KERNEL",
    "kernel_mask",
    "stored_key_and_mask",
    "validate_actions",
    "validate_match",
]
