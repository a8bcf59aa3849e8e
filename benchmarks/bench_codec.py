"""Encode/decode speed of a typical flow: odp's struct codec vs pyroute2's nla machinery.

Run on demand::

    python benchmarks/bench_codec.py [--seconds 0.5] [--repeat 5]

The flow: key+mask in_port, eth, eth_type, ipv4, tcp, tcp_flags; actions
set(tunnel(tun_id, ipv4 dst, ttl, flags(key))), output.

odp: ``encode_key`` + ``encode_mask`` + ``encode_actions`` from the model, and
``decode_match`` + ``decode_actions`` back to the model.

pyroute2: minimal ``nla`` classes declared with ``nla_map`` and ``fields`` for
the same attributes (as the kernel's ovs-dpctl.py does), encoding from the
values already extracted into pyroute2's attribute lists, and decoding into
plain values with ``dump()`` (pyroute2 decodes lazily; no conversion to odp's
model: that would only add to pyroute2's time).  Both sides produce/consume the same bytes (checked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyroute2.netlink import nla

from odp.actions import Actions, Output, set_tunnel
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match, Tcp, TcpFlags
from odp.netlink.codec import (
    clear_decode_caches,
    decode_actions,
    decode_match,
    encode_actions,
    encode_key,
    encode_mask,
)
from odp.netlink.messages import build_request, decode_flow, flow_attrs, parse_messages, walk_flow_dump
from odp.records import Flow

# ---------------------------------------------------------------------------
# pyroute2 declarations
# ---------------------------------------------------------------------------


class ovs_tunnel_key(nla):  # noqa: N801 - pyroute2 naming style
    nla_map = (
        ("OVS_TUNNEL_KEY_ATTR_ID", "be64"),
        ("OVS_TUNNEL_KEY_ATTR_IPV4_SRC", "be32"),
        ("OVS_TUNNEL_KEY_ATTR_IPV4_DST", "be32"),
        ("OVS_TUNNEL_KEY_ATTR_TOS", "uint8"),
        ("OVS_TUNNEL_KEY_ATTR_TTL", "uint8"),
        ("OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT", "flag"),
        ("OVS_TUNNEL_KEY_ATTR_CSUM", "flag"),
        ("OVS_TUNNEL_KEY_ATTR_OAM", "flag"),
        ("OVS_TUNNEL_KEY_ATTR_GENEVE_OPTS", "hex"),
        ("OVS_TUNNEL_KEY_ATTR_TP_SRC", "be16"),
        ("OVS_TUNNEL_KEY_ATTR_TP_DST", "be16"),
    )


class ovs_key(nla):  # noqa: N801
    nla_map = (
        ("OVS_KEY_ATTR_UNSPEC", "none"),
        ("OVS_KEY_ATTR_ENCAP", "none"),
        ("OVS_KEY_ATTR_PRIORITY", "uint32"),
        ("OVS_KEY_ATTR_IN_PORT", "uint32"),
        ("OVS_KEY_ATTR_ETHERNET", "ethaddr"),
        ("OVS_KEY_ATTR_VLAN", "be16"),
        ("OVS_KEY_ATTR_ETHERTYPE", "be16"),
        ("OVS_KEY_ATTR_IPV4", "ovs_key_ipv4"),
        ("OVS_KEY_ATTR_IPV6", "hex"),
        ("OVS_KEY_ATTR_TCP", "ovs_key_ports"),
        ("OVS_KEY_ATTR_UDP", "ovs_key_ports"),
        ("OVS_KEY_ATTR_ICMP", "hex"),
        ("OVS_KEY_ATTR_ICMPV6", "hex"),
        ("OVS_KEY_ATTR_ARP", "hex"),
        ("OVS_KEY_ATTR_ND", "hex"),
        ("OVS_KEY_ATTR_SKB_MARK", "uint32"),
        ("OVS_KEY_ATTR_TUNNEL", "ovs_tunnel_key"),
        ("OVS_KEY_ATTR_SCTP", "ovs_key_ports"),
        ("OVS_KEY_ATTR_TCP_FLAGS", "be16"),
    )

    class ethaddr(nla):  # noqa: N801
        fields = (("src", "!6s"), ("dst", "!6s"))

    class ovs_key_ipv4(nla):  # noqa: N801
        fields = (
            ("src", "!I"),
            ("dst", "!I"),
            ("proto", "B"),
            ("tos", "B"),
            ("ttl", "B"),
            ("frag", "B"),
        )

    class ovs_key_ports(nla):  # noqa: N801
        fields = (("src", "!H"), ("dst", "!H"))

    ovs_tunnel_key = ovs_tunnel_key


class ovs_actions(nla):  # noqa: N801
    nla_map = (
        ("OVS_ACTION_ATTR_UNSPEC", "none"),
        ("OVS_ACTION_ATTR_OUTPUT", "uint32"),
        ("OVS_ACTION_ATTR_USERSPACE", "hex"),
        ("OVS_ACTION_ATTR_SET", "ovs_key"),
    )

    ovs_key = ovs_key


def _pr_key_attrs(values: bool) -> list[list[Any]]:
    if values:
        return [
            ["OVS_KEY_ATTR_IN_PORT", 1],
            ["OVS_KEY_ATTR_ETHERNET", {"src": bytes.fromhex("001122334455"), "dst": bytes.fromhex("66778899aabb")}],
            ["OVS_KEY_ATTR_ETHERTYPE", 0x0800],
            ["OVS_KEY_ATTR_IPV4", {"src": 0x0A000001, "dst": 0x0A000002, "proto": 6, "tos": 0, "ttl": 64, "frag": 0}],
            ["OVS_KEY_ATTR_TCP", {"src": 0, "dst": 80}],
            ["OVS_KEY_ATTR_TCP_FLAGS", 0x002],
        ]
    return [
        ["OVS_KEY_ATTR_IN_PORT", 0xFFFFFFFF],
        ["OVS_KEY_ATTR_ETHERNET", {"src": b"\xff" * 6, "dst": b"\xff" * 6}],
        ["OVS_KEY_ATTR_ETHERTYPE", 0xFFFF],
        [
            "OVS_KEY_ATTR_IPV4",
            {"src": 0xFFFFFF00, "dst": 0xFFFFFFFF, "proto": 0xFF, "tos": 0, "ttl": 0, "frag": 0xFF},
        ],
        ["OVS_KEY_ATTR_TCP", {"src": 0, "dst": 0xFFFF}],
        ["OVS_KEY_ATTR_TCP_FLAGS", 0x0FFF],
    ]


def _pr_action_attrs() -> list[list[Any]]:
    tunnel = {
        "attrs": [
            ["OVS_TUNNEL_KEY_ATTR_ID", 5],
            ["OVS_TUNNEL_KEY_ATTR_IPV4_DST", 0x0A000102],
            ["OVS_TUNNEL_KEY_ATTR_TTL", 64],
        ]
    }
    return [
        ["OVS_ACTION_ATTR_SET", {"attrs": [["OVS_KEY_ATTR_TUNNEL", tunnel]]}],
        ["OVS_ACTION_ATTR_OUTPUT", 2],
    ]


def _pr_encode(cls: type[nla], attrs: list[list[Any]]) -> bytes:
    msg = cls()
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data[4 : msg["header"]["length"]])  # contents, without the outer header


def pr_encode() -> tuple[bytes, bytes, bytes]:
    return (
        _pr_encode(ovs_key, _pr_key_attrs(True)),
        _pr_encode(ovs_key, _pr_key_attrs(False)),
        _pr_encode(ovs_actions, _pr_action_attrs()),
    )


def _pr_wrap(payload: bytes) -> bytes:
    return (len(payload) + 4).to_bytes(2, sys.byteorder) + b"\x01\x00" + payload


def pr_decode(key: bytes, mask: bytes, acts: bytes) -> tuple[Any, Any, Any]:
    """Decode and extract every value (pyroute2 decodes attributes lazily, on access)."""
    k = ovs_key(_pr_wrap(key))
    k.decode()
    m = ovs_key(_pr_wrap(mask))
    m.decode()
    a = ovs_actions(_pr_wrap(acts))
    a.decode()
    return k.dump(), m.dump(), a.dump()


# ---------------------------------------------------------------------------
# odp
# ---------------------------------------------------------------------------

MATCH = Match(
    InPort(1),
    Ethernet(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb"),
    EthType(0x0800),
    Ipv4(src=("10.0.0.1", "255.255.255.0"), dst="10.0.0.2", proto=6, tos=(0, 0), ttl=(64, 0), frag=0),
    Tcp(src=(0, 0), dst=80),
    TcpFlags(value=(0x002, 0x0FFF)),
)
# flags exact (0xf), as decoding a set(tunnel()) gives them back
ACTIONS = Actions.of(set_tunnel(tun_id=5, ipv4_dst="10.0.1.2", ttl=64, flags=(0x8, 0xF)), Output(2))


T = TypeVar("T")


def odp_encode() -> tuple[bytes, bytes, bytes]:
    return encode_key(MATCH), encode_mask(MATCH), encode_actions(ACTIONS)


def odp_decode(key: bytes, mask: bytes, acts: bytes) -> tuple[Match, Actions]:
    return decode_match(key, mask), decode_actions(acts)


def odp_cold(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` with the codec's caches emptied first: the cost of a flow never seen before."""

    def run() -> T:
        clear_decode_caches()
        return fn()

    return run


# ---------------------------------------------------------------------------


def measure(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Median ops/s over ``repeat`` runs of about ``seconds`` each.

    Time is this process's CPU time (``time.process_time``), so that other
    programs competing for the CPU disturb the figures less.
    """
    clock = time.process_time
    n = 1
    while True:
        t0 = clock()
        for _ in range(n):
            fn()
        dt = clock() - t0
        if dt >= seconds / 5:
            break
        n *= 2
    per_run = max(1, int(n * seconds / dt))
    rates = []
    for _ in range(repeat):
        t0 = clock()
        for _ in range(per_run):
            fn()
        rates.append(per_run / (clock() - t0))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="duration of each timed run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per case (median reported)")
    args = ap.parse_args(argv)

    key, mask, acts = odp_encode()
    pk, pm, pa = pr_encode()
    same = (key, mask, acts) == (pk, pm, pa)
    print(f"bytes identical between odp and pyroute2: {same}")
    if not same:
        for name, a, b in (("key", key, pk), ("mask", mask, pm), ("actions", acts, pa)):
            if a != b:
                print(f"  {name}: odp {a.hex()}\n  {name}: pr2 {b.hex()}")
    match, actions = odp_decode(key, mask, acts)
    assert match == MATCH and actions == ACTIONS, "odp round trip failed"
    pr_decode(key, mask, acts)

    # The cold rows are the comparison; the cached rows show what a dump whose
    # flows repeat their layout, mask and values (all of them, here) costs.
    rows = [
        ("encode key+mask+actions", odp_cold(odp_encode), lambda: pr_encode()),
        ("decode key+mask+actions", odp_cold(lambda: odp_decode(key, mask, acts)), lambda: pr_decode(key, mask, acts)),
        ("encode, cached actions", odp_encode, lambda: pr_encode()),
        ("decode, cached layout", lambda: odp_decode(key, mask, acts), lambda: pr_decode(key, mask, acts)),
    ]
    print(f"{'case':<26}{'odp ops/s':>12}{'us/op':>9}{'pyroute2 ops/s':>17}{'us/op':>9}{'odp/pyroute2':>14}")
    for name, fo, fp in rows:
        ro = measure(fo, args.seconds, args.repeat)
        rp = measure(fp, args.seconds, args.repeat)
        print(f"{name:<26}{ro:>12.0f}{1e6 / ro:>9.1f}{rp:>17.0f}{1e6 / rp:>9.1f}{ro / rp:>13.1f}x")

    # A flow dump as the kernel backend sees it: 100 dump entries in one buffer.
    entry = build_request(
        0x1E, 1, 1, 2, 1, 7, [*flow_attrs(MATCH, ACTIONS, ufid=bytes(16)), (3, bytes(16)), (5, bytes(8))]
    )
    dump = entry * 100
    assert len(parse_messages(dump)) == 100
    rate = measure(lambda: [decode_flow(m) for m in parse_messages(dump)], args.seconds, args.repeat) * 100
    print(f"{'odp dump entry (parse+decode_flow)':<36}{rate:>10.0f} flows/s {1e6 / rate:>7.1f} us/flow")

    def walk() -> list[Flow]:
        out: list[Flow] = []
        walk_flow_dump(dump, 1, 0x1E, out)
        return out

    def walk_and_decode() -> None:
        for f in walk():
            _ = f.match, f.actions

    rate = measure(walk, args.seconds, args.repeat) * 100
    print(f"{'odp dump entry (walk_flow_dump)':<36}{rate:>10.0f} flows/s {1e6 / rate:>7.1f} us/flow")
    rate = measure(walk_and_decode, args.seconds, args.repeat) * 100
    print(f"{'  + match and actions decoded':<36}{rate:>10.0f} flows/s {1e6 / rate:>7.1f} us/flow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
