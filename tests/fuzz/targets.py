"""Fuzz targets: the text parser, the netlink codec and the simulator's receive path.

Each target takes one input (bytes) and fails with an exception when a
property breaks; ``run.py`` drives them with atheris (coverage-guided,
``tox -e fuzz``).  The properties are those of ``tests/unit/test_fuzz.py``:

- ``text``: parsing any string raises ParseError (an OdpError) or gives a
  value that odp's exact text gives back unchanged, and ovs-dpctl's text
  too where it prints the same; its netlink bytes are stable through a
  decode;
- ``codec``: the decoders raise DecodeError and nothing else on any bytes,
  and what they decode encodes and decodes to itself;
- ``sim``: a frame through a datapath whose flow was installed from the
  frame's own miss key, with any actions the install accepts, never raises.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

from test_fuzz import PLAUSIBLE_ACTIONS, inject_case  # tests/unit: the same receive-path property

from odp.errors import DecodeError, OdpError, ParseError
from odp.netlink.codec import decode_actions, decode_match, encode_actions, encode_key, encode_mask
from odp.netlink.messages import decode_flow, parse_messages, walk_flow_dump
from odp.text import format_actions, format_match, parse_actions, parse_match


def text(data: bytes) -> None:
    s = data.decode("utf-8", "replace")
    if s.startswith("a:"):
        try:
            acts = parse_actions(s[2:])
        except ParseError:
            return
        exact = format_actions(acts, exact=True)
        assert parse_actions(exact) == acts, (s, exact)
        if str(acts) == exact:
            assert parse_actions(str(acts)) == acts, (s, str(acts))
        try:
            raw = encode_actions(acts)
        except OdpError:
            return  # a value the kernel's format cannot carry (e.g. out of range): refused
        assert encode_actions(decode_actions(raw)) == raw, s
        return
    try:
        m = parse_match(s)
    except ParseError:
        return
    assert parse_match(format_match(m, exact=True)) == m, s
    try:
        key, mask = encode_key(m), encode_mask(m)
    except OdpError:
        return
    d = decode_match(key, mask)
    assert (encode_key(d), encode_mask(d)) == (key, mask), s


def codec(data: bytes) -> None:
    if len(data) < 2:
        return
    cut = data[0] % (len(data) - 1) + 1
    key, rest = data[1:cut], data[cut:]
    for call in (
        lambda: decode_match(key, rest),
        lambda: decode_match(key),
        lambda: decode_actions(data),
        lambda: [decode_flow(m) for m in parse_messages(data)],
        lambda: walk_flow_dump(data, 5, 0x1E, []),
    ):
        with contextlib.suppress(DecodeError):
            call()
    with contextlib.suppress(DecodeError):
        m = decode_match(key, rest)
        d = decode_match(encode_key(m), encode_mask(m))
        assert d == m or (encode_key(d), encode_mask(d)) == (encode_key(m), encode_mask(m)), data.hex()
    with contextlib.suppress(DecodeError):
        acts = decode_actions(data)
        assert encode_actions(decode_actions(encode_actions(acts))) == encode_actions(acts), data.hex()


_PARSED = [parse_actions(a) for a in PLAUSIBLE_ACTIONS]


def sim(data: bytes) -> None:
    """The first byte picks the actions, the rest is the frame (see test_fuzz.inject_case)."""
    if data:
        inject_case([data[1:]], _PARSED[data[0] % len(_PARSED)], [])


TARGETS: dict[str, Callable[[bytes], None]] = {"text": text, "codec": codec, "sim": sim}


def seeds(target: str) -> list[bytes]:
    """A small starting corpus: the fuzzer mutates from valid inputs."""
    m = parse_match("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1/255.255.255.0,proto=6),tcp(dst=80)")
    acts = parse_actions("set(tunnel(tun_id=0x5,dst=192.0.2.2,ttl=64)),sample(sample=50.79%,actions(1)),2")
    if target == "text":
        return [
            format_match(m).encode(),
            b"tunnel(tun_id=0x5,src=10.0.0.1,geneve({class=0x180,type=0x1,len=4,0xa}),flags(+key)),in_port(1)",
            b"eth_type(0x86dd),ipv6(src=::1/::255,label=0/0xfffff,frag=no),tcp_flags(+syn-ack)",
            b"a:" + format_actions(acts).encode(),
            b"a:set(ipv6(label=0/0xfffff)),ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:10-20)),push_vlan(vid=5,pcp=1)",
            b"a:check_pkt_len(size=70,gt(2),le(userspace(pid=3,userdata(01020304)))),clone(pop_vlan,3)",
        ]
    if target == "codec":
        key, mask = encode_key(m), encode_mask(m)
        return [bytes([len(key) + 1]) + key + mask, encode_actions(acts)]
    udp = struct.pack("!BBHHHBBHII", 0x45, 0, 36, 0, 0, 64, 17, 0, 0x0A000001, 0x0A000002)
    udp += struct.pack("!HHHH", 1, 53, 16, 0) + bytes(8)
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    return [bytes([i]) + eth + b"\x08\x00" + udp for i in range(len(PLAUSIBLE_ACTIONS))] + [
        bytes([3]) + eth + b"\x81\x00\x00\x05\x08\x00" + udp
    ]


def check(target: str, data: bytes) -> None:
    """Run ``target`` on ``data`` (for replaying a crash: ``python -m ... targets``)."""
    TARGETS[target](data)


__all__ = ["TARGETS", "check", "codec", "seeds", "sim", "text"]
