"""The simulator's flow table: the kernel's flow_table.c.

Tuple-space search: one dict per distinct mask, keyed by ``key & mask``; a
lookup probes the masks in order and returns the first hit, so its cost grows
with the number of masks, not flows.  An exact-match cache (packet key ->
flow) sits in front, as the kernel's per-CPU mask cache and OVS's EMC do; it
is emptied whenever the table changes, so it can never return a stale flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from odp._cache import last_by_identity
from odp.actions import Actions, Output
from odp.keys import Match
from odp.validate.swkey import SwMatch

#: Exact-match cache entries (distinct packet keys) before it starts over.  OVS's
#: EMC holds 8192 per thread; memory is cheap here and a cache that thrashes
#: costs every probe it was meant to save, so this one holds 64k.
EMC_MAX = 65536


@dataclass(slots=True, eq=False)
class SimFlow:
    """One installed flow with its mutable statistics."""

    sw: SwMatch
    #: The key as given at creation (before masking): the identity of
    #: key-identified flows and what their dumps report.
    unmasked_key: int
    match: Match
    actions: Actions
    ufid: bytes | None = None
    packets: int = 0
    bytes: int = 0
    used: int | None = None
    tcp_flags: int = 0
    #: The output ports when the actions are nothing but outputs (the packet
    #: path's fast path), else None.
    outputs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.set_actions(self.actions)

    def set_actions(self, actions: Actions) -> None:
        self.actions = actions
        self.outputs = outputs_only(actions)

    def clear_stats(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.used = None
        self.tcp_flags = 0


@last_by_identity  # flows installed in a loop usually share one Actions object
def outputs_only(actions: Actions) -> tuple[int, ...] | None:
    """The output ports if the actions are nothing but outputs, else None."""
    items = actions.items
    return tuple([a.port for a in items if type(a) is Output]) if all(type(a) is Output for a in items) else None


@dataclass(slots=True)
class _MaskTable:
    mask: int
    flows: dict[int, SimFlow] = field(default_factory=dict)


@dataclass(slots=True)
class LookupStats:
    mask_hit: int = 0
    cache_hit: int = 0


class FlowTable:
    def __init__(self) -> None:
        self._masks: list[_MaskTable] = []
        self._by_mask: dict[int, _MaskTable] = {}
        self._by_ufid: dict[bytes, SimFlow] = {}
        self._emc: dict[int, SimFlow] = {}
        self._count = 0
        self.stats = LookupStats()

    def __len__(self) -> int:
        return self._count

    @property
    def mask_count(self) -> int:
        return len(self._masks)

    def flows(self) -> list[SimFlow]:
        return [f for t in self._masks for f in t.flows.values()]

    def iter_flows(self) -> Iterator[SimFlow]:
        """The flows in table order, one at a time (a stored table reads them as they are asked for)."""
        return iter(self.flows())

    # packet path -------------------------------------------------------------
    def lookup(self, key: int) -> SimFlow | None:
        """Find the flow for a packet key, counting probes like the kernel."""
        flow = self._emc.get(key)
        stats = self.stats
        if flow is not None:
            stats.cache_hit += 1
            stats.mask_hit += 1
            return flow
        probes = 0
        for table in self._masks:
            probes += 1
            flow = table.flows.get(key & table.mask)
            if flow is not None:
                stats.mask_hit += probes
                if len(self._emc) >= EMC_MAX:
                    self._emc.clear()
                self._emc[key] = flow
                return flow
        stats.mask_hit += probes
        return None

    # control path ------------------------------------------------------------
    def peek(self, key: int) -> SimFlow | None:
        """The flow a packet with this key would hit, leaving the statistics and
        the cache alone (flow NEW looks up its own key this way)."""
        for table in self._masks:
            flow = table.flows.get(key & table.mask)
            if flow is not None:
                return flow
        return None

    def find_ufid(self, ufid: bytes) -> SimFlow | None:
        return self._by_ufid.get(ufid)

    def find_exact(self, unmasked_key: int) -> SimFlow | None:
        """ovs_flow_tbl_lookup_exact: a key-identified flow created with this very key."""
        for table in self._masks:
            flow = table.flows.get(unmasked_key & table.mask)
            if flow is not None and flow.ufid is None and flow.unmasked_key == unmasked_key:
                return flow
        return None

    def find_masked(self, sw: SwMatch) -> SimFlow | None:
        """The flow with this exact mask and masked key, if any."""
        table = self._by_mask.get(sw.mask)
        if table is None:
            return None
        return table.flows.get(sw.masked_key)

    def insert(self, flow: SimFlow) -> None:
        table = self._by_mask.get(flow.sw.mask)
        if table is None:
            table = _MaskTable(flow.sw.mask)
            self._by_mask[flow.sw.mask] = table
            self._masks.append(table)
        masked = flow.sw.masked_key
        old = table.flows.get(masked)
        if old is not None:
            # Same mask and masked key as an existing flow: the kernel's hash
            # table would hold both, but lookups could only ever find one.
            # Keep the newest, as ovs_flow_tbl_insert's replace path does.
            self._forget(old)
        else:
            self._count += 1
        table.flows[masked] = flow
        if flow.ufid is not None:
            self._by_ufid[flow.ufid] = flow
        self._emc.clear()

    def _forget(self, flow: SimFlow) -> None:
        if flow.ufid is not None and self._by_ufid.get(flow.ufid) is flow:
            del self._by_ufid[flow.ufid]

    def remove(self, flow: SimFlow) -> None:
        table = self._by_mask.get(flow.sw.mask)
        if table is None or table.flows.get(flow.sw.masked_key) is not flow:
            return
        del table.flows[flow.sw.masked_key]
        self._forget(flow)
        self._count -= 1
        if not table.flows:
            del self._by_mask[table.mask]
            self._masks.remove(table)
        self._emc.clear()

    def flush(self) -> None:
        self._masks.clear()
        self._by_mask.clear()
        self._by_ufid.clear()
        self._emc.clear()
        self._count = 0
