"""Properties found by fuzzing (issue 15): bytes-like input, round trips, decoders on mutated bytes.

Each property runs a bounded number of examples in CI; ``tox -e fuzz`` runs
the coverage-guided targets of ``tests/fuzz`` for as long as asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import strategies as shared  # tests/unit/strategies.py
from hypothesis import HealthCheck, given, settings

from odp.actions import Actions, Output, Sample, Set, Userspace
from odp.cli import main
from odp.constants import ActionType, KeyAttrType, TunnelFlag
from odp.datapath import Connection
from odp.errors import FieldError, ParseError
from odp.fields import Masked
from odp.keys import Match, Tunnel
from odp.netlink.attrs import attr_list, iter_attrs, pack_attr
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
from odp.sim.datapath import SimBackend
from odp.sim.network import Host
from odp.sim.state import load_host, save_host
from odp.text import format_actions, format_match, parse_actions, parse_match

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BYTES_LIKE: list[Callable[[bytes], object]] = [bytes, bytearray, memoryview]


def encodable(m: Match) -> Match:
    """``m`` without the mask-only attributes that duplicate one of its keys (encode_mask refuses those)."""
    types = {a.TYPE for a in m.attrs}
    return Match(*m.attrs, mask_only=[a for a in m.mask_only if a.TYPE not in types])


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
    m = encodable(m)
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


# --- values that changed on print and parse (issue 15, item 3) ------------------


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("set(tunnel(tun_id=0x5))", "set(tunnel(tun_id=0x5,ttl=0,flags(key)))"),
        (
            "set(tunnel(erspan(ver=1,idx=0x7),flags(df|key)))",
            "set(tunnel(tun_id=0x0,ttl=0,erspan(ver=1,idx=0x7),flags(df|key)))",
        ),
        ("set(tunnel(tun_id=0x5,ttl=9,flags(+key)))", "set(tunnel(tun_id=0x5,ttl=9,flags(key)))"),
        (
            "set(tunnel(ttl=1,geneve({class=0x180,len=4,0xa})))",
            "set(tunnel(ttl=1,geneve({class=0x180,type=0,len=4,0xa}),flags(0)))",
        ),
    ],
)
def test_set_tunnel_is_the_tunnel_the_kernel_receives(text: str, printed: str) -> None:
    # A SET sends values only: what it holds is what goes out (TTL always, flags whole,
    # the ID exactly with the key flag), so text and netlink give it back unchanged.
    acts = parse_actions(text)
    assert str(acts) == printed
    assert parse_actions(printed) == acts
    assert decode_actions(encode_actions(acts)) == acts


def test_set_tunnel_without_ttl_attribute_decodes_to_what_is_sent() -> None:
    bare = pack_attr(int(ActionType.SET), pack_attr(int(KeyAttrType.TUNNEL), pack_attr(0, (5).to_bytes(8, "big"))))
    acts = decode_actions(bare)
    assert acts == Actions.of(Set(Tunnel(tun_id=5, ttl=0, flags=Masked(int(TunnelFlag.KEY), 0xF))))
    assert decode_actions(encode_actions(acts)) == acts
    assert parse_actions(str(acts)) == acts


def test_set_tunnel_id_without_key_flag_is_refused() -> None:
    tunnel = Tunnel(tun_id=5, ttl=1, flags=Masked(0, 0xF), normalize=False)
    with pytest.raises(FieldError, match="tun_id=0x5 without the key flag"):
        Set(tunnel)


def test_ipv6_label_mask_kept_by_exact_text() -> None:
    acts = parse_actions("set(ipv6(label=0/0xfffff))")
    assert str(acts) == "set(ipv6(label=0))"  # ovs-dpctl's text: 20 bits set print as exact
    assert format_actions(acts, exact=True) == "set(ipv6(label=0/0xfffff))"
    assert parse_actions(format_actions(acts, exact=True)) == acts
    m = parse_match("eth_type(0x86dd),ipv6(label=0x12/0xfffff)")
    assert parse_match(format_match(m, exact=True)) == m


def test_sample_probability_exact_in_odps_own_text() -> None:
    acts = parse_actions("sample(sample=50.79%,actions(1))")
    assert acts[0].probability == 2181413889  # type: ignore[attr-defined]
    assert str(acts) == "sample(sample=50.8%,actions(1))"  # as ovs-dpctl prints it
    assert format_actions(acts, exact=True) == "sample(sample=50.79%,actions(1))"
    for p in (0, 1, 2181413889, 0xFFFFFFFE, 0xFFFFFFFF, 12345678):
        sample = Actions.of(Sample(p, Actions.of(Output(1))))
        assert parse_actions(format_actions(sample, exact=True)) == sample


def test_sample_without_percent_sign_is_a_parse_error() -> None:
    # OVS's parse_odp_action scans "sample(sample=%lf%%,actions(": the '%' is required
    with pytest.raises(ParseError, match="'%' after the percentage"):
        parse_actions("sample(sample=50.05,actions(1))")


def test_simulator_state_and_json_keep_the_exact_probability(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s.json"
    host = Host("h")
    host.add_interface("v1")
    dp = Connection(SimBackend(host)).create_datapath("g")
    dp.add_vport("v1")
    acts = parse_actions("sample(sample=50.79%,actions(1))")
    dp.add_flow("in_port(1),eth(),eth_type(0x0800),ipv4()", acts)
    save_host(host, state)
    (flow,) = load_host(state).datapaths["g"].table.flows()
    assert flow.actions == acts
    assert main(["--backend", "sim", "--state", str(state), "--json", "flow", "list", "g"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert parse_actions(row["actions"]) == acts
    assert "sample=50.8%" in row["line"]  # the dump line stays ovs-dpctl's
