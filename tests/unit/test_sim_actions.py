"""The simulator's action executor (odp.sim.actions), checked byte by byte with scapy."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrRouting
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.sctp import SCTP, SCTPChunkData
from scapy.packet import Packet, Raw

import odp.keys as _keys
import odp.validate.swkey as sk
from odp.actions import (
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
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
)
from odp.constants import HashAlg, TunnelFlag
from odp.errors import InvalidFlow, NotSupported
from odp.keys import Mpls, Tunnel
from odp.sim.actions import NO_CUT, ActionContext, TunnelInfo, execute_actions
from odp.sim.flow import extract

# mypy sees the fixed-size key attribute classes (built with ``@dataclass(**_DC)``
# and ``init=False`` hidden in the splat) as taking Masked values only, so the
# natural-value constructors used below are typed Any here.
CtMark: Any = _keys.CtMark
Ethernet: Any = _keys.Ethernet
InPort: Any = _keys.InPort
Ipv4: Any = _keys.Ipv4
Ipv6: Any = _keys.Ipv6
Priority: Any = _keys.Priority
Sctp: Any = _keys.Sctp
SkbMark: Any = _keys.SkbMark
Tcp: Any = _keys.Tcp
Udp: Any = _keys.Udp

MAC1 = "00:00:00:00:00:01"
MAC2 = "00:00:00:00:00:02"


# ---------------------------------------------------------------------------
# A recording ActionContext
# ---------------------------------------------------------------------------


@dataclass
class Rec:
    """Records every callback; ``rand`` feeds sample(), ``meter_ok`` answers meters."""

    rand: float = 0.5
    meter_ok: bool = True
    events: list[tuple[Any, ...]] = field(default_factory=list)
    randoms: int = 0
    on_recirc: Any = None
    #: The trace hook ActionContext has; None: nothing observes (as a datapath without an observer).
    on_action: Any = None

    def output(self, port_no: int, frame: bytes, tunnel: TunnelInfo | None) -> None:
        self.events.append(("output", port_no, frame, tunnel))

    def upcall_action(self, frame: bytes, key: int, action: Userspace, tunnel: TunnelInfo | None) -> None:
        self.events.append(("userspace", frame, key, action, tunnel))

    def recirculate(self, frame: bytes, key: int, tunnel: TunnelInfo | None, *, cutlen: int = NO_CUT) -> None:
        self.events.append(("recirc", frame, key, tunnel))
        if self.on_recirc is not None:
            self.on_recirc(frame, key, tunnel)

    def meter(self, meter_id: int, frame_len: int) -> bool:
        self.events.append(("meter", meter_id, frame_len))
        return self.meter_ok

    def random(self) -> float:
        self.randoms += 1
        return self.rand

    def ct(self, frame: bytes, key: int, action: Ct) -> tuple[bytes, int] | None:
        raise NotSupported("conntrack (ct) is not supported by the simulator")

    # -- views ---------------------------------------------------------------
    @property
    def outputs(self) -> list[tuple[int, bytes]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "output"]

    def out(self, port: int) -> bytes:
        frames = [f for p, f in self.outputs if p == port]
        assert len(frames) == 1, f"expected one output to port {port}, got {len(frames)}"
        return frames[0]

    @property
    def upcalls(self) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == "userspace"]


def _proto_check(ctx: Rec) -> ActionContext:
    return ctx  # mypy: Rec implements the protocol


def run(pkt: Packet | bytes, *actions: Any, tunnel: TunnelInfo | None = None, ctx: Rec | None = None,
        key: int | None = None, mru: int = 0) -> Rec:  # fmt: skip
    ctx = ctx if ctx is not None else Rec()
    frame = bytes(pkt)
    if key is None:
        ext = extract(frame, sk.put(0, "in_port", 1))
        assert ext is not None
        key = ext.key
    execute_actions(_proto_check(ctx), frame, key, Actions(actions), tunnel=tunnel, mru=mru)
    return ctx


def fresh_checksums(frame: bytes) -> bytes:
    """The frame with every checksum scapy knows recomputed (UDP zero checksums kept)."""
    p = Ether(frame)
    for layer in (IP, TCP, ICMP, SCTP):
        if layer in p:
            del p[layer].chksum
    if UDP in p and p[UDP].chksum:
        del p[UDP].chksum
    if ICMPv6EchoRequest in p:
        del p[ICMPv6EchoRequest].cksum
    return bytes(p)


def assert_checksums_ok(frame: bytes) -> None:
    assert fresh_checksums(frame) == frame


def tcp4(**ip: Any) -> Packet:
    return Ether(src=MAC1, dst=MAC2) / IP(src="10.0.0.1", dst="10.0.0.2", **ip) / TCP(sport=1000, dport=80) / b"data"


def udp4(**udp: Any) -> Packet:
    return Ether(src=MAC1, dst=MAC2) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=53, **udp) / b"q"


def tcp6() -> Packet:
    return Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2) / b"x"


def key_of(ctx: Rec, index: int = 0) -> int:
    key: int = ctx.upcalls[index][2]
    return key


UP = Userspace(pid=1)


# ---------------------------------------------------------------------------
# output, ordering, drop
# ---------------------------------------------------------------------------


def test_output_hands_over_the_frame_unchanged() -> None:
    pkt = tcp4()
    ctx = run(pkt, Output(3), Output(4))
    assert ctx.outputs == [(3, bytes(pkt)), (4, bytes(pkt))]
    assert all(e[3] is None for e in ctx.events)


def test_empty_actions_drop() -> None:
    assert run(tcp4()).events == []


def test_output_before_and_after_a_set_see_different_frames() -> None:
    ctx = run(tcp4(), Output(1), Set(Ethernet(src="00:00:00:00:00:aa", dst=MAC2)), Output(2))
    assert Ether(ctx.out(1)).src == MAC1
    assert Ether(ctx.out(2)).src == "00:00:00:00:00:aa"


def test_drop_stops_the_list() -> None:
    ctx = run(tcp4(), Output(1), Drop(), Output(2))
    assert [p for p, _ in ctx.outputs] == [1]


def test_frame_without_ethernet_is_not_output() -> None:
    ctx = run(tcp4(), PopEth(), Output(1), UP)
    assert ctx.outputs == []
    assert bytes(ctx.upcalls[0][1]) == bytes(tcp4()[IP])


# ---------------------------------------------------------------------------
# set / set_masked
# ---------------------------------------------------------------------------


def test_set_eth_and_key_follows() -> None:
    ctx = run(tcp4(), Set(Ethernet(src="00:00:00:00:00:aa", dst="00:00:00:00:00:bb")), Output(1), UP)
    p = Ether(ctx.out(1))
    assert (p.src, p.dst) == ("00:00:00:00:00:aa", "00:00:00:00:00:bb")
    key = key_of(ctx)
    assert sk.get(key, "eth_src") == 0xAA and sk.get(key, "eth_dst") == 0xBB


def test_set_masked_eth_changes_only_masked_bits() -> None:
    attr = Ethernet(dst=("00:00:00:00:ff:00", "00:00:00:00:ff:00"))
    ctx = run(tcp4(), SetMasked(attr), Output(1))
    p = Ether(ctx.out(1))
    assert p.dst == "00:00:00:00:ff:02" and p.src == MAC1


@pytest.mark.parametrize("field_", ["src", "dst"])
def test_set_ipv4_address_fixes_ip_and_tcp_checksums(field_: str) -> None:
    ctx = run(tcp4(), SetMasked(Ipv4(**{field_: "192.168.7.9"})), Output(1), UP)
    frame = ctx.out(1)
    assert getattr(Ether(frame)[IP], field_) == "192.168.7.9"
    assert_checksums_ok(frame)
    assert sk.get(key_of(ctx), f"ipv4_{field_}") == 0xC0A80709


def test_set_ipv4_whole_attribute_like_the_kernel() -> None:
    ctx = run(tcp4(), Set(Ipv4(src="1.1.1.1", dst="2.2.2.2", proto=6, tos=0x10, ttl=7, frag=0)), Output(1), UP)
    ip = Ether(ctx.out(1))[IP]
    assert (ip.src, ip.dst, ip.tos, ip.ttl, ip.proto) == ("1.1.1.1", "2.2.2.2", 0x10, 7, 6)
    assert_checksums_ok(ctx.out(1))
    key = key_of(ctx)
    assert (sk.get(key, "ip_tos"), sk.get(key, "ip_ttl")) == (0x10, 7)


def test_set_ipv4_udp_checksum_updated_and_zero_checksum_stays_zero() -> None:
    ctx = run(udp4(), SetMasked(Ipv4(dst="172.16.0.1")), Output(1))
    assert Ether(ctx.out(1))[UDP].chksum != 0
    assert_checksums_ok(ctx.out(1))
    ctx = run(udp4(chksum=0), SetMasked(Ipv4(dst="172.16.0.1")), Output(1))
    assert Ether(ctx.out(1))[UDP].chksum == 0
    assert_checksums_ok(ctx.out(1))


def test_set_ipv4_keeps_a_wrong_l4_checksum_exactly_as_wrong() -> None:
    pkt = Ether(bytes(tcp4()))
    good = pkt[TCP].chksum
    pkt[TCP].chksum = (good + 0x0101) % 0xFFFF
    ctx = run(pkt, SetMasked(Ipv4(src="9.9.9.9")), Output(1))
    got = Ether(ctx.out(1))[TCP].chksum
    correct = Ether(fresh_checksums(ctx.out(1)))[TCP].chksum
    assert got != correct
    assert (got - correct) % 0xFFFF == 0x0101  # one's complement arithmetic: the error is carried


def test_set_ipv4_later_fragment_leaves_l4_alone() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IP(src="10.0.0.1", dst="10.0.0.2", frag=10, proto=6) / Raw(b"\x00" * 24)
    ctx = run(pkt, SetMasked(Ipv4(src="9.9.9.9")), Output(1))
    out = ctx.out(1)
    assert out[34:] == bytes(pkt)[34:]
    assert Ether(out)[IP].chksum == Ether(fresh_checksums(out))[IP].chksum


def test_set_masked_ipv4_tos_and_ttl_with_header_checksum() -> None:
    ctx = run(tcp4(tos=0x03, ttl=64), SetMasked(Ipv4(tos=(0xB8, 0xFC), ttl=(17, 0xFF))), Output(1))
    ip = Ether(ctx.out(1))[IP]
    assert (ip.tos, ip.ttl) == (0xBB, 17)  # ECN bits kept
    assert_checksums_ok(ctx.out(1))


def test_set_ipv4_icmp() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / b"ping"
    ctx = run(pkt, SetMasked(Ipv4(src="10.9.9.9")), Output(1))
    assert_checksums_ok(ctx.out(1))


def test_set_ipv6_addresses_fix_l4_checksums() -> None:
    ctx = run(tcp6(), SetMasked(Ipv6(src="2001:db8::99", dst="2001:db8::aa")), Output(1), UP)
    ip = Ether(ctx.out(1))[IPv6]
    assert (ip.src, ip.dst) == ("2001:db8::99", "2001:db8::aa")
    assert_checksums_ok(ctx.out(1))
    assert sk.get(key_of(ctx), "ipv6_src") == 0x20010DB8000000000000000000000099
    icmp = Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(data=b"p")
    ctx = run(icmp, SetMasked(Ipv6(src="2001:db8::5")), Output(1))
    assert_checksums_ok(ctx.out(1))
    udp = Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / b"u"
    ctx = run(udp, SetMasked(Ipv6(dst="2001:db8::5")), Output(1))
    assert_checksums_ok(ctx.out(1))


def test_set_ipv6_dst_with_pending_routing_header_keeps_l4_checksum() -> None:
    pkt = (
        Ether(src=MAC1, dst=MAC2)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrRouting(addresses=["2001:db8::3"], segleft=1)
        / UDP(sport=1, dport=2)
        / b"u"
    )
    before = Ether(bytes(pkt))[UDP].chksum
    ctx = run(pkt, SetMasked(Ipv6(dst="2001:db8::7")), Output(1))
    assert Ether(ctx.out(1))[UDP].chksum == before


def test_set_ipv6_tclass_label_hlimit() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IPv6(src="::1", dst="::2", tc=0x01, fl=0x12345, hlim=9) / TCP()
    ctx = run(pkt, SetMasked(Ipv6(tclass=(0xA0, 0xFC), label=0xABCDE, hlimit=33)), Output(1), UP)
    ip = Ether(ctx.out(1))[IPv6]
    assert (ip.tc, ip.fl, ip.hlim) == (0xA1, 0xABCDE, 33)
    key = key_of(ctx)
    assert (sk.get(key, "ip_tos"), sk.get(key, "ipv6_label"), sk.get(key, "ip_ttl")) == (0xA1, 0xABCDE, 33)


def test_set_ipv6_whole_attribute_never_touches_tclass_nibble_through_label() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IPv6(src="::1", dst="::2", tc=0x2F, fl=1, hlim=9) / TCP()
    full = Ipv6(src="::1", dst="::2", label=0xFFFFF, proto=6, tclass=0x2F, hlimit=9, frag=0)
    ctx = run(pkt, Set(full), Output(1))
    ip = Ether(ctx.out(1))[IPv6]
    assert (ip.tc, ip.fl) == (0x2F, 0xFFFFF)


def test_set_tcp_ports() -> None:
    ctx = run(tcp4(), Set(Tcp(src=5555, dst=443)), Output(1), UP)
    tcp = Ether(ctx.out(1))[TCP]
    assert (tcp.sport, tcp.dport) == (5555, 443)
    assert_checksums_ok(ctx.out(1))
    assert (sk.get(key_of(ctx), "tp_src"), sk.get(key_of(ctx), "tp_dst")) == (5555, 443)


def test_set_masked_tcp_port_bits() -> None:
    ctx = run(tcp4(), SetMasked(Tcp(dst=(0x1F00, 0xFF00))), Output(1))
    assert Ether(ctx.out(1))[TCP].dport == 0x1F00 | 80
    assert_checksums_ok(ctx.out(1))


def test_set_udp_ports_with_and_without_checksum() -> None:
    ctx = run(udp4(), Set(Udp(src=7, dst=8)), Output(1), UP)
    udp = Ether(ctx.out(1))[UDP]
    assert (udp.sport, udp.dport) == (7, 8)
    assert_checksums_ok(ctx.out(1))
    ctx = run(udp4(chksum=0), Set(Udp(src=7, dst=8)), Output(1), UP)
    udp = Ether(ctx.out(1))[UDP]
    assert (udp.sport, udp.dport, udp.chksum) == (7, 8, 0)
    assert (sk.get(key_of(ctx), "tp_src"), sk.get(key_of(ctx), "tp_dst")) == (7, 8)


def test_set_sctp_recomputes_crc32c() -> None:
    pkt = (
        Ether(src=MAC1, dst=MAC2)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / SCTP(sport=1, dport=2)
        / SCTPChunkData(data=b"abcd")
    )
    ctx = run(pkt, Set(Sctp(src=3000, dst=4000)), Output(1), UP)
    s = Ether(ctx.out(1))[SCTP]
    assert (s.sport, s.dport) == (3000, 4000)
    assert_checksums_ok(ctx.out(1))
    assert sk.get(key_of(ctx), "tp_src") == 3000


def test_set_sctp_carries_a_bad_crc_through() -> None:
    pkt = Ether(bytes(Ether(src=MAC1, dst=MAC2) / IP() / SCTP(sport=1, dport=2) / SCTPChunkData(data=b"z")))
    pkt[SCTP].chksum ^= 0xFF
    ctx = run(pkt, Set(Sctp(src=3, dst=4)), Output(1))
    out = ctx.out(1)
    assert out != fresh_checksums(out)
    assert Ether(out)[SCTP].chksum ^ 0xFF == Ether(fresh_checksums(out))[SCTP].chksum


def test_set_priority_and_skb_mark_are_key_metadata() -> None:
    pkt = tcp4()
    ctx = run(pkt, Set(Priority(7)), SetMasked(SkbMark(value=(0xF0, 0xF0))), Output(1), UP)
    assert ctx.out(1) == bytes(pkt)
    key = key_of(ctx)
    assert (sk.get(key, "priority"), sk.get(key, "skb_mark")) == (7, 0xF0)


def test_set_conntrack_field_drops_the_packet() -> None:
    ctx = run(tcp4(), Output(1), SetMasked(CtMark(5)), Output(2))
    assert [p for p, _ in ctx.outputs] == [1]


def test_set_of_an_unwritable_attribute_is_refused() -> None:
    with pytest.raises(InvalidFlow):
        run(tcp4(), Set(InPort(3)), Output(1))


def test_set_on_a_truncated_header_drops_silently() -> None:
    short = bytes(tcp4())[:30]  # IPv4 ethertype, 16 bytes of IP header
    ctx = run(short, Output(1), SetMasked(Ipv4(src="1.2.3.4")), Output(2))
    assert [p for p, _ in ctx.outputs] == [1]
    ctx = run(bytes(tcp4())[:40], SetMasked(Tcp(src=1)), Output(2))
    assert ctx.outputs == []


def test_set_mpls_top_label() -> None:
    pkt = Ether(src=MAC1, dst=MAC2, type=0x8847) / Raw(bytes.fromhex("00001140")) / IP()
    ctx = run(pkt, Set(Mpls(label=77, ttl=9)), Output(1), UP)
    assert ctx.out(1)[14:18] == ((77 << 12) | (1 << 8) | 9).to_bytes(4, "big")
    assert sk.get(key_of(ctx), "mpls_lse0") == (77 << 12) | 0x100 | 9


# ---------------------------------------------------------------------------
# tunnels
# ---------------------------------------------------------------------------


def test_set_tunnel_is_used_by_later_outputs_only() -> None:
    set_tun = Set(Tunnel(tun_id=42, ipv4_dst="192.168.0.2", ttl=64, flags=(int(TunnelFlag.DF), 0xF)))
    pkt = tcp4()
    ctx = run(pkt, Output(1), set_tun, Output(2), UP)
    tuns = [e[3] for e in ctx.events if e[0] == "output"]
    assert tuns[0] is None
    t = tuns[1]
    assert t is not None and t.egress
    assert (t.tun_id, t.ipv4_dst, t.ttl) == (42, 0xC0A80002, 64)
    assert t.flags & TunnelFlag.DF and t.flags & TunnelFlag.KEY
    assert ctx.out(2) == bytes(pkt)
    assert ctx.upcalls[0][4] == t
    assert not sk.get(key_of(ctx), "tun_proto")  # the key is not changed by set(tunnel)


def test_ingress_tunnel_metadata_is_not_egress_metadata() -> None:
    ingress = TunnelInfo(tun_id=7, ipv4_src=1, ipv4_dst=2, ttl=64, flags=int(TunnelFlag.KEY))
    ctx = run(tcp4(), Output(1), Recirc(5), tunnel=ingress)
    assert ctx.events[0][3] is None
    assert ctx.events[1][3] == ingress


# ---------------------------------------------------------------------------
# VLAN
# ---------------------------------------------------------------------------


def test_push_vlan_inserts_tag_after_macs_without_cfi() -> None:
    pkt = tcp4()
    ctx = run(pkt, PushVlan.of(vid=100, pcp=5), Output(1), UP)
    out = Ether(ctx.out(1))
    assert out.type == 0x8100 and out[Dot1Q].vlan == 100 and out[Dot1Q].prio == 5 and out[Dot1Q].dei == 0
    assert out[Dot1Q].type == 0x0800
    assert bytes(out[IP]) == bytes(pkt[IP])
    key = key_of(ctx)
    assert sk.get(key, "vlan_tci") == (5 << 13) | 0x1000 | 100
    assert sk.get(key, "vlan_tpid") == 0x8100


def test_push_vlan_8021ad() -> None:
    ctx = run(tcp4(), PushVlan(tci=0x1000 | 3, tpid=0x88A8), Output(1))
    assert ctx.out(1)[12:16] == bytes.fromhex("88a80003")


def test_push_pop_vlan_round_trip() -> None:
    pkt = tcp4()
    ctx = run(pkt, PushVlan.of(vid=10), Output(1), PopVlan(), Output(2), UP)
    assert len(ctx.out(1)) == len(bytes(pkt)) + 4
    assert ctx.out(2) == bytes(pkt)
    key = key_of(ctx)
    assert sk.get(key, "vlan_tci") == 0 and sk.get(key, "vlan_tpid") == 0


def test_push_vlan_on_tagged_frame_makes_a_double_tag_and_invalidates_the_key() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=5) / IP() / UDP()
    ctx = run(pkt, PushVlan(tci=0x1000 | 7, tpid=0x88A8), Output(1), UP, Recirc(1))
    out = ctx.out(1)
    assert out[12:20] == bytes.fromhex("88a8000781000005")
    # The kernel leaves the stale key (still vlan 5) for the upcall ...
    assert sk.get(key_of(ctx), "vlan_tci") == 0x1005
    # ... and re-extracts it before recirculating.
    recirc_key = next(e[2] for e in ctx.events if e[0] == "recirc")
    assert sk.get(recirc_key, "vlan_tci") == 0x1007 and sk.get(recirc_key, "cvlan_tci") == 0x1005


def test_pop_vlan_of_double_tagged_frame_leaves_inner_tag() -> None:
    pkt = Ether(src=MAC1, dst=MAC2, type=0x88A8) / Dot1Q(vlan=1, type=0x8100) / Dot1Q(vlan=2) / IP()
    ctx = run(pkt, PopVlan(), Output(1), Recirc(3))
    out = ctx.out(1)
    assert out[12:18] == bytes.fromhex("810000020800")
    recirc_key = ctx.events[-1][2]
    assert sk.get(recirc_key, "vlan_tci") == 0x1002 and sk.get(recirc_key, "cvlan_tci") == 0


def test_pop_vlan_on_untagged_frame_does_nothing() -> None:
    pkt = tcp4()
    assert run(pkt, PopVlan(), Output(1)).out(1) == bytes(pkt)


# ---------------------------------------------------------------------------
# MPLS and Ethernet push/pop
# ---------------------------------------------------------------------------


def test_push_and_pop_mpls() -> None:
    pkt = tcp4()
    lse = (100 << 12) | (1 << 8) | 64
    ctx = run(pkt, PushMpls(lse=lse), Output(1), Recirc(9), PopMpls(ethertype=0x0800), Output(2), Recirc(10))
    out = ctx.out(1)
    assert out[12:14] == b"\x88\x47" and out[14:18] == lse.to_bytes(4, "big") and out[18:] == bytes(pkt)[14:]
    k1 = [e[2] for e in ctx.events if e[0] == "recirc"]
    assert sk.get(k1[0], "eth_type") == 0x8847 and sk.get(k1[0], "mpls_lse0") == lse
    assert sk.get(k1[0], "recirc_id") == 9 and sk.get(k1[0], "in_port") == 1
    assert ctx.out(2) == bytes(pkt)
    assert sk.get(k1[1], "eth_type") == 0x0800 and sk.get(k1[1], "tp_dst") == 80


def test_push_mpls_keeps_a_stale_key_for_userspace() -> None:
    ctx = run(tcp4(), PushMpls(lse=0x1140), UP)
    assert sk.get(key_of(ctx), "eth_type") == 0x0800


def test_push_mpls_with_non_mpls_ethertype_is_an_error() -> None:
    ctx = run(tcp4(), PushMpls(lse=0x1140, ethertype=0x0800), Output(1))
    assert ctx.outputs == []


def test_add_mpls_l3_tunnel_flag_is_push_mpls() -> None:
    lse = 0x00064140
    a = run(tcp4(), AddMpls(lse=lse, tun_flags=1), Output(1)).out(1)
    b = run(tcp4(), PushMpls(lse=lse), Output(1)).out(1)
    assert a == b


def test_add_mpls_without_flag_puts_the_label_before_the_ethernet_header() -> None:
    pkt = tcp4()
    ctx = run(pkt, AddMpls(lse=0x1140), Output(1), UP)
    assert ctx.outputs == []  # no Ethernet header any more
    assert ctx.upcalls[0][1] == (0x1140).to_bytes(4, "big") + bytes(pkt)


def test_pop_eth_then_push_eth() -> None:
    pkt = tcp4()
    ctx = run(pkt, PopEth(), UP, PushEth(src=0xA, dst=0xB), Output(1), Recirc(2))
    assert ctx.upcalls[0][1] == bytes(pkt[IP])
    out = Ether(ctx.out(1))
    assert (out.src, out.dst, out.type) == ("00:00:00:00:00:0a", "00:00:00:00:00:0b", 0x0800)
    assert bytes(out[IP]) == bytes(pkt[IP])
    recirc_key = ctx.events[-1][2]
    assert sk.get(recirc_key, "eth_src") == 0xA and sk.get(recirc_key, "mac_proto") == 0


def test_recirc_of_l3_packet_extracts_without_ethernet() -> None:
    ctx = run(tcp4(), PopEth(), Recirc(4))
    key = ctx.events[-1][2]
    assert sk.get(key, "mac_proto") == 1
    assert sk.get(key, "eth_src") == 0 and sk.get(key, "eth_type") == 0x0800
    assert sk.get(key, "ipv4_dst") == 0x0A000002 and sk.get(key, "tp_dst") == 80


def test_pop_eth_of_tagged_frame_and_push_eth_on_ethernet_frame_fail() -> None:
    tagged = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=3) / IP()
    assert run(tagged, PopEth(), UP).events == []
    assert run(tcp4(), PushEth(src=1, dst=2), Output(1)).events == []


# ---------------------------------------------------------------------------
# trunc
# ---------------------------------------------------------------------------


def test_trunc_applies_to_the_next_output_only() -> None:
    pkt = tcp4()
    ctx = run(pkt, Trunc(20), Output(1), Output(2))
    assert ctx.out(1) == bytes(pkt)[:20]
    assert ctx.out(2) == bytes(pkt)


def test_trunc_applies_to_userspace_and_is_reset_by_it() -> None:
    pkt = tcp4()
    ctx = run(pkt, Trunc(30), UP, Output(1))
    assert ctx.upcalls[0][1] == bytes(pkt)[:30]
    assert ctx.out(1) == bytes(pkt)


def test_trunc_longer_than_frame_does_nothing() -> None:
    pkt = tcp4()
    assert run(pkt, Trunc(1500), Output(1)).out(1) == bytes(pkt)


def test_trunc_does_not_count_the_vlan_tag() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=3) / IP() / (b"x" * 40)
    assert len(run(pkt, Trunc(20), Output(1)).out(1)) == 24


def test_trunc_length_is_absolute_when_the_frame_grows() -> None:
    # OVS_CB(skb)->cutlen holds trunc's max_len; do_output() trims to it whatever came in between
    # (the kernel oracle caught the simulator keeping a relative cut).
    pkt = tcp4()
    n = len(bytes(pkt))
    ctx = run(pkt, Trunc(n - 10), PushMpls(lse=0x1140), Output(1))
    assert len(ctx.out(1)) == n - 10


def test_the_last_trunc_wins() -> None:
    pkt = tcp4()
    assert run(pkt, Trunc(20), Trunc(1000), Output(1)).out(1) == bytes(pkt)


def test_trunc_is_inherited_by_clones_and_reset_by_psample() -> None:
    pkt = tcp4()
    ctx = run(pkt, Trunc(20), Clone(Actions.of(Output(1))), Output(2))
    assert len(ctx.out(1)) == 20 and len(ctx.out(2)) == 20
    ctx = run(pkt, Trunc(20), Psample(group=1), Output(3))
    assert ctx.out(3) == bytes(pkt)


# ---------------------------------------------------------------------------
# sample, clone
# ---------------------------------------------------------------------------


def test_sample_never_with_probability_zero() -> None:
    ctx = run(tcp4(), Sample(0, Actions.of(Output(1))), Output(2), ctx=Rec(rand=0.0))
    assert [p for p, _ in ctx.outputs] == [2]
    assert ctx.randoms == 0


def test_sample_always() -> None:
    ctx = run(tcp4(), Sample(Sample.ALWAYS, Actions.of(Output(1))), Output(2), ctx=Rec(rand=0.9999))
    assert [p for p, _ in ctx.outputs] == [1, 2]
    assert ctx.randoms == 0


def test_sample_uses_random() -> None:
    half = 0x7FFFFFFF
    assert [p for p, _ in run(tcp4(), Sample(half, Actions.of(Output(1))), ctx=Rec(rand=0.25)).outputs] == [1]
    assert run(tcp4(), Sample(half, Actions.of(Output(1))), ctx=Rec(rand=0.75)).outputs == []


def test_sample_actions_run_on_a_copy() -> None:
    pkt = tcp4()
    inner = Actions.of(Set(Ethernet(src="00:00:00:00:00:aa", dst=MAC2)), PushVlan.of(5), Output(1))
    ctx = run(pkt, Sample(Sample.ALWAYS, inner), Output(2), UP)
    assert Ether(ctx.out(1))[Dot1Q].vlan == 5
    assert ctx.out(2) == bytes(pkt)
    assert sk.get(key_of(ctx), "eth_src") == 1 and sk.get(key_of(ctx), "vlan_tci") == 0


def test_clone_isolation() -> None:
    pkt = tcp4()
    inner = Actions.of(SetMasked(Ipv4(dst="1.1.1.1")), Set(Tunnel(tun_id=1, ipv4_dst="5.5.5.5", ttl=9)), Output(1))
    ctx = run(pkt, Clone(inner), Output(2), UP)
    assert Ether(ctx.out(1))[IP].dst == "1.1.1.1"
    assert ctx.events[0][3] is not None
    assert ctx.out(2) == bytes(pkt) and ctx.events[1][3] is None
    assert sk.get(key_of(ctx), "ipv4_dst") == 0x0A000002


def test_drop_inside_clone_does_not_stop_the_parent() -> None:
    ctx = run(tcp4(), Clone(Actions.of(Drop())), Output(1))
    assert [p for p, _ in ctx.outputs] == [1]


def test_error_inside_clone_stops_the_parent_too() -> None:
    ctx = run(tcp4(), Clone(Actions.of(PushEth(src=1, dst=2), Output(1))), Output(2))
    assert ctx.outputs == []


def test_deep_clones_that_change_the_packet_are_deferred() -> None:
    # Levels 1..3 get flow key copies; the fourth nested clone is run after the top-level list.
    deepest = Actions.of(Set(Priority(1)), Output(4))
    a3 = Actions.of(Clone(deepest), Output(3), Output(33))
    a2 = Actions.of(Clone(a3), Output(2), Output(22))
    a1 = Actions.of(Clone(a2), Output(1), Output(11))
    ctx = run(tcp4(), Clone(a1), Output(0))
    assert [p for p, _ in ctx.outputs] == [3, 33, 2, 22, 1, 11, 0, 4]


def test_deep_clone_without_changes_is_not_deferred() -> None:
    deepest = Actions.of(Output(4))
    a3 = Actions.of(Clone(deepest), Output(3), Output(33))
    a2 = Actions.of(Clone(a3), Output(2), Output(22))
    a1 = Actions.of(Clone(a2), Output(1), Output(11))
    ctx = run(tcp4(), Clone(a1), Output(0))
    assert [p for p, _ in ctx.outputs] == [4, 3, 33, 2, 22, 1, 11, 0]


# ---------------------------------------------------------------------------
# check_pkt_len
# ---------------------------------------------------------------------------


def test_check_pkt_len_both_branches() -> None:
    pkt = tcp4()
    n = len(bytes(pkt))
    gt, le = Actions.of(Output(1)), Actions.of(Output(2))
    assert [p for p, _ in run(pkt, CheckPktLen(n - 1, gt, le)).outputs] == [1]
    assert [p for p, _ in run(pkt, CheckPktLen(n, gt, le)).outputs] == [2]
    assert [p for p, _ in run(pkt, CheckPktLen(n + 1, gt, le), Output(3)).outputs] == [2, 3]


def test_check_pkt_len_ignores_the_vlan_tag_and_uses_mru() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=3) / IP() / (b"x" * 40)
    n = len(bytes(pkt))
    gt, le = Actions.of(Output(1)), Actions.of(Output(2))
    assert [p for p, _ in run(pkt, CheckPktLen(n - 4, gt, le)).outputs] == [2]
    # With an MRU the length is mru + mac_len (14: the outer tag is out of band).
    assert [p for p, _ in run(pkt, CheckPktLen(1514, gt, le), mru=1500).outputs] == [2]
    assert [p for p, _ in run(pkt, CheckPktLen(1513, gt, le), mru=1500).outputs] == [1]


def test_check_pkt_len_branch_is_isolated() -> None:
    pkt = tcp4()
    ctx = run(pkt, CheckPktLen(10, Actions.of(PushVlan.of(9), Output(1))), Output(2))
    assert len(ctx.out(1)) == len(bytes(pkt)) + 4 and ctx.out(2) == bytes(pkt)


# ---------------------------------------------------------------------------
# dec_ttl
# ---------------------------------------------------------------------------


def test_dec_ttl_decrements_with_checksum() -> None:
    ctx = run(tcp4(ttl=10), DecTtl(Actions.of(Output(9))), Output(1), UP)
    assert Ether(ctx.out(1))[IP].ttl == 9
    assert_checksums_ok(ctx.out(1))
    assert sk.get(key_of(ctx), "ip_ttl") == 9
    assert [p for p, _ in ctx.outputs] == [1]


def test_dec_ttl_expiring_runs_le_1_and_ends_the_list() -> None:
    pkt = tcp4(ttl=1)
    ctx = run(pkt, DecTtl(Actions.of(UP, Output(9))), Output(1))
    assert [p for p, _ in ctx.outputs] == [9]
    assert ctx.out(9) == bytes(pkt)
    assert len(ctx.upcalls) == 1
    ctx = run(tcp4(ttl=0), DecTtl(), Output(1))
    assert ctx.events == []


def test_dec_ttl_ipv6_and_non_ip() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IPv6(src="::1", dst="::2", hlim=2) / UDP()
    ctx = run(pkt, DecTtl(Actions.of(Output(9))), Output(1))
    assert Ether(ctx.out(1))[IPv6].hlim == 1
    ctx = run(ctx.out(1), DecTtl(Actions.of(Output(9))), Output(1))
    assert [p for p, _ in ctx.outputs] == [9]
    arp = Ether(src=MAC1, dst=MAC2, type=0x0806) / Raw(b"\x00" * 28)
    assert run(arp, DecTtl(Actions.of(Output(9))), Output(1)).out(1) == bytes(arp)


# ---------------------------------------------------------------------------
# recirc, hash, meter, ct
# ---------------------------------------------------------------------------


def test_recirc_key_and_original_key_unchanged() -> None:
    pkt = tcp4()
    ctx = run(pkt, SetMasked(Ipv4(dst="10.9.9.9")), Recirc(0x77), UP)
    ev = ctx.events[0]
    assert ev[0] == "recirc"
    assert Ether(ev[1])[IP].dst == "10.9.9.9"
    assert sk.get(ev[2], "recirc_id") == 0x77 and sk.get(ev[2], "ipv4_dst") == 0x0A090909
    assert sk.get(key_of(ctx), "recirc_id") == 0


def test_recirculation_loop_is_bounded_by_the_deferred_fifo() -> None:
    depth: list[int] = []
    ctx = Rec()

    def again(frame: bytes, key: int, tunnel: TunnelInfo | None) -> None:
        depth.append(1)
        execute_actions(ctx, frame, key, Actions.of(Recirc(1)), tunnel=tunnel)

    ctx.on_recirc = again
    run(tcp4(), Recirc(1), ctx=ctx)
    # Levels 1-3 recirculate at once (nesting to level 4); level 4 is out of flow
    # key copies, so its recirc is deferred until level 1 finishes, which then
    # recirculates three levels deep again ... until 9 deferrals filled the FIFO.
    assert len(depth) == 3 + 9 * 3


def test_execution_started_from_an_output_is_a_fresh_top_level() -> None:
    seen: list[int] = []

    class Chain(Rec):
        def output(self, port_no: int, frame: bytes, tunnel: TunnelInfo | None) -> None:
            seen.append(port_no)
            if port_no < 10:
                # The frame reaches another simulated datapath, whose flow recirculates.
                ext = extract(frame)
                assert ext is not None
                execute_actions(self, frame, ext.key, Actions.of(Recirc(port_no + 1)))

        def recirculate(self, frame: bytes, key: int, tunnel: TunnelInfo | None, *, cutlen: int = NO_CUT) -> None:
            execute_actions(self, frame, key, Actions.of(Output(sk.get(key, "recirc_id"))), cutlen=cutlen)

    run(tcp4(), Output(1), ctx=Chain())
    assert seen == list(range(1, 11))


def test_hash_sets_dp_hash() -> None:
    ctx = run(tcp4(), Hash(basis=0), UP, Hash(basis=1), UP)
    h0, h1 = sk.get(key_of(ctx, 0), "dp_hash"), sk.get(key_of(ctx, 1), "dp_hash")
    assert h0 and h1 and h0 != h1
    again = run(tcp4(), Hash(basis=0), UP)
    assert sk.get(key_of(again), "dp_hash") == h0
    other = run(udp4(), Hash(basis=0), UP)
    assert sk.get(key_of(other), "dp_hash") != h0


def test_symmetric_hash() -> None:
    fwd = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1, dport=2)
    rev = Ether() / IP(src="2.2.2.2", dst="1.1.1.1") / TCP(sport=2, dport=1)
    a = run(fwd, Hash(alg=HashAlg.SYM_L4), UP)
    b = run(rev, Hash(alg=HashAlg.SYM_L4), UP)
    assert sk.get(key_of(a), "dp_hash") == sk.get(key_of(b), "dp_hash")
    c = run(fwd, Hash(alg=HashAlg.L4), UP)
    d = run(rev, Hash(alg=HashAlg.L4), UP)
    assert sk.get(key_of(c), "dp_hash") != sk.get(key_of(d), "dp_hash")


def test_meter() -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=3) / IP() / (b"x" * 40)
    ctx = run(pkt, Meter(4), Output(1))
    assert ctx.events[0] == ("meter", 4, len(bytes(pkt)) - 4)
    assert [p for p, _ in ctx.outputs] == [1]
    ctx = run(pkt, Output(2), Meter(4), Output(1), ctx=Rec(meter_ok=False))
    assert [p for p, _ in ctx.outputs] == [2]


def test_ct_clear_zeroes_conntrack_fields() -> None:
    frame = bytes(tcp4())
    ext = extract(frame)
    assert ext is not None
    key = sk.put(sk.put(sk.put(ext.key, "ct_state", 0x22), "ct_mark", 5), "ct_zone", 3)
    ctx = run(frame, CtClear(), UP, key=key)
    k = key_of(ctx)
    assert (sk.get(k, "ct_state"), sk.get(k, "ct_mark"), sk.get(k, "ct_zone")) == (0, 0, 0)


def test_ct_is_the_contexts_business() -> None:
    with pytest.raises(NotSupported):
        run(tcp4(), Ct(commit=True), Output(1))


def test_ct_result_replaces_frame_and_key() -> None:
    class CtCtx(Rec):
        def ct(self, frame: bytes, key: int, action: Ct) -> tuple[bytes, int] | None:
            return frame, sk.put(key, "ct_state", 0x21)

    ctx = run(tcp4(), Ct(), UP, ctx=CtCtx())
    assert sk.get(key_of(ctx), "ct_state") == 0x21


@pytest.mark.parametrize("action", [PopNsh(), UnknownAction(type=99, payload=b"")])
def test_unsupported_actions_raise(action: Any) -> None:
    with pytest.raises(NotSupported):
        run(tcp4(), action)


def test_psample_is_accepted() -> None:
    ctx = run(tcp4(), Psample(group=3, cookie=b"ab"), Output(1))
    assert [p for p, _ in ctx.outputs] == [1]


def test_userspace_reports_action_and_current_key() -> None:
    action = Userspace(pid=77, userdata=b"\x01\x02")
    ctx = run(tcp4(), action)
    assert ctx.upcalls[0][3] is action
    assert sk.get(key_of(ctx), "in_port") == 1


# ---------------------------------------------------------------------------
# Properties: the key the executor keeps equals a fresh extraction of the frame
# it outputs, and every checksum stays valid.
# ---------------------------------------------------------------------------

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u128 = st.integers(0, (1 << 128) - 1)


def _l4(proto: str, sport: int, dport: int, zero_udp_csum: bool, payload: bytes = b"p") -> Packet:
    if proto == "tcp":
        return TCP(sport=sport, dport=dport) / payload
    if proto == "udp":
        udp = UDP(sport=sport, dport=dport, chksum=0) if zero_udp_csum else UDP(sport=sport, dport=dport)
        return udp / payload
    return SCTP(sport=sport, dport=dport) / SCTPChunkData(data=payload)


def _assert_key_in_sync(ctx: Rec, out: bytes) -> None:
    ext = extract(out, sk.put(0, "in_port", 1))
    assert ext is not None
    assert key_of(ctx) == ext.key
    assert_checksums_ok(out)


@PROPS
@given(
    proto=st.sampled_from(["tcp", "udp", "sctp"]),
    zero_udp_csum=st.booleans(),
    ports=st.tuples(u16, u16),
    payload=st.binary(max_size=20),
    ip=st.tuples(u32, u32, u8, u8),
    masks=st.tuples(u32, u32, u8, u8),
    new_ports=st.tuples(u16, u16),
    port_masks=st.tuples(u16, u16),
    vlan=st.none() | st.integers(0, 4095),
)
def test_property_ipv4_sets_keep_key_and_checksums(
    proto: str,
    zero_udp_csum: bool,
    ports: tuple[int, int],
    payload: bytes,
    ip: tuple[int, int, int, int],
    masks: tuple[int, int, int, int],
    new_ports: tuple[int, int],
    port_masks: tuple[int, int],
    vlan: int | None,
) -> None:
    l2 = Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=vlan) if vlan is not None else Ether(src=MAC1, dst=MAC2)
    pkt = l2 / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / _l4(proto, *ports, zero_udp_csum, payload)
    attr = Ipv4(src=(ip[0], masks[0]), dst=(ip[1], masks[1]), tos=(ip[2], masks[2]), ttl=(ip[3], masks[3])).masked()
    l4_cls = {"tcp": Tcp, "udp": Udp, "sctp": Sctp}[proto]
    l4_attr = l4_cls(src=(new_ports[0], port_masks[0]), dst=(new_ports[1], port_masks[1])).masked()
    ctx = run(pkt, SetMasked(attr), SetMasked(l4_attr), Output(1), UP)
    out = ctx.out(1)
    _assert_key_in_sync(ctx, out)
    got = Ether(out)[IP]
    assert int(ipaddress.IPv4Address(got.src)) == (0x0A000001 & ~masks[0]) | (ip[0] & masks[0])
    assert got.ttl == (64 & ~masks[3]) | (ip[3] & masks[3])
    if proto == "udp" and zero_udp_csum:
        assert Ether(out)[UDP].chksum == 0


@PROPS
@given(
    proto=st.sampled_from(["tcp", "udp"]),
    addrs=st.tuples(u128, u128),
    masks=st.tuples(u128, u128),
    tclass=st.tuples(u8, u8),
    label=st.tuples(st.integers(0, 0xFFFFF), st.integers(0, 0xFFFFF)),
    hlimit=st.tuples(u8, u8),
)
def test_property_ipv6_sets_keep_key_and_checksums(
    proto: str,
    addrs: tuple[int, int],
    masks: tuple[int, int],
    tclass: tuple[int, int],
    label: tuple[int, int],
    hlimit: tuple[int, int],
) -> None:
    pkt = Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / _l4(proto, 1, 2, False)
    attr = Ipv6(
        src=(addrs[0], masks[0]),
        dst=(addrs[1], masks[1]),
        tclass=tclass,
        label=label,
        hlimit=hlimit,
    ).masked()
    ctx = run(pkt, SetMasked(attr), Output(1), UP)
    _assert_key_in_sync(ctx, ctx.out(1))


@PROPS
@given(vid=st.integers(0, 4095), pcp=st.integers(0, 7), tpid=st.sampled_from([0x8100, 0x88A8]), ttl=u8)
def test_property_vlan_round_trip_and_dec_ttl(vid: int, pcp: int, tpid: int, ttl: int) -> None:
    pkt = tcp4(ttl=ttl)
    ctx = run(pkt, PushVlan.of(vid, pcp, tpid), DecTtl(Actions.of(Output(9))), Output(1), PopVlan(), Output(2), UP)
    if ttl <= 1:
        assert [p for p, _ in ctx.outputs] == [9]
        return
    tagged = ctx.out(1)
    assert tagged[12:16] == bytes((tpid >> 8, tpid & 0xFF, pcp << 5 | vid >> 8, vid & 0xFF))
    _assert_key_in_sync(ctx, ctx.out(2))
    assert Ether(ctx.out(2))[IP].ttl == ttl - 1
