"""Kernel versions: which Linux release has which openvswitch feature.

One table, :data:`SINCE`, says in which mainline release each feature that
odp cares about appeared (an action, a hash algorithm, an attribute, a reply
convention, a family).  Everything that depends on the kernel's version asks
a :class:`Kernel` value::

    Kernel.parse("6.1").has(Feature.DROP_ACTION)     # False: explicit drop is 6.6+

The kernel backend uses the running kernel's (:meth:`Kernel.running`); the
simulator behaves as the kernel it is given (``odp.connect("sim",
kernel="6.1")``), by default :data:`TESTED`, the newest kernel the project's
kernel tests run on.  Distribution kernels that backport a feature are not
modelled: the version decides.

To add a quirk: a :class:`Feature` member, its release in :data:`SINCE`, and
``kernel.has(Feature.X)`` where the behaviour differs.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass

from odp.constants import ActionType, HashAlg
from odp.errors import InvalidArgument

__all__ = [
    "ACTION_FEATURES",
    "HASH_FEATURES",
    "NEWEST",
    "SINCE",
    "TESTED",
    "TESTED_KERNELS",
    "Feature",
    "Kernel",
    "KernelLike",
]


class Feature(enum.Enum):
    """Something openvswitch.ko gained in some release; the value says what."""

    METER_FAMILY = "the ovs_meter generic netlink family (meters)"
    REPLY_CMD_OF_REQUEST = "replies to GET/SET carrying the request's command (before: always *_CMD_NEW)"
    VPORT_UPCALL_STATS = "vport upcall counters (OVS_VPORT_ATTR_UPCALL_STATS)"
    HASH_SYM_L4 = "the symmetric L4 hash algorithm (OVS_HASH_ALG_SYM_L4)"
    DROP_ACTION = "the explicit drop action (OVS_ACTION_ATTR_DROP)"
    PSAMPLE_ACTION = "the psample action (OVS_ACTION_ATTR_PSAMPLE)"


@dataclass(frozen=True, order=True, slots=True)
class Kernel:
    """A Linux release as (major, minor); the patch level and the distribution's
    suffix never change what openvswitch.ko does here."""

    major: int
    minor: int

    @classmethod
    def parse(cls, value: KernelLike) -> Kernel:
        """``"6.1"``, ``"6.12"``, ``"6.1.0-50-amd64"`` (a ``uname -r``), ``(6, 1)``
        or a Kernel; anything else is an InvalidArgument naming the value."""
        if isinstance(value, Kernel):
            return value
        if isinstance(value, tuple):
            if len(value) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in value):
                return cls(value[0], value[1])
        elif isinstance(value, str):
            m = _RELEASE.fullmatch(value.strip())
            if m is not None:
                return cls(int(m["major"]), int(m["minor"]))
        raise InvalidArgument(
            f"kernel version {value!r}: expected MAJOR.MINOR such as '6.1' (or a release such as '6.1.0-50-amd64')"
        )

    @classmethod
    def running(cls) -> Kernel:
        """The kernel this process runs on (``uname -r``); a release that is not
        MAJOR.MINOR... is taken as :data:`NEWEST` (a custom build, most likely recent)."""
        try:
            return cls.parse(os.uname().release)
        except InvalidArgument:
            return NEWEST

    def has(self, feature: Feature) -> bool:
        return self >= SINCE[feature]

    def as_tuple(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


#: What :meth:`Kernel.parse` accepts.
KernelLike = Kernel | str | tuple[int, int]

#: MAJOR.MINOR, then anything a release string carries (".0-50-amd64", "-rc3", "+").
_RELEASE = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)(?:[.\-+~_][0-9A-Za-z.\-+~_]*)?")

#: The first mainline release with each feature (the commit that added it).
SINCE: dict[Feature, Kernel] = {
    # "openvswitch: Add meter netlink definitions" and the meter.c series.
    Feature.METER_FAMILY: Kernel(4, 15),
    # "openvswitch: Use correct reply values in datapath and vport ops".
    Feature.REPLY_CMD_OF_REQUEST: Kernel(4, 19),
    # "net: openvswitch: add support to count upcall packets".
    Feature.VPORT_UPCALL_STATS: Kernel(6, 2),
    # "net: openvswitch: add support for l4 symmetric hashing".
    Feature.HASH_SYM_L4: Kernel(6, 5),
    # "net: openvswitch: add explicit drop action".
    Feature.DROP_ACTION: Kernel(6, 6),
    # "net: openvswitch: add psample action".
    Feature.PSAMPLE_ACTION: Kernel(6, 11),
}

#: Actions that only some kernels know (every other action is older than any kernel odp supports).
ACTION_FEATURES: dict[int, Feature] = {
    ActionType.METER: Feature.METER_FAMILY,
    ActionType.DROP: Feature.DROP_ACTION,
    ActionType.PSAMPLE: Feature.PSAMPLE_ACTION,
}

#: Hash algorithms of the hash() action by the feature that brought them (None: every kernel).
HASH_FEATURES: dict[int, Feature | None] = {
    HashAlg.L4: None,
    HashAlg.SYM_L4: Feature.HASH_SYM_L4,
}

#: The kernels the project's kernel tests run on, in the VM (Debian 12's and
#: Debian 13's), oldest first: the conformance suite runs on the simulator as each.
TESTED_KERNELS = (Kernel(6, 1), Kernel(6, 12))

#: The newest of them: what the simulator behaves as unless told otherwise.
TESTED = TESTED_KERNELS[-1]

#: The newest kernel whose differences this table knows: every feature here.
NEWEST = max(SINCE.values())
