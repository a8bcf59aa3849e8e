"""Properties found by fuzzing (issue 15): bytes-like input, round trips, decoders on mutated bytes.

Each property runs a bounded number of examples in CI; ``tox -e fuzz`` runs
the coverage-guided targets of ``tests/fuzz`` for as long as asked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import strategies as shared  # tests/unit/strategies.py
from hypothesis import HealthCheck, given, settings

from odp.actions import Actions, Userspace
from odp.keys import Match
from odp.netlink.attrs import attr_list, iter_attrs
from odp.netlink.codec import (
    decode_action,
    decode_actions,
    decode_key_attr,
    decode_match,
    decode_tunnel,
    encode_actions,
    encode_key,
    encode_key_attr,
    encode_mask,
)
from odp.netlink.messages import build_request, parse_messages, walk_flow_dump

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BYTES_LIKE: list[Callable[[bytes], object]] = [bytes, bytearray, memoryview]


# --- bytes-like input --------------------------------------------------------


@pytest.mark.parametrize("kind", BYTES_LIKE, ids=lambda k: k.__name__)
def test_userspace_userdata_from_any_buffer(kind: Callable[[bytes], object]) -> None:
    data = encode_actions(Actions.of(Userspace(3, b"\x01\x02\x03\x04")))
    got = decode_actions(kind(data))  # type: ignore[arg-type]
    assert got == Actions.of(Userspace(3, b"\x01\x02\x03\x04"))
    assert type(got[0].userdata) is bytes  # type: ignore[attr-defined]


@PROPS
@given(shared.matches(), shared.action_lists())
def test_public_decoders_take_any_bytes_like(m: Match, acts: Actions) -> None:
    key, mask, raw = encode_key(m), encode_mask(m), encode_actions(acts)
    want_match, want_exact, want_acts = decode_match(key, mask), decode_match(key), decode_actions(raw)
    for kind in (bytearray, memoryview):
        assert decode_match(kind(key), kind(mask)) == want_match
        assert decode_match(kind(key)) == want_exact
        assert decode_actions(kind(raw)) == want_acts
        for (t, p), (_, mp) in zip(attr_list(key), attr_list(mask)):
            assert decode_key_attr(t, kind(p), kind(mp)) == decode_key_attr(t, p, mp)
        for t, p in iter_attrs(kind(raw)):
            assert type(p) is bytes
            assert decode_action(t, kind(p)) == decode_action(t, p)
    for a in m.attrs:
        if a.TYPE == 16:  # tunnel
            payload = encode_key_attr(a)[4:]
            assert decode_tunnel(bytearray(payload)) == decode_tunnel(payload)


def test_messages_from_any_buffer() -> None:
    msg = build_request(0x1E, 1, 1, 2, 5, 7, [(2, encode_actions(Actions.of(Userspace(3, b"ud"))))])
    for kind in (bytearray, memoryview):
        assert parse_messages(kind(msg)) == parse_messages(msg)  # type: ignore[arg-type]
        out: list[object] = []
        assert walk_flow_dump(kind(msg), 5, 0x1E, out) == (-1, False)  # type: ignore[arg-type]
        assert out[0].actions == Actions.of(Userspace(3, b"ud"))  # type: ignore[attr-defined]
