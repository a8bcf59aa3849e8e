"""Meters without a kernel: the ovs_meter codec, the kernel backend's requests, the simulator's buckets."""

from __future__ import annotations

import errno
import struct

import pytest
from test_kernel_backend import FakeKernel, Message, ack, backend_with, genl, nlmsg, u32

import odp
from odp.constants import MeterAttr, MeterCmd
from odp.errors import BackendError, DecodeError, ExistsError, FieldError, InvalidArgument, NotFoundError, NotSupported
from odp.kernel.backend import KernelBackend
from odp.kernel.families import Families
from odp.netlink.attrs import pack_attr
from odp.netlink.messages import build_request, decode_meter, meter_attrs, parse_messages
from odp.records import FlowStats, MeterBand, MeterStats
from odp.sim.meter import DP_METER_ARRAY_SIZE_MIN, MeterTable, SimMeter

METER_FAM = 0x24


def u64(t: int, v: int) -> bytes:
    return pack_attr(t, struct.pack("=Q", v))


def stats_attr(t: int, packets: int, nbytes: int) -> bytes:
    return pack_attr(t, struct.pack("=QQ", packets, nbytes))


# ---------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------


def test_set_request_layout() -> None:
    attrs = meter_attrs(7, bands=[(1, 100, 20)], kbps=True, clear=True, stats=(3, 300))
    data = build_request(METER_FAM, MeterCmd.SET, 1, 5, 9, 42, attrs)
    band = pack_attr(0, u32(1, 1) + u32(2, 100) + u32(3, 20))
    body = u32(1, 7) + pack_attr(2) + stats_attr(3, 3, 300) + pack_attr(4, band) + pack_attr(6)
    assert data == nlmsg(METER_FAM, 5, 9, struct.pack("=BBHi", MeterCmd.SET, 1, 0, 42) + body)
    (msg,) = parse_messages(data)
    m = decode_meter(msg)
    assert (m.cmd, m.dp_ifindex, m.meter_id, m.kbps, m.clear, m.stats) == (MeterCmd.SET, 42, 7, True, True, (3, 300))
    assert m.bands is not None and [(b.type, b.rate, b.burst, b.has_stats) for b in m.bands] == [(1, 100, 20, False)]


def test_set_request_with_no_bands_still_sends_the_bands_attribute() -> None:
    # The kernel's SET is EINVAL without OVS_METER_ATTR_BANDS; an empty list is a meter that never drops.
    assert meter_attrs(1, bands=[]) == [(MeterAttr.ID, struct.pack("=I", 1)), (MeterAttr.BANDS, b"")]
    assert meter_attrs(1) == [(MeterAttr.ID, struct.pack("=I", 1))]


def test_decode_get_reply_skips_pad() -> None:
    band = pack_attr(0, stats_attr(4, 2, 128))
    attrs = u32(1, 5) + stats_attr(3, 9, 576) + pack_attr(9) + u64(5, 123456) + pack_attr(4, band)
    (msg,) = parse_messages(genl(METER_FAM, MeterCmd.GET, 1, 42, attrs))
    m = decode_meter(msg)
    assert (m.meter_id, m.stats, m.used) == (5, (9, 576), 123456)
    assert m.bands is not None and [(b.type, b.n_packets, b.n_bytes, b.has_stats) for b in m.bands] == [
        (None, 2, 128, True)
    ]


def test_decode_features_reply() -> None:
    attrs = u32(7, 200000) + u32(8, 1) + pack_attr(4, pack_attr(0, u32(1, 1)))
    (msg,) = parse_messages(genl(METER_FAM, MeterCmd.FEATURES, 1, 42, attrs))
    m = decode_meter(msg)
    assert (m.max_meters, m.max_bands) == (200000, 1)
    assert m.bands is not None and [b.type for b in m.bands] == [1]


def test_decode_rejects_short_stats() -> None:
    (msg,) = parse_messages(genl(METER_FAM, MeterCmd.GET, 1, 42, u32(1, 5) + pack_attr(3, b"\0" * 8)))
    with pytest.raises(DecodeError, match=r"meter stats: payload is 8 byte\(s\), expected 16"):
        decode_meter(msg)


# ---------------------------------------------------------------------------
# Kernel backend, fake kernel
# ---------------------------------------------------------------------------


def meter_reply(seq: int, cmd: int, body: bytes) -> list[bytes]:
    return [genl(METER_FAM, cmd, seq, 42, body), ack(seq)]


def full_stats(meter_id: int, packets: int, nbytes: int, band: tuple[int, int]) -> bytes:
    return (
        u32(1, meter_id)
        + stats_attr(3, packets, nbytes)
        + u64(5, 777)
        + pack_attr(4, pack_attr(0, stats_attr(4, *band)))
    )


def test_meter_set_request_and_replies() -> None:
    replies = [u32(1, 3), full_stats(3, 10, 640, (4, 256))]

    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        return meter_reply(m.seq, m.cmd, replies.pop(0))

    backend, fake = backend_with(handler)
    bands = (MeterBand(rate=1000, burst=10),)
    assert backend.meter_set(42, 3, bands, kbps=True) is None
    old = backend.meter_set(42, 3, bands, clear=True)
    assert old == MeterStats(3, 10, 640, 777, (FlowStats(4, 256),))
    first, second = fake.requests()
    assert (first.type, first.cmd, first.version, first.dp_ifindex) == (METER_FAM, MeterCmd.SET, 1, 42)
    assert first.flags & 0x4  # NLM_F_ACK
    sent = decode_meter(first)
    assert (sent.meter_id, sent.kbps, sent.clear) == (3, True, False)
    assert sent.bands is not None and [(b.type, b.rate, b.burst) for b in sent.bands] == [(1, 1000, 10)]
    assert decode_meter(second).clear


def test_meter_get_del_features() -> None:
    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        if m.cmd == MeterCmd.FEATURES:
            return meter_reply(m.seq, m.cmd, u32(7, 5000) + u32(8, 1) + pack_attr(4, pack_attr(0, u32(1, 1))))
        if m.cmd == MeterCmd.DEL and decode_meter(m).meter_id == 8:
            return meter_reply(m.seq, m.cmd, b"")  # a missing meter: an empty reply
        return meter_reply(m.seq, m.cmd, full_stats(5, 1, 60, (0, 0)))

    backend, _ = backend_with(handler)
    features = backend.meter_features(42)
    assert (features.max_meters, features.max_bands, features.band_types) == (5000, 1, (odp.MeterBandType.DROP,))
    assert backend.meter_get(42, 5).packets == 1
    assert backend.meter_del(42, 5) == MeterStats(5, 1, 60, 777, (FlowStats(0, 0),))
    assert backend.meter_del(42, 8) is None


@pytest.mark.parametrize(
    ("code", "exc", "text"),
    [
        (errno.ENOENT, NotFoundError, r"getting meter 5 in datapath with ifindex 42: .*has no meter 5"),
        (errno.ENODEV, NotFoundError, r"no datapath 42"),
        (errno.EBUSY, ExistsError, r"holds another meter"),
        (errno.EFBIG, BackendError, r"as many meters as the kernel allows"),
        (errno.EINVAL, InvalidArgument, r"EINVAL"),
    ],
)
def test_meter_errno_mapping(code: int, exc: type[Exception], text: str) -> None:
    backend, _ = backend_with(lambda k, m: [ack(m.seq, code)])
    with pytest.raises(exc, match=text) as info:
        backend.meter_get(42, 5)
    assert getattr(info.value, "errno", None) == code


def test_meter_arguments_are_checked_before_asking() -> None:
    backend, fake = backend_with(lambda k, m: [ack(m.seq, errno.EINVAL)])
    with pytest.raises(InvalidArgument, match=r"meter 1: band 0 has rate 0"):
        backend.meter_set(42, 1, (MeterBand(0, 10),))
    with pytest.raises(InvalidArgument, match=r"2 bands, the kernel allows at most 1"):
        backend.meter_set(42, 1, (MeterBand(1, 10), MeterBand(2, 10)))
    with pytest.raises(FieldError, match=r"meter id 4294967296"):
        backend.meter_get(42, 1 << 32)
    with pytest.raises(FieldError, match=r"meter band burst -1"):
        MeterBand(1, -1)
    assert fake.requests() == []


def test_kernel_without_meters_is_not_supported_for_meters_only() -> None:
    fake = FakeKernel(lambda k, m: [genl(0x20, 1, m.seq, 7, pack_attr(1, b"dp0\0")), ack(m.seq)])
    backend = KernelBackend(families=Families.fixed(meter=None), transport_factory=lambda: fake)
    with pytest.raises(NotSupported, match=r"no ovs_meter generic netlink family"):
        backend.meter_get("dp0", 1)
    assert backend.dp_get("dp0").name == "dp0"


def test_resolution_tolerates_a_missing_meter_family() -> None:
    ids = {b"ovs_datapath\0": 40, b"ovs_vport\0": 41, b"ovs_flow\0": 42, b"ovs_packet\0": 43}

    def handler(k: FakeKernel, m: Message) -> list[bytes]:
        name = dict(m.attrs)[2]
        if name not in ids:
            return [ack(m.seq, errno.ENOENT)]
        attrs = struct.pack("=HHH", 6, 1, ids[name]) + b"\0\0" + pack_attr(2, name)
        return [nlmsg(16, 0, m.seq, struct.pack("=BBH", 1, 2, 0) + attrs), ack(m.seq)]

    backend = KernelBackend(transport_factory=lambda: FakeKernel(handler))
    assert backend.families.meter is None and backend.families.packet.id == 43


# ---------------------------------------------------------------------------
# The simulator's meter (ovs_meter_execute), on a fake clock
# ---------------------------------------------------------------------------


class Clock:
    def __init__(self, now: int = 1000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_pps_bucket_starts_full_at_burst_and_refills_per_ms() -> None:
    clock = Clock()
    table = MeterTable(clock)
    table.set(1, (MeterBand(rate=10, burst=3),))
    assert [table.execute(1, 60) for _ in range(4)] == [True, True, True, False]
    meter = table.lookup(1)
    assert meter is not None and meter.bands[0].bucket == 0
    clock.now += 99  # 99 ms * 10 pps = 990 thousandths: not yet a packet
    assert table.execute(1, 60) is False
    assert meter.bands[0].bucket == 990
    clock.now += 1
    assert table.execute(1, 60) is True  # 990 + 10 = 1000: exactly one packet
    assert meter.bands[0].bucket == 0
    stats = table.get(1)
    assert stats == MeterStats(1, 6, 360, clock.now, (FlowStats(2, 120),))


def test_refill_is_clamped_to_the_burst() -> None:
    clock = Clock()
    table = MeterTable(clock)
    table.set(1, (MeterBand(rate=1, burst=2),))
    meter = table.lookup(1)
    assert meter is not None and meter.max_delta_t == 2000  # burst * 1000 / rate
    assert table.execute(1, 60)
    clock.now += 10**9  # a long idle time fills the bucket, no more
    assert table.execute(1, 60)
    assert meter.bands[0].bucket == 2000 - 1000
    clock.now -= 500  # a clock going back adds nothing
    assert table.execute(1, 60) and not table.execute(1, 60)


def test_kbps_cost_is_bits_of_skb_len() -> None:
    clock = Clock()
    table = MeterTable(clock)
    table.set(2, (MeterBand(rate=8, burst=1),), kbps=True)  # 8 bits/ms, bucket 1000 bits
    assert table.execute(2, 100)  # 800 bits
    assert not table.execute(2, 100)  # 200 left
    clock.now += 75  # + 600
    assert table.execute(2, 100)
    meter = table.lookup(2)
    assert meter is not None and meter.bands[0].bucket == 0


def test_burst_zero_drops_everything_and_no_bands_drops_nothing() -> None:
    clock = Clock()
    table = MeterTable(clock)
    table.set(1, (MeterBand(rate=1000, burst=0),))
    table.set(2, ())
    clock.now += 1000
    assert not table.execute(1, 60)
    assert table.execute(2, 60)
    assert table.get(2) == MeterStats(2, 1, 60, clock.now, ())


def test_non_drop_band_counts_but_passes() -> None:
    table = MeterTable(Clock())
    table.set(1, (MeterBand(rate=1, burst=1, type=7),))
    assert all(table.execute(1, 60) for _ in range(3))
    stats = table.get(1)
    assert stats is not None and stats.bands == (FlowStats(2, 120),)


def test_highest_rate_exceeded_band_counts_the_packet() -> None:
    # The kernel allows one band, but ovs_meter_execute is written for several.
    meter = SimMeter.create(1, (), kbps=False, clear=False, stats=None, now=0)
    low = SimMeter.create(1, (MeterBand(5, 0, type=9),), kbps=False, clear=False, stats=None, now=0).bands[0]
    high = SimMeter.create(1, (MeterBand(50, 0),), kbps=False, clear=False, stats=None, now=0).bands[0]
    meter.bands = [low, high]
    assert meter.execute(0, 60) is True  # the DROP band has the higher rate
    assert (low.n_packets, high.n_packets) == (0, 1)


def test_missing_meter_passes() -> None:
    assert MeterTable(Clock()).execute(99, 60)


def test_set_replaces_and_reports_old_stats_unless_created_with_clear() -> None:
    clock = Clock()
    table = MeterTable(clock)
    band = (MeterBand(1, 5),)
    assert table.set(1, band) is None
    table.execute(1, 100)
    old = table.set(1, band, clear=True)
    assert old is not None and (old.packets, old.bytes) == (1, 100)
    table.execute(1, 100)
    assert table.set(1, band) is None  # the replaced meter had been created with clear
    assert table.get(1) == MeterStats(1, 0, 0, clock.now, (FlowStats(0, 0),))
    assert table.set(3, band, stats=FlowStats(10, 1000)) is None
    assert table.get(3) == MeterStats(3, 10, 1000, clock.now, (FlowStats(0, 0),))
    table.set(4, band, stats=FlowStats(10, 1000), clear=True)
    assert table.get(4) == MeterStats(4, 0, 0, clock.now, (FlowStats(0, 0),))


def test_table_slots_collide_modulo_the_array_size() -> None:
    table = MeterTable(Clock())
    table.set(1, ())
    with pytest.raises(ExistsError, match=r"slot .* is taken by meter 1") as info:
        table.set(1 + DP_METER_ARRAY_SIZE_MIN, ())
    assert info.value.errno == errno.EBUSY
    assert table.delete(1 + DP_METER_ARRAY_SIZE_MIN) is None
    assert table.delete(1) is not None
    table.set(1 + DP_METER_ARRAY_SIZE_MIN, ())
    assert len(table) == 1


def test_table_refuses_the_meter_that_reaches_the_limit() -> None:
    table = MeterTable(Clock(), max_meters=3)
    table.set(0, ())
    table.set(1, ())
    with pytest.raises(BackendError) as info:
        table.set(2, ())
    assert info.value.errno == errno.EFBIG and table.lookup(2) is None and len(table) == 2
    table.set(1, ())  # replacing is not adding


def test_table_grows_by_index_copy_and_shrinks() -> None:
    table = MeterTable(Clock())
    table.set(1500, ())  # slot 1500 % 1024 = 476
    for i in range(1, DP_METER_ARRAY_SIZE_MIN):
        if i != 476:
            table.set(i, ())
    table.set(0, ())  # the 1024th meter doubles the array
    assert len(table.slots) == 2 * DP_METER_ARRAY_SIZE_MIN
    # Slots were copied by index: meter 1500 now sits where no lookup finds it, as in the kernel.
    assert table.lookup(1500) is None and table.lookup(0) is not None
    for i in range(1, 800):
        if i != 476:
            table.delete(i)
    assert len(table.slots) == DP_METER_ARRAY_SIZE_MIN  # a quarter full, upper half empty: halved


def test_sim_backend_meter_action_drops_through_execute() -> None:
    from odp.sim import Host

    clock = Clock()
    conn = odp.connect("sim", host=Host("m", clock=clock))
    dp = conn.create_datapath("dp0")
    dp.set_meter(1, MeterBand(rate=1, burst=2))
    frame = bytes(range(6)) * 2 + b"\x88\xb5" + bytes(46)
    for _ in range(4):
        dp.execute(frame, "meter(1)")
    stats = dp.get_meter(1)
    assert (stats.packets, stats.bytes, stats.bands) == (4, 240, (FlowStats(2, 120),))
    with pytest.raises(NotFoundError, match=r"datapath dp0 has no meter 2"):
        dp.get_meter(2)
    with pytest.raises(NotFoundError, match=r"no datapath 'nope'"):
        conn.backend.meter_features("nope")
