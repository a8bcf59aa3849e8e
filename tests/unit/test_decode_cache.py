"""The codec's caches (key layouts, decoded attributes and actions, encoded actions) and the dump decoder.

Every cached result must equal what the full decoder gives on a cold cache,
and input that is malformed must still raise DecodeError after its layout
was learnt from a good key.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import struct
from collections.abc import Iterator

import pytest
import strategies as shared  # tests/unit/strategies.py
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odp.actions import Actions, Output, Userspace
from odp.constants import Cmd, FlowAttr, KeyAttrType
from odp.errors import DecodeError, FieldError
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match, SkbMark, Tunnel
from odp.netlink import codec, messages
from odp.netlink.codec import (
    clear_decode_caches,
    decode_actions,
    decode_match,
    encode_actions,
    encode_key,
    encode_mask,
)
from odp.netlink.messages import (
    WireFlow,
    build_message,
    build_request,
    decode_flow,
    parse_messages,
    walk_flow_dump,
)
from odp.records import Flow, FlowStats

FAMILY = 0x21


@pytest.fixture(autouse=True)
def _cold_caches() -> Iterator[None]:
    clear_decode_caches()
    messages._LAYOUTS.clear()
    yield
    clear_decode_caches()
    messages._LAYOUTS.clear()


def nla(type_: int, payload: bytes = b"") -> bytes:
    return struct.pack("=HH", 4 + len(payload), type_) + payload + b"\0" * (-len(payload) & 3)


def attr_offsets(data: bytes) -> Iterator[tuple[int, int]]:
    off = 0
    while off < len(data):
        length, type_ = struct.unpack_from("=HH", data, off)
        yield off, type_
        off += (length + 3) & ~3


def learn(key: bytes, mask: bytes | None) -> Match:
    """Decode until the key's layout is learnt (a mask's first sighting is only remembered)."""
    m = decode_match(key, mask)
    assert decode_match(key, mask) == m
    assert codec._PLANS[mask], "layout not learnt"
    return m


def cold(key: bytes, mask: bytes | None) -> Match:
    """What the full decoder gives, with nothing cached."""
    clear_decode_caches()
    m = decode_match(key, mask)
    clear_decode_caches()
    return m


def ipv4_match(dst: str, dst_mask: str = "255.255.255.255", in_port: int = 1) -> Match:
    return Match(InPort(in_port), Ethernet(), EthType(0x0800), Ipv4(dst=f"{dst}/{dst_mask}", frag=0))


def test_flows_differing_only_in_one_mask_decode_differently() -> None:
    a, b = ipv4_match("10.0.0.1"), ipv4_match("10.0.0.1", "255.255.255.0")
    assert encode_key(a) == encode_key(b) and encode_mask(a) != encode_mask(b)
    for _ in range(3):  # the second round comes from the caches
        assert decode_match(encode_key(a), encode_mask(a)) == a
        assert decode_match(encode_key(b), encode_mask(b)) == b
    assert decode_match(encode_key(a), encode_mask(a)).get(Ipv4) != decode_match(encode_key(b), encode_mask(b)).get(
        Ipv4
    )


def test_same_mask_different_values_of_a_cached_attribute() -> None:
    a, b = ipv4_match("10.0.0.1", in_port=1), ipv4_match("10.0.0.1", in_port=2)
    assert encode_mask(a) == encode_mask(b)
    for _ in range(2):
        assert decode_match(encode_key(a), encode_mask(a)).get(InPort) == InPort(1)
        assert decode_match(encode_key(b), encode_mask(b)).get(InPort) == InPort(2)


def test_exact_and_masked_decodes_of_the_same_key_are_not_confused() -> None:
    m = ipv4_match("10.0.0.1", "255.0.0.0")
    key, mask = encode_key(m), encode_mask(m)
    for _ in range(2):
        assert decode_match(key, mask) == m
        exact = decode_match(key)
        assert exact == cold(key, None)
        ip = exact.get(Ipv4)
        assert ip is not None and ip.dst.mask == 0xFFFFFFFF


def test_same_size_key_with_another_layout_is_not_taken_for_the_learnt_one() -> None:
    # in_port and skb_mark are both 4-byte attributes: same total size, same mask bytes
    mask = nla(KeyAttrType.ETHERTYPE, b"\xff\xff")
    k1 = nla(KeyAttrType.IN_PORT, struct.pack("=I", 5)) + nla(KeyAttrType.ETHERTYPE, b"\x08\x00")
    k2 = nla(KeyAttrType.SKB_MARK, struct.pack("=I", 5)) + nla(KeyAttrType.ETHERTYPE, b"\x08\x00")
    assert len(k1) == len(k2)
    first = learn(k1, mask)
    second = decode_match(k2, mask)
    assert first.get(InPort) is not None and first.get(SkbMark) is None
    assert second.get(SkbMark) is not None and second.get(InPort) is None
    assert second == cold(k2, mask)
    # a duplicate attribute in a key of the learnt size is still refused
    dup = nla(KeyAttrType.ETHERTYPE, b"\x08\x00") * 2
    assert len(dup) == len(k1)
    with pytest.raises(DecodeError, match="duplicate"):
        decode_match(dup, mask)


def test_bad_content_under_a_learnt_layout_still_raises() -> None:
    m = Match(InPort(1), Tunnel(tun_id=7, ipv4_dst="192.0.2.1", ttl=64))
    key, mask = encode_key(m), encode_mask(m)
    assert cold(key, mask) == learn(key, mask)
    # corrupt the length of the tunnel's first sub-attribute, keeping every size the same
    tun = next(off for off, t in attr_offsets(key) if t == KeyAttrType.TUNNEL)
    bad = key[: tun + 4] + struct.pack("=H", 0xFF) + key[tun + 6 :]
    assert len(bad) == len(key)
    with pytest.raises(DecodeError):
        decode_match(bad, mask)


def test_attribute_cache_is_bounded() -> None:
    size = codec.ATTR_CACHE_SIZE
    masks = set()
    for i in range(size + 10):
        m = ipv4_match(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        masks.add(encode_mask(m))
        assert decode_match(encode_key(m), encode_mask(m)) == m
    assert len(masks) == 1
    assert all(len(c) <= size for c in codec._ATTR_CACHES.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shared.matches(), min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=12))
def test_warm_caches_give_what_the_cold_decoder_gives(matches: list[Match], order: list[int]) -> None:
    try:
        wire = [(encode_key(m), encode_mask(m)) for m in matches]
    except FieldError:  # the strategy also draws matches that cannot be sent
        assume(False)
    expected = [cold(k, mk) for k, mk in wire]
    expected_exact = [cold(k, None) for k, _ in wire]
    for i in [*range(len(wire)), *order, *range(len(wire))]:
        k, mk = wire[i % len(wire)]
        assert decode_match(k, mk) == expected[i % len(wire)]
        assert decode_match(k) == expected_exact[i % len(wire)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shared.action_lists(), min_size=1, max_size=3))
def test_action_caches_agree_with_the_uncached_codec(lists: list[Actions]) -> None:
    for acts in lists * 2:
        data = encode_actions(acts)
        assert data == codec._encode_actions(acts)
        assert encode_actions(list(acts)) == data  # not an Actions: not cached
        assert decode_actions(data) == codec._decode_actions(data, 0)


def test_encoded_actions_are_cached_by_identity_not_equality() -> None:
    a = Actions.of(Output(1))
    b = Actions.of(Output(2))
    assert encode_actions(a) != encode_actions(b)
    assert encode_actions(a) == encode_actions(Actions.of(Output(1)))
    assert decode_actions(encode_actions(b)) == b


# ---------------------------------------------------------------------------
# walk_flow_dump: the dump decoder against parse_messages + decode_flow
# ---------------------------------------------------------------------------

SEQ = 9


def dump_entry(
    m: Match, acts: Actions, *, stats: tuple[int, int] | None = None, used: int | None = None, seq: int = SEQ
) -> bytes:
    attrs = [(int(FlowAttr.KEY), encode_key(m)), (int(FlowAttr.MASK), encode_mask(m))]
    if used is not None:
        attrs.append((int(FlowAttr.USED), struct.pack("=Q", used)))
    if stats is not None:
        attrs.append((int(FlowAttr.STATS), struct.pack("=QQ", *stats)))
        attrs.append((int(FlowAttr.TCP_FLAGS), b"\x12"))
    attrs.append((int(FlowAttr.ACTIONS), encode_actions(acts)))
    attrs.append((int(FlowAttr.UFID), bytes(range(16))))
    return build_request(FAMILY, Cmd.GET, 1, 2, seq, 7, attrs)


def reference(datagrams: list[bytes]) -> list[tuple[object, ...]]:
    out = []
    for data in datagrams:
        for msg in parse_messages(data):
            if msg.type == FAMILY and msg.seq == SEQ:
                f = decode_flow(msg)
                out.append((f.match, f.actions, f.ufid, f.n_packets, f.n_bytes, f.used, f.tcp_flags))
    return out


def walk(datagrams: list[bytes]) -> tuple[list[Flow], list[tuple[int, bool]]]:
    flows: list[Flow] = []
    results = [walk_flow_dump(d, SEQ, FAMILY, flows) for d in datagrams]
    return flows, results


def values(f: Flow) -> tuple[object, ...]:
    return (f.match, f.actions, f.ufid, f.stats.packets, f.stats.bytes, f.used, f.tcp_flags)


DONE = build_message(3, 2, SEQ, b"\0\0\0\0")


def test_walk_flow_dump_matches_decode_flow() -> None:
    acts = Actions.of(Output(2), Userspace(77))
    first = dump_entry(ipv4_match("10.0.0.1"), acts, stats=(10, 1500), used=1234)
    datagrams = [
        first + dump_entry(ipv4_match("10.0.0.2", in_port=3), Actions()),
        dump_entry(ipv4_match("10.0.0.3", "255.255.0.0"), acts) + DONE,
    ]
    got, results = walk(datagrams)
    assert [values(g) for g in got] == reference(datagrams)
    assert values(got[0])[3:] == (10, 1500, 1234, 0x12) and got[1].actions == Actions()
    # the first datagram goes on; the second ends at its DONE message
    assert results == [(-1, False), (len(datagrams[1]) - len(DONE), False)]


def test_walk_flow_dump_skips_other_requests_and_reports_interruption() -> None:
    stale = dump_entry(ipv4_match("10.9.9.9"), Actions(), seq=SEQ - 1)
    entry = dump_entry(ipv4_match("10.0.0.1"), Actions.of(Output(1)))
    flagged = entry[:6] + struct.pack("=H", 2 | 0x10) + entry[8:]  # NLM_F_DUMP_INTR
    got, results = walk([stale + entry, flagged])
    assert len(got) == 2  # the stale request's flow is not among them
    assert [r[1] for r in results] == [False, True]
    assert all(f.match == ipv4_match("10.0.0.1") for f in got)
    error = build_message(2, 0, SEQ, struct.pack("=i", -22) + bytes(16))
    assert walk_flow_dump(stale + error, SEQ, FAMILY, []) == (len(stale), False)


def test_walk_flow_dump_compiled_layouts_agree_with_the_general_loop() -> None:
    messages._LAYOUTS.clear()
    a = dump_entry(ipv4_match("10.0.0.1"), Actions.of(Output(2)), stats=(10, 1500), used=1234)
    b = dump_entry(ipv4_match("10.0.0.2"), Actions.of(Output(3)), stats=(11, 1600), used=99)  # same layout
    # same length, other layout: USED and STATS swapped
    c = build_request(FAMILY, Cmd.GET, 1, 2, SEQ, 7, [
        (int(FlowAttr.KEY), encode_key(ipv4_match("10.0.0.3"))),
        (int(FlowAttr.MASK), encode_mask(ipv4_match("10.0.0.3"))),
        (int(FlowAttr.STATS), struct.pack("=QQ", 5, 500)),
        (int(FlowAttr.USED), struct.pack("=Q", 7)),
        (int(FlowAttr.TCP_FLAGS), b"\x02"),
        (int(FlowAttr.ACTIONS), encode_actions(Actions.of(Output(4)))),
        (int(FlowAttr.UFID), bytes(16)),
    ])  # fmt: skip
    assert len(c) == len(a)
    walk([a])
    assert list(messages._LAYOUTS) == [len(a)]  # learnt from the first message of its length
    compiled = messages._LAYOUTS[len(a)]
    tried: list[bool] = []

    def counting(data: bytes, off: int) -> Flow | None:
        flow = compiled(data, off)
        tried.append(flow is not None)
        return flow

    messages._LAYOUTS[len(a)] = counting
    datagrams = [a, b + c + a, c]
    got, _ = walk(datagrams)
    assert tried == [True, True, False, True, False]  # c has the general loop's attention
    assert [values(g) for g in got] == reference(datagrams)
    stats = [values(g)[3:6] for g in got]
    assert stats == [(10, 1500, 1234), (11, 1600, 99), (5, 500, 7), (10, 1500, 1234), (5, 500, 7)]


def test_wire_flow_decodes_match_and_actions_on_first_access_only() -> None:
    m, acts = ipv4_match("10.0.0.1"), Actions.of(Output(2))
    (flow,), _ = walk([dump_entry(m, acts, stats=(3, 180), used=5)])
    assert isinstance(flow, WireFlow)
    assert "_wire" in WireFlow.__slots__
    assert Flow.__dict__["match"].__get__(flow) is not m  # nothing decoded yet
    assert flow.stats == FlowStats(3, 180) and flow.used == 5
    assert flow.match == m and flow.match is flow.match  # decoded once, then kept
    assert flow.actions == acts and flow.actions is flow.actions


def test_wire_flow_is_the_flow_it_stands_for() -> None:
    m, acts = ipv4_match("10.0.0.1"), Actions.of(Output(2))
    (flow,), _ = walk([dump_entry(m, acts, stats=(3, 180), used=5)])
    plain = Flow(m, acts, bytes(range(16)), FlowStats(3, 180), 5, 0x12)
    assert flow == plain and plain == flow and hash(flow) == hash(plain)
    assert repr(flow) == repr(plain) and str(flow) == str(plain)
    assert flow != dataclasses.replace(plain, used=6)
    for copied in (pickle.loads(pickle.dumps(flow)), copy.copy(flow), copy.deepcopy(flow)):
        assert type(copied) is Flow and copied == plain
    changed = dataclasses.replace(flow, used=9)
    assert changed.used == 9 and changed.match == m and changed.actions == acts
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.match = None  # type: ignore[misc]


def test_wire_flow_decoding_errors_surface_on_access() -> None:
    m = ipv4_match("10.0.0.1")
    attrs = [
        (int(FlowAttr.KEY), encode_key(m)[:-1]),  # a key attribute cut short
        (int(FlowAttr.STATS), struct.pack("=QQ", 1, 60)),
        (int(FlowAttr.ACTIONS), nla(int(KeyAttrType.IN_PORT), b"\0")),  # not a valid action
    ]
    (flow,), _ = walk([build_request(FAMILY, Cmd.GET, 1, 2, SEQ, 7, attrs)])
    assert flow.stats == FlowStats(1, 60)
    with pytest.raises(DecodeError):
        _ = flow.match
    with pytest.raises(DecodeError):
        _ = flow.actions


def test_make_flow_equals_constructed_flows() -> None:
    from odp.records import make_flow

    m = ipv4_match("10.0.0.1")
    f = make_flow(m, Actions.of(Output(1)), None, 3, 180, 99, 2)
    assert f == Flow(m, Actions.of(Output(1)), None, FlowStats(3, 180), 99, 2)
    z = make_flow(None, None, b"u" * 16, 0, 0, None, 0)
    assert z == Flow(None, None, b"u" * 16) and z.stats == FlowStats()
    assert hash(f) == hash(Flow(m, Actions.of(Output(1)), None, FlowStats(3, 180), 99, 2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_dump_raises_only_decode_error_and_agrees(data: st.DataObject) -> None:
    good = dump_entry(ipv4_match("10.0.0.1"), Actions.of(Output(2)), stats=(1, 60), used=5)
    for f in walk([good, good, good])[0]:  # learn the layout first
        _ = f.match
    assert any(codec._PLANS.values())
    bad = data.draw(shared.corrupted(good))
    try:
        got = [values(f) for f in walk([bad])[0]]
    except DecodeError:
        clear_decode_caches()
        with pytest.raises(DecodeError):
            reference([bad])
        return
    clear_decode_caches()
    assert got == reference([bad])


def test_walk_flow_dump_message_without_attributes() -> None:
    # an ovs_flow message with nothing after its headers: the layout compiler once had no header to check
    bare = build_request(FAMILY, Cmd.GET, 1, 2, SEQ, 7, [])
    first, second = walk([bare, bare])[0]  # the second walk goes through the compiled layout
    assert values(first) == values(second) == reference([bare])[0] == (None, None, None, 0, 0, None, 0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list(FlowAttr)), unique=True, max_size=6))
def test_walk_flow_dump_any_attribute_subset_agrees(kinds: list[FlowAttr]) -> None:
    payload = {
        FlowAttr.KEY: encode_key(ipv4_match("10.0.0.1")),
        FlowAttr.MASK: encode_mask(ipv4_match("10.0.0.1")),
        FlowAttr.ACTIONS: encode_actions(Actions.of(Output(2))),
        FlowAttr.STATS: struct.pack("=QQ", 4, 240),
        FlowAttr.USED: struct.pack("=Q", 12),
        FlowAttr.TCP_FLAGS: b"\x02",
        FlowAttr.UFID: bytes(range(16)),
    }
    msg = build_request(FAMILY, Cmd.GET, 1, 2, SEQ, 7, [(int(k), payload.get(k, b"")) for k in kinds])
    clear_decode_caches()
    try:
        expected = reference([msg])
    except DecodeError:  # e.g. an empty STATS attribute
        with pytest.raises(DecodeError):
            walk([msg])
        return
    assert [values(f) for f in walk([msg, msg])[0]] == expected * 2
