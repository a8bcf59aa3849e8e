"""Simulator throughput, measured side by side with a naive linear-scan classifier.

Run on demand: ``python benchmarks/bench_sim.py [--flows 10000] [--masks 8]``.

- packets/s through extract + lookup + output (the receive path) with N flows over M masks;
- lookups/s on exact-match-cache hits;
- flow installs/s through the public API (validation included);
- the same lookups with a linear scan over the flows, in the same run.

Times are CPU seconds of this process (``time.process_time``), best of
``--rounds``: the machines this runs on are shared and noisy, and wall-clock
time would also count the time other processes had the CPU.
"""

from __future__ import annotations

import argparse
import random
import struct
import time

import odp.validate.swkey as sk
from odp.actions import Actions, Output
from odp.datapath import Connection
from odp.keys import Ethernet, EthType, InPort, Ipv4, KeyAttr, Match, Tcp, TcpFlags, Udp
from odp.sim.datapath import SimBackend
from odp.sim.flow import extract
from odp.sim.network import Host


def frame(src: int, dst: int, proto: int, sport: int, dport: int) -> bytes:
    l4 = (
        struct.pack("!HHHH", sport, dport, 8, 0)
        if proto == 17
        else struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, 2, 0, 0, 0)
    )
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + l4 + b"\x00" * 6


def masks_and_flows(n_flows: int, n_masks: int, rng: random.Random) -> tuple[list[Match], list[bytes]]:
    """N flows spread over M distinct masks (IPv4 prefix lengths, UDP or TCP ports),
    none overlapping, and one matching packet per flow."""
    prefixes = [32, 30, 28, 26, 24, 23, 22, 29, 31, 27, 25][:n_masks]
    matches: list[Match] = []
    packets: list[bytes] = []
    for i in range(n_flows):
        shape = i % len(prefixes)
        plen = prefixes[shape]
        host_bits = 32 - plen
        dst = ((10 + shape) << 24) | (((i // len(prefixes)) << host_bits) & 0xFFFFFF)
        mask = (0xFFFFFFFF << host_bits) & 0xFFFFFFFF
        proto = 17 if shape % 2 == 0 else 6
        l4: tuple[KeyAttr, ...]
        if proto == 17:
            l4 = (Udp(dst=53),)
        else:
            l4 = (Tcp(dst=80), TcpFlags(value=(0, 0)))
        matches.append(Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst=(dst, mask), proto=proto), *l4))
        packet_dst = dst | rng.randrange(1 << host_bits)
        packets.append(frame(0x0A000001, packet_dst, proto, 1234, 53 if proto == 17 else 80))
    return matches, packets


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f}/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=10_000)
    ap.add_argument("--masks", type=int, default=8)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(1)

    host = Host("bench")
    host.add_interface("in")
    host.add_interface("out")
    conn = Connection(SimBackend(host))
    dp = conn.create_datapath("bench")
    dp.add_vport("in")
    dp.add_vport("out")
    sim = host.datapaths["bench"]

    matches, packets = masks_and_flows(args.flows, args.masks, rng)
    actions = Actions.of(Output(2))
    t_install = float("inf")
    for _ in range(args.rounds):
        dp.flush_flows()
        t0 = time.process_time()
        for m in matches:
            dp.add_flow(m, actions)
        t_install = min(t_install, time.process_time() - t0)
    print(f"{args.flows} flows over {sim.table.mask_count} masks")
    print(f"flow installs (API, validated)          {rate(args.flows, t_install)}")

    out = host.interface("out")
    stream = [packets[rng.randrange(len(packets))] for _ in range(args.packets)]
    t_rx = float("inf")
    for _ in range(args.rounds):
        t0 = time.process_time()
        for f in stream:
            sim.receive(1, f)
        t_rx = min(t_rx, time.process_time() - t0)
        out.sent.clear()
    stats = dp.stats()
    print(
        f"receive: extract+lookup+output          {rate(len(stream), t_rx)}   (hit {stats.hit}, missed {stats.missed})"
    )

    in_port_1 = sk.put(0, "in_port", 1)
    keys = [extract(f, in_port_1).key for f in stream[:20_000]]  # type: ignore[union-attr]
    table = sim.table
    t_emc = float("inf")
    for _ in range(args.rounds):
        t0 = time.process_time()
        for k in keys:
            table.lookup(k)
        t_emc = min(t_emc, time.process_time() - t0)
    print(f"lookup, exact-match cache hits          {rate(len(keys), t_emc)}")

    t_ext = float("inf")
    for _ in range(args.rounds):
        t0 = time.process_time()
        for f in stream[:50_000]:
            extract(f)
        t_ext = min(t_ext, time.process_time() - t0)
    print(f"key extraction alone                    {rate(50_000, t_ext)}")

    # Tuple space without the cache vs a linear scan over the same flows.
    flows = [(fl.sw.mask, fl.sw.masked_key) for fl in table.flows()]
    sample_keys = keys[:2000]
    t0 = time.process_time()
    for k in sample_keys:
        for tab in table._masks:
            if tab.flows.get(k & tab.mask) is not None:
                break
    t_tss = time.process_time() - t0
    t0 = time.process_time()
    for k in sample_keys:
        for mask, mkey in flows:
            if k & mask == mkey:
                break
    t_lin = time.process_time() - t0
    print(f"lookup, tuple space (no cache)          {rate(len(sample_keys), t_tss)}")
    print(
        f"lookup, linear scan                     {rate(len(sample_keys), t_lin)}   "
        f"(tuple space is {t_lin / t_tss:,.0f}x faster)"
    )


if __name__ == "__main__":
    main()
