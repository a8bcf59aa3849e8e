"""Benchmark of odp.sim.flow.extract: packets per second for a few packet types.

Run on demand: ``python benchmarks/bench_extract.py [--seconds S] [--wall]``.

Times are the best of 5 runs, in process CPU time by default (steadier than
wall-clock time when the machine is shared); ``--wall`` uses ``perf_counter``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from odp.sim.flow import extract
from odp.validate import swkey

ETH = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
PAYLOAD = Raw(b"x" * 64)

PACKETS: list[tuple[str, bytes]] = [
    ("eth/ipv4/tcp", bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S") / PAYLOAD)),
    ("eth/ipv4/udp", bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=53) / PAYLOAD)),
    ("eth/ipv4/icmp", bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / PAYLOAD)),
    ("eth/vlan/ipv4/tcp", bytes(ETH / Dot1Q(vlan=10) / IP() / TCP() / PAYLOAD)),
    ("eth/arp", bytes(ETH / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))),
    ("eth/ipv6/tcp", bytes(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2) / PAYLOAD)),
    ("eth/ipv6/nd-ns", bytes(ETH / IPv6() / ICMPv6ND_NS(tgt="2001:db8::9") / ICMPv6NDOptSrcLLAddr(lladdr=ETH.src))),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement (default 0.5)")
    parser.add_argument("--wall", action="store_true", help="measure wall-clock time instead of CPU time")
    args = parser.parse_args()
    meta = swkey.build({"in_port": 1, "recirc_id": 0, "skb_mark": 7})
    print(f"{'packet':<20} {'pkts/s':>12} {'us/pkt':>8}")
    for name, frame in PACKETS:
        assert extract(frame, meta) is not None
        clock = time.perf_counter if args.wall else time.process_time
        timer = timeit.Timer(functools.partial(extract, frame, meta), timer=clock)
        number, _ = timer.autorange()
        number = max(number, int(number * args.seconds / 0.2))
        best = min(timer.repeat(repeat=5, number=number)) / number
        print(f"{name:<20} {1 / best:>12,.0f} {best * 1e6:>8.2f}")


if __name__ == "__main__":
    main()
