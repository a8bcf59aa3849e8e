"""Meters: the ovs_meter commands and the meter() action, on both backends.

Traffic tests use rates of 1 packet/s or 1 kbit/s: a bucket refills by one
packet (or 1000 bits) per second, so however slow the machine (the kernel runs
under qemu TCG), sending a handful of packets back to back finishes long before
the bucket could let one more through.
"""

from __future__ import annotations

import time

import pytest
from packets import udp4

from odp import ExistsError, FieldError, InvalidArgument, NotFoundError
from odp.actions import Actions, Meter, Output
from odp.datapath import Datapath
from odp.records import FlowStats, MeterBand, MeterBandType
from odp.testing import PacketHarness, Port


def frames(n: int, size: int = 60) -> list[bytes]:
    """``n`` distinct UDP frames of ``size`` bytes."""
    out = []
    for i in range(n):
        pkt = bytes(udp4(sport=1000 + i))
        out.append(pkt + bytes(size - len(pkt)))
    return out


def send(dp: Datapath, packets: list[bytes], meter_id: int, out_port: int | None = None) -> float:
    """Execute ``meter(meter_id)[,out_port]`` on each packet; returns the seconds it took."""
    actions = Actions([Meter(meter_id)] + ([Output(out_port)] if out_port is not None else []))
    start = time.monotonic()
    for p in packets:
        dp.execute(p, actions)
    return time.monotonic() - start


def test_features(dp: Datapath) -> None:
    f = dp.meter_features()
    assert f.max_bands == 1
    assert f.band_types == (MeterBandType.DROP,)
    assert f.max_meters > 1000


def test_set_get_delete(dp: Datapath) -> None:
    before = time.monotonic() * 1000
    assert dp.set_meter(5, MeterBand(rate=1000, burst=100)) is None
    got = dp.get_meter(5)
    assert (got.meter_id, got.packets, got.bytes, got.bands) == (5, 0, 0, (FlowStats(0, 0),))
    assert got.used >= before - 1000  # creation time, monotonic ms
    assert dp.delete_meter(5) == got
    with pytest.raises(NotFoundError, match=r"meter 5"):
        dp.get_meter(5)
    assert dp.delete_meter(5) is None  # deleting a missing meter is no error


def test_meters_are_per_datapath(dp: Datapath, topology: object) -> None:
    other = topology.create_datapath("odptest2")  # type: ignore[attr-defined]
    try:
        dp.set_meter(1, MeterBand(1, 1))
        with pytest.raises(NotFoundError):
            other.get_meter(1)
    finally:
        other.delete()


def test_invalid_meters_are_refused(dp: Datapath) -> None:
    with pytest.raises(InvalidArgument, match=r"rate 0"):
        dp.set_meter(1, MeterBand(rate=0, burst=10))
    with pytest.raises(InvalidArgument, match=r"at most 1"):
        dp.set_meter(1, [MeterBand(10, 10), MeterBand(20, 10)])
    with pytest.raises(FieldError, match=r"meter id"):
        dp.set_meter(-1, MeterBand(10, 10))
    with pytest.raises(NotFoundError):
        dp.get_meter(1)


def test_accepted_oddities(dp: Datapath) -> None:
    # Things the kernel accepts: no band at all, an unknown band type, burst 0, the largest id.
    dp.set_meter(1, [])
    dp.set_meter(2, MeterBand(rate=1, burst=0, type=77))
    dp.set_meter(0xFFFFFFFF, MeterBand(rate=0xFFFFFFFF, burst=0xFFFFFFFF))
    assert dp.get_meter(1).bands == ()
    assert dp.get_meter(0xFFFFFFFF).meter_id == 0xFFFFFFFF


def test_ids_equal_modulo_1024_collide(dp: Datapath) -> None:
    # The kernel keeps meters in an array indexed by id % size (1024 at first).
    dp.set_meter(7, MeterBand(1, 1))
    with pytest.raises(ExistsError):
        dp.set_meter(7 + 1024, MeterBand(1, 1))
    with pytest.raises(NotFoundError):
        dp.get_meter(7 + 1024)
    dp.delete_meter(7)
    dp.set_meter(7 + 1024, MeterBand(1, 1))
    assert dp.get_meter(7 + 1024).meter_id == 7 + 1024


def test_pps_meter_lets_burst_packets_through(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    burst, extra = 4, 3
    dp.set_meter(1, MeterBand(rate=1, burst=burst))
    pkts = frames(burst + extra)
    took = send(dp, pkts, 1, out_port=2)
    assert took < 1.0, f"sending took {took:.2f} s: the bucket may have refilled"
    arrived = harness.received(ports[1])
    assert arrived == pkts[:burst]  # the bucket starts with exactly `burst` packets
    stats = dp.get_meter(1)
    assert (stats.packets, stats.bytes) == (burst + extra, 60 * (burst + extra))
    assert stats.bands == (FlowStats(extra, 60 * extra),)


def test_kbps_meter_counts_bits(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    # 250-byte frames cost 2000 bits; a 4-kbit bucket passes two, then empties
    # and needs 2 s at 1 kbit/s for the next.
    dp.set_meter(3, MeterBand(rate=1, burst=4), kbps=True)
    pkts = frames(5, size=250)
    took = send(dp, pkts, 3, out_port=2)
    assert took < 2.0
    assert harness.received(ports[1]) == pkts[:2]
    stats = dp.get_meter(3)
    assert (stats.packets, stats.bytes, stats.bands) == (5, 1250, (FlowStats(3, 750),))


def test_burst_zero_drops_all_and_missing_meter_drops_none(
    dp: Datapath, ports: list[Port], harness: PacketHarness
) -> None:
    dp.set_meter(1, MeterBand(rate=1000, burst=0))
    pkts = frames(2)
    send(dp, pkts, 1, out_port=2)
    assert harness.received(ports[1]) == []
    send(dp, pkts, 9, out_port=2)  # no meter 9
    assert harness.received(ports[1]) == pkts


def test_non_drop_band_counts_but_passes(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.set_meter(1, MeterBand(rate=1, burst=1, type=2))
    pkts = frames(3)
    send(dp, pkts, 1, out_port=2)
    assert harness.received(ports[1]) == pkts
    assert dp.get_meter(1).bands == (FlowStats(2, 120),)


def test_meter_in_a_flow(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.set_meter(4, MeterBand(rate=1, burst=2))
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", "meter(4),2")
    pkt = udp4()
    for _ in range(4):
        harness.send_packet(ports[0], pkt)
    assert len(harness.received(ports[1])) == 2
    stats = dp.get_meter(4)
    assert stats.packets == 4 and stats.bands[0].packets == 2
    assert dp.flows()[0].stats.packets == 4


def test_set_replaces_and_returns_the_old_stats(dp: Datapath, ports: list[Port], harness: PacketHarness) -> None:
    dp.set_meter(1, MeterBand(rate=1, burst=1))
    send(dp, frames(3), 1)
    old = dp.set_meter(1, MeterBand(rate=1, burst=2), clear=True)
    assert old is not None and (old.meter_id, old.packets, old.bytes, old.bands) == (1, 3, 180, (FlowStats(2, 120),))
    fresh = dp.get_meter(1)
    assert (fresh.packets, fresh.bands) == (0, (FlowStats(0, 0),))
    send(dp, frames(3), 1, out_port=2)
    assert len(harness.received(ports[1])) == 2  # the replacement has a fresh, full bucket
    # The meter being replaced was created with clear: its stats stay out of the reply.
    assert dp.set_meter(1, MeterBand(rate=1, burst=1)) is None
    assert dp.get_meter(1).packets == 0


def test_set_can_preload_stats(dp: Datapath) -> None:
    dp.set_meter(1, MeterBand(1, 1), stats=FlowStats(10, 1000))
    assert (dp.get_meter(1).packets, dp.get_meter(1).bytes) == (10, 1000)
    dp.set_meter(2, MeterBand(1, 1), stats=FlowStats(10, 1000), clear=True)
    assert (dp.get_meter(2).packets, dp.get_meter(2).bytes) == (0, 0)


def test_missing_datapath(dp: Datapath) -> None:
    name = dp.name
    dp.delete()
    with pytest.raises(NotFoundError, match=name):
        dp.set_meter(1, MeterBand(1, 1))
    with pytest.raises(NotFoundError, match=name):
        dp.meter_features()


def test_meter_table_growth_copies_slots_by_index(dp: Datapath) -> None:
    # 6.1's dp_meter_table is an array indexed by id % size; when the count reaches
    # the size (1024) the array doubles and the slots are copied by index, so a
    # meter whose id is >= 1024 then sits where no lookup of its id finds it.
    band = MeterBand(rate=1000, burst=10)
    dp.set_meter(1500, band)  # slot 1500 % 1024 = 476
    for meter_id in range(1, 1024):
        if meter_id != 476:
            dp.set_meter(meter_id, band)
    assert dp.get_meter(1500).meter_id == 1500
    dp.set_meter(0, band)  # the 1024th meter: the array doubles
    assert dp.get_meter(0).meter_id == 0
    assert dp.get_meter(1023).meter_id == 1023
    with pytest.raises(NotFoundError):
        dp.get_meter(1500)
