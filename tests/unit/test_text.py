"""The ODP text format: round trips, documented lossy cases, errors, fuzzing, port names."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from strategies import _encap as encaps
from strategies import (  # tests/unit/strategies.py
    action_lists,
    action_strategies,
    fixed_attrs,
    key_attrs,
    matches,
    mpls,
    nsh,
    tunnels,
    unknown_key_attrs,
)

from odp.actions import (
    Action,
    Actions,
    Ct,
    DecTtl,
    Drop,
    Output,
    PushNsh,
    Sample,
    Set,
    SetMasked,
    Userspace,
    set_tunnel,
)
from odp.errors import ParseError
from odp.fields import Masked
from odp.keys import (
    FIXED_ATTRS,
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    InPort,
    Ipv4,
    Ipv6,
    KeyAttr,
    Match,
    Mpls,
    Nsh,
    TcpFlags,
    Tunnel,
    UnknownKeyAttr,
    Vlan,
)
from odp.text import (
    FlowLine,
    format_action,
    format_actions,
    format_flow_line,
    format_key_attr,
    format_match,
    parse_actions,
    parse_flow_line,
    parse_match,
)

U32 = 0xFFFFFFFF
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- round trips: model -> text -> model ----------------------------------------


def _check_match(m: Match) -> None:
    text = format_match(m)
    again = parse_match(text)
    assert again == m, text
    assert format_match(again) == text


def _check_attr(attr: KeyAttr) -> None:
    """The attribute alone in a match, and the attribute's own text read back."""
    _check_match(Match(attr))
    text = format_key_attr(attr)
    (parsed,) = parse_match(text).attrs
    if isinstance(attr, UnknownKeyAttr) and attr.mask is None:
        assert parsed == UnknownKeyAttr(attr.type, attr.key, b"\xff" * len(attr.key))
    else:
        assert parsed == attr, text
    assert format_key_attr(parsed) == text


@pytest.mark.parametrize("cls", sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE), ids=lambda c: c.NAME)
@SETTINGS
@given(data=st.data())
def test_fixed_attr_round_trip(cls: type[FixedKeyAttr], data: st.DataObject) -> None:
    _check_attr(data.draw(fixed_attrs(cls)))


@SETTINGS
@given(tunnels())
def test_tunnel_round_trip(attr: Tunnel) -> None:
    _check_attr(attr)


@SETTINGS
@given(mpls())
def test_mpls_round_trip(attr: KeyAttr) -> None:
    _check_attr(attr)


@SETTINGS
@given(nsh())
def test_nsh_round_trip(attr: Nsh) -> None:
    _check_attr(attr)


@SETTINGS
@given(encaps())
def test_encap_round_trip(attr: Encap) -> None:
    _check_attr(attr)


@SETTINGS
@given(unknown_key_attrs(with_mask=True) | unknown_key_attrs(with_mask=False))
def test_unknown_key_attr_round_trip(attr: UnknownKeyAttr) -> None:
    _check_attr(attr)


@SETTINGS
@given(key_attrs())
def test_any_key_attr_round_trip(attr: KeyAttr) -> None:
    _check_attr(attr)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matches())
def test_match_round_trip(m: Match) -> None:
    _check_match(m)
    assert str(m) == format_match(m)


ACTION_STRATEGIES = action_strategies(depth=2)


@pytest.mark.parametrize("cls", list(ACTION_STRATEGIES), ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_action_round_trip(cls: type[Action], data: st.DataObject) -> None:
    action = data.draw(ACTION_STRATEGIES[cls])
    text = format_action(action)
    assert str(action) == text
    (parsed,) = parse_actions(text)
    assert parsed == action, text
    assert format_action(parsed) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action_lists())
@example(Actions())
@example(Actions([Drop()]))
def test_action_list_round_trip(actions: Actions) -> None:
    text = format_actions(actions)
    assert str(actions) == text
    again = parse_actions(text)
    assert again == actions, text
    assert format_actions(again) == text


@SETTINGS
@given(
    matches(),
    action_lists(depth=1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.none() | st.integers(0, 10**7).map(lambda ms: ms / 1000),
    st.none() | st.integers(1, 0xFFF),
    st.none() | st.uuids(),
)
def test_flow_line_round_trip(
    m: Match, actions: Actions, packets: int, nbytes: int, used: float | None, flags: int | None, ufid: uuid.UUID | None
) -> None:
    assume(format_match(m))  # a dump line always has a key
    line = FlowLine(m, actions, packets, nbytes, used, flags, ufid)
    text = format_flow_line(line)
    assert str(line) == text
    assert parse_flow_line(text) == line
    assert format_flow_line(parse_flow_line(text)) == text


def test_set_tunnel_reads_back_with_exact_flags() -> None:
    acts = Actions([set_tunnel(tun_id=5, ipv4_dst="10.0.0.2", ttl=64), Output(3)])
    assert str(acts) == "set(tunnel(tun_id=0x5,dst=10.0.0.2,ttl=64,flags(key))),3"
    expected = Actions([set_tunnel(tun_id=5, ipv4_dst="10.0.0.2", ttl=64, flags=Masked(8, 0xF)), Output(3)])
    assert parse_actions(str(acts)) == expected
    assert parse_actions("set(tunnel(tun_id=5,dst=10.0.0.2,ttl=64)),3") == expected


def test_model_str_uses_text() -> None:
    m = Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst="10.0.0.0/8"))
    assert str(m) == "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)"
    assert str(Ipv4(proto=6)) == "ipv4(proto=6)"
    assert str(Actions()) == "drop"
    assert str(Output(2)) == "2"


# --- documented lossy cases ----------------------------------------------------------


def test_wildcarded_attributes_vanish_but_structural_ones_stay() -> None:
    m = Match(InPort(1), Ethernet(), Vlan(), Encap(), EthType(0x8100), Ipv4(), TcpFlags())
    assert str(m) == "in_port(1),eth(),eth_type(0x8100),vlan(cfi=0/0),encap()"
    assert parse_match(str(m)) == m


def test_set_masked_with_full_mask_reads_back_as_set() -> None:
    full = Ipv4.exact([1, 2, 3, 4, 5, 0])
    text = format_action(SetMasked(full))
    assert text == "set(ipv4(src=0.0.0.1,dst=0.0.0.2,proto=3,tos=0x4,ttl=5,frag=no))"
    assert parse_actions(text) == Actions([Set(full)])


def test_set_of_a_partial_mpls_keeps_its_mask() -> None:
    # A partial mask is a SET_MASKED, as for fixed-size attributes; it used to be dropped.
    (act,) = parse_actions("set(mpls(label=7/0xfffff))")
    assert act == SetMasked(Mpls(Masked(7 << 12, 0xFFFFF000)))
    assert format_action(act) == "set(mpls(label=7/0xfffff,tc=0/0,ttl=0/0x0,bos=0/0))"
    assert parse_actions(format_action(act)) == Actions([act])
    (whole,) = parse_actions("set(mpls(label=7,tc=1,ttl=64,bos=1))")
    assert type(whole) is Set
    (forced,) = parse_actions("set_masked(mpls(label=7,tc=1,ttl=64,bos=1))")
    assert type(forced) is SetMasked


@pytest.mark.parametrize("text", ["set(tunnel(tun_id=5/0xff,dst=1.1.1.1))", "set(tunnel(dst=10.0.0.2/255.255.0.0))"])
def test_set_tunnel_with_a_partial_mask_is_refused_not_dropped(text: str) -> None:
    with pytest.raises(ParseError, match=r"without a mask \(the kernel sets tunnel\(\) whole\)") as info:
        parse_actions(text)
    assert info.value.position == 4


def test_set_prints_values_without_masks() -> None:
    partial = Ipv4(src="10.0.0.0/8")
    text = format_action(Set(partial))
    assert text == "set(ipv4(src=10.0.0.0,dst=0.0.0.0,proto=0,tos=0,ttl=0,frag=no))"
    (parsed,) = parse_actions(text)
    assert isinstance(parsed, Set) and isinstance(parsed.attr, FixedKeyAttr)
    assert parsed.attr.is_exact() and parsed.attr.values() == partial.values()


def test_sample_probability_has_ovs_precision() -> None:
    text = format_action(Sample(123456789, Actions([Output(1)])))
    assert text == "sample(sample=2.9%,actions(1))"
    (parsed,) = parse_actions(text)
    assert isinstance(parsed, Sample) and parsed.probability == math.floor(0xFFFFFFFF * (2.9 / 100.0) + 0.5)
    assert parsed.probability != 123456789


@pytest.mark.parametrize(
    ("attr", "text", "masks"),
    [
        (TcpFlags.from_values([0x12], [0x0FFF]), "tcp_flags(syn|ack)", (0xFFFF,)),
        (
            Ipv6.from_values([0, 0, 5, 0, 0, 0, 0], [0, 0, 0xFFFFF, 0, 0, 0, 0]),
            "ipv6(label=0x5)",
            (0, 0, U32, 0, 0, 0, 0),
        ),
    ],
)
def test_masks_shown_as_exact_read_back_all_ones(attr: FixedKeyAttr, text: str, masks: tuple[int, ...]) -> None:
    assert format_key_attr(attr) == text
    (parsed,) = parse_match(text).attrs
    assert isinstance(parsed, FixedKeyAttr) and parsed.masks() == masks


def test_flow_line_loses_sub_millisecond_used_and_zero_flags() -> None:
    line = FlowLine(parse_match("in_port(1)"), Actions(), 1, 60, used=0.0004, tcp_flags=0)
    assert format_flow_line(line) == "in_port(1), packets:1, bytes:60, used:0.000s, actions:drop"
    assert parse_flow_line(format_flow_line(line)) == FlowLine(line.match, Actions(), 1, 60, 0.0, None)


def test_mask_only_attributes_other_than_eth_type_are_not_printed() -> None:
    m = Match(Ethernet(), mask_only=[InPort.from_values([0], [0xFFFF])])
    assert str(m) == "eth()"


# --- port names -----------------------------------------------------------------------

PORTS = {"br0": 0, "p1": 1, "veth-a.10": 7}


@pytest.mark.parametrize("ports", [PORTS, PORTS.__getitem__, PORTS.get], ids=["mapping", "getitem", "get"])
def test_port_names_resolve(ports: object) -> None:
    m = parse_match("in_port(p1),eth()", ports)  # type: ignore[arg-type]
    assert m == Match(InPort(1), Ethernet())
    acts = parse_actions("br0,veth-a.10,3,userspace(pid=1,tunnel_out_port=p1)", ports)  # type: ignore[arg-type]
    assert acts == Actions([Output(0), Output(7), Output(3), Userspace(1, egress_tun_port=1)])


@pytest.mark.parametrize(
    ("text", "parse"),
    [("in_port(nope),eth()", parse_match), ("1,nope", parse_actions), ("clone(nope)", parse_actions)],
)
def test_unknown_port_name_is_a_parse_error_naming_it(text: str, parse: object) -> None:
    for ports in (PORTS, PORTS.__getitem__, lambda name: None, lambda name: 1 // 0, None):
        with pytest.raises(ParseError) as info:
            parse(text, ports)  # type: ignore[operator]
        assert "'nope'" in info.value.expected
        assert info.value.position == text.index("nope")


def test_port_names_are_printed() -> None:
    names = {0: "br0", 1: "p1", 2: "2bad", 3: "drop", 4: "a,b"}
    m = parse_match("in_port(1),eth()")
    assert format_match(m, names) == "in_port(p1),eth()"
    acts = parse_actions("0,1,2,3,4,clone(1),userspace(pid=9,tunnel_out_port=0)")
    assert format_actions(acts, names) == "br0,p1,2,3,4,clone(p1),userspace(pid=9,tunnel_out_port=br0)"
    assert parse_actions(format_actions(acts, names), {v: k for k, v in names.items()}) == acts
    masked_port = parse_match("in_port(1/0xff)")
    assert format_match(masked_port, names) == "in_port(1/0xff)"


# --- errors ---------------------------------------------------------------------------

MATCH_ERRORS = [
    ("in_port(1),eth(", 15, "field name"),
    ("ipv4(src=1.2.3)", 9, "IPv4 address"),
    ("ipv4(src=1.2.3.4/33)", 17, "IPv4 address"),
    ("ipv6(src=fe80::1%eth0)", 9, "IPv6 address"),
    ("eth(src=00:11:22:33:44)", 8, "MAC address"),
    ("tcp(src=99999)", 8, "16 bits"),
    ("tcp(src=08)", 8, "number"),
    ("tcp(port=1)", 4, "field of tcp()"),
    ("tcp(src=1,src=2)", 10, "only once"),
    ("ipv4(src=1.1.1.1),ipv4()", 18, "single ipv4()"),
    ("bogus(1)", 0, "key attribute"),
    ("in_port(1),)", 11, "key attribute"),
    ("in_port(1)eth()", 10, "','"),
    ("ipv4(frag=maybe)", 10, "fragment type"),
    ("tcp_flags(+syn-bogus)", 15, "flag name"),
    ("tcp_flags(+syn+syn)", 15, "only once"),
    ("ct_state(new|foo)", 13, "flag name"),
    ("vlan(vid=4096)", 9, "12 bits"),
    ("vlan(tci=5,vid=1)", 11, "either tci"),
    ("tunnel(ttl=64,color=red)", 14, "field of tunnel()"),
    ("tunnel(geneve({class=1,len=3}))", 15, "multiple of 4"),
    ("tunnel(erspan(idx=1))", 14, "ver="),
    ("mpls(label=1048576)", 11, "20 bits"),
    ("encap(eth(),eth())", 12, "single eth()"),
    ("key99999(00)", 0, "65535"),
    ("key40(0g)", 6, "hex bytes"),
    ("ufid:not-a-uuid in_port(1)", 5, "UUID"),
    ("nsh(spi=0x1000000)", 8, "24 bits"),
    ("encap(" * 40, 198, "levels of nesting"),
]


@pytest.mark.parametrize(("text", "position", "expected"), MATCH_ERRORS)
def test_match_errors(text: str, position: int, expected: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_match(text)
    assert info.value.position == position, info.value
    assert expected in info.value.expected
    assert info.value.text == text


ACTION_ERRORS = [
    ("1,", None, None),
    ("99999999999", 0, "output port"),
    ("foo", 0, "port number"),
    ("bogus(1)", 0, "an action"),
    ("set(ipv4(src=1.1.1.1)", 21, "')' closing set("),
    ("set(ipv4(src=1.1.1.1),3)", 21, "')' closing set("),
    ("push_vlan(vid=5000)", 14, "12 bits"),
    ("sample(sample=101%,actions(1))", 14, "percentage"),
    ("sample(actions(1))", 0, "sample=P%"),
    ("clone(1", 7, "')' closing"),
    ("userspace(userdata(01))", 0, "pid="),
    ("psample(group=1,cookie=0x" + "00" * 17 + ")", 0, "psample action"),
    ("ct(commit,bogus)", 10, "commit, force_commit"),
    ("ct(nat(src,dst))", 11, "only one of src and dst"),
    ("ct(nat(src=10.0.0.1-bad))", 11, "address range"),
    ("ct(mark=0xfffffffff)", 8, "32-bit hex"),
    ("check_pkt_len(gt(1),le(2))", 0, "size="),
    ("hash(l4(x))", 8, "number"),
    ("drop(x)", 5, "number"),
    ("1,(2)", 2, "an action"),
    ("clone(" * 40 + ")" * 40, 198, "levels of nesting"),
]


@pytest.mark.parametrize(("text", "position", "expected"), ACTION_ERRORS)
def test_action_errors(text: str, position: int | None, expected: str | None) -> None:
    if position is None:  # a trailing separator is fine
        assert parse_actions(text) == Actions([Output(1)])
        return
    with pytest.raises(ParseError) as info:
        parse_actions(text)
    assert info.value.position == position, info.value
    assert expected is not None and expected in info.value.expected


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("in_port(1), packets:x, bytes:0, used:never, actions:drop", 20),
        ("in_port(1), packets:1, bytes:0, used:soon, actions:drop", 37),
        ("in_port(1), packets:1, bytes:0, used:never, flags:Z, actions:drop", 50),
        ("in_port(1), packets:1, color:red, actions:drop", 23),
        ("in_port(1), packets:1, packets:2, actions:drop", 23),
        ("in_port(1), packets:1, bytes:0, used:never", 42),
    ],
)
def test_flow_line_errors(text: str, position: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_flow_line(text)
    assert info.value.position == position, info.value


def test_whitespace_separates_like_a_comma() -> None:
    assert parse_match("in_port(1) eth()") == parse_match("in_port(1),eth()")
    assert parse_actions("1 2\n3") == parse_actions("1,2,3")


def test_non_string_input_is_a_parse_error() -> None:
    for parse in (parse_match, parse_actions, parse_flow_line):
        with pytest.raises(ParseError):
            parse(b"in_port(1)")  # type: ignore[arg-type]


def test_model_errors_become_parse_errors_at_the_action() -> None:
    text = "1,psample(group=1,cookie=0x" + "ab" * 17 + ")"
    with pytest.raises(ParseError) as info:
        parse_actions(text)
    assert info.value.position == 2
    assert "16 bytes" in info.value.expected


# --- fuzzing: garbage and mutations only ever raise ParseError ------------------------

SYNTAX = "(),=/:.-+|{}[] \t0123456789abcdefxkey_ipv4tcpethinportsetdropnat%"


def _only_parse_errors(text: str) -> None:
    for parse in (parse_match, parse_actions, parse_flow_line):
        try:
            result = parse(text)
        except ParseError as exc:
            assert 0 <= exc.position <= len(text)
            continue
        if isinstance(result, Match):
            format_match(result)
        elif isinstance(result, Actions):
            format_actions(result)
        else:
            format_flow_line(result)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(SYNTAX), max_size=60) | st.text(max_size=40))
def test_garbage_raises_only_parse_error(text: str) -> None:
    _only_parse_errors(text)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        text = format_match(draw(matches()))
    else:
        text = format_actions(draw(action_lists(depth=1)))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 4)) :]
        elif op == "insert":
            text = text[:pos] + draw(st.text(alphabet=st.sampled_from(SYNTAX), min_size=1, max_size=3)) + text[pos:]
        elif op == "replace" and pos < len(text):
            text = text[:pos] + draw(st.sampled_from(SYNTAX)) + text[pos + 1 :]
        else:
            text = text[:pos] + text[pos : pos + draw(st.integers(1, 8))] + text[pos:]
    return text


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutations_raise_only_parse_error(text: str) -> None:
    _only_parse_errors(text)


# --- parser variants (ovs-dpctl.py, OVS) -----------------------------------------------


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("tunnel(tun_id=5,src=1.1.1.1,dst=2.2.2.2,tos=0,ttl=64,tp_src=0,tp_dst=4789,)",
         "tunnel(tun_id=0x5,src=1.1.1.1,dst=2.2.2.2,tos=0,ttl=64,tp_src=0,tp_dst=4789,flags(+key))"),
        ("ipv4(src=10.0.0.1/255.255.255.255,proto=6/255,frag=0/0)", "ipv4(src=10.0.0.1,proto=6)"),
        ("recirc_id(0x00000000),ct_state(0x0021/0x0021),tcp_flags(0x0002)",
         "recirc_id(0),ct_state(+new+trk),tcp_flags(syn)"),
        ("eth(src=AA:BB:CC:DD:EE:FF/FF:FF:FF:00:00:00)", "eth(src=aa:bb:cc:dd:ee:ff/ff:ff:ff:00:00:00)"),
        ("vlan(vid=10,pcp=3,cfi=1)", "vlan(vid=10,pcp=3)"),
        ("ipv6(src=2001:db8::/32)", "ipv6(src=2001:db8::/ffff:ffff::)"),
        ("ct_tuple6(src=::1,tp_src=5,dst_port=6)", "ct_tuple6(src=::1,src_port=5,dst_port=6)"),
        ("in_port(010)", "in_port(8)"),
    ],
)  # fmt: skip
def test_match_variants(variant: str, canonical: str) -> None:
    assert str(parse_match(variant)) == canonical


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("push_vlan(vid=10,pcp=3,tpid=0x88a8)", "push_vlan(tpid=0x88a8,vid=10,pcp=3)"),
        ("psample(group=5,cookie(0102))", "psample(group=5,cookie=0x0102)"),
        ("ct(commit,force,emask=0x3)", "ct(commit,force_commit,emask=0x3)"),
        ("pop_nsh", "pop_nsh()"),
        ("set_masked(ipv4(src=1.1.1.1/255.0.0.0))", "set(ipv4(src=1.1.1.1/255.0.0.0))"),
        ("dec_ttl", "dec_ttl(le_1(drop))"),
        ("1,drop", "1,drop(0)"),
        ("hash(alg=7,basis=1)", "hash(alg=7,basis=1)"),
        ("userspace(pid=1,userdata(01 02 03))", "userspace(pid=1,userdata(010203))"),
    ],
)
def test_action_variants(variant: str, canonical: str) -> None:
    assert str(parse_actions(variant)) == canonical


def test_drop_word_and_explicit_drop_action() -> None:
    assert parse_actions("drop") == Actions()
    assert parse_actions("drop(0)") == Actions([Drop(0)])
    assert parse_actions("dec_ttl(le_1(drop))") == Actions([DecTtl()])


def test_push_nsh_fields() -> None:
    (action,) = parse_actions("push_nsh(mdtype=2,spi=0x10,si=3,md2=0x0102)")
    assert isinstance(action, PushNsh) and isinstance(action.nsh, Nsh)
    assert not action.nsh.has_md1 and action.nsh.md2 is not None and action.nsh.md2.value == b"\x01\x02"
    assert action.nsh.path_hdr == Masked(0x1003, 0xFFFFFFFF)


def test_ct_nat_fields() -> None:
    (action,) = parse_actions("ct(commit,zone=0,nat(dst=[::1]-[::5]:80-90,persistent,hash,random))")
    assert isinstance(action, Ct) and action.zone == 0 and action.nat is not None
    nat = action.nat
    assert (nat.kind, nat.ip_min, nat.ip_max, nat.ipv6, nat.proto_min, nat.proto_max) == ("dst", 1, 5, True, 80, 90)
    assert nat.persistent and nat.proto_hash and nat.proto_random
    assert str(action) == "ct(commit,zone=0,nat(dst=[::1]-[::5]:80-90,persistent,hash,random))"
