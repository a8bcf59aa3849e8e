"""Meters: the kernel's net/openvswitch/meter.c (as in Linux 6.1).

A datapath's meters live in a :class:`MeterTable`, which reproduces the
kernel's ``dp_meter_table``: an array of ``n_meters`` slots (1024 at first)
indexed by ``meter_id % n_meters``.  That is a hash without chaining, so a
meter whose slot holds a different meter is refused with EBUSY (OVS
userspace allocates ids densely from 0 and never meets it), the array
doubles when the count reaches its size and halves when it falls to a
quarter - copying slots by index, not rehashing, exactly like the kernel -
and adding the meter that makes the count reach ``max_meters`` is EFBIG.

:meth:`SimMeter.execute` is ``ovs_meter_execute``: one token bucket per band
in 1/1000 packets (pps meters) or bits (kbps meters), starting full at
``burst * 1000``, refilled by ``rate`` units per elapsed millisecond up to
``burst * 1000``; a packet costs 1000 (pps) or ``skb->len * 8`` (kbps).
Every band pays for the packet if it can; among the bands that cannot, the
one with the highest rate counts the packet, and drops it if it is a DROP
band.  The C arithmetic is kept where it can matter: elapsed time is
clamped to ``max_delta_t`` (the time to fill the largest bucket, a u32)
and ``delta_ms * rate`` is a u32 product.  Time is the host's millisecond
clock (``Host.clock``), so tests drive it.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable
from dataclasses import dataclass, field

from odp.constants import DP_MAX_BANDS, MeterBandType
from odp.errors import BackendError, ExistsError
from odp.records import FlowStats, MeterBand, MeterFeatures, MeterStats

__all__ = ["DP_METER_ARRAY_SIZE_MIN", "DP_METER_NUM_MAX", "MeterTable", "SimBand", "SimMeter"]

#: Initial (and smallest) size of the meter array (meter.h).
DP_METER_ARRAY_SIZE_MIN = 1 << 10
#: The kernel allows min(~3% of free memory / sizeof(dp_meter), this) meters
#: per datapath; a machine with a few GB of RAM gets this cap.
DP_METER_NUM_MAX = 200000

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


@dataclass(slots=True)
class SimBand:
    type: int
    rate: int
    burst: int
    #: Tokens: 1/1000 packets or bits.
    bucket: int
    n_packets: int = 0
    n_bytes: int = 0


@dataclass(slots=True)
class SimMeter:
    """One meter (struct dp_meter)."""

    id: int
    kbps: bool
    keep_stats: bool
    used: int
    bands: list[SimBand] = field(default_factory=list)
    max_delta_t: int = 0
    n_packets: int = 0
    n_bytes: int = 0

    @classmethod
    def create(
        cls, meter_id: int, bands: tuple[MeterBand, ...], *, kbps: bool, clear: bool, stats: FlowStats | None, now: int
    ) -> SimMeter:
        """dp_meter_create: buckets start full, max_delta_t fills the largest one."""
        meter = cls(meter_id, kbps, keep_stats=not clear, used=now)
        if meter.keep_stats and stats is not None:
            meter.n_packets, meter.n_bytes = stats.packets, stats.bytes
        for b in bands:
            bucket = b.burst * 1000
            meter.bands.append(SimBand(int(b.type), b.rate, b.burst, bucket))
            # u32 band_max_delta_t = div_u64(bucket, rate)
            meter.max_delta_t = max(meter.max_delta_t, (bucket // b.rate) & _U32)
        return meter

    def execute(self, now: int, skb_len: int) -> bool:
        """ovs_meter_execute: True when the packet must be dropped."""
        long_delta = max(0, now - self.used)  # a clock going back counts as no time (6.1's race guard)
        delta_ms = self.max_delta_t if long_delta > self.max_delta_t else long_delta & _U32
        self.used = now
        self.n_packets = (self.n_packets + 1) & _U64
        self.n_bytes = (self.n_bytes + skb_len) & _U64
        cost = (skb_len * 8) & _U32 if self.kbps else 1000
        exceeded: SimBand | None = None
        exceeded_rate = 0
        for band in self.bands:
            cap = band.burst * 1000
            band.bucket = min(cap, (band.bucket + ((delta_ms * band.rate) & _U32)) & _U64)
            if band.bucket >= cost:
                band.bucket -= cost
            elif band.rate > exceeded_rate:
                exceeded_rate = band.rate
                exceeded = band
        if exceeded is None:
            return False
        exceeded.n_packets = (exceeded.n_packets + 1) & _U64
        exceeded.n_bytes = (exceeded.n_bytes + skb_len) & _U64
        return exceeded.type == MeterBandType.DROP

    def stats(self) -> MeterStats:
        return MeterStats(
            meter_id=self.id,
            packets=self.n_packets,
            bytes=self.n_bytes,
            used=self.used,
            bands=tuple(FlowStats(b.n_packets, b.n_bytes) for b in self.bands),
        )


class MeterTable:
    """A datapath's meters (struct dp_meter_table) and the ovs_meter commands on them."""

    __slots__ = ("clock", "count", "max_meters", "slots")

    def __init__(self, clock: Callable[[], int], max_meters: int = DP_METER_NUM_MAX) -> None:
        self.clock = clock
        self.max_meters = max_meters
        self.slots: list[SimMeter | None] = [None] * DP_METER_ARRAY_SIZE_MIN
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def lookup(self, meter_id: int) -> SimMeter | None:
        meter = self.slots[meter_id % len(self.slots)]
        return meter if meter is not None and meter.id == meter_id else None

    def _realloc(self, size: int) -> None:
        # Slots are copied by index, not rehashed (dp_meter_instance_realloc).
        n = min(size, len(self.slots))
        self.slots = self.slots[:n] + [None] * (size - n)

    def _attach(self, meter: SimMeter) -> None:
        index = meter.id % len(self.slots)
        other = self.slots[index]
        if other is not None:
            err = ExistsError(
                f"meter {meter.id}: its slot in the kernel's meter array ({index} of {len(self.slots)}) "
                f"is taken by meter {other.id}"
            )
            err.errno = _errno.EBUSY
            raise err
        self.slots[index] = meter
        self.count += 1
        if self.count >= self.max_meters:
            self.slots[index] = None
            self.count -= 1
            raise BackendError(
                f"meter {meter.id}: the datapath has {self.count} meters, the kernel allows fewer than "
                f"{self.max_meters} (EFBIG)",
                _errno.EFBIG,
            )
        if self.count >= len(self.slots):
            self._realloc(len(self.slots) * 2)

    def _detach(self, meter: SimMeter) -> None:
        self.slots[meter.id % len(self.slots)] = None
        self.count -= 1
        size = len(self.slots)
        if size > DP_METER_ARRAY_SIZE_MIN and self.count <= size // 4:
            half = size // 2
            # Shrink only when the upper half is empty ("avoid hash collision").
            if all(m is None for m in self.slots[half:]):
                self._realloc(half)

    # -- commands ---------------------------------------------------------------
    def features(self) -> MeterFeatures:
        return MeterFeatures(max_meters=self.max_meters, max_bands=DP_MAX_BANDS, band_types=(MeterBandType.DROP,))

    def set(
        self,
        meter_id: int,
        bands: tuple[MeterBand, ...],
        *,
        kbps: bool = False,
        clear: bool = False,
        stats: FlowStats | None = None,
    ) -> MeterStats | None:
        meter = SimMeter.create(meter_id, bands, kbps=kbps, clear=clear, stats=stats, now=self.clock())
        old = self.lookup(meter_id)
        if old is not None:
            self._detach(old)
        # As in the kernel, a failed attach after a detach loses the old meter.
        self._attach(meter)
        return old.stats() if old is not None and old.keep_stats else None

    def get(self, meter_id: int) -> MeterStats | None:
        meter = self.lookup(meter_id)
        return None if meter is None else meter.stats()

    def delete(self, meter_id: int) -> MeterStats | None:
        meter = self.lookup(meter_id)
        if meter is None:
            return None
        reply = meter.stats()
        self._detach(meter)
        return reply

    def execute(self, meter_id: int, skb_len: int) -> bool:
        """True when the packet passes: a meter that does not exist passes everything."""
        meter = self.lookup(meter_id)
        return meter is None or not meter.execute(self.clock(), skb_len)
