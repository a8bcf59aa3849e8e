"""odp.netlink.codec: golden bytes, model round trips, unknown attributes and fuzzing."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Any

import pytest
import strategies as shared  # tests/unit/strategies.py
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from odp.actions import (
    ACTION_CLASSES,
    Action,
    Actions,
    AddMpls,
    CheckPktLen,
    Clone,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Meter,
    Nat,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
    set_tunnel,
)
from odp.constants import KeyAttrType, TunnelFlag
from odp.errors import DecodeError, FieldError
from odp.fields import WILDCARD, Kind, Masked
from odp.keys import (
    FIXED_ATTRS,
    Arp,
    Encap,
    Ethernet,
    EthType,
    FixedKeyAttr,
    InPort,
    Ipv4,
    KeyAttr,
    MaskedBytes,
    Match,
    Mpls,
    Nsh,
    Tcp,
    TcpFlags,
    Tunnel,
    UnknownKeyAttr,
    Vlan,
)
from odp.netlink.attrs import attr_list, iter_attrs, pack_attr
from odp.netlink.codec import (
    _ACTION_DEC,
    _ACTION_ENC,
    decode_actions,
    decode_key_attr,
    decode_match,
    decode_tunnel,
    encode_actions,
    encode_key,
    encode_key_attr,
    encode_mask,
    encode_tunnel,
)
from odp.netlink.messages import parse_messages

LITTLE = sys.byteorder == "little"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_CLASS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def nla(type_: int, payload: bytes = b"") -> bytes:
    """Independent attribute packer for hand-written expectations."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, type_) + payload + b"\0" * (-length % 4)


# ---------------------------------------------------------------------------
# Golden bytes, checked by hand against shared/reference/uapi.md
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not LITTLE, reason="golden bytes written for a little-endian host")
def test_in_port_golden() -> None:
    assert encode_key_attr(InPort(1)) == h("08 00 03 00 01 00 00 00")
    assert encode_key_attr(InPort(1), mask=True) == h("08 00 03 00 ff ff ff ff")


def test_ethernet_golden() -> None:
    eth = Ethernet(src="00:11:22:33:44:55", dst="ff:ff:ff:ff:ff:fe")
    # nla_len 16, type 4, src[6] then dst[6]
    assert encode_key_attr(eth) == nla(4, h("001122334455 fffffffffffe"))


def test_ipv4_golden() -> None:
    ip = Ipv4(src="10.0.0.1", dst="192.168.1.2", proto=6, tos=0x10, ttl=64, frag=0)
    # {be32 src, dst; u8 proto, tos, ttl, frag}: 12 bytes of payload, nla_len 16, type 7
    assert encode_key_attr(ip) == h("10 00 07 00 0a000001 c0a80102 06 10 40 00")
    ip = Ipv4(src="10.0.0.0/8", proto=17)
    assert encode_key_attr(ip, mask=True) == h("10 00 07 00 ff000000 00000000 ff 00 00 00")


def test_tcp_udp_tcp_flags_vlan_ethertype_golden() -> None:
    assert encode_key_attr(Tcp(src=1234, dst=80)) == h("08 00 09 00 04d2 0050")
    # be16 payloads are padded to 4 bytes; nla_len stays 6
    assert encode_key_attr(TcpFlags(0x012)) == h("06 00 12 00 0012 0000")
    assert encode_key_attr(Vlan.of(10, 3)) == h("06 00 05 00 700a 0000")
    assert encode_key_attr(EthType(0x86DD)) == h("06 00 06 00 86dd 0000")


def test_arp_golden_has_two_pad_bytes() -> None:
    arp = Arp(sip="10.0.0.1", tip="10.0.0.2", op=1, sha="00:00:00:00:00:01", tha="ff:ff:ff:ff:ff:ff")
    assert encode_key_attr(arp) == nla(13, h("0a000001 0a000002 0001 000000000001 ffffffffffff 0000"))
    assert len(encode_key_attr(arp)) == 4 + 24


def test_mpls_is_an_array_of_be32() -> None:
    m = Mpls(0x12345140, 0x00001100)
    assert encode_key_attr(m) == nla(21, h("12345140 00001100"))


def test_an_empty_mpls_mask_wildcards_every_lse() -> None:
    # The kernel sizes the mask's MPLS attribute by the mask's label count: a flow whose LSE masks
    # are all zero dumps a 0-byte mask (found by the kernel oracle: such dumps did not decode).
    from odp.netlink.codec import decode_match, encode_key
    from odp.text import parse_match

    match = parse_match("in_port(1),eth(),eth_type(0x8847),mpls(label=5/0,tc=0/0,ttl=0/0,bos=1/0)")
    key = encode_key(match)
    mask = nla(3, h("ffffffff")) + nla(6, h("ffff")) + nla(21)  # in_port, eth_type exact; mpls: 0 bytes
    (mpls,) = [a for a in decode_match(key, mask).attrs if isinstance(a, Mpls)]
    assert [m.mask for m in mpls.lses] == [0]
    assert mpls.is_wildcard()


@pytest.mark.skipif(not LITTLE, reason="golden bytes written for a little-endian host")
def test_tunnel_golden_key_and_mask() -> None:
    tun = Tunnel(
        tun_id=0x1234,
        ipv4_src="10.0.0.1",
        ipv4_dst="10.0.0.2",
        ttl=64,
        flags=(int(TunnelFlag.DF | TunnelFlag.KEY), 0xF),
    )
    inner_key = (
        h("0c 00 00 00 0000000000001234")  # ID be64
        + h("08 00 01 00 0a000001")  # IPV4_SRC
        + h("08 00 02 00 0a000002")  # IPV4_DST
        + h("05 00 04 00 40 000000")  # TTL u8 + pad
        + h("04 00 05 00")  # DONT_FRAGMENT flag
    )
    assert encode_key_attr(tun) == h("2c 00 10 00") + inner_key
    inner_mask = (
        h("0c 00 00 00 ffffffffffffffff")
        + h("08 00 01 00 ffffffff")
        + h("08 00 02 00 ffffffff")
        + h("05 00 04 00 ff 000000")
        + h("04 00 05 00")  # DF: mask has every flag bit
        + h("04 00 06 00")  # CSUM
        + h("04 00 07 00")  # OAM
    )
    assert encode_key_attr(tun, mask=True) == nla(16, inner_mask)
    # decoding the pair gives the tunnel back
    assert decode_match(encode_key(Match(tun)), encode_mask(Match(tun))).attrs == (tun,)


def test_tunnel_ttl_is_always_in_the_key() -> None:
    tun = Tunnel(ipv4_dst="10.0.0.2")
    assert encode_tunnel(tun) == nla(2, h("0a000002")) + nla(4, b"\x00")
    assert encode_tunnel(tun, mask=True) == nla(2, h("ffffffff"))
    assert decode_match(encode_key(Match(tun)), encode_mask(Match(tun))).attrs == (tun,)


def test_tunnel_presence_rules() -> None:
    # no KEY flag value: no ID in the key even with a tun_id mask
    tun = Tunnel(tun_id=(0, 0xFFFF), flags=(0, int(TunnelFlag.KEY)), ipv4_dst="1.1.1.1")
    key_types = [t for t, _ in attr_list(encode_tunnel(tun))]
    mask_types = [t for t, _ in attr_list(encode_tunnel(tun, mask=True))]
    assert 0 not in key_types and 0 in mask_types
    # IPv6 addresses only when set; vxlan gbp nested when its mask is non-zero
    tun6 = Tunnel(ipv6_dst="2001:db8::1", ttl=1, vxlan_gbp=0x100, flags=(0, 0xF))
    payload = encode_tunnel(tun6)
    subs = dict(attr_list(payload))
    assert 12 not in subs and 1 not in subs and 2 not in subs
    assert subs[13] == h("20010db8000000000000000000000001")
    assert subs[11] == nla(1, u32(0x100))
    assert decode_tunnel(payload) == tun6


def test_set_tunnel_key_only_flags_are_exact() -> None:
    act = set_tunnel(tun_id=5, ipv4_dst="10.0.0.2", ttl=64)
    data = encode_actions(Actions.of(act))
    assert data == nla(3, nla(16, nla(0, struct.pack("!Q", 5)) + nla(2, h("0a000002")) + nla(4, b"\x40")))
    (decoded,) = decode_actions(data).items
    assert isinstance(decoded, Set) and isinstance(decoded.attr, Tunnel)
    # flags are presence-coded: key set, df/csum/oam known to be clear
    key = int(TunnelFlag.KEY)
    assert decoded.attr.flags == Masked(key, 0xF)
    assert decoded == set_tunnel(tun_id=5, ipv4_dst="10.0.0.2", ttl=64, flags=(key, 0xF))
    assert decoded.attr.tos == WILDCARD
    # same bytes on the wire as the original
    assert encode_actions([decoded]) == data


def test_set_masked_payload_is_value_then_mask() -> None:
    act = SetMasked(Ipv4(src=("10.1.2.3", "255.255.0.0"), ttl=(63, 0xFF)))
    value = h("0a010000 00000000 00 00 3f 00")  # value bits outside the mask cleared
    mask = h("ffff0000 00000000 00 00 ff 00")
    assert encode_actions(Actions.of(act)) == nla(11, nla(7, value + mask))
    assert decode_actions(nla(11, nla(7, value + mask))).items == (act,)


def test_set_masked_mpls_is_lse_values_then_masks() -> None:
    act = SetMasked(Mpls(Masked(0x00007140, 0xFFFFF000)))  # label 7 (tc, bos, ttl bits outside the mask)
    data = nla(11, nla(21, h("00007000 fffff000")))
    assert encode_actions(Actions.of(act)) == data
    (decoded,) = decode_actions(data).items
    assert decoded == act and isinstance(decoded, SetMasked)
    assert decode_actions(encode_actions(Actions.of(decoded))).items == (act,)
    with pytest.raises(DecodeError, match="set_masked mpls"):
        decode_actions(nla(11, nla(21, h("00007000"))))  # a value without its mask


@pytest.mark.skipif(not LITTLE, reason="golden bytes written for a little-endian host")
def test_nested_sample_golden() -> None:
    act = Sample(Sample.ALWAYS, Actions.of(Output(1)))
    expected = h("18 00 06 00") + h("08 00 01 00 ffffffff") + h("0c 00 02 00") + h("08 00 01 00 01000000")
    assert encode_actions(Actions.of(act)) == expected
    assert decode_actions(expected).items == (act,)


@pytest.mark.skipif(not LITTLE, reason="golden bytes written for a little-endian host")
def test_fixed_action_golden() -> None:
    assert encode_actions([Output(3)]) == h("08 00 01 00 03000000")
    assert encode_actions([PushVlan.of(100, 5)]) == h("08 00 04 00 8100 b064")  # pcp 5, CFI, vid 100
    assert encode_actions([PopVlan()]) == h("04 00 05 00")
    # struct ovs_action_push_mpls is 8 bytes (be32 lse, be16 ethertype, 2 pad)
    assert encode_actions([PushMpls(0x12345140, 0x8847)]) == h("0c 00 09 00 12345140 8847 0000")
    assert encode_actions([PopMpls(0x0800)]) == h("06 00 0a 00 0800 0000")
    # add_mpls: be32 lse, be16 ethertype, host u16 tun_flags
    assert encode_actions([AddMpls(0x12345140, 0x8848, 1)]) == h("0c 00 16 00 12345140 8848 0100")
    assert encode_actions([Hash(1, 7)]) == h("0c 00 08 00 01000000 07000000")
    assert encode_actions([Recirc(0x10)]) == h("08 00 07 00 10000000")
    assert encode_actions([PushEth(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")]) == h(
        "10 00 0e 00 000000000001 000000000002"
    )
    assert encode_actions([Trunc(100), Meter(2), Drop(0)]) == h(
        "08 00 0d 00 64000000 08 00 13 00 02000000 08 00 18 00 00000000"
    )


@pytest.mark.skipif(not LITTLE, reason="golden bytes written for a little-endian host")
def test_ct_and_userspace_golden() -> None:
    act = Ct(commit=True, zone=5, mark=Masked(1, 0xFF), nat=Nat(kind="src", ip_min=0x0A000001, ip_max=0x0A0000FE))
    nat = nla(1) + nla(3, h("0a000001")) + nla(4, h("0a0000fe"))
    inner = nla(1) + nla(2, h("0500")) + nla(3, h("01000000 ff000000")) + nla(6, nat)
    assert encode_actions([act]) == nla(12, inner)
    assert decode_actions(nla(12, inner)).items == (act,)
    nat6 = Nat(kind="dst", ip_min=1, ipv6=True, proto_min=80, proto_max=90)
    enc = encode_actions([Ct(nat=nat6, helper="ftp")])
    assert decode_actions(enc).items == (Ct(nat=nat6, helper="ftp"),)
    assert nla(5, b"ftp\0") in enc
    us = Userspace(pid=0x1234, userdata=b"\x01\x02", actions=True)
    assert encode_actions([us]) == nla(2, nla(1, h("34120000")) + nla(2, b"\x01\x02") + nla(4))


def test_check_pkt_len_dec_ttl_clone_psample() -> None:
    acts = Actions.of(
        CheckPktLen(1500, Actions.of(Output(1)), Actions.of(Output(2))),
        DecTtl(Actions.of(Drop(3))),
        Clone(Actions.of(PopEth(), CtClear())),
        Psample(7, b"cookie"),
        Psample(8),
    )
    assert decode_actions(encode_actions(acts)) == acts


def test_psample_is_sent_with_nla_f_nested() -> None:
    # 6.12 refuses OVS_ACTION_ATTR_PSAMPLE (25) without NLA_F_NESTED (EINVAL),
    # and accepts it with the flag; the decoder ignores the flag either way.
    enc = encode_actions([Psample(7, b"ck")])
    assert enc == struct.pack("=HH", 4 + 8 + 8, 25 | 0x8000) + nla(1, h("07000000")) + nla(2, b"ck")
    assert decode_actions(enc).items == (Psample(7, b"ck"),)
    assert decode_actions(nla(25, nla(1, h("07000000")))).items == (Psample(7),)


def test_empty_actions_mean_drop() -> None:
    assert encode_actions(Actions()) == b""
    assert decode_actions(b"") == Actions()


# ---------------------------------------------------------------------------
# Mask semantics
# ---------------------------------------------------------------------------


def test_key_attribute_without_mask_attribute_is_wildcarded() -> None:
    key = encode_key(Match(InPort(1), Ipv4(src="1.2.3.4")))
    mask = encode_key_attr(InPort(1), mask=True)
    m = decode_match(key, mask)
    ip = m.get(Ipv4)
    assert ip is not None and ip.is_wildcard() and ip.src.value == 0x01020304
    assert m.get(InPort) == InPort(1)


def test_mask_none_means_exact() -> None:
    key = encode_key(Match(InPort(1), Ipv4(src="1.2.3.4")))
    ip = decode_match(key).get(Ipv4)
    assert ip is not None and ip.is_exact() and ip.dst == Masked(0, 0xFFFFFFFF)


def test_mask_attribute_without_key_goes_to_mask_only() -> None:
    # what dumps show as eth_type(0/0x0000) next to eth()
    key = encode_key_attr(Ethernet())
    mask = encode_key_attr(Ethernet(), mask=True) + nla(int(KeyAttrType.ETHERTYPE), h("0000"))
    m = decode_match(key, mask)
    assert m.attrs == (Ethernet(),)
    assert m.mask_only == (EthType.from_values([0], [0]),)
    assert encode_mask(m) == mask


def test_encap_and_mask_only_inside_encap_round_trip() -> None:
    inner_key = encode_key_attr(Ipv4(src="1.1.1.1", proto=6))
    key = (
        encode_key_attr(Ethernet())
        + encode_key_attr(EthType(0x8100))
        + encode_key_attr(Vlan.of(5))
        + nla(1, encode_key_attr(EthType(0x0800)) + inner_key)
    )
    inner_mask = (
        encode_key_attr(EthType(0x0800), mask=True)
        + encode_key_attr(Ipv4(src="1.1.1.1", proto=6), mask=True)
        + encode_key_attr(Tcp(dst=80), mask=True)  # no tcp() in the key: mask-only
    )
    mask = (
        encode_key_attr(Ethernet(), mask=True)
        + encode_key_attr(EthType(0xFFFF), mask=True)
        + encode_key_attr(Vlan.of(5), mask=True)
        + nla(1, inner_mask)
    )
    m = decode_match(key, mask)
    encap = m.get(Encap)
    assert encap is not None and len(encap.attrs) == 2
    assert [type(a) for a in encap.attrs] == [EthType, Ipv4]
    mo = [a for a in m.mask_only if isinstance(a, Encap)]
    assert len(mo) == 1
    assert isinstance(mo[0].attrs[0], Tcp)
    assert encode_key(m) == key
    assert encode_mask(m) == mask


def test_wrong_length_names_attribute_and_lengths() -> None:
    with pytest.raises(DecodeError, match=r"flow key ipv4: payload is 3 byte\(s\), expected 12"):
        decode_match(nla(7, b"abc"))
    with pytest.raises(DecodeError, match=r"flow mask ipv4: payload is 4 byte\(s\), expected 12"):
        decode_match(encode_key_attr(Ipv4()), nla(7, b"abcd"))
    with pytest.raises(DecodeError, match="tunnel key ipv4_dst"):
        decode_match(nla(16, nla(2, b"\x01")))
    with pytest.raises(DecodeError, match="output"):
        decode_actions(nla(1, b"\x01\x00"))
    with pytest.raises(DecodeError, match="push_mpls"):
        decode_actions(nla(9, b"\x00" * 6))


def test_duplicates_and_truncation_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="duplicate"):
        decode_match(encode_key_attr(InPort(1)) * 2)
    with pytest.raises(DecodeError, match="duplicate"):
        decode_match(encode_key_attr(InPort(1)), encode_key_attr(InPort(1), mask=True) * 2)
    with pytest.raises(DecodeError, match="truncated"):
        decode_match(encode_key_attr(InPort(1))[:-1])
    with pytest.raises(DecodeError, match="header"):
        decode_match(b"\x08\x00")
    with pytest.raises(DecodeError, match="nla_len 2"):
        decode_actions(h("0200 0100"))


def test_deep_nesting_is_a_decode_error() -> None:
    data = encode_actions([Output(1)])
    for _ in range(200):
        data = nla(20, data)  # clone(clone(...))
    with pytest.raises(DecodeError, match="deeper"):
        decode_actions(data)
    key = b""
    for _ in range(200):
        key = nla(1, key)
    with pytest.raises(DecodeError, match="deeper"):
        decode_match(key)


def test_attribute_type_flags_are_ignored() -> None:
    payload = encode_key_attr(Tcp(dst=80))
    flagged = struct.pack("=HH", 12, 0x8000 | 16) + nla(2, h("0a000001"))
    m = decode_match(payload + flagged)
    tun = m.get(Tunnel)
    assert tun is not None and tun.ipv4_dst == Masked(0x0A000001, 0xFFFFFFFF)
    assert list(iter_attrs(struct.pack("=HH", 4, 0xC005))) == [(5, b"")]


# ---------------------------------------------------------------------------
# Unknown attributes round-trip byte-exactly
# ---------------------------------------------------------------------------


def test_unknown_key_attributes_round_trip_exactly() -> None:
    key = encode_key_attr(InPort(1)) + nla(40, b"\x01\x02\x03") + nla(33, b"")
    mask = encode_key_attr(InPort(1), mask=True) + nla(40, b"\xff\x00\xff") + nla(41, b"\x07")
    m = decode_match(key, mask)
    assert UnknownKeyAttr(40, b"\x01\x02\x03", b"\xff\x00\xff") in m.attrs
    assert UnknownKeyAttr(33, b"", None) in m.attrs
    assert m.mask_only == (UnknownKeyAttr(41, b"", b"\x07"),)
    assert encode_key(m) == key
    assert encode_mask(m) == mask


def test_unknown_tunnel_sub_attributes_round_trip_exactly() -> None:
    key_inner = nla(2, h("0a000002")) + nla(4, b"\x40") + nla(16) + nla(30, b"\xaa\xbb")
    mask_inner = nla(2, h("ffffffff")) + nla(4, b"\xff") + nla(16) + nla(30, b"\xff\x00")
    key = nla(16, key_inner)
    mask = nla(16, mask_inner)
    m = decode_match(key, mask)
    tun = m.get(Tunnel)
    assert tun is not None and tun.extra == ((16, b"", b""), (30, b"\xaa\xbb", b"\xff\x00"))
    # one-sided entries keep their place
    mixed_key = nla(16, nla(20, b"k") + nla(21, b"both"))
    mixed_mask = nla(16, nla(22, b"m") + nla(21, b"mask"))
    mixed = decode_match(mixed_key, mixed_mask).get(Tunnel)
    assert mixed is not None
    assert mixed.extra == ((20, b"k", b""), (22, b"", b"m"), (21, b"both", b"mask"))
    assert encode_key(m) == key and encode_mask(m) == mask
    # exact (set action) form
    acts = nla(3, key)
    decoded = decode_actions(acts)
    assert encode_actions(decoded) == acts


def test_vxlan_opts_with_unknown_extension_kept_raw() -> None:
    odd = nla(11, nla(1, u32(5)) + nla(2, u32(6)))
    tun_payload = nla(2, h("0a000002")) + nla(4, b"\x40") + odd
    tun = decode_tunnel(tun_payload)
    assert tun.vxlan_gbp == WILDCARD and tun.extra == ((11, odd[4:], b"\xff" * 16),)
    assert encode_tunnel(tun) == tun_payload


def test_unknown_actions_round_trip_exactly() -> None:
    data = (
        nla(99, b"\x01\x02\x03\x04\x05")
        + nla(12, nla(1) + nla(42, b"future"))  # ct with a sub-attribute from the future
        + nla(11, nla(16, nla(2, h("0a000002")) + nla(2, h("ffffffff"))))  # set_masked(tunnel): not in the model
        + nla(2, nla(1, u32(7)) + nla(9))  # userspace with an unknown sub-attribute
        + nla(0, b"")
    )
    acts = decode_actions(data)
    assert [type(a) for a in acts] == [UnknownAction] * 5
    assert acts.items[0] == UnknownAction(99, b"\x01\x02\x03\x04\x05")
    assert encode_actions(acts) == data


def test_nsh_with_unknown_sub_attribute_is_kept_raw() -> None:
    payload = nla(1, h("00 3f 01 03 00000aff")) + nla(7, b"x")
    m = decode_match(nla(28, payload))
    assert m.attrs == (UnknownKeyAttr(28, payload, None),)
    assert encode_key(m) == nla(28, payload)


def test_nsh_round_trip() -> None:
    nsh = Nsh(flags=0, ttl=63, mdtype=1, np=3, spi=10, si=255, c1=1, c2=2, c3=3, c4=4)
    assert decode_match(encode_key(Match(nsh))).attrs == (nsh,)
    act = PushNsh(nsh)
    assert decode_actions(encode_actions([act])).items == (act,)


def test_mask_only_twin_of_a_key_attribute() -> None:
    wild = Match(EthType(0x0800), mask_only=[EthType.from_values([0], [0])])
    assert encode_mask(wild) == encode_key_attr(EthType(0x0800), mask=True)
    with pytest.raises(FieldError, match="mask-only"):
        encode_mask(Match(EthType(0x0800), mask_only=[EthType.from_values([0], [0xFF])]))


def test_encode_errors_are_field_errors() -> None:
    bad = InPort.from_values([1 << 40], [0xFFFFFFFF])
    with pytest.raises(FieldError, match="in_port"):
        encode_key(Match(bad))
    with pytest.raises(FieldError, match="too long"):
        encode_actions([Userspace(1, userdata=b"x" * 70000)])


def test_decode_key_attr_for_single_attributes() -> None:
    a = decode_key_attr(int(KeyAttrType.IPV4), encode_key_attr(Ipv4(src="1.2.3.4"))[4:])
    assert isinstance(a, Ipv4) and a.is_exact()
    b = decode_key_attr(int(KeyAttrType.TCP), h("0000 0050"), h("0000 ffff"))
    assert b == Tcp(dst=80)


# ---------------------------------------------------------------------------
# Strategies (tests/unit/strategies.py did not exist when this was written)
# ---------------------------------------------------------------------------


def masked(kind: Kind) -> st.SearchStrategy[Masked]:
    full = kind.full
    return st.one_of(
        st.just(WILDCARD),
        st.integers(0, full).map(lambda v: Masked(v, full)),
        st.builds(Masked, st.integers(0, full), st.integers(0, full)),
    )


def exact_or_absent(kind: Kind) -> st.SearchStrategy[Masked]:
    return st.one_of(st.just(WILDCARD), st.integers(0, kind.full).map(lambda v: Masked(v, kind.full)))


def fixed_attrs(cls: type[FixedKeyAttr]) -> st.SearchStrategy[FixedKeyAttr]:
    fields = st.tuples(*(masked(s.kind) for s in cls.FIELDS))
    return fields.map(lambda ms: cls.from_values([m.value for m in ms], [m.mask for m in ms]))


def exact_fixed_attrs(cls: type[FixedKeyAttr]) -> st.SearchStrategy[FixedKeyAttr]:
    return st.tuples(*(st.integers(0, s.kind.full) for s in cls.FIELDS)).map(cls.exact)


any_fixed_class = st.sampled_from(sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE))
KNOWN_TUN = set(range(16))
extra_types = st.integers(16, 400)


@st.composite
def tunnels(draw: Any, exact: bool = False) -> Tunnel:
    kw: dict[str, object] = {}
    for spec in Tunnel.FIELDS:
        if spec.name == "flags":
            continue
        kw[spec.name] = draw(exact_or_absent(spec.kind) if exact else masked(spec.kind))
    if exact:  # TTL is always sent (0 when wildcarded), so it comes back exact
        kw["ttl"] = Masked(draw(st.integers(0, 255)), 0xFF)
    if exact:
        # exact form: flags exact, and an exact tun_id exactly when KEY is set
        f = draw(st.integers(0, 0xF))
        tid = kw["tun_id"]
        assert isinstance(tid, Masked)
        f = f | int(TunnelFlag.KEY) if tid.mask else f & ~int(TunnelFlag.KEY)
        kw["flags"] = Masked(f, 0xF)
    elif draw(st.booleans()):
        kw["flags"] = Masked(draw(st.integers(0, 0xF)), draw(st.integers(0, 0xF)))
    geneve = draw(st.none() | st.binary(max_size=12))
    erspan = draw(st.none() | st.binary(max_size=8))
    types = draw(st.lists(extra_types, unique=True, max_size=3))
    extra = []
    for t in types:
        kp = draw(st.binary(max_size=6))
        mp = b"\xff" * len(kp) if exact else draw(st.binary(max_size=6))
        if kp == b"" and mp != b"":
            kp = b"\x00"
        extra.append((t, kp, mp))
    g: MaskedBytes | bytes | None = geneve
    e: MaskedBytes | bytes | None = erspan
    if not exact and geneve is not None:
        g = MaskedBytes(geneve, draw(st.binary(min_size=len(geneve), max_size=len(geneve))))
    if not exact and erspan is not None:
        e = MaskedBytes(erspan, draw(st.binary(min_size=len(erspan), max_size=len(erspan))))
    return Tunnel(geneve=g, erspan=e, extra=tuple(extra), **kw)


@st.composite
def mpls_attrs(draw: Any, exact: bool = False) -> Mpls:
    n = draw(st.integers(1, 3))
    if exact:
        return Mpls(*draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=n, max_size=n)))
    return Mpls(*draw(st.lists(masked(Kind.U32), min_size=n, max_size=n)))


@st.composite
def nsh_attrs(draw: Any, exact: bool = False) -> Nsh:
    kw: dict[str, Any] = {}
    base = ("flags", "ttl", "mdtype", "np", "path_hdr")
    ctx = ("c1", "c2", "c3", "c4")
    kinds = {s.name: s.kind for s in Nsh.FIELDS}
    if exact:
        if draw(st.booleans()):
            for n in base:
                kw[n] = draw(st.integers(0, kinds[n].full))
        md1 = draw(st.booleans())
        if md1:
            for n in ctx:
                kw[n] = draw(st.integers(0, kinds[n].full))
        kw["has_md1"] = md1
        md2 = draw(st.none() | st.binary(max_size=8))
    else:
        for n in (*base, *ctx):
            kw[n] = draw(masked(kinds[n]))
        kw["has_md1"] = draw(st.sampled_from([None, True]))
        md2v = draw(st.none() | st.binary(max_size=8))
        md2 = None if md2v is None else MaskedBytes(md2v, draw(st.binary(min_size=len(md2v), max_size=len(md2v))))
    return Nsh(md2=md2, **kw)


unknown_types = st.integers(33, 300)


@st.composite
def unknown_key_attrs(draw: Any, exact: bool = False) -> UnknownKeyAttr:
    key = draw(st.binary(max_size=10))
    mask = None if exact else draw(st.none() | st.binary(max_size=10))
    return UnknownKeyAttr(draw(unknown_types), key, mask)


def leaf_attrs(exact: bool) -> st.SearchStrategy[KeyAttr]:
    fixed = any_fixed_class.flatmap(exact_fixed_attrs if exact else fixed_attrs)
    return st.one_of(fixed, tunnels(exact), mpls_attrs(exact), nsh_attrs(exact), unknown_key_attrs(exact))


def attr_type(a: KeyAttr) -> int:
    return a.TYPE


def key_attr_lists(exact: bool, depth: int = 1) -> st.SearchStrategy[list[KeyAttr]]:
    elems = leaf_attrs(exact)
    if depth > 0:
        elems = st.one_of(elems, key_attr_lists(exact, depth - 1).map(lambda xs: Encap(*xs)))
    return st.lists(elems, max_size=6, unique_by=attr_type)


def mask_only_of(a: KeyAttr) -> KeyAttr | None:
    """The same attribute with zero values (how a mask-only attribute decodes)."""
    if isinstance(a, FixedKeyAttr):
        return type(a).from_values([0] * len(a.FIELDS), a.masks())
    if isinstance(a, UnknownKeyAttr):
        return None if a.mask is None else UnknownKeyAttr(a.type, b"", a.mask)
    return None


@st.composite
def matches(draw: Any) -> Match:
    attrs = draw(key_attr_lists(False))
    used = {attr_type(a) for a in attrs}
    extra = draw(st.lists(leaf_attrs(False), max_size=3, unique_by=attr_type))
    mask_only = [m for m in map(mask_only_of, extra) if m is not None and attr_type(m) not in used]
    return Match(*attrs, mask_only=mask_only)


# -- actions -----------------------------------------------------------------

u32s = st.integers(0, 0xFFFFFFFF)
u16s = st.integers(0, 0xFFFF)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=8)


@st.composite
def nats(draw: Any) -> Nat:
    ipv6 = draw(st.booleans())
    ip = st.integers(0, (1 << (128 if ipv6 else 32)) - 1)
    ip_min = draw(st.none() | ip)
    ip_max = draw(st.none() | ip)
    if ip_min is None and ip_max is None:
        ipv6 = False
    return Nat(
        kind=draw(st.sampled_from([None, "src", "dst"])),
        ip_min=ip_min,
        ip_max=ip_max,
        ipv6=ipv6,
        proto_min=draw(st.none() | u16s),
        proto_max=draw(st.none() | u16s),
        persistent=draw(st.booleans()),
        proto_hash=draw(st.booleans()),
        proto_random=draw(st.booleans()),
    )


cts = st.builds(
    Ct,
    commit=st.booleans(),
    force_commit=st.booleans(),
    zone=st.none() | u16s,
    mark=st.none() | st.builds(Masked, u32s, u32s),
    labels=st.none() | st.builds(Masked, st.integers(0, (1 << 128) - 1), st.integers(0, (1 << 128) - 1)),
    helper=st.none() | texts,
    timeout=st.none() | texts,
    eventmask=st.none() | u32s,
    nat=st.none() | nats(),
)


def exact_set_attrs() -> st.SearchStrategy[KeyAttr]:
    return st.one_of(
        any_fixed_class.flatmap(exact_fixed_attrs),
        tunnels(exact=True),
        mpls_attrs(exact=True),
        nsh_attrs(exact=True),
        unknown_key_attrs(exact=True),
    )


simple_actions: st.SearchStrategy[Action] = st.one_of(
    st.builds(Output, u32s),
    st.builds(
        Userspace,
        pid=u32s,
        userdata=st.none() | st.binary(max_size=20),
        egress_tun_port=st.none() | u32s,
        actions=st.booleans(),
    ),
    st.builds(Set, exact_set_attrs()),
    any_fixed_class.flatmap(fixed_attrs).map(lambda a: SetMasked(a)),  # type: ignore[arg-type]
    st.builds(PushVlan, u16s, u16s),
    st.just(PopVlan()),
    st.builds(Recirc, u32s),
    st.builds(Hash, u32s, u32s),
    st.builds(PushMpls, u32s, u16s),
    st.builds(PopMpls, u16s),
    st.builds(AddMpls, u32s, u16s, u16s),
    cts,
    st.builds(Trunc, u32s),
    st.builds(PushEth, st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 48) - 1)),
    st.just(PopEth()),
    st.just(CtClear()),
    st.builds(PushNsh, nsh_attrs(exact=True)),
    st.just(PopNsh()),
    st.builds(Meter, u32s),
    st.builds(Drop, u32s),
    st.builds(Psample, u32s, st.none() | st.binary(max_size=16)),
    st.builds(UnknownAction, st.integers(26, 0x3FFF), st.binary(max_size=12)),
)


def _nested(children: st.SearchStrategy[list[Action]]) -> st.SearchStrategy[Action]:
    acts = children.map(Actions)
    return st.one_of(
        st.builds(Sample, u32s, acts),
        st.builds(Clone, acts),
        st.builds(CheckPktLen, u16s, acts, acts),
        st.builds(DecTtl, acts),
    )


action_lists: st.SearchStrategy[list[Action]] = st.recursive(
    st.lists(simple_actions, max_size=4),
    lambda children: st.lists(st.one_of(simple_actions, _nested(children)), max_size=4),
    max_leaves=12,
)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


def _round_trip_match(m: Match) -> Match:
    return decode_match(encode_key(m), encode_mask(m))


@pytest.mark.parametrize("cls", sorted(FIXED_ATTRS.values(), key=lambda c: c.TYPE), ids=lambda c: c.NAME)
@PER_CLASS
@given(data=st.data())
def test_every_fixed_key_attr_round_trips(cls: type[FixedKeyAttr], data: st.DataObject) -> None:
    a = data.draw(fixed_attrs(cls))
    m = Match(a)
    assert _round_trip_match(m).attrs == (a,)
    e = data.draw(exact_fixed_attrs(cls))
    assert decode_match(encode_key(Match(e))).attrs == (e,)
    mo = mask_only_of(a)
    assert mo is not None
    assert _round_trip_match(Match(mask_only=[mo])).mask_only == (mo,)


@pytest.mark.parametrize(
    "strategy",
    [tunnels, mpls_attrs, nsh_attrs, unknown_key_attrs],
    ids=["tunnel", "mpls", "nsh", "unknown"],
)
@SETTINGS
@given(data=st.data())
def test_variable_key_attrs_round_trip(
    strategy: Callable[..., st.SearchStrategy[KeyAttr]], data: st.DataObject
) -> None:
    a = data.draw(strategy())
    assert _round_trip_match(Match(a)).attrs == (a,)
    e = data.draw(strategy(exact=True))
    assert decode_match(encode_key(Match(e))).attrs == (e,)


@SETTINGS
@given(matches())
def test_matches_round_trip(m: Match) -> None:
    d = _round_trip_match(m)
    assert d == m
    assert d.attrs == m.attrs
    assert d.mask_only == m.mask_only
    # re-encoding what was decoded gives the same bytes
    assert encode_key(d) == encode_key(m)
    assert encode_mask(d) == encode_mask(m)


@SETTINGS
@given(key_attr_lists(exact=True))
def test_exact_keys_round_trip(attrs: list[KeyAttr]) -> None:
    m = Match(*attrs)
    assert decode_match(encode_key(m)).attrs == m.attrs


@SETTINGS
@given(action_lists)
def test_actions_round_trip(items: list[Action]) -> None:
    acts = Actions(items)
    data = encode_actions(acts)
    decoded = decode_actions(data)
    assert decoded == acts
    assert encode_actions(decoded) == data


@pytest.mark.parametrize("cls", ACTION_CLASSES, ids=lambda c: c.__name__)
def test_every_action_class_has_an_encoder_and_a_decoder(cls: type[Action]) -> None:
    assert cls in _ACTION_ENC
    assert int(cls.TYPE) in _ACTION_DEC


# -- with the shared strategies (tests/unit/strategies.py) --------------------


def _exact_or_wild(m: Masked, full: int) -> bool:
    return m.mask == full or (m.mask == 0 and m.value == 0)


def _exact_bytes(mb: MaskedBytes | None) -> bool:
    return mb is None or mb.mask == b"\xff" * len(mb.value)


def netlink_exact(a: KeyAttr) -> bool:
    """Whether ``a`` is in the exact form a key-only encoding (set, push_nsh) gives back."""
    if isinstance(a, FixedKeyAttr):
        return a.is_exact()
    if isinstance(a, Tunnel):
        fields_ok = all(_exact_or_wild(m, spec.kind.full) for spec, m in a.items() if spec.name != "flags")
        key = bool(a.flags.value & TunnelFlag.KEY)
        return (
            fields_ok
            and a.ttl.mask == 0xFF
            and a.flags.mask == 0xF
            and key == (a.tun_id.mask != 0)
            and _exact_bytes(a.geneve)
            and _exact_bytes(a.erspan)
            and all(mp == b"\xff" * len(kp) for _, kp, mp in a.extra)
        )
    if isinstance(a, Nsh):
        by_name = {spec.name: (spec.kind.full, m) for spec, m in a.items()}
        base = [by_name[n] for n in ("flags", "ttl", "mdtype", "np", "path_hdr")]
        ctx = [by_name[n] for n in ("c1", "c2", "c3", "c4")]

        def all_exact(group: list[tuple[int, Masked]]) -> bool:
            return all(m.mask == full for full, m in group)

        def all_absent(group: list[tuple[int, Masked]]) -> bool:
            return all(m.mask == 0 and m.value == 0 for _, m in group)

        base_ok = all_exact(base) or all_absent(base)
        ctx_ok = all_exact(ctx) if a.has_md1 else all_absent(ctx)
        return base_ok and ctx_ok and _exact_bytes(a.md2)
    if isinstance(a, Mpls):
        return all(m.mask == 0xFFFFFFFF for m in a.lses)
    if isinstance(a, UnknownKeyAttr):
        return a.mask is None
    if isinstance(a, Encap):
        return all(netlink_exact(x) for x in a.attrs)
    return False


def netlink_canonical(acts: Actions) -> bool:
    for a in acts:
        if isinstance(a, Set) and not netlink_exact(a.attr):
            return False
        if isinstance(a, PushNsh) and not netlink_exact(a.nsh):
            return False
        if isinstance(a, Ct) and a.nat is not None and a.nat.ipv6 and a.nat.ip_min is None and a.nat.ip_max is None:
            return False
        for sub in (getattr(a, "actions", None), getattr(a, "if_greater", None), getattr(a, "if_less_equal", None)):
            if isinstance(sub, Actions) and not netlink_canonical(sub):
                return False
    return True


def unique_tunnel_extras(m: Match) -> bool:
    def ok(attrs: tuple[KeyAttr, ...]) -> bool:
        for a in attrs:
            if isinstance(a, Tunnel) and len({t for t, _, _ in a.extra}) != len(a.extra):
                return False
            if isinstance(a, Encap) and not ok(a.attrs):
                return False
        return True

    return ok(m.attrs)


def _sorted_extras(a: KeyAttr) -> KeyAttr:
    """``a`` with unknown tunnel sub-attributes in type order (their order is not always recoverable)."""
    if isinstance(a, Tunnel):
        kw: dict[str, object] = {spec.name: m for spec, m in a.items()}
        return Tunnel(geneve=a.geneve, erspan=a.erspan, extra=tuple(sorted(a.extra)), normalize=False, **kw)
    if isinstance(a, Encap):
        return Encap(*map(_sorted_extras, a.attrs))
    return a


@SETTINGS
@given(shared.matches())
def test_shared_matches_round_trip(m: Match) -> None:
    assume(unique_tunnel_extras(m))
    key_types = {a.TYPE for a in m.attrs}
    m = Match(*m.attrs, mask_only=[a for a in m.mask_only if a.TYPE not in key_types])
    d = _round_trip_match(m)
    assert tuple(map(_sorted_extras, d.attrs)) == tuple(map(_sorted_extras, m.attrs))
    assert d.mask_only == m.mask_only


@SETTINGS
@given(shared.key_attrs())
def test_shared_key_attrs_round_trip(a: KeyAttr) -> None:
    assume(unique_tunnel_extras(Match(a)))
    (d,) = _round_trip_match(Match(a)).attrs
    assert _sorted_extras(d) == _sorted_extras(a)


@SETTINGS
@given(shared.action_lists())
def test_shared_action_lists_round_trip(acts: Actions) -> None:
    data = encode_actions(acts)
    decoded = decode_actions(data)
    assert encode_actions(decoded) == data  # always: the bytes survive
    if netlink_canonical(acts):
        assert decoded == acts


# ---------------------------------------------------------------------------
# Fuzzing: malformed input raises DecodeError and nothing else
# ---------------------------------------------------------------------------


def _only_decode_errors(fn: Callable[[], object]) -> object | None:
    try:
        return fn()
    except DecodeError:
        return None


@FUZZ
@given(st.binary(max_size=200), st.none() | st.binary(max_size=200))
def test_random_bytes_decode_match(key: bytes, mask: bytes | None) -> None:
    m = _only_decode_errors(lambda: decode_match(key, mask))
    if isinstance(m, Match):
        encode_key(m)
        encode_mask(m)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_decode_actions(data: bytes) -> None:
    a = _only_decode_errors(lambda: decode_actions(data))
    if isinstance(a, Actions):
        encode_actions(a)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_parse_messages(data: bytes) -> None:
    _only_decode_errors(lambda: parse_messages(data))


def attr_soup(depth: int = 2) -> st.SearchStrategy[bytes]:
    """Plausible attribute runs: random types and payloads, sometimes nested."""
    leaf = st.tuples(st.integers(0, 40), st.binary(max_size=20)).map(lambda tp: pack_attr(*tp))
    if depth == 0:
        return st.lists(leaf, max_size=5).map(b"".join)
    nested = st.tuples(st.integers(0, 40), attr_soup(depth - 1)).map(lambda tp: pack_attr(*tp))
    return st.lists(st.one_of(leaf, nested), max_size=5).map(b"".join)


@FUZZ
@given(attr_soup(), st.none() | attr_soup())
def test_attribute_soup(key: bytes, mask: bytes | None) -> None:
    _only_decode_errors(lambda: decode_match(key, mask))
    _only_decode_errors(lambda: decode_actions(key))


@st.composite
def mutations(draw: Any, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "length", "flip", "insert", "delete"]))
    if not data:
        return draw(st.binary(max_size=8))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:i]
    if kind == "length":
        # overwrite a 16-bit field at a 2-aligned offset (nla_len / nla_type are 4-aligned)
        i &= ~1
        return data[:i] + struct.pack("=H", draw(st.integers(0, 0xFFFF))) + data[i + 2 :]
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if kind == "insert":
        return data[:i] + draw(st.binary(min_size=1, max_size=4)) + data[i:]
    return data[:i] + data[i + draw(st.integers(1, 4)) :]


@SETTINGS
@given(matches(), st.data())
def test_mutated_matches(m: Match, data: st.DataObject) -> None:
    key, mask = encode_key(m), encode_mask(m)
    bad_key = data.draw(mutations(key))
    bad_mask = data.draw(mutations(mask))
    for k, mk in ((bad_key, mask), (key, bad_mask), (bad_key, None)):
        d = _only_decode_errors(lambda k=k, mk=mk: decode_match(k, mk))  # type: ignore[misc]
        if isinstance(d, Match):
            encode_key(d)
            encode_mask(d)


@FUZZ
@given(action_lists, st.data())
def test_mutated_actions(items: list[Action], data: st.DataObject) -> None:
    enc = encode_actions(items)
    assume(enc)
    bad = data.draw(mutations(enc))
    d = _only_decode_errors(lambda: decode_actions(bad))
    if isinstance(d, Actions):
        encode_actions(d)
